"""Vault benchmark: save and restore of a 50 KB and a 2 MB auth state.

Prints p50/p99 wall time of save and restore, stored bytes / raw bytes, the stored size against the
plain zstd size, and the CPU time of decrypt + decompress + validate. Runs on the in-memory store
always, and on the Firestore emulator too when FIRESTORE_EMULATOR_HOST is set.

    .venv/bin/python bench/vault.py [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.authstate import AuthState, Contact, StoredKeyPair, validate_state
from shared.compression import compress
from shared.snapshot import canonical_state_bytes, parse_state
from shared.vault import MemoryVaultStore, Vault, crypto
from shared.vault.kek import LocalFileKek


def b64(rng: random.Random, n: int) -> str:
    return base64.b64encode(rng.randbytes(n)).decode()


def session_record(rng: random.Random) -> dict[str, Any]:
    """Shaped like libsignal-node's SessionRecord.serialize(): JSON with base64 keys and counters."""
    chains = {b64(rng, 33): {"chainKey": {"counter": rng.randrange(50), "key": b64(rng, 32)},
                             "chainType": rng.choice([1, 2]), "messageKeys": {}} for _ in range(2)}
    return {"version": "v1", "_sessions": {b64(rng, 33): {
        "registrationId": rng.randrange(16384),
        "currentRatchet": {"ephemeralKeyPair": {"pubKey": b64(rng, 33), "privKey": b64(rng, 32)},
                           "lastRemoteEphemeralKey": b64(rng, 33), "previousCounter": 0, "rootKey": b64(rng, 32)},
        "indexInfo": {"baseKey": b64(rng, 33), "baseKeyType": 2, "closed": -1, "used": 1_700_000_000_000,
                      "created": 1_700_000_000_000, "remoteIdentityKey": b64(rng, 33)},
        "_chains": chains}}}


def make_state(target_bytes: int, seed: int = 1) -> AuthState:
    rng = random.Random(seed)
    state = AuthState.generate(rng.randbytes)
    state.creds = state.creds.updated({
        "registered": True, "me": Contact(id="40700000001:7@s.whatsapp.net", name="Bench").to_json(),
        "account": {"details": rng.randbytes(80), "accountSignatureKey": rng.randbytes(32),
                    "accountSignature": rng.randbytes(64), "deviceSignature": rng.randbytes(64)},
    })
    state.keys = {"pre-key": {str(i): StoredKeyPair.generate(rng.randbytes).to_json() for i in range(1, 31)},
                  "session": {}, "sender-key": {}, "device-list": {}}
    i = 0
    while len(canonical_state_bytes(state)) < target_bytes:
        for _ in range(max(1, (target_bytes - len(canonical_state_bytes(state))) // 3000)):
            state.keys["session"][f"4070{i:07d}.0"] = session_record(rng)
            state.keys["sender-key"][f"{i}@g.us::4070{i:07d}::0"] = rng.randbytes(180)
            state.keys["device-list"][f"4070{i:07d}"] = ["0", str(rng.randrange(1, 20))]
            i += 1
    return state


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.2f} ms  p99 {p99:7.2f} ms"


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bench_store(label: str, vault: Vault, state: AuthState, rounds: int) -> None:
    raw = canonical_state_bytes(state)
    account = f"bench-{len(raw)}-{os.getpid()}"
    # Each save differs from the last (else it would be a no-op); variants are built outside the timing.
    variants = []
    for n in range(rounds):
        variant = AuthState(creds=state.creds.updated({"nextPreKeyId": 31 + n}), keys=state.keys)
        variants.append(variant)
    vault.save(f"{account}-warmup", variants[0], 1)  # first-call costs (connections, caches) not timed
    vault.delete(f"{account}-warmup")
    pending = iter(variants)
    saves = timed(lambda: vault.save(account, next(pending), 1), rounds)
    restores = timed(lambda: vault.restore(account), rounds)
    stored = vault.inspect(account).stored_size
    zstd_size = len(compress(canonical_state_bytes(variants[-1])))
    print(f"  {label:9s} {len(raw) / 1024:8.1f} KiB raw | save {percentiles(saves)} | "
          f"restore {percentiles(restores)}")
    print(f"  {'':9s} stored/raw {stored / len(raw):.3f} | stored {stored} B vs zstd {zstd_size} B "
          f"(+{stored - zstd_size} B, {100 * (stored - zstd_size) / zstd_size:.2f}%; plus a ~200 B header)")
    vault.delete(account)


def bench_open_cpu(state: AuthState, rounds: int) -> None:
    raw = canonical_state_bytes(state)
    kek = os.urandom(32)
    binding = crypto.Binding("cpu", 1, 1)
    header, ciphertext = crypto.encrypt(crypto.prepare(raw), binding, "1", kek)

    def open_once() -> None:
        plaintext = crypto.decrypt(header, ciphertext, binding, kek)
        validate_state(parse_state(plaintext), len(plaintext))

    open_once()
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        open_once()
        samples.append((time.process_time() - start) * 1000)
    target = "  (target < 5 ms)" if len(raw) < 100_000 else ""
    print(f"  decrypt+decompress+validate CPU, {len(raw) / 1024:.1f} KiB: {percentiles(samples)}{target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    states = {"50 KB": make_state(50 * 1000), "2 MB": make_state(2 * 1000 * 1000)}
    with tempfile.TemporaryDirectory() as tmp:
        kek = LocalFileKek(Path(tmp) / "kek.json")
        print("in-memory store (CPU cost of the vault itself):")
        memory = Vault(MemoryVaultStore(), kek)
        for label, state in states.items():
            bench_store(label, memory, state, args.rounds)
        for label, state in states.items():
            bench_open_cpu(state, args.rounds * 5 if label == "50 KB" else args.rounds)
        if os.environ.get("FIRESTORE_EMULATOR_HOST"):
            from google.cloud import firestore

            from shared.vault.firestore_store import FirestoreVaultStore

            project = os.environ.get("KEEPER_PROJECT", "demo-keeper-bench")
            print(f"Firestore emulator at {os.environ['FIRESTORE_EMULATOR_HOST']} (project {project}):")
            remote = Vault(FirestoreVaultStore(firestore.Client(project=project)), kek)
            for label, state in states.items():
                bench_store(label, remote, state, max(5, args.rounds // 4))
        else:
            print("Firestore: skipped (set FIRESTORE_EMULATOR_HOST to include it)")


if __name__ == "__main__":
    main()
