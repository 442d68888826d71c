from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from connector.cache import StateCache
from connector.config import ConnectorConfig
from connector.errors import PublishError
from connector.service import ConnectorService
from connector.states import AccountState
from shared.authstate import AuthState
from shared.connector_sync import Claim, Command, Lost, PairingRequest
from testkit.fake_links import (
    FakeFunctions,
    FakeLinkFactory,
    FakeSession,
    MemoryTransport,
    arrived,
    close_event,
    code_shown,
    eventually,
    opened,
    paired,
)

SNAPS, EVENTS, MESSAGES = "session-snapshots", "connection-events", "messages"


def config(**overrides: object) -> ConnectorConfig:
    base: dict[str, object] = {"functions_url": "http://unused", "connector_id": "c-1", "port": 0,
                               "cache_dir": None, "coalesce_window_s": 0.2, "sync_interval_s": 0.1}
    base.update(overrides)
    return ConnectorConfig(**base)  # type: ignore[arg-type]


def opens(session: FakeSession) -> None:
    session.push(opened())


class Harness:
    def __init__(self, functions: FakeFunctions, cfg: ConnectorConfig | None = None,
                 cache: StateCache | None = None) -> None:
        self.functions = functions
        self.transport = MemoryTransport()
        self.links = FakeLinkFactory(opens)
        self.service = ConnectorService(cfg or config(), sync_client=functions.client(),
                                        transport=self.transport, link_factory=self.links, cache=cache)

    def is_open(self, account_id: str) -> bool:
        slot = self.service.accounts.get(account_id)
        return slot is not None and slot.supervisor.state is AccountState.OPEN

    def events(self, account_id: str) -> list[dict[str, object]]:
        """The account's events in publishing order: its own messages and its updates in batches."""
        found: list[dict[str, object]] = []
        for p in self.transport.on(EVENTS):
            event = json.loads(p.data)
            if event["type"] == "connection.updates":
                assert p.ordering_key == "c-1" and p.attributes["connectorId"] == "c-1"
                found += [u for u in event["updates"] if u["accountId"] == account_id]
            elif p.ordering_key == account_id:
                found.append(event)
        return found

    def snapshots(self, account_id: str) -> list[object]:
        return [self.functions.open_snapshot(p.data, account_id)
                for p in self.transport.on(SNAPS) if p.ordering_key == account_id]


async def test_boot_restores_every_account_and_reports_open() -> None:
    functions = FakeFunctions()
    states = {f"a{i}": AuthState.generate() for i in range(5)}
    for account_id, state in states.items():
        functions.add(account_id, state)
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: len(h.service.accounts) == 5 and all(
            s.supervisor.state is AccountState.OPEN for s in h.service.accounts.values()))
        for account_id, state in states.items():
            restored = h.links.of(account_id)[0].store.snapshot()
            assert restored == state
        await eventually(lambda: all(any(e["state"] == "open" for e in h.events(a)) for a in states))
        assert h.service.ready()
    finally:
        await h.service.shutdown()
    assert not h.service.ready()


async def test_routine_churn_is_coalesced_and_critical_goes_at_once() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions, config(coalesce_window_s=0.3))
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)
        store = h.service.accounts["a1"].store
        for i in range(20):
            store.set_keys({"session": {f"peer{i}": {"n": i}}})
        await asyncio.sleep(0.1)
        assert h.snapshots("a1") == []  # still inside the window
        await eventually(lambda: len(h.snapshots("a1")) == 1)
        snap = h.snapshots("a1")[0]
        assert snap.generation == 1 and snap.connector_id == "c-1"  # type: ignore[attr-defined]
        assert len(snap.state.keys["session"]) == 20  # type: ignore[attr-defined]
        store.update_creds({"registrationId": 4242})  # critical
        await eventually(lambda: len(h.snapshots("a1")) == 2, timeout_s=0.15)
        attrs = h.transport.on(SNAPS)[-1].attributes
        assert attrs == {"accountId": "a1", "generation": "1", "connectorId": "c-1",
                         "schema": "keeper.snapshot.v1"}
    finally:
        await h.service.shutdown()


async def test_sigterm_path_publishes_pending_snapshots_then_releases_leases() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions, config(coalesce_window_s=60.0))
    await h.service.start()
    await eventually(lambda: h.is_open("a1"))
    h.service.accounts["a1"].store.set_keys({"pre-key": {"7": {"x": 1}}})
    assert h.snapshots("a1") == []
    await h.service.shutdown()
    snaps = h.snapshots("a1")
    assert len(snaps) == 1 and "7" in snaps[0].state.keys["pre-key"]  # type: ignore[attr-defined]
    assert "a1" not in functions.leases
    assert all(s.closed for s in h.links.sessions)


async def test_shutdown_within_budget_keeps_lease_when_pubsub_is_down() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions, config(shutdown_budget_s=1.5))
    await h.service.start()
    await eventually(lambda: "a1" in h.service.accounts)
    h.transport.down = True
    h.service.accounts["a1"].store.set_keys({"pre-key": {"7": {"x": 1}}})
    loop = asyncio.get_running_loop()
    started = loop.time()
    await h.service.shutdown()
    assert loop.time() - started < 1.6
    assert functions.leases.get("a1") == ("c-1", 1)  # not handed over with older keys


async def test_lost_lease_closes_the_socket_and_stops_snapshots() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)
        functions.lost.append(Lost("a1", "not_served"))
        await eventually(lambda: "a1" not in h.service.accounts and all(s.closed for s in h.links.of("a1")))
        await eventually(lambda: any(e["state"] == "stopped" for e in h.events("a1")))
    finally:
        await h.service.shutdown()


async def test_failed_renewals_close_sockets_before_the_lease_expires() -> None:
    functions = FakeFunctions(lease_ttl_s=2.0)
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    h.service.keeper.table.guard_s = 0.6
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)
        functions.down = True
        loop = asyncio.get_running_loop()
        went_down = loop.time()
        await eventually(lambda: all(s.closed for s in h.links.of("a1")), timeout_s=3.0)
        assert loop.time() - went_down < 2.0  # before the 2 s TTL ran out
        assert "a1" not in h.service.accounts
    finally:
        functions.down = False
        await h.service.shutdown()


async def test_message_is_acknowledged_only_after_pubsub_accepted_it() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)
        h.transport.down = True
        h.service.messages._retry_base_s = 0.02
        session = h.links.of("a1")[0]
        session.push(arrived("M1"))
        await asyncio.sleep(0.2)
        assert session.acked == []
        h.transport.down = False
        await eventually(lambda: session.acked == ["M1"])
        assert h.transport.on(MESSAGES)[0].attributes["messageId"] == "M1"
    finally:
        await h.service.shutdown()


async def test_pairing_claim_and_remove_command() -> None:
    functions = FakeFunctions()
    functions.add("p1", pairing=PairingRequest("code", "+40700000001"))
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: "p1" in h.service.accounts)
        assert h.links.of("p1")[0].pairing == PairingRequest("code", "+40700000001")
        functions.commands.append(Command("p1", "remove"))
        await eventually(lambda: "p1" not in functions.leases)
        assert any(e["type"] == "account.removed" for e in h.events("p1"))
        assert h.links.of("p1")[0].logged_out
        assert all(s.closed for s in h.links.of("p1"))
    finally:
        await h.service.shutdown()


async def test_remove_without_a_confirmed_unlink_gives_the_account_back(tmp_path: Path) -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    cache = StateCache(tmp_path)
    h = Harness(functions, cache=cache)

    def opens_but_logout_fails(session: FakeSession) -> None:
        session.logout_confirmed = False
        session.push(opened())

    h.links.script = opens_but_logout_fails
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)
        h.service.accounts["a1"].store.set_keys({"session": {"x": {"n": 1}}})
        h.service.flusher.flush_now()
        await eventually(lambda: cache.get("a1") is not None)
        functions.states.pop("a1")  # not claimable again in this test
        functions.commands.append(Command("a1", "remove"))
        await eventually(lambda: "a1" not in functions.leases)
        assert not any(e["type"] == "account.removed" for e in h.events("a1"))
        assert cache.get("a1") is not None  # kept: the device is still linked
    finally:
        await h.service.shutdown()


async def test_cache_lets_the_next_generation_start_from_newer_keys(tmp_path: Path) -> None:
    functions = FakeFunctions()
    stored = AuthState.generate()
    functions.add("a1", stored)
    cache = StateCache(tmp_path)
    h = Harness(functions, config(shutdown_budget_s=1.0), cache=cache)
    await h.service.start()
    await eventually(lambda: "a1" in h.service.accounts)
    h.transport.down = True  # the newest keys never reach the vault
    h.service.accounts["a1"].store.set_keys({"session": {"peer": {"n": 1}}})
    await h.service.shutdown()
    functions.leases.pop("a1", None)  # the lease ran out; nobody else took it
    h2 = Harness(functions, cache=cache)
    await h2.service.start()
    try:
        await eventually(lambda: "a1" in h2.service.accounts)
        assert h2.service.accounts["a1"].store.snapshot().keys["session"]["peer"] == {"n": 1}
        await eventually(lambda: len(h2.snapshots("a1")) == 1)  # and the vault catches up at once
        assert h2.snapshots("a1")[0].generation == 2  # type: ignore[attr-defined]
    finally:
        await h2.service.shutdown()


async def test_replaced_account_is_not_reconnected() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: h.is_open("a1"))
        h.links.of("a1")[0].push(close_event("replaced", 440))
        await eventually(lambda: any(e["state"] == "replaced" for e in h.events("a1")))
        await asyncio.sleep(0.2)
        assert len(h.links.of("a1")) == 1
    finally:
        await h.service.shutdown()


async def test_http_endpoints() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: h.is_open("a1"))
        base = f"http://127.0.0.1:{h.service.http.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                assert r.status == 200
            async with http.get(base + "/readyz") as r:
                assert r.status == 200
            async with http.get(base + "/metrics") as r:
                text = await r.text()
        assert 'keeper_connector_accounts{state="open"} 1' in text
        assert 'keeper_connector_lease_renewals_total{result="ok"}' in text
        assert "keeper_connector_snapshot_publish_seconds_count" in text
    finally:
        await h.service.shutdown()


async def test_engine_waits_for_critical_credentials_to_reach_pubsub() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions, config(coalesce_window_s=60.0))

    def critical_then_open(session: FakeSession) -> None:
        session.store.update_creds({"registrationId": 777})
        session.critical()
        session.push(opened())

    h.links.script = critical_then_open
    h.transport.down = True
    h.service.snapshots._retry_base_s = 0.02
    h.service.snapshots._retry_cap_s = 0.05
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)
        await asyncio.sleep(0.3)
        assert h.service.accounts["a1"].supervisor.state is AccountState.CONNECTING  # held back
        h.transport.down = False
        await eventually(lambda: h.is_open("a1"))
        (snap,) = h.snapshots("a1")
        assert snap.state.creds.get("registrationId") == 777  # type: ignore[attr-defined]
    finally:
        await h.service.shutdown()


async def test_pair_claim_for_an_account_this_connector_linked_restores_it(tmp_path: Path) -> None:
    from testkit.auth_states import registered_state

    functions = FakeFunctions()
    pairing = PairingRequest("code", "+40700000001")
    functions.add("p1", pairing=pairing)
    cache = StateCache(tmp_path)
    linked = registered_state(seed=4)

    def pair(session: FakeSession) -> None:
        if session.pairing is not None:
            session.store.update_creds(dict(linked.creds.as_json()))
            session.push(paired("40700000001:7@s.whatsapp.net"))
            session.push(close_event("restart_required", 515))
        else:
            session.push(opened())

    h = Harness(functions, cache=cache)
    h.links.script = pair
    await h.service.start()
    await eventually(lambda: h.is_open("p1"))
    await h.service.shutdown()
    # The functions never heard of pairing.success: they hand it out for pairing again.
    h2 = Harness(functions, cache=cache)
    await h2.service.start()
    try:
        await eventually(lambda: bool(h2.links.of("p1")))
        assert h2.links.of("p1")[0].pairing is None
        assert h2.service.accounts["p1"].store.get_creds().me == linked.creds.me
    finally:
        await h2.service.shutdown()


async def test_logged_out_keys_leave_the_cache(tmp_path: Path) -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    cache = StateCache(tmp_path)
    h = Harness(functions, cache=cache)
    await h.service.start()
    try:
        await eventually(lambda: h.is_open("a1"))
        h.service.accounts["a1"].store.set_keys({"session": {"x": {"n": 1}}})
        h.service.flusher.flush_now()
        assert cache.get("a1") is not None
        h.links.of("a1")[0].push(close_event("logged_out", 401))
        await eventually(lambda: cache.get("a1") is None)
    finally:
        await h.service.shutdown()


async def test_an_expiring_lease_takes_its_last_snapshot_after_the_socket_closed(tmp_path: Path) -> None:
    """Keys move until the socket is gone (issue 7): a frame handled while the close was under way
    must be in the last snapshot and the cache, or the next claim rolls it back."""
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    cache = StateCache(tmp_path)
    h = Harness(functions, cache=cache)
    await h.service.start()
    try:
        await eventually(lambda: h.is_open("a1"))
        session = h.links.of("a1")[0]
        close = session.close

        async def close_after_one_last_frame() -> None:
            session.store.set_keys({"session": {"last-frame": {"n": 1}}})
            await close()

        session.close = close_after_one_last_frame  # type: ignore[method-assign]
        h.service.keeper.table.drop("a1")
        h.service.on_expiring("a1")
        await eventually(lambda: session.closed and any(
            "last-frame" in s.state.keys.get("session", {}) for s in h.snapshots("a1")))  # type: ignore[attr-defined]
        entry = cache.usable_for("a1", 2)
        assert entry is not None and b"last-frame" in entry.state
        await eventually(lambda: any(e["state"] == "stopped" for e in h.events("a1")))
    finally:
        await h.service.shutdown()


async def test_a_claim_while_the_expiring_socket_still_closes_starts_from_its_last_keys(tmp_path: Path) -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    cache = StateCache(tmp_path)
    h = Harness(functions, cache=cache)
    await h.service.start()
    let_close = asyncio.Event()
    try:
        await eventually(lambda: h.is_open("a1"))
        session = h.links.of("a1")[0]
        close = session.close

        async def slow_close() -> None:
            session.store.set_keys({"session": {"while-closing": {"n": 1}}})
            await let_close.wait()
            await close()

        session.close = slow_close  # type: ignore[method-assign]
        h.service.keeper.table.drop("a1")
        h.service.on_expiring("a1")
        await eventually(lambda: "while-closing" in session.store.snapshot().keys.get("session", {}))
        h.service.on_claimed(Claim("a1", 2, "restore"))  # the cache fence allows generation 1 -> 2
        assert "while-closing" in h.service.accounts["a1"].store.snapshot().keys["session"]
    finally:
        let_close.set()
        await h.service.shutdown()


async def _run_once_with_churn(functions: FakeFunctions, cache: StateCache) -> None:
    """Claim, move a key (published, and cached), then stop; the vault never got the snapshot."""
    h = Harness(functions, config(shutdown_budget_s=1.0), cache=cache)
    await h.service.start()
    await eventually(lambda: "a1" in h.service.accounts)
    h.transport.down = True
    h.service.accounts["a1"].store.set_keys({"session": {"moved": {"n": 1}}})
    h.service.flusher.flush_now()
    await h.service.shutdown()
    functions.leases.pop("a1", None)


async def test_a_claim_answer_that_never_arrived_does_not_roll_the_keys_back(tmp_path: Path) -> None:
    """Issue 7: connectorSync claimed the account at generation 2 but answered after the connector's
    timeout; the lease ran out and generation 3 came. The vault still holds the state this connector
    started from, so its cache (with the newer keys) is used, not the vault's older state."""
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    cache = StateCache(tmp_path)
    await _run_once_with_churn(functions, cache)
    functions.generations["a1"] += 1  # the claim whose answer never arrived
    h2 = Harness(functions, cache=cache)
    await h2.service.start()
    try:
        await eventually(lambda: "a1" in h2.service.accounts)
        assert h2.service.keeper.generation("a1") == 3
        assert h2.service.accounts["a1"].store.snapshot().keys["session"]["moved"] == {"n": 1}
    finally:
        await h2.service.shutdown()


async def test_after_another_connector_stored_newer_keys_the_vault_wins_over_the_cache(tmp_path: Path) -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    cache = StateCache(tmp_path)
    await _run_once_with_churn(functions, cache)
    functions.generations["a1"] += 1
    theirs = AuthState.generate()  # generation 2 was served elsewhere and saved its own keys
    functions.states["a1"] = theirs
    h2 = Harness(functions, cache=cache)
    await h2.service.start()
    try:
        await eventually(lambda: "a1" in h2.service.accounts)
        assert h2.service.accounts["a1"].store.snapshot() == theirs
    finally:
        await h2.service.shutdown()


async def test_sends_reach_the_handler_for_held_accounts_and_wait_for_a_claim() -> None:
    from datetime import UTC, datetime

    from shared.events import OutboundSend, SendKind

    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    handed: list[str] = []

    async def handler(send: OutboundSend) -> None:
        handed.append(f"{send.account_id}:{send.message_id}")

    h.service.outbox.set_handler(handler)
    await h.service.start()
    try:
        await eventually(lambda: "a1" in h.service.accounts)

        def send(account: str, message_id: str) -> OutboundSend:
            return OutboundSend(account, message_id, "1@s.whatsapp.net", SendKind.TEXT, datetime.now(UTC), text="x")

        h.service.on_pending_sends([send("a1", "3EB0A1"), send("a2", "3EB0B1")])
        await eventually(lambda: handed == ["a1:3EB0A1"])
        functions.add("a2", AuthState.generate())  # claimed on a later sync: its parked send goes then
        await eventually(lambda: handed == ["a1:3EB0A1", "a2:3EB0B1"], timeout_s=10)
        h.service.on_pending_sends([send("a1", "3EB0A1")])  # the catch-up again: not sent twice
        await asyncio.sleep(0.1)
        assert handed == ["a1:3EB0A1", "a2:3EB0B1"]
    finally:
        await h.service.shutdown()


def _topics_down(h: Harness) -> set[str]:
    """Make publishing fail on the topics in the returned set (the others go through)."""
    down: set[str] = set()
    publish = h.transport.publish

    async def selective(topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> str:
        if topic in down:
            raise PublishError(f"{topic} is down")
        return await publish(topic, data, attributes, ordering_key)

    h.transport.publish = selective  # type: ignore[method-assign]
    for publisher in (h.service.messages, h.service.snapshots):
        publisher._retry_base_s = 0.02
    return down


def _decrypt_changed_state(h: Harness, account_id: str) -> None:
    """What a decrypt does to the store: a session record moved (here: a key category changed)."""
    h.service.accounts[account_id].store.set_keys({"session": {"155500001.0": {"_sessions": {}, "version": "v1"}}})


def _snapshot_has_the_change(h: Harness, account_id: str) -> bool:
    return any(s.state.entries("session") for s in h.snapshots(account_id))  # type: ignore[attr-defined]


async def test_a_message_is_acked_only_once_the_snapshot_carrying_its_signal_state_is_accepted() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    down = _topics_down(h)
    await h.service.start()
    try:
        await eventually(lambda: h.is_open("a1"))
        down.add(SNAPS)
        _decrypt_changed_state(h, "a1")
        session = h.links.of("a1")[0]
        session.push(arrived("M1"))
        await eventually(lambda: len(h.transport.on(MESSAGES)) == 1)  # the event went out...
        await asyncio.sleep(0.3)
        assert session.acked == []  # ...but the ratchet state that opened it is not durable yet
        down.discard(SNAPS)
        await eventually(lambda: session.acked == ["M1"])
        assert _snapshot_has_the_change(h, "a1")
    finally:
        await h.service.shutdown()


async def test_no_snapshot_carries_a_messages_state_before_its_event_is_accepted() -> None:
    functions = FakeFunctions()
    functions.add("a1", AuthState.generate())
    h = Harness(functions)
    down = _topics_down(h)
    await h.service.start()
    try:
        await eventually(lambda: h.is_open("a1"))
        down.add(MESSAGES)
        _decrypt_changed_state(h, "a1")
        session = h.links.of("a1")[0]
        session.push(arrived("M1"))
        await eventually(lambda: h.service.inbox.in_flight("a1") == 1)
        h.service.flusher.flush_now()  # a snapshot falls due (the coalescer's timer, a shutdown, ...)
        await asyncio.sleep(0.5)
        assert not _snapshot_has_the_change(h, "a1")  # held: a crash now must decrypt M1 again
        assert session.acked == []
        down.discard(MESSAGES)
        await eventually(lambda: session.acked == ["M1"])
        published = [p.topic for p in h.transport.published if p.topic in (MESSAGES, SNAPS)]
        assert _snapshot_has_the_change(h, "a1")
        assert published.index(MESSAGES) < len(published) - 1 - published[::-1].index(SNAPS)
    finally:
        await h.service.shutdown()


async def test_pairing_events_name_their_sender_and_lease_generation() -> None:
    """Issue 16 item 1: pairing.code, pairing.qr, pairing.success and pairing.failed carry connectorId and the
    generation the account is held under, so the functions can drop those of a connector that lost it."""
    from connector.protocol.events import QrCodeShown

    functions = FakeFunctions()
    functions.generations["p1"] = 6  # the claim is generation 7
    functions.add("p1", pairing=PairingRequest("code", "+40700000001"))
    h = Harness(functions)
    await h.service.start()
    try:
        await eventually(lambda: "p1" in h.service.accounts)
        session = h.links.of("p1")[0]
        session.push(code_shown("ABCDEFGH"))
        session.push(QrCodeShown("2@ref,a,b,c", 0, 60.0))
        session.push(paired("40700000001:9@s.whatsapp.net"))
        await eventually(lambda: any(e["type"] == "pairing.success" for e in h.events("p1")))
        session.push(close_event("pairing_expired"))
        await eventually(lambda: any(e["type"] == "pairing.failed" for e in h.events("p1")))
        pairing = [e for e in h.events("p1") if str(e["type"]).startswith("pairing.")]
        assert [e["type"] for e in pairing] == ["pairing.code", "pairing.qr", "pairing.success", "pairing.failed"]
        assert all((e["connectorId"], e["generation"]) == ("c-1", 7) for e in pairing), pairing
    finally:
        await h.service.shutdown()
