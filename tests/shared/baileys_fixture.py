"""A realistic Baileys auth folder, written the way useMultiFileAuthState writes one."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any


def _buf(data: bytes) -> dict[str, str]:
    return {"type": "Buffer", "data": base64.b64encode(data).decode()}


def _pair(rng: random.Random) -> dict[str, Any]:
    return {"private": _buf(rng.randbytes(32)), "public": _buf(rng.randbytes(32))}


def baileys_files(seed: int = 7) -> dict[str, Any]:
    """File name -> JSON value (as JSON.stringify with BufferJSON.replacer would write it)."""
    rng = random.Random(seed)
    creds = {
        "noiseKey": _pair(rng),
        "pairingEphemeralKeyPair": _pair(rng),
        "signedIdentityKey": _pair(rng),
        "signedPreKey": {"keyPair": _pair(rng), "signature": _buf(rng.randbytes(64)), "keyId": 1},
        "registrationId": 117,
        "advSecretKey": base64.b64encode(rng.randbytes(32)).decode(),
        "processedHistoryMessages": [{"key": {"remoteJid": "40700000002@s.whatsapp.net", "fromMe": False,
                                              "id": "3EB0ABC"}, "messageTimestamp": 1700000000}],
        "nextPreKeyId": 813,
        "firstUnuploadedPreKeyId": 813,
        "accountSyncCounter": 1,
        "accountSettings": {"unarchiveChats": False},
        "registered": True,
        "pairingCode": "ABCD1234",
        "lastPropHash": "2V77qU",
        "routingInfo": _buf(rng.randbytes(9)),
        "me": {"id": "40700000001:12@s.whatsapp.net", "lid": "123456789012345:12@lid", "name": "Ana"},
        # protobufjs' toJSON writes the bytes fields of creds.account as base64 text
        "account": {"details": base64.b64encode(rng.randbytes(90)).decode(),
                    "accountSignatureKey": base64.b64encode(rng.randbytes(32)).decode(),
                    "accountSignature": base64.b64encode(rng.randbytes(64)).decode(),
                    "deviceSignature": base64.b64encode(rng.randbytes(64)).decode()},
        "signalIdentities": [{"identifier": {"name": "123456789012345:12@lid", "deviceId": 0},
                              "identifierKey": _buf(b"\x05" + rng.randbytes(32))}],
        "platform": "smba",
        "myAppStateKeyId": "AAAAAH4A",
        "lastAccountSyncTimestamp": 1700000123,
    }
    session = {"_sessions": {base64.b64encode(rng.randbytes(33)).decode(): {
        "registrationId": 4242, "currentRatchet": {"rootKey": base64.b64encode(rng.randbytes(32)).decode()},
        "indexInfo": {"closed": -1, "used": 1700000000000}}}, "version": "v1"}
    return {
        "creds.json": creds,
        "pre-key-1.json": _pair(rng),
        # Node's own Buffer.toJSON form, still found in folders written by old Baileys versions
        "pre-key-2.json": {"private": {"type": "Buffer", "data": list(rng.randbytes(32))},
                           "public": {"type": "Buffer", "data": list(rng.randbytes(32))}},
        "session-40700000002.0.json": session,
        "session-123456789012346_1.3.json": session,
        "sender-key-1234@g.us--40700000001--0.json": _buf(rng.randbytes(200)),
        "sender-key-40700000001-1600000000@g.us--123456789012345_1--12.json": _buf(rng.randbytes(200)),
        "sender-key-memory-1234@g.us.json": {"40700000002:3@s.whatsapp.net": True},
        "app-state-sync-key-AAAAAH4A.json": {"keyData": base64.b64encode(rng.randbytes(32)).decode(),
                                             "fingerprint": {"rawId": 90210, "currentIndex": 2,
                                                             "deviceIndexes": [0, 12]},
                                             "timestamp": "1700000000000"},
        "app-state-sync-key-AB__cd+e==.json": {"keyData": base64.b64encode(rng.randbytes(32)).decode()},
        "app-state-sync-version-regular_high.json": {"version": 41, "hash": _buf(rng.randbytes(128)),
                                                     "indexValueMap": {"Zm9v": {"valueMac": _buf(b"m" * 32)}}},
        "lid-mapping-40700000002.json": "123456789012346",
        "lid-mapping-123456789012346_reverse.json": "40700000002",
        "device-list-40700000002.json": ["0", "3"],
        "identity-key-40700000002.0.json": _buf(b"\x05" + rng.randbytes(32)),
        "tctoken-40700000002@s.whatsapp.net.json": {"token": _buf(rng.randbytes(24)), "timestamp": "1700000000"},
    }


def write_baileys_folder(folder: Path, seed: int = 7) -> dict[str, Any]:
    files = baileys_files(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (folder / name).write_text(json.dumps(value, separators=(",", ":")))
    return files
