"""The connector service against the real functions, Firestore and Pub/Sub emulators.

The engine is the in-memory fake here (the simulator tests cover the real one): these tests pin
the contract between the connector and the functions: connectorSync claims and leases, sealed
snapshots accepted by the persist function, generation fencing, and outages.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from connector.cache import StateCache
from connector.config import ConnectorConfig, Topics
from connector.publisher import PubSubTransport
from connector.service import ConnectorService
from connector.states import AccountState
from connector.sync import HttpSyncClient
from shared.authstate import AuthState
from shared.snapshot import canonical_state_bytes
from testkit.auth_states import registered_state
from testkit.connector_stack import TOKEN, Stack, start_stack
from testkit.fake_links import FakeLinkFactory, eventually, pair_then_open
from tests.connector.proxy import CuttableProxy

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0


def service(stack: Stack, connector_id: str, links: FakeLinkFactory, tmp: Path, cache: StateCache | None = None,
            **overrides: Any) -> ConnectorService:
    settings: dict[str, Any] = {
        "topics": Topics(stack.topics["snapshots"], stack.topics["connection_events"], stack.topics["messages"]),
        "coalesce_window_s": 0.5, "sync_interval_s": 1.0, **overrides}
    config = ConnectorConfig(
        functions_url=stack.functions_base, connector_id=connector_id, token=TOKEN, port=0,
        cache_dir=str(tmp / f"cache-{connector_id}"), project_id=stack.project, **settings)
    return ConnectorService(config, sync_client=HttpSyncClient(config.functions_url, config.token),
                            transport=PubSubTransport(config.project_id), link_factory=links,
                            cache=cache)


def head(firestore_client: Any, account_id: str) -> dict[str, Any] | None:
    snap = firestore_client.collection("whatsapp_sessions").document(account_id).get()
    return snap.to_dict() if snap.exists else None


def doc(firestore_client: Any, collection: str, account_id: str) -> dict[str, Any]:
    snap = firestore_client.collection(collection).document(account_id).get()
    return snap.to_dict() or {}


async def wait_for(check: Any, timeout_s: float = 20.0) -> None:
    await eventually(lambda: bool(check()), timeout_s)


@pytest.fixture
def stack(children: Any, project_id: str, firestore_client: Any, pubsub_emulator: str, tmp_path: Path) -> Stack:
    return start_stack(children, project_id, uuid.uuid4().hex[:10], tmp_path / "home")


async def test_paired_account_survives_a_connector_restart(stack: Stack, firestore_client: Any,
                                                           tmp_path: Path) -> None:
    registered = registered_state(seed=3)
    account_id = await asyncio.to_thread(stack.add_account, "+40700000001")
    links = FakeLinkFactory(pair_then_open(registered))
    first = service(stack, "c-first", links, tmp_path)
    await first.start()
    try:
        await wait_for(lambda: account_id in first.accounts
                       and first.accounts[account_id].supervisor.state is AccountState.OPEN)
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("generation") == 1)
        await wait_for(lambda: doc(firestore_client, "accounts", account_id).get("status") == "connected")
    finally:
        await first.shutdown()
    assert doc(firestore_client, "leases", account_id)["connectorId"] is None  # released on shutdown

    links2 = FakeLinkFactory(pair_then_open(registered))
    second = service(stack, "c-second", links2, tmp_path)
    await second.start()
    try:
        await wait_for(lambda: links2.of(account_id), timeout_s=15)
        session = links2.of(account_id)[0]
        assert session.pairing is None  # restored, not paired again
        assert session.store.snapshot() == registered  # every key category, not just the creds
        assert doc(firestore_client, "leases", account_id)["generation"] == 2
    finally:
        await second.shutdown()


async def test_a_pairing_linked_before_its_events_were_recorded_is_restored_not_paired_again(
        stack: Stack, firestore_client: Any, tmp_path: Path) -> None:
    """Issue 7: the pair-success snapshot is stored but pairing.success / open are still on their way
    (another topic; here one nobody delivers) when the account is claimed again, by a connector
    without the first one's cache. It must log in with the linked keys, not pair again."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    registered = registered_state(seed=8)  # linked as +40700000001: the account's own number
    account_id = await asyncio.to_thread(stack.add_account, "+40700000001")
    publisher = pubsub_v1.PublisherClient()
    undelivered = f"connection-undelivered-{stack.suffix}"
    await asyncio.to_thread(publisher.create_topic, name=publisher.topic_path(stack.project, undelivered))
    first = service(stack, "c-linker", FakeLinkFactory(pair_then_open(registered)), tmp_path,
                    topics=Topics(stack.topics["snapshots"], undelivered, stack.topics["messages"]))
    await first.start()
    try:
        await wait_for(lambda: account_id in first.accounts
                       and first.accounts[account_id].supervisor.state is AccountState.OPEN)
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("latestVersion") == 1)
        await wait_for(lambda: doc(firestore_client, "accounts", account_id).get("lastSavedAt") is not None)
    finally:
        await first.shutdown()
    assert doc(firestore_client, "accounts", account_id)["status"] == "pairing"  # the events never came

    links = FakeLinkFactory(pair_then_open(registered))
    second = service(stack, "c-other", links, tmp_path)
    await second.start()
    try:
        await wait_for(lambda: bool(links.of(account_id)), timeout_s=15)
        session = links.of(account_id)[0]
        assert session.pairing is None  # restored, not paired again
        assert session.store.snapshot() == registered
        await wait_for(lambda: doc(firestore_client, "accounts", account_id).get("status") == "connected")
        assert doc(firestore_client, "accounts", account_id).get("linkedJid") == "40700000001:7@s.whatsapp.net"
    finally:
        await second.shutdown()


def state_hash(state: AuthState) -> str:
    return hashlib.sha256(canonical_state_bytes(state)).hexdigest()


async def churn(store: Any, seconds: float, every_s: float = 1.0, live: Any = None) -> int:
    """Move keys like traffic does: one new session every ``every_s`` for ``seconds``; with ``live``,
    only while it says the socket is open (keys do not move once the socket is gone)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    count = 0
    while loop.time() < end and (live is None or live()):
        store.set_keys({"session": {f"churn-{count}.0": {"counter": count}}})
        count += 1
        await asyncio.sleep(every_s)
    return count


@pytest.mark.slow
async def test_pubsub_outage_of_30s_loses_no_snapshot(stack: Stack, firestore_client: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = os.environ["PUBSUB_EMULATOR_HOST"].split(":")
    proxy = CuttableProxy(host, int(port))
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", proxy.address)  # the connector's publisher only
    registered = registered_state(seed=5)
    account_id = await asyncio.to_thread(stack.add_account, "+40700000002")
    links = FakeLinkFactory(pair_then_open(registered))
    connector = service(stack, "c-outage", links, tmp_path)
    await connector.start()
    try:
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("latestVersion") == 1)
        store = connector.accounts[account_id].store
        proxy.cut()
        await churn(store, OUTAGE_S)
        assert connector.snapshots.pending() >= 1
        assert (head(firestore_client, account_id) or {})["latestVersion"] == 1  # nothing got through
        proxy.restore()
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("sha256")
                       == state_hash(store.snapshot()), timeout_s=30)
        assert connector.snapshots.failures > 0
        assert connector.metrics.snapshot_latency.count >= 2
    finally:
        await connector.shutdown()
        proxy.close()


@pytest.mark.slow
async def test_firestore_outage_of_30s_loses_no_snapshot(children: Any, project_id: str, firestore_client: Any,
                                                         pubsub_emulator: str, tmp_path: Path) -> None:
    host, port = os.environ["FIRESTORE_EMULATOR_HOST"].split(":")
    proxy = CuttableProxy(host, int(port))
    # A 12 s lease: under a loaded machine a connectorSync can take seconds, and a 6 s lease (3 s
    # guard) was lost before the outage even began.
    stack = start_stack(children, project_id, uuid.uuid4().hex[:10], tmp_path / "home", lease_ttl_s=12.0,
                        FIRESTORE_EMULATOR_HOST=proxy.address)
    registered = registered_state(seed=6)
    account_id = await asyncio.to_thread(stack.add_account, "+40700000003")
    links = FakeLinkFactory(pair_then_open(registered))
    connector = service(stack, "c-fs-outage", links, tmp_path, cache=StateCache(tmp_path / "cache"))
    await connector.start()
    try:
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("latestVersion") == 1)
        await wait_for(lambda: doc(firestore_client, "accounts", account_id).get("status") == "connected")
        store = connector.accounts[account_id].store
        loop = asyncio.get_running_loop()
        cut_at = loop.time()
        proxy.cut()
        # connectorSync cannot renew: the connector closes the socket before the lease can expire.
        churned = await churn(store, 15.0, every_s=0.5, live=lambda: bool(links.live(account_id)))
        assert churned >= 2
        await wait_for(lambda: account_id not in connector.accounts, timeout_s=15)
        last_state = store.snapshot()
        await asyncio.sleep(max(0.0, cut_at + OUTAGE_S - loop.time()))
        proxy.restore()
        # The final snapshot waited in Pub/Sub; the account comes back under the next generation. A claim
        # made by a call that hung through the outage reaches no one (the connector timed out), so the
        # account may first wait out that orphaned lease (12 s): allowed for, on top of 30 s.
        await wait_for(lambda: account_id in connector.accounts, timeout_s=45)
        restored = connector.accounts[account_id].store.snapshot()
        assert restored.keys.get("session", {}).keys() >= last_state.keys["session"].keys()
        assert [s.pairing is not None for s in links.of(account_id)].count(True) == 1  # never paired again
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("sha256")
                       == state_hash(connector.accounts[account_id].store.snapshot()), timeout_s=30)
        assert links.live(account_id)
    finally:
        await connector.shutdown()
        proxy.close()


async def test_a_stale_connectors_snapshot_is_refused(stack: Stack, firestore_client: Any,
                                                      tmp_path: Path) -> None:
    registered = registered_state(seed=7)
    account_id = await asyncio.to_thread(stack.add_account, "+40700000004")
    functions_port = stack.functions_port
    cut_off = CuttableProxy("127.0.0.1", functions_port)
    stack_via_proxy = Stack(stack.project, stack.suffix, stack.home, cut_off.port, stack.topics,
                            stack.base_env, stack.children)
    stale = service(stack_via_proxy, "c-stale", FakeLinkFactory(pair_then_open(registered)), tmp_path)
    await stale.start()
    fresh: ConnectorService | None = None
    try:
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("generation") == 1)
        old_slot = stale.accounts[account_id]
        cut_off.cut()  # the stale connector can no longer reach the functions
        await wait_for(lambda: account_id not in stale.accounts, timeout_s=15)
        assert all(s.closed for s in old_slot.supervisor._factory.of(account_id))  # type: ignore[attr-defined]
        fresh = service(stack, "c-fresh", FakeLinkFactory(pair_then_open(registered)), tmp_path)
        await fresh.start()
        await wait_for(lambda: account_id in fresh.accounts, timeout_s=20)
        fresh.accounts[account_id].store.set_keys({"session": {"fresh.0": {"n": 1}}})
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("generation") == 2)
        fresh_head = head(firestore_client, account_id)
        assert fresh_head is not None
        # The stale connector wakes up with a change and publishes under its old generation.
        old_slot.store.set_keys({"session": {"stale.0": {"n": 1}}})
        stale.writer.flush_slot(old_slot, stale.clock())
        assert await stale.snapshots.settled(account_id, 10.0)
        await wait_for(lambda: "snapshot of generation 1 is older than the lease (generation 2)"
                       in stack.functions_log(), timeout_s=30)
        after = head(firestore_client, account_id)
        assert after is not None
        assert after["generation"] == 2
        assert after["sha256"] == fresh_head["sha256"]
        assert after["sha256"] != state_hash(old_slot.store.snapshot())
    finally:
        await stale.shutdown()
        if fresh is not None:
            await fresh.shutdown()
        cut_off.close()
