"""Benchmark: snapshot latency and Firestore writes with accounts churning keys.

Starts the Firestore and Pub/Sub emulators and the functions gateway, pairs ``--accounts`` accounts
through a connector whose engine is the in-memory fake (every account writes a session key every
``--change-every`` seconds, like steady message traffic), and measures for ``--seconds``:

- publish-to-stored latency: from the snapshot being handed to Pub/Sub to the vault head showing
  that exact state (matched by its SHA-256), p50 / p99;
- change-to-stored latency: from the first change the snapshot covers (so including the coalescing
  window) to the same point;
- Firestore writes per account per minute: vault saves (version + head + rotated-out version) and
  lease renewals (one per account per connectorSync).

    .venv/bin/python bench/connector_snapshots.py [--accounts 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.config import ConnectorConfig, Topics
from connector.publisher import PubSubTransport
from connector.service import AccountSlot, ConnectorService
from connector.states import AccountState
from connector.sync import HttpSyncClient
from keeper import emulators
from keeper.procs import ChildProcess, free_port
from shared.snapshot import canonical_state_bytes
from tests.connector.fakes import FakeLinkFactory
from tests.connector.stack import TOKEN, start_stack
from tests.connector.test_functions_integration import pair_then_open
from tests.shared.helpers import registered_state

PROJECT = "demo-keeper-bench"


class MeasuredService(ConnectorService):
    """Records what each snapshot contained and when it was handed to Pub/Sub."""

    published: dict[str, tuple[float, float]]
    accepted: list[float]

    def _snapshot_accepted(self, item: Any, latency_s: float) -> None:
        self.accepted.append(latency_s)
        super()._snapshot_accepted(item, latency_s)

    def _flush_slot(self, slot: AccountSlot, since: float) -> None:
        digest = hashlib.sha256(canonical_state_bytes(slot.store.snapshot())).hexdigest()
        self.published[digest] = (time.monotonic(), since)
        super()._flush_slot(slot, since)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, tmp: Path, started: list[ChildProcess]) -> None:
    def children(name: str, argv: list[str], **kwargs: Any) -> ChildProcess:
        proc = ChildProcess(name, argv, log_path=tmp / f"{name}.log", **kwargs)
        started.append(proc)
        return proc.start()

    stack = start_stack(children, PROJECT, uuid.uuid4().hex[:8], tmp / "home", lease_ttl_s=30)
    from google.cloud import firestore  # type: ignore[attr-defined]

    db = firestore.Client(project=PROJECT)
    print(f"adding {args.accounts} accounts ...", flush=True)
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
    service.published = {}
    service.accepted = []
    stored: dict[str, float] = {}
    versions: dict[str, int] = {}
    lock = threading.Lock()

    def on_heads(docs: Any, changes: Any, read_time: Any) -> None:
        now = time.monotonic()
        with lock:
            for change in changes:
                data = change.document.to_dict() or {}
                if "sha256" in data:
                    stored.setdefault(data["sha256"], now)
                    versions[change.document.id] = int(data.get("latestVersion", 0))

    watch = db.collection("whatsapp_sessions").on_snapshot(on_heads)
    await service.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            open_ = sum(1 for s in service.accounts.values() if s.supervisor.state is AccountState.OPEN)
            if open_ == args.accounts and len(versions) == args.accounts:
                break
            await asyncio.sleep(0.5)
        print(f"{len(versions)} accounts paired and stored; churning for {args.seconds:.0f} s", flush=True)
        with lock:
            versions_before = sum(versions.values())
        renewals_before = service.metrics.renewals.value("ok")
        published_before = set(service.published)
        accepted_before = len(service.accepted)
        stop_at = time.monotonic() + args.seconds

        async def churn(slot: AccountSlot) -> None:
            n = 0
            await asyncio.sleep(random.uniform(0, args.change_every))
            while time.monotonic() < stop_at:
                slot.store.set_keys({"session": {f"bench-{n % 50}.0": {"n": n, "account": slot.account_id}}})
                n += 1
                await asyncio.sleep(args.change_every)

        await asyncio.gather(*(churn(slot) for slot in list(service.accounts.values())))
        await asyncio.sleep(args.window + 5)  # let the last snapshots land
        with lock:
            versions_after = sum(versions.values())
            stored_copy = dict(stored)
        renewals = service.metrics.renewals.value("ok") - renewals_before
        publish_lat, change_lat, missing = [], [], 0
        for digest, (at, since) in service.published.items():
            if digest in published_before:
                continue
            if digest in stored_copy:
                publish_lat.append(stored_copy[digest] - at)
                change_lat.append(stored_copy[digest] - since)
            else:
                missing += 1  # replaced in the queue by a newer one, or still in the persist backlog
        minutes = (args.seconds + args.window + 5) / 60
        saves = versions_after - versions_before
        per_save_writes = 3  # new version, head update, delete of the version rotated out
        print(f"snapshots published: {len(publish_lat) + missing}, seen stored: {len(publish_lat)}, "
              f"not seen stored (superseded, or still in the persist backlog): {missing}")
        accepted = service.accepted[accepted_before:]
        if accepted:
            print(f"first change -> accepted by Pub/Sub (connector side): p50 "
                  f"{statistics.median(accepted) * 1000:.0f} ms, p99 {percentile(accepted, 0.99) * 1000:.0f} ms")
        if publish_lat:
            print(f"publish -> stored latency: p50 {statistics.median(publish_lat) * 1000:.0f} ms, "
                  f"p99 {percentile(publish_lat, 0.99) * 1000:.0f} ms, max {max(publish_lat) * 1000:.0f} ms")
            print(f"first change -> stored latency: p50 {statistics.median(change_lat) * 1000:.0f} ms, "
                  f"p99 {percentile(change_lat, 0.99) * 1000:.0f} ms (window {args.window} s)")
        print(f"vault saves per account per minute: {saves / args.accounts / minutes:.1f}")
        print(f"lease renewals per account per minute: {renewals / args.accounts / minutes:.1f}")
        print(f"Firestore writes per account per minute: "
              f"{(saves * per_save_writes + renewals) / args.accounts / minutes:.1f} "
              f"(saves x {per_save_writes} + renewals)")
    finally:
        watch.unsubscribe()
        await service.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--change-every", type=float, default=0.5, help="seconds between key changes per account")
    parser.add_argument("--window", type=float, default=2.0, help="coalescing window (s)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-connector-"))
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
