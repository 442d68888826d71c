"""Benchmark: restore N linked accounts to open sockets, and connector memory per idle open account.

Setup (not timed): emulators, the functions gateway and the simulator (child processes); N devices
are paired over QR and logged in once with the real engine (so their first pre-key upload is done,
as for any account that has been running), and each state is stored in the vault with an account
record ready to be claimed.

Warm-up (untimed, ``--no-warm-up`` skips it): a first connector restores every account and is stopped
with SIGTERM, as before a deploy (:func:`warm_up` says why).

Timed: a connector process (``python -m connector``) starts with capacity N; the clock runs from
its start until the simulator reports N devices logged in (and the connector reports N open).
Memory: the connector's RSS once idle with N open sockets, minus the RSS of an identical connector
holding no account, divided by N.

``--seed-dir DIR`` keeps the untimed setup for later runs: the first run seeds as above and saves the
simulator's state, the KEK and every Firestore document in DIR; later runs with the same DIR and
``--accounts`` load them instead of pairing again (the simulator then runs with that state dir, so
it runs from a copy of that state and writes nothing back, as the in-memory one). The timed part is
the same either way.

    .venv/bin/python bench/connector_restore.py [--accounts 1000] [--concurrency 50] [--seed-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import shutil
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.engine.driver import EngineConfig, EngineSession
from connector.protocol.client import ClientConfig
from connector.protocol.events import Closed, Opened, PreKeysUploaded, QrCodeShown
from functions.firestore_stores import firestore_stores
from functions.model import Account, AccountStatus
from keeper.procs import ChildProcess, free_port, http_ok
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingMethod
from shared.vault.config import VaultConfig
from simulator.store import JsonFileStateStore
from simulator.testing import ControlClient, SimulatorHandle, simulator_process
from testkit.bench_processes import BenchProcesses
from testkit.connector_stack import start_stack

PROJECT = "demo-keeper-bench"
DEVICES_PER_PHONE = 100


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every live descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def cpu_by_process(procs: list[ChildProcess]) -> dict[str, float]:
    return {proc.name: _tree_cpu_s(proc.process.pid) for proc in procs if proc.process is not None}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def link_device(sim: SimulatorHandle, control: ControlClient, phone: str) -> AuthState:
    """Pair one companion by QR, then log it in once (first pre-key upload); return its state."""
    store = MemoryAuthStore(AuthState.generate())
    config = EngineConfig(url=sim.ws_url, client=ClientConfig(root_public_key=sim.root_public_key))
    pairing = EngineSession(store, config)
    async for event in pairing.events():
        if isinstance(event, QrCodeShown):
            await control.scan(phone, event.qr)
        elif isinstance(event, Closed):
            break
    login = EngineSession(store, config)
    async for event in login.events():
        if isinstance(event, PreKeysUploaded):
            await login.close()
        elif isinstance(event, Closed):
            if not isinstance(event, Closed) or event.info.reason.value not in ("closed_by_client",):
                raise RuntimeError(f"first login ended with {event.info.reason.value}")
            break
        elif isinstance(event, Opened):
            pass
    return store.snapshot()


async def seed(args: argparse.Namespace, sim: SimulatorHandle) -> None:
    control = sim.control()
    phones = [f"+4073{i:07d}" for i in range((args.accounts + DEVICES_PER_PHONE - 1) // DEVICES_PER_PHONE)]
    for phone in phones:
        await control.create_phone(phone)
    gate = asyncio.Semaphore(args.concurrency)
    vault = VaultConfig.from_env().vault()
    from google.cloud import firestore

    stores = firestore_stores(firestore.Client(project=PROJECT))
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        phone = phones[i // DEVICES_PER_PHONE]
        async with gate:
            state = await link_device(sim, control, phone)
        account_id = f"bench{i:05d}"
        now = datetime.now(UTC)
        await asyncio.to_thread(vault.save, account_id, state, 0)
        await asyncio.to_thread(stores.accounts.create, Account(
            account_id=account_id, owner_uid="bench", phone_number=f"+4074{i:07d}", method=PairingMethod.QR,
            status=AccountStatus.CONNECTED, serve=True, created_at=now, updated_at=now, claimable_after=now))
        done += 1
        if done % 100 == 0:
            print(f"  {done} accounts linked and stored", flush=True)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.accounts)))
    print(f"setup: {args.accounts} devices paired, logged in once and stored in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    await control.close()


def firestore_client() -> Any:
    from google.cloud import firestore

    return firestore.Client(project=PROJECT)


def dump_firestore(path: Path) -> int:
    """Every document (subcollections too) as (path, fields), pickled to ``path``."""
    client = firestore_client()
    docs: list[tuple[str, dict[str, Any]]] = []

    def walk(collections: Any) -> None:
        for collection in collections:
            for snap in collection.stream():
                docs.append((snap.reference.path, snap.to_dict() or {}))
                walk(snap.reference.collections())

    walk(client.collections())
    path.write_bytes(pickle.dumps(docs))
    return len(docs)


def load_firestore(path: Path) -> int:
    client = firestore_client()
    docs: list[tuple[str, dict[str, Any]]] = pickle.loads(path.read_bytes())
    from concurrent.futures import ThreadPoolExecutor

    def write(start: int) -> None:
        batch = client.batch()
        for doc_path, fields in docs[start:start + 50]:  # vault versions are large: stay under 4 MiB
            batch.set(client.document(doc_path), fields)
        batch.commit()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(0, len(docs), 50)))
    return len(docs)


def seed_saved(seed_dir: Path, accounts: int) -> bool:
    marker = seed_dir / "complete"
    return marker.exists() and marker.read_text().strip() == str(accounts)


def seed_and_save(args: argparse.Namespace, tmp: Path, seed_dir: Path) -> None:
    """Seed with the simulator persisting to ``seed_dir``, then save the KEK and Firestore beside it."""
    shutil.rmtree(seed_dir, ignore_errors=True)
    (seed_dir / "simulator").mkdir(parents=True)
    with simulator_process(log_path=tmp / "simulator-seed.log", state_dir=seed_dir / "simulator") as sim:
        asyncio.run(seed(args, sim))
    shutil.copy(os.environ["KEEPER_KEK_FILE"], seed_dir / "kek.json")
    count = dump_firestore(seed_dir / "firestore.pickle")
    (seed_dir / "complete").write_text(f"{args.accounts}\n")
    print(f"setup saved to {seed_dir} ({count} Firestore documents)", flush=True)


class _LoadOnlyStore:
    """The saved simulator state, loaded once; saves are dropped (a 1,000-device state is ~50 MB of
    JSON: writing it back while serving would block the simulator's event loop for seconds)."""

    def __init__(self, directory: Path) -> None:
        self._file = JsonFileStateStore(directory)

    def load(self) -> Any:
        return self._file.load()

    def save(self, state: Any) -> None:
        pass


def serve_saved_simulator(state_dir: Path, port: int) -> None:
    """Child-process mode: the simulator on ``port`` with the state saved in ``state_dir``."""
    import logging

    from aiohttp import web

    from simulator.server import SimulatorServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = SimulatorServer(_LoadOnlyStore(state_dir))
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, shutdown_timeout=3.0, access_log=None,
                backlog=2048)


@contextmanager
def saved_simulator(state_dir: Path, log_path: Path) -> Iterator[SimulatorHandle]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child = ChildProcess("simulator", [sys.executable, __file__, "--serve-simulator", str(state_dir),
                                       "--port", str(port)],
                         log_path=log_path, ready=lambda: http_ok(base + "/healthz"), ready_timeout_s=120)
    child.start()
    try:
        import base64
        import json

        with urllib.request.urlopen(base + "/v1/root-key", timeout=5) as response:
            root = base64.b64decode(json.load(response)["publicKey"])
        yield SimulatorHandle(ws_url=f"ws://127.0.0.1:{port}/ws/chat", control_url=base, root_public_key=root,
                              process=child)
    finally:
        child.stop()


def logged_in(sim: SimulatorHandle) -> int:
    import json

    with urllib.request.urlopen(sim.control_url + "/healthz", timeout=5) as response:
        return int(json.load(response).get("loggedIn", 0))


def connector(children: Any, stack: Any, sim: SimulatorHandle, name: str, capacity: int) -> tuple[ChildProcess, int]:
    port = free_port()
    env = stack.connector_env(name, port, KEEPER_WA_URL=sim.ws_url, KEEPER_WA_ROOT_KEY=sim.root_public_key_b64,
                              KEEPER_CAPACITY=str(capacity), KEEPER_SYNC_INTERVAL_S="5", KEEPER_LOG_LEVEL="INFO")
    proc = children(name, [sys.executable, "-m", "connector"], env=env)
    return proc, port


def wait_logged_in(sim: SimulatorHandle, count: int, timeout_s: float) -> int:
    """Poll the simulator until ``count`` more devices logged in (or the time is up); how many did."""
    before = logged_in(sim)
    deadline = time.monotonic() + timeout_s
    while (done := logged_in(sim) - before) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return done


def warm_up(children: Any, stack: Any, sim: SimulatorHandle, accounts: int) -> None:
    """Untimed: a first connector restores every account, idles, and is stopped with SIGTERM (leases
    released), so the timed connector restores them as after a deploy.

    Without it the timed restore would also pay for the Firestore emulator's warm-up: the emulator is
    a JVM, and during its first seconds of heavy traffic it also compiles its hot paths (measured:
    +4-5 CPU-seconds on this 2-core machine, the restore 14.5-20 s instead of 9-13 s). A seeding run
    warmed it by seeding; a run loading the saved setup did not. Cloud Firestore is never cold."""
    started = time.monotonic()
    proc, _ = connector(children, stack, sim, "bench-warm-up", capacity=accounts)
    opened = wait_logged_in(sim, accounts, timeout_s=300)
    time.sleep(5)
    proc.stop(grace_s=15)
    time.sleep(10)  # what the stop published (final snapshots, released leases) is recorded by now
    print(f"warm-up (untimed): a first connector restored {opened} accounts and was stopped "
          f"({time.monotonic() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle time before measuring memory")
    parser.add_argument("--seed-dir", type=Path, default=None,
                        help="save the setup here on the first run, load it on later runs")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="time the first restore after setup (emulator cold), see warm_up()")
    parser.add_argument("--serve-simulator", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_simulator is not None:
        serve_saved_simulator(args.serve_simulator, args.port)
        return
    processes = BenchProcesses("bench-restore-")
    tmp, started, children = processes.tmp, processes.started, processes.children
    try:
        processes.start_emulators(PROJECT)
        reuse = args.seed_dir is not None and seed_saved(args.seed_dir, args.accounts)
        if reuse:
            (tmp / "home").mkdir(parents=True, exist_ok=True)
            shutil.copy(args.seed_dir / "kek.json", tmp / "home" / "kek.json")
        stack = start_stack(children, PROJECT, uuid.uuid4().hex[:8], tmp / "home", lease_ttl_s=30)
        sim_state: Path | None = None
        if args.seed_dir is not None:
            if not reuse:
                seed_and_save(args, tmp, args.seed_dir)
            else:
                t_load = time.monotonic()
                count = load_firestore(args.seed_dir / "firestore.pickle")
                print(f"setup loaded from {args.seed_dir} ({count} Firestore documents) in "
                      f"{time.monotonic() - t_load:.0f} s", flush=True)
            sim_state = args.seed_dir / "simulator"
        simulator = (simulator_process(log_path=tmp / "simulator.log") if sim_state is None
                     else saved_simulator(sim_state, tmp / "simulator.log"))
        with simulator as sim:
            if sim_state is None:
                asyncio.run(seed(args, sim))

            idle, idle_port = connector(children, stack, sim, "bench-empty", capacity=0)
            deadline = time.monotonic() + 60
            while not http_ok(f"http://127.0.0.1:{idle_port}/readyz") and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(args.idle_s)
            assert idle.process is not None
            baseline = rss_mib(idle.process.pid)
            idle.stop()

            if args.warm_up:
                warm_up(children, stack, sim, args.accounts)
            before = logged_in(sim)
            watched = [*started, *([sim.process] if sim.process is not None else [])]
            cpu_before = cpu_by_process(watched)
            t0 = time.monotonic()
            proc, port = connector(children, stack, sim, "bench-restore", capacity=args.accounts)
            ready_at = None
            deadline = t0 + 300
            count = 0
            while time.monotonic() < deadline:
                if ready_at is None and http_ok(f"http://127.0.0.1:{port}/readyz"):
                    ready_at = time.monotonic() - t0
                count = logged_in(sim) - before
                if count >= args.accounts:
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
            cpu_used = {name: used - cpu_before.get(name, 0.0)
                        for name, used in cpu_by_process([*watched, proc]).items()}
            print(f"connector ready (first connectorSync) after {ready_at or float('nan'):.1f} s")
            print(f"restore {count}/{args.accounts} accounts to open sockets: {elapsed:.1f} s "
                  f"(target < 15 s for 1,000)")
            print("CPU seconds used while restoring: " + ", ".join(
                f"{name} {used:.1f}" for name, used in sorted(cpu_used.items(), key=lambda kv: -kv[1])
                if name != "bench-empty") + f" (of {elapsed * (os.cpu_count() or 1):.0f} available)")
            time.sleep(args.idle_s)
            assert proc.process is not None
            rss = rss_mib(proc.process.pid)
            print(f"connector RSS: {baseline:.1f} MiB holding nothing, {rss:.1f} MiB holding {count} open")
            print(f"memory per idle open account: {(rss - baseline) * 1024 / max(count, 1):.0f} KiB "
                  f"(target < 1024 KiB)")
            t_stop = time.monotonic()
            proc.stop(grace_s=15)
            print(f"SIGTERM to exit with {count} accounts: {time.monotonic() - t_stop:.1f} s")
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
