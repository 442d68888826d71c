"""Benchmark of the functions' hot paths, in process (memory stores, real vault and sealing).

Prints: persist (open sealed snapshot + validate + encrypt + save) per snapshot, connectorSync claim
of pairing accounts, restore claims (decrypt + validate + seal to the connector), and renewals.
With FIRESTORE_EMULATOR_HOST set it also times lease claims through Firestore transactions.

    .venv/bin/python bench/functions_sync.py [--accounts 1000] [--restores 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.functions.support import ALICE, FakeConnector, registered_state, seal_snapshot, snapshot_attrs, world


def _ms(seconds: float, n: int) -> str:
    return f"{seconds * 1000 / max(n, 1):.2f} ms each ({n} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--restores", type=int, default=100)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    w = world(tmp, max_accounts_per_user=10**6)

    ids = [w.add(ALICE, f"+4071{i:07d}") for i in range(args.accounts)]
    connector = FakeConnector("bench-1", capacity=args.accounts)
    t = time.perf_counter()
    claimed = connector.sync(w.services)["claimed"]
    print(f"claim (pair mode): {_ms(time.perf_counter() - t, len(claimed))}")
    t = time.perf_counter()
    renewed = connector.sync(w.services)["renewed"]
    print(f"renew held leases: {_ms(time.perf_counter() - t, len(renewed))}")

    states = [registered_state(seed) for seed in range(args.restores)]
    sealed = [seal_snapshot(w.vault, ids[i], 1, "bench-1", states[i]) for i in range(args.restores)]
    size = sum(len(s) for s in sealed) / max(len(sealed), 1)
    t = time.perf_counter()
    for i, blob in enumerate(sealed):
        w.services.persister.handle(blob, snapshot_attrs(ids[i], 1, "bench-1"))
    print(f"persist snapshot (~{size / 1024:.0f} KiB sealed): {_ms(time.perf_counter() - t, len(sealed))}")
    t = time.perf_counter()
    for i, blob in enumerate(sealed):
        w.services.persister.handle(blob, snapshot_attrs(ids[i], 1, "bench-1"))
    print(f"persist duplicate (no-op): {_ms(time.perf_counter() - t, len(sealed))}")

    from functions.model import AccountStatus

    for account_id in ids[: args.restores]:
        w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED})
    connector.sync(w.services, release={a: 1 for a in ids[: args.restores]})
    t = time.perf_counter()
    restored = [c for c in FakeConnector("bench-2", capacity=args.restores).sync(w.services)["claimed"]
                if c["mode"] == "restore"]
    print(f"claim with restore + seal: {_ms(time.perf_counter() - t, len(restored))}")

    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        from google.cloud import firestore

        from functions.firestore_stores import firestore_stores
        from tests.functions.support import T0

        leases = firestore_stores(firestore.Client(project="demo-keeper-bench")).leases
        n = 100
        t = time.perf_counter()
        for i in range(n):
            leases.claim(f"bench{time.time_ns()}-{i}", "bench", T0, 30)
        print(f"Firestore emulator lease claim (transaction): {_ms(time.perf_counter() - t, n)}")


if __name__ == "__main__":
    main()
