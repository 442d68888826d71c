"""Benchmark: restore N linked accounts to open sockets, and connector memory per idle open account.

Setup (not timed): emulators, the functions gateway and the simulator (child processes); N devices
are paired over QR and logged in once with the real engine (so their first pre-key upload is done,
as for any account that has been running), and each state is stored in the vault with an account
record ready to be claimed.

Timed: a connector process (``python -m connector``) starts with capacity N; the clock runs from
its start until the simulator reports N devices logged in (and the connector reports N open).
Memory: the connector's RSS once idle with N open sockets, minus the RSS of an identical connector
holding no account, divided by N.

    .venv/bin/python bench/connector_restore.py [--accounts 1000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.engine.driver import EngineConfig, EngineSession
from connector.protocol.client import ClientConfig
from connector.protocol.events import Closed, Opened, PreKeysUploaded, QrCodeShown
from functions.firestore_stores import firestore_stores
from functions.model import Account, AccountStatus, PairingMethod
from keeper import emulators
from keeper.procs import ChildProcess, free_port, http_ok
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.vault.config import VaultConfig
from simulator.testing import ControlClient, SimulatorHandle, simulator_process
from tests.connector.stack import start_stack

PROJECT = "demo-keeper-bench"
DEVICES_PER_PHONE = 100


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
    from google.cloud import firestore  # type: ignore[attr-defined]

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle time before measuring memory")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    print(f"logs: {tmp}", flush=True)
    started: list[ChildProcess] = []

    def children(name: str, argv: list[str], **kwargs: Any) -> ChildProcess:
        proc = ChildProcess(name, argv, log_path=tmp / f"{name}.log", **kwargs)
        started.append(proc)
        return proc.start()

    fs_port, ps_port = free_port(), free_port()
    try:
        started.append(emulators.firestore(fs_port, log_dir=tmp).start())
        started.append(emulators.pubsub(ps_port, project=PROJECT, log_dir=tmp).start())
        os.environ.update({"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{fs_port}",
                           "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ps_port}",
                           "KEEPER_PROJECT": PROJECT, "GOOGLE_CLOUD_PROJECT": PROJECT,
                           "KEEPER_KEK_FILE": str(tmp / "home" / "kek.json")})
        stack = start_stack(children, PROJECT, uuid.uuid4().hex[:8], tmp / "home", lease_ttl_s=30)
        with simulator_process(log_path=tmp / "simulator.log") as sim:
            asyncio.run(seed(args, sim))

            idle, idle_port = connector(children, stack, sim, "bench-empty", capacity=0)
            deadline = time.monotonic() + 60
            while not http_ok(f"http://127.0.0.1:{idle_port}/readyz") and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(args.idle_s)
            assert idle.process is not None
            baseline = rss_mib(idle.process.pid)
            idle.stop()

            before = logged_in(sim)
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
            print(f"connector ready (first connectorSync) after {ready_at or float('nan'):.1f} s")
            print(f"restore {count}/{args.accounts} accounts to open sockets: {elapsed:.1f} s "
                  f"(target < 15 s for 1,000)")
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
        for proc in reversed(started):
            proc.stop()


if __name__ == "__main__":
    main()
