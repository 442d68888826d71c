"""Benchmark: snapshot latency and Firestore writes with accounts churning keys.

Starts the Firestore and Pub/Sub emulators and the functions gateway (``keeper functions``, a child
process), pairs ``--accounts`` accounts through an in-process ``ConnectorService`` whose engine is the
in-memory fake (every account writes a session key every ``--change-every`` seconds, like steady
message traffic), and measures for ``--seconds``. Everything between the connector and Firestore is
real: sealing, the Pub/Sub emulator, delivery to ``persistSnapshot`` over HTTP, the vault on the
Firestore emulator. "Stored" is, by default (``--stored-by commit``), when the vault's commit of that
snapshot returned in ``persistSnapshot`` (its log line, matched by the snapshot's ``producedAt``): from
then on a restore returns it. ``--stored-by watch`` instead takes the moment a Firestore listener on the
vault heads (in a separate process) sees it; that listener costs the emulator and the machine a lot.

- produced -> stored: from the connector producing the snapshot (the coalescer handing the account to
  the flush, before sealing) to stored. This is the persistence path's latency (target p99 < 1 s);
- first change -> stored: from the first change the snapshot covers, so it includes the coalescing
  window (``--window``: routine churn waits up to that long by design; critical changes do not);
- produced -> accepted by Pub/Sub (connector side);
- Firestore writes per account per minute: vault saves (version + head + account document + the
  version rotated out) and lease renewals (one per account per connectorSync).

Accounts start churning at independent moments (``--in-step``: all within one change period). The first
``--warmup`` seconds of churn (fresh emulator JVMs still compiling) are reported apart, then
``--seconds`` are measured; figures per 10 s of churn show the transient.

``--delivery relay`` (default, what ``keeper functions`` runs) pulls the subscriptions and posts
CloudEvents to the functions; ``--delivery push`` uses the emulator's push (two requests in flight).

    .venv/bin/python bench/connector_snapshots.py [--accounts 100] [--seconds 60] [--warmup 20]
        [--delivery relay|push] [--stored-by commit|watch] [--in-step]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.config import ConnectorConfig, Topics
from connector.publisher import Outgoing, PubSubTransport
from connector.service import ConnectorService
from connector.slots import AccountSlot
from connector.snapshot_codec import SnapshotCodec
from connector.snapshot_writer import SnapshotWriter
from connector.states import AccountState
from connector.sync import HttpSyncClient
from keeper import emulators
from keeper.procs import ChildProcess, free_port
from testkit.auth_states import registered_state
from testkit.connector_stack import TOKEN, start_stack
from testkit.fake_links import FakeLinkFactory, pair_then_open

PROJECT = "demo-keeper-bench"
#: Firestore writes of one vault save: new version, head, account document, the version rotated out.
WRITES_PER_SAVE = 4


class MeasuredCodec(SnapshotCodec):
    """Seals like the connector's codec and remembers each snapshot's ``producedAt``, which persist logs
    and the vault head stores: stored snapshots are matched by it (cheaper than hashing every state)."""

    last_produced: datetime | None = None

    def _produced_at(self, account_id: str, generation: int) -> datetime:
        stamp = super()._produced_at(account_id, generation)
        self.last_produced = stamp
        return stamp


class MeasuredWriter(SnapshotWriter):
    """Records, per snapshot, when it was produced, the first change it covers, and its fate."""

    #: (account, producedAt) -> (produced at, first change at), wall clock
    produced: dict[tuple[str, str], tuple[float, float]]
    accepted_at: dict[tuple[str, str], float]
    keys: dict[int, tuple[str, str]]  # id(Outgoing data) -> (account, producedAt)

    def accepted(self, item: Outgoing, latency_s: float) -> None:
        key = self.keys.pop(id(item.data), None)
        if key is not None:
            self.accepted_at[key] = time.time()
        super().accepted(item, latency_s)

    def flush_slot(self, slot: AccountSlot, since: float) -> None:
        now = time.monotonic()
        wall = time.time()
        codec = self.codec
        assert isinstance(codec, MeasuredCodec)
        codec.last_produced = None
        super().flush_slot(slot, since)
        if codec.last_produced is None:
            return
        key = (slot.account_id, codec.last_produced.isoformat())
        self.produced[key] = (wall, wall - (now - since))
        queue = self.publisher._queues.get(slot.account_id)
        if queue:
            self.keys[id(queue[-1].data)] = key


class MeasuredService(ConnectorService):
    """The connector with a :class:`MeasuredCodec` and a :class:`MeasuredWriter`."""

    def _make_writer(self) -> SnapshotWriter:
        self.codec = MeasuredCodec(self.config.connector_id, self.codec.private_key)
        return MeasuredWriter(self.codec, self.transport, self.config.topics.snapshots, slot_of=self.accounts.get,
                              cache=self.cache, window_s=self.config.coalesce_window_s,
                              latency=self.metrics.snapshot_latency, clock=self.clock)

    @property
    def measured(self) -> MeasuredWriter:
        assert isinstance(self.writer, MeasuredWriter)
        return self.writer


PERSIST_LINE = re.compile(r"^(\S+ \S+) INFO functions\.persist: account (\S+): snapshot of generation \d+ "
                          r"produced (\S+) saved as version \d+")


def stored_by_commit(log: Path) -> dict[tuple[str, str], float]:
    """(account, producedAt) -> when persistSnapshot's commit of it returned (its log line, wall clock)."""
    stored: dict[tuple[str, str], float] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = PERSIST_LINE.match(line)
        if match:
            at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            stored.setdefault((match[2], match[3]), at)
    return stored


def count_heads(db: Any) -> dict[str, int]:
    heads = db.collection("whatsapp_sessions").select(["latestVersion"]).stream()
    return {snap.id: int((snap.to_dict() or {}).get("latestVersion") or 0) for snap in heads}


def watch_heads() -> None:
    """Child mode: print ``<time> <account> <producedAt> <latestVersion>`` for every head change.

    Runs in its own process so that the listener's work does not load the connector being measured."""
    from google.cloud import firestore  # type: ignore[attr-defined]

    db = firestore.Client(project=PROJECT)
    out = sys.stdout
    lock = threading.Lock()

    def on_heads(docs: Any, changes: Any, read_time: Any) -> None:
        now = time.time()
        lines = []
        for change in changes:
            data = change.document.to_dict() or {}
            produced = data.get("producedAt")
            if produced is not None and "latestVersion" in data:
                lines.append(f"{now:.6f} {change.document.id} {produced.isoformat()} {int(data['latestVersion'])}\n")
        with lock:
            out.write("".join(lines))
            out.flush()

    db.collection("whatsapp_sessions").on_snapshot(on_heads)
    sys.stdin.read()  # until the parent closes the pipe


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"p50 {statistics.median(values) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms (n={len(values)})")


async def run(args: argparse.Namespace, tmp: Path, started: list[ChildProcess]) -> None:
    def children(name: str, argv: list[str], **kwargs: Any) -> ChildProcess:
        proc = ChildProcess(name, argv, log_path=tmp / f"{name}.log", **kwargs)
        started.append(proc)
        return proc.start()

    suffix = uuid.uuid4().hex[:8]
    stack = start_stack(children, PROJECT, suffix, tmp / "home", lease_ttl_s=30, delivery=args.delivery)
    print(f"adding {args.accounts} accounts (delivery: {args.delivery}) ...", flush=True)
    for i in range(args.accounts):
        await asyncio.to_thread(stack.add_account, f"+4072{i:07d}", "code", f"user{i}")
    template = registered_state(seed=11, sessions=8)
    config = ConnectorConfig(
        functions_url=stack.functions_base, connector_id="bench-c", token=TOKEN, port=0, cache_dir=None,
        project_id=PROJECT, capacity=args.accounts,
        topics=Topics(stack.topics["snapshots"], stack.topics["connection_events"], stack.topics["messages"]),
        coalesce_window_s=args.window, sync_interval_s=5.0)
    links = FakeLinkFactory(pair_then_open(template))
    service = MeasuredService(config, sync_client=HttpSyncClient(config.functions_url, TOKEN),
                              transport=PubSubTransport(PROJECT), link_factory=links)
    measured = service.measured
    measured.produced, measured.accepted_at, measured.keys = {}, {}, {}
    watched: dict[tuple[str, str], float] = {}
    lock = threading.Lock()
    watcher = None
    if args.stored_by == "watch":
        watcher = subprocess.Popen([sys.executable, __file__, "--watch-heads"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)

        def read_heads() -> None:
            assert watcher is not None and watcher.stdout is not None
            for line in watcher.stdout:
                at, account_id, produced, _version = line.split()
                with lock:
                    watched.setdefault((account_id, produced), float(at))

        threading.Thread(target=read_heads, daemon=True).start()
    from google.cloud import firestore  # type: ignore[attr-defined]

    db = firestore.Client(project=PROJECT)
    await service.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            open_ = sum(1 for s in service.accounts.values() if s.supervisor.state is AccountState.OPEN)
            heads = await asyncio.to_thread(count_heads, db)
            if open_ == args.accounts and len(heads) == args.accounts:
                break
            await asyncio.sleep(0.5)
        print(f"{len(heads)} accounts paired and stored; churning for {args.warmup:.0f} s of warm-up + "
              f"{args.seconds:.0f} s measured", flush=True)
        versions_before = sum(heads.values())
        renewals_before = service.metrics.renewals.value("ok")
        produced_before = set(measured.produced)
        stop_at = time.monotonic() + args.warmup + args.seconds
        churn_started = time.time()
        measured_from = churn_started + args.warmup

        async def churn(slot: AccountSlot) -> None:
            n = 0
            # Independent accounts: each starts at its own moment within one coalescing period, so their
            # windows are not all aligned (--in-step starts them together: one burst of every account).
            spread_s = args.change_every if args.in_step else args.window + args.change_every
            await asyncio.sleep(random.uniform(0, spread_s))
            while time.monotonic() < stop_at:
                slot.store.set_keys({"session": {f"bench-{n % 50}.0": {"n": n, "account": slot.account_id}}})
                n += 1
                await asyncio.sleep(args.change_every)

        await asyncio.gather(*(churn(slot) for slot in list(service.accounts.values())))
        await asyncio.sleep(args.window + 5)  # let the last snapshots land
        versions_after = sum((await asyncio.to_thread(count_heads, db)).values())
        if args.stored_by == "watch":
            with lock:
                stored_copy = dict(watched)
        else:
            stored_copy = stored_by_commit(tmp / "functions.log")
        renewals = service.metrics.renewals.value("ok") - renewals_before
        produced_lat, change_lat, accept_lat, warmup_lat = [], [], [], []
        by_window: dict[int, list[float]] = {}
        replaced = not_stored = 0
        for key, (at, since) in measured.produced.items():
            if key in produced_before:
                continue
            if at < measured_from:
                if key in stored_copy:
                    warmup_lat.append(stored_copy[key] - at)
                continue
            accepted = measured.accepted_at.get(key)
            if accepted is not None:
                accept_lat.append(accepted - at)
            if key in stored_copy:
                produced_lat.append(stored_copy[key] - at)
                by_window.setdefault(int((at - churn_started) // 10), []).append(stored_copy[key] - at)
                change_lat.append(stored_copy[key] - since)
            elif accepted is None:
                replaced += 1  # a newer snapshot of the account replaced it before Pub/Sub took it
            else:
                not_stored += 1  # published, never seen as the head (superseded in the backlog, or late)
        minutes = (args.warmup + args.seconds + args.window + 5) / 60
        saves = versions_after - versions_before
        produced_n = len(produced_lat) + replaced + not_stored
        print(f"snapshots produced (measured): {produced_n}, stored: {len(produced_lat)}, replaced in the connector "
              f"before publishing: {replaced}, published but not stored: {not_stored} (stored = {args.stored_by})")
        if warmup_lat:
            print(f"warm-up ({args.warmup:.0f} s, fresh emulators, not counted below): produced -> stored "
                  f"{describe(warmup_lat)}")
        print(f"produced -> stored:            {describe(produced_lat)}")
        print(f"produced -> accepted (Pub/Sub): {describe(accept_lat)}")
        print("produced -> stored by 10 s of churn: " + "; ".join(
            f"{w * 10}-{w * 10 + 10} s p50 {statistics.median(v) * 1000:.0f} p99 {percentile(v, 0.99) * 1000:.0f}"
            for w, v in sorted(by_window.items())))
        print(f"first change -> stored:        {describe(change_lat)} (includes the {args.window} s window)")
        print(f"vault saves per account per minute: {saves / args.accounts / minutes:.1f}")
        print(f"lease renewals per account per minute: {renewals / args.accounts / minutes:.1f}")
        print(f"Firestore writes per account per minute: "
              f"{(saves * WRITES_PER_SAVE + renewals) / args.accounts / minutes:.1f} "
              f"(saves x {WRITES_PER_SAVE} + renewals)")
    finally:
        await service.shutdown()
        if watcher is not None:
            if watcher.stdin is not None:
                watcher.stdin.close()
            watcher.terminate()
            watcher.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--change-every", type=float, default=0.5, help="seconds between key changes per account")
    parser.add_argument("--window", type=float, default=2.0, help="coalescing window (s)")
    parser.add_argument("--delivery", choices=("relay", "push"), default="relay",
                        help="Pub/Sub to functions: the gateway's relay (as keeper functions runs) or emulator push")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds of churn before measuring (the emulators' JVMs warm up); reported apart")
    parser.add_argument("--in-step", action="store_true",
                        help="start every account's churn within one change period (aligned windows: bursts)")
    parser.add_argument("--stored-by", choices=("commit", "watch"), default="commit",
                        help="when a snapshot counts as stored: its vault commit returned (persistSnapshot's log), "
                             "or a Firestore listener in another process saw the head")
    parser.add_argument("--watch-heads", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch_heads:
        watch_heads()
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-connector-"))
    print(f"logs in {tmp}")
    started: list[ChildProcess] = []
    fs_port, ps_port = free_port(), free_port()
    try:
        started.append(emulators.firestore(fs_port, log_dir=tmp).start())
        started.append(emulators.pubsub(ps_port, project=PROJECT, log_dir=tmp).start())
        os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{fs_port}"
        os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{ps_port}"
        asyncio.run(run(args, tmp, started))
    finally:
        for proc in reversed(started):
            proc.stop()


if __name__ == "__main__":
    main()
