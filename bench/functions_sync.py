"""Benchmark of the functions' hot paths, in process (memory stores, real vault and sealing).

Prints: persist (open sealed snapshot + validate + encrypt + save) per snapshot, connectorSync claim
of pairing accounts, restore claims (decrypt + validate + seal to the connector), and renewals.
With ``--firestore N`` it starts a Firestore emulator and times the same paths for N accounts there.

    .venv/bin/python bench/functions_sync.py [--accounts 1000] [--restores 100] [--firestore 200]
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
    parser.add_argument("--firestore", type=int, default=0, metavar="N",
                        help="also time N accounts on a Firestore emulator started for the run")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    w = world(tmp, max_accounts_per_user=10**6, max_claims_per_sync=10**6)

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

    if args.firestore:
        firestore_figures(tmp, args.firestore)


def firestore_figures(tmp: Path, n: int) -> None:
    """The same paths on the Firestore emulator (started here): transactions and round trips."""
    from google.cloud import firestore

    from functions.firestore_stores import firestore_stores
    from functions.model import AccountStatus
    from functions.vault_adapter import VaultSealer, VaultSessions
    from functions.wiring import build_services
    from keeper import emulators
    from keeper.procs import free_port
    from shared.vault import Vault
    from shared.vault.firestore_store import FirestoreVaultStore
    from shared.vault.kek import LocalFileKek
    from tests.functions.support import Clock, RecordingPublisher, config

    port = free_port()
    proc = emulators.firestore(port, log_dir=tmp / "logs")
    proc.start()
    try:
        os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
        client = firestore.Client(project="demo-keeper-bench")
        clock = Clock()
        vault_store = FirestoreVaultStore(client)
        vault = Vault(vault_store, LocalFileKek(tmp / "fs-kek.json"), clock=clock)
        settings = config(max_accounts_per_user=10**6, max_claims_per_sync=10**6)
        services = build_services(settings, firestore_stores(client), VaultSessions(vault, vault_store),
                                  VaultSealer(vault), RecordingPublisher(), clock=clock)
        from functions.model import PairingMethod
        from functions.validation import AddAccountInput

        t = time.perf_counter()
        ids = [services.accounts.add(ALICE, AddAccountInput(f"+4072{i:07d}", PairingMethod.CODE))["accountId"]
               for i in range(n)]
        print(f"[firestore] addAccount: {_ms(time.perf_counter() - t, n)}")
        connector = FakeConnector("fs-1", capacity=n)
        t = time.perf_counter()
        calls = []
        while len(connector.held) < n:
            c0 = time.perf_counter()
            got = len(connector.sync(services)["claimed"])
            calls.append((got, time.perf_counter() - c0))
            clock.advance(1)
        print(f"[firestore] claiming {n} (pair mode): {time.perf_counter() - t:.2f} s in {len(calls)} syncs "
              f"(per call: {', '.join(f'{g} in {d:.1f} s' for g, d in calls)})")
        for _ in range(3):
            clock.advance(20)
            t = time.perf_counter()
            renewed = connector.sync(services)["renewed"]
            print(f"[firestore] connectorSync renewing {len(renewed)}: {time.perf_counter() - t:.2f} s")
        restores = min(n, 50)
        for i in range(restores):
            blob = seal_snapshot(vault, ids[i], 1, "fs-1", registered_state(i))
            services.persister.handle(blob, snapshot_attrs(ids[i], 1, "fs-1"))
        t = time.perf_counter()
        for i in range(restores):
            blob = seal_snapshot(vault, ids[i], 1, "fs-1", registered_state(i + 1000))
            services.persister.handle(blob, snapshot_attrs(ids[i], 1, "fs-1"))
        print(f"[firestore] persist snapshot: {_ms(time.perf_counter() - t, restores)}")
        for account_id in ids[:restores]:
            services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED})
        connector.sync(services, release={a: 1 for a in ids[:restores]})
        t = time.perf_counter()
        got = FakeConnector("fs-2", capacity=restores).sync(services)["claimed"]
        print(f"[firestore] claim with restore + seal: {_ms(time.perf_counter() - t, len(got))}")
    finally:
        proc.stop()

if __name__ == "__main__":
    main()
