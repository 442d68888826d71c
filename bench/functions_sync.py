"""Benchmark of the functions' hot paths, in process (memory stores, real vault and sealing).

Prints: persist (open sealed snapshot + validate + encrypt + save) per snapshot, connectorSync claim
of pairing accounts, restore claims (decrypt + validate + seal to the connector), and renewals.
With ``--firestore N`` it starts a Firestore emulator and times the same paths for N accounts there.
With ``--startup N`` it times, on a Firestore emulator, what a connector starting with capacity N
asks of connectorSync: N linked accounts claimed and restored over repeated calls (each call also
renewing what is held, as a connector does), then ``--steady-syncs`` steady-state calls; it prints
wall time and CPU seconds of the functions (this process) and of the emulator, and for the steady
calls the documents read and the RPCs made.

    .venv/bin/python bench/functions_sync.py [--accounts 1000] [--restores 100] [--firestore 200] [--startup 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.functions_world import ALICE, FakeConnector, registered_state, seal_snapshot, snapshot_attrs, world


def _ms(seconds: float, n: int) -> str:
    return f"{seconds * 1000 / max(n, 1):.2f} ms each ({n} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--restores", type=int, default=100)
    parser.add_argument("--firestore", type=int, default=0, metavar="N",
                        help="also time N accounts on a Firestore emulator started for the run")
    parser.add_argument("--startup", type=int, default=0, metavar="N",
                        help="only time a connector starting up with N linked accounts (Firestore emulator)")
    parser.add_argument("--steady-syncs", type=int, default=6, metavar="K",
                        help="with --startup: how many steady-state syncs (one per 5 s of the fake clock) to time")
    args = parser.parse_args()
    if args.startup:
        startup_figures(Path(tempfile.mkdtemp()), args.startup, args.steady_syncs)
        return
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

    from functions.model import AccountStatus
    from testkit.functions_world import Clock, config

    with firestore_emulator(tmp / "logs"):
        client = firestore.Client(project="demo-keeper-bench")
        clock = Clock()
        services, vault = firestore_services(client, tmp / "fs-kek.json", clock,
                                             config(max_accounts_per_user=10**6, max_claims_per_sync=10**6))
        from functions.validation import AddAccountInput
        from shared.connector_sync import PairingMethod

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


def firestore_services(client: Any, kek_path: Path, clock: Any, settings: Any) -> tuple[Any, Any]:
    """The functions' services over Firestore ``client`` (the vault with a local KEK at ``kek_path``),
    as the deployed functions wire them; returns (services, vault)."""
    from functions.firestore_stores import firestore_stores
    from functions.vault_adapter import VaultSealer, VaultSessions
    from functions.wiring import build_services
    from shared.vault import Vault
    from shared.vault.firestore_store import FirestoreVaultStore
    from shared.vault.kek import LocalFileKek
    from testkit.functions_world import RecordingPublisher

    vault_store = FirestoreVaultStore(client)
    vault = Vault(vault_store, LocalFileKek(kek_path), clock=clock)
    services = build_services(settings, firestore_stores(client), VaultSessions(vault, vault_store),
                              VaultSealer(vault.kek), RecordingPublisher(), clock=clock)
    return services, vault


@contextmanager
def firestore_emulator(log_dir: Path) -> Iterator[int]:
    """A Firestore emulator on a free port for one benchmark, FIRESTORE_EMULATOR_HOST pointing at it;
    yields the emulator's pid (for :func:`tree_cpu_s`)."""
    from keeper import emulators
    from keeper.procs import free_port

    port = free_port()
    proc = emulators.firestore(port, log_dir=log_dir)
    proc.start()
    assert proc.process is not None
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    try:
        yield proc.process.pid
    finally:
        proc.stop()


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants (the emulator runs under gcloud)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, (0, 0.0))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


class _DocumentReads:
    """Counts the documents a Firestore client's gets and queries bring back (what Firestore bills as
    reads; a query that finds nothing counts one)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        api = client._firestore_api
        for name in ("batch_get_documents", "run_query"):
            setattr(api, name, self._counting(getattr(api, name)))

    def _counting(self, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            found = 0
            for response in original(*args, **kwargs):
                found += bool(getattr(response, "document", None) or getattr(response, "found", None))
                yield response
            self.count += max(found, 1)

        return call

    def take(self) -> int:
        taken, self.count = self.count, 0
        return taken


def startup_figures(tmp: Path, n: int, steady_syncs: int = 6) -> None:
    """A connector starting with capacity ``n`` against ``n`` linked accounts, on the emulator."""
    import base64
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from google.cloud import firestore

    from functions.model import Account, AccountStatus
    from functions.validation import parse_sync_request
    from shared import sealing
    from shared.connector_sync import PairingMethod
    from testkit.firestore_rpcs import RpcCounter
    from testkit.functions_world import Clock, config

    with firestore_emulator(tmp / "logs") as emulator_pid:
        client = firestore.Client(project="demo-keeper-bench")
        rpcs = RpcCounter(client)
        documents_read = _DocumentReads(client)
        clock = Clock(datetime.now(UTC))
        services, vault = firestore_services(client, tmp / "kek.json", clock, config())
        stores = services.stores

        def seed(i: int) -> None:
            account_id = f"bench{i:05d}"
            vault.save(account_id, registered_state(i), 0)
            stores.accounts.create(Account(
                account_id=account_id, owner_uid="bench", phone_number=f"+4074{i:07d}", method=PairingMethod.QR,
                status=AccountStatus.CONNECTED, serve=True, created_at=clock.now, updated_at=clock.now,
                claimable_after=clock.now))

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(seed, range(n)))
        print(f"setup: {n} linked accounts stored in {time.perf_counter() - t:.0f} s", flush=True)

        key = X25519PrivateKey.generate()
        public = base64.b64encode(sealing.public_key_bytes(key)).decode()
        held: dict[str, int] = {}
        renewed_at: dict[str, datetime] = {}

        def sync(renew_due_only: bool) -> dict[str, object]:
            half = timedelta(seconds=15)
            request = parse_sync_request({
                "connectorId": "bench-1", "capacity": n, "publicKey": public,
                "held": [{"accountId": a, "generation": g,
                          **({"renew": False} if renew_due_only and clock.now - renewed_at[a] < half else {})}
                         for a, g in held.items()]})
            response = services.sync.sync(request).to_json()
            for entry in response["renewed"]:
                renewed_at[entry["accountId"]] = clock.now
            for claim in response["claimed"]:
                held[claim["accountId"]] = claim["generation"]
                renewed_at[claim["accountId"]] = clock.now
            for lost in response["lost"]:
                held.pop(lost["accountId"], None)
            return response

        for due_only in (False, True):
            label = "renewing only leases due" if due_only else "renewing every held lease"
            if due_only:  # start over: every lease released, the same accounts claimable again
                for account_id in held:
                    stores.leases.revoke(account_id, clock.now)
                stores.accounts.update_many({a: {"claimable_after": clock.now} for a in held})
                held.clear()
            calls: list[str] = []
            cpu0, emu0, t0 = time.process_time(), tree_cpu_s(emulator_pid), time.perf_counter()
            while len(held) < n and len(calls) < 200:
                c0 = time.perf_counter()
                got = len(sync(due_only)["claimed"])  # type: ignore[arg-type]
                calls.append(f"{got} in {time.perf_counter() - c0:.1f} s")
                clock.advance(time.perf_counter() - c0)
            wall = time.perf_counter() - t0
            print(f"[startup, {label}] {len(held)} accounts claimed + restored in {wall:.1f} s over {len(calls)} "
                  f"calls; CPU: functions {time.process_time() - cpu0:.1f} s, emulator "
                  f"{tree_cpu_s(emulator_pid) - emu0:.1f} s", flush=True)
            print(f"  per call: {', '.join(calls)}", flush=True)
            rpcs.take()
            documents_read.take()
            cpu0, emu0, t0 = time.process_time(), tree_cpu_s(emulator_pid), time.perf_counter()
            for _ in range(steady_syncs):
                clock.advance(5)
                sync(due_only)
            print(f"[steady, {label}] {steady_syncs} syncs holding {len(held)} (one per 5 s): "
                  f"{time.perf_counter() - t0:.1f} s, "
                  f"CPU: functions {time.process_time() - cpu0:.1f} s, emulator "
                  f"{tree_cpu_s(emulator_pid) - emu0:.1f} s; documents read {documents_read.take()}, "
                  f"RPCs {dict(sorted(rpcs.take().items()))}", flush=True)


if __name__ == "__main__":
    main()
