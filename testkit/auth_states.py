"""Builders of realistic auth states for the vault tests."""

from __future__ import annotations

import random

from shared.authstate import AuthState, Contact, StoredKeyPair
from shared.bufferjson import JsonValue


def registered_state(seed: int = 1, sessions: int = 8, session_bytes: int = 1200) -> AuthState:
    """A registered account's state with keys in every common category (deterministic per seed)."""
    rng = random.Random(seed)
    state = AuthState.generate(rng.randbytes)
    state.creds = state.creds.updated({
        "registered": True,
        "me": Contact(id="40700000001:7@s.whatsapp.net", lid="123456789012345:7@lid", name="Ana").to_json(),
        "account": {"details": rng.randbytes(80), "accountSignatureKey": rng.randbytes(32),
                    "accountSignature": rng.randbytes(64), "deviceSignature": rng.randbytes(64)},
        "signalIdentities": [{"identifier": {"name": "40700000001:7@s.whatsapp.net", "deviceId": 0},
                              "identifierKey": b"\x05" + rng.randbytes(32)}],
        "platform": "android", "myAppStateKeyId": "AAAAAH4A", "nextPreKeyId": 31,
        "firstUnuploadedPreKeyId": 31, "routingInfo": rng.randbytes(12),
    })
    keys: dict[str, dict[str, JsonValue]] = {
        "pre-key": {str(i): StoredKeyPair.generate(rng.randbytes).to_json() for i in range(1, 31)},
        "session": {f"4070000{i:04d}.0": rng.randbytes(session_bytes) for i in range(sessions)},
        "sender-key": {"1234@g.us::40700000001::0": rng.randbytes(300)},
        "sender-key-memory": {"1234@g.us": {"40700000002@s.whatsapp.net": True}},
        "app-state-sync-key": {"AAAAAH4A": {"keyData": rng.randbytes(32), "timestamp": "1700000000000",
                                            "fingerprint": {"rawId": 1, "currentIndex": 2, "deviceIndexes": [0, 7]}}},
        "app-state-sync-version": {"regular": {"version": 12, "hash": rng.randbytes(128), "indexValueMap": {}}},
        "lid-mapping": {"40700000002": "123456789012346", "123456789012346_reverse": "40700000002"},
        "device-list": {"40700000002": ["0", "3"]},
    }
    state.keys = keys
    return state


def grow(state: AuthState, target_bytes: int, seed: int = 9) -> AuthState:
    """Add sessions until the canonical state is about ``target_bytes`` long."""
    from shared.snapshot import canonical_state_bytes

    rng = random.Random(seed)
    grown = state.copy()
    sessions = grown.keys.setdefault("session", {})
    size = len(canonical_state_bytes(grown))
    i = 0
    while size < target_bytes:
        blob = rng.randbytes(1500)
        sessions[f"4079{i:07d}.1"] = blob
        size += len(f"4079{i:07d}.1") + 4 * 1500 // 3 + 40
        i += 1
    return grown
