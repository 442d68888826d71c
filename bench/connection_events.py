"""Benchmark of recording connection events (``recordConnectionEvent``) on a Firestore emulator.

A restore of N accounts makes each of them report ``connecting`` then ``open``; this records those
2N events, one after another, the way they arrive after a connector restart: N linked accounts held
under generation 1, one in ten with an open ``logged_out`` alert that ``open`` must close. Events of
``--warmup`` other accounts are recorded first and not counted.

Three paths are timed, each on freshly seeded accounts, in ``--rounds`` rounds one after the other:

- ``recorder``: ``ConnectionEventRecorder.handle`` called in process (the logic and its Firestore calls);
- ``function``: the deployed entry point, a binary-mode Pub/Sub CloudEvent posted to the
  functions-framework app of ``recordConnectionEvent`` (what the local relay and Eventarc do);
- ``batched``: the same entry point fed ``connection.updates`` messages of up to 200 updates, as a
  connector reports a restart.

For each it prints Firestore RPCs per event (per update, for batches; counted on the client), ms per
event, and CPU seconds per 1,000 events of this process (the functions) and of the emulator.

    .venv/bin/python bench/connection_events.py [--accounts 500] [--warmup 500] [--rounds 2] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.functions_sync import firestore_emulator, firestore_services, tree_cpu_s
from testkit.firestore_rpcs import RpcCounter

PROJECT = "demo-keeper-bench"
REGION = "us-central1"
@dataclass
class Figures:
    events: int
    wall_s: float
    functions_cpu_s: float
    emulator_cpu_s: float
    rpcs: collections.Counter[str]

    def line(self, label: str) -> str:
        per_event = sum(self.rpcs.values()) / self.events
        detail = ", ".join(f"{name} {count / self.events:.2f}" for name, count in sorted(self.rpcs.items()))
        scale = 1000 / self.events
        return (f"[{label}] {self.events} events in {self.wall_s:.1f} s: {self.wall_s * 1000 / self.events:.2f} ms "
                f"per event; Firestore RPCs per event {per_event:.2f} ({detail}); CPU per 1,000 events: "
                f"functions {self.functions_cpu_s * scale:.2f} s, emulator {self.emulator_cpu_s * scale:.2f} s")


@contextmanager
def measured(emulator_pid: int, counter: RpcCounter, events: int, out: list[Figures],
             profile: cProfile.Profile | None = None) -> Iterator[None]:
    counter.take()
    cpu0, emu0, t0 = time.process_time(), tree_cpu_s(emulator_pid), time.perf_counter()
    if profile is not None:
        profile.enable()
    try:
        yield
    finally:
        if profile is not None:
            profile.disable()
    out.append(Figures(events, time.perf_counter() - t0, time.process_time() - cpu0,
                       tree_cpu_s(emulator_pid) - emu0, counter.take()))


def seed(stores: Any, prefix: str, n: int, now: datetime) -> list[str]:
    """``n`` linked, served accounts held by ``bench-1`` under generation 1; one in ten with an open
    ``logged_out`` alert (the open event closes it)."""
    from functions.alerts import alert_id
    from functions.model import Account, AccountStatus, Alert
    from shared.connector_sync import PairingMethod

    ids = [f"{prefix}{i:05d}" for i in range(n)]

    def one(i: int) -> None:
        account_id = ids[i]
        stores.accounts.create(Account(
            account_id=account_id, owner_uid="bench", phone_number=f"+4075{i:07d}", method=PairingMethod.QR,
            status=AccountStatus.RECONNECTING, serve=True, created_at=now, updated_at=now,
            linked_jid=f"4075{i:07d}:1@s.whatsapp.net", claimable_after=now))
        if i % 10 == 0:
            stores.alerts.raise_alert(Alert(alert_id(account_id, "logged_out"), account_id, "logged_out",
                                            "bench", now))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    for start in range(0, n, 200):
        stores.leases.claim_many(ids[start:start + 200], "bench-1", now, 3600)
    return ids


def updates_for(ids: list[str], at: datetime) -> list[Any]:
    """Every account's ``connecting``, then every account's ``open`` (a restart's order)."""
    from shared.events import ConnectionState, ConnectionUpdate

    connecting = [ConnectionUpdate(a, "bench-1", 1, at, ConnectionState.CONNECTING) for a in ids]
    opened = [ConnectionUpdate(a, "bench-1", 1, at + timedelta(seconds=1), ConnectionState.OPEN) for a in ids]
    return connecting + opened


def one_by_one(updates: list[Any]) -> list[bytes]:
    return [u.to_json() for u in updates]


def batched(updates: list[Any]) -> list[bytes]:
    from shared.events import MAX_BATCHED_UPDATES, ConnectionUpdates

    return [ConnectionUpdates("bench-1", tuple(updates[i:i + MAX_BATCHED_UPDATES])).to_json()
            for i in range(0, len(updates), MAX_BATCHED_UPDATES)]


def check_recorded(stores: Any, ids: list[str]) -> None:
    from functions.model import AccountStatus

    accounts = stores.accounts.get_many(ids)
    wrong = [a for a in ids if accounts[a].status is not AccountStatus.CONNECTED]
    still_open = [a.alert_id for a in stores.alerts.open_alerts(ids)]
    if wrong or still_open:
        raise SystemExit(f"events not recorded as expected: {len(wrong)} not connected, "
                         f"{len(still_open)} alerts still open")


def function_poster(services: Any) -> Callable[[bytes], None]:
    """Posts one event to the functions-framework app of recordConnectionEvent, as the relay does."""
    from werkzeug.test import Client

    from functions import wiring
    from keeper.gateway import FunctionsGateway
    from keeper.relay import Delivery, Route, cloud_event

    wiring.install(services)
    gateway = FunctionsGateway(PROJECT, REGION, names=["recordConnectionEvent"])
    client = Client(gateway)
    path = f"/{PROJECT}/{REGION}/recordConnectionEvent"
    route = Route("recordConnectionEvent", f"projects/{PROJECT}/topics/connection-events",
                  f"projects/{PROJECT}/subscriptions/bench", "http://bench" + path)
    sent = 0

    def post(data: bytes) -> None:
        nonlocal sent
        sent += 1
        headers, body = cloud_event(route, Delivery(str(sent), data, {}, datetime.now(UTC)))
        response = client.post(path, data=body, headers=headers)
        if response.status_code >= 300:
            raise SystemExit(f"recordConnectionEvent answered {response.status_code}: {response.get_data()[:300]!r}")

    return post


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=500, help="accounts per path (2 events each)")
    parser.add_argument("--warmup", type=int, default=500,
                        help="accounts whose events are recorded first, unmeasured (the emulator's JIT warms up)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both paths, one after the other")
    parser.add_argument("--profile", action="store_true", help="print where the batched path spends its time")
    args = parser.parse_args()

    from google.cloud import firestore

    from testkit.functions_world import Clock, config

    tmp = Path(tempfile.mkdtemp())
    with firestore_emulator(tmp / "logs") as emulator_pid:
        os.environ.setdefault("KEEPER_PROJECT", PROJECT)
        client = firestore.Client(project=PROJECT)
        clock = Clock(datetime.now(UTC))
        services, _ = firestore_services(client, tmp / "kek.json", clock, config())
        stores = services.stores
        counter = RpcCounter(client)
        figures: list[Figures] = []
        if args.warmup:
            warm = seed(stores, "warm", args.warmup, clock.now)
            for data in one_by_one(updates_for(warm, clock.now)):
                services.events.handle(data)
        post = function_poster(services)
        paths: dict[str, tuple[Callable[[bytes], object], Callable[[list[Any]], list[bytes]]]] = {
            "recorder": (services.events.handle, one_by_one), "function": (post, one_by_one),
            "batched": (post, batched)}
        profile = cProfile.Profile() if args.profile else None
        for round_ in range(args.rounds):
            for label, (record, messages) in paths.items():
                ids = seed(stores, f"r{round_}{label[0]}", args.accounts, clock.now)
                updates = updates_for(ids, clock.now)
                watch = profile if label == "batched" else None
                with measured(emulator_pid, counter, len(updates), figures, watch):
                    for data in messages(updates):
                        record(data)
                check_recorded(stores, ids)
                print(figures[-1].line(label), flush=True)
        if profile is not None:
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
