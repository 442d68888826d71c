from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from connector.backoff import Backoff
from connector.errors import PublishError
from connector.protocol.client import SEND_STATE_CATEGORIES
from connector.protocol.events import CredsChanged, DuplicateIgnored, ReceivedMessage, RetryRequested
from connector.protocol.send_status import SendStatus
from connector.states import AccountState
from connector.supervisor import AccountSupervisor
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingRequest
from shared.events import ConnectionState
from testkit.fake_links import FakeLinkFactory, FakeSession, close_event, code_shown, eventually, opened, paired


class Hooks:
    def __init__(self) -> None:
        self.reports: list[tuple[ConnectionState, str | None, int]] = []
        self.reconnects: list[str] = []
        self.codes: list[str] = []
        self.paired_jids: list[str] = []
        self.messages: list[ReceivedMessage | RetryRequested | DuplicateIgnored] = []
        self.transitions: list[tuple[AccountState, AccountState]] = []
        self.statuses: list[SendStatus] = []
        self.persisted = True  # what persist_now answers (False: Pub/Sub did not accept in time)
        self.sockets_ended = 0

    def report(self, account_id: str, state: ConnectionState, reason: str | None, code: int | None,
               attempt: int) -> None:
        self.reports.append((state, reason, attempt))

    def pairing_code(self, account_id: str, code: str) -> None:
        self.codes.append(code)

    def pairing_qr(self, account_id: str, qr: str) -> None:
        pass

    def paired(self, account_id: str, jid: str) -> None:
        self.paired_jids.append(jid)

    def pairing_failed(self, account_id: str, reason: str) -> None:
        self.reports.append((ConnectionState.STOPPED, reason, -1))

    def message(self, account_id: str, message: ReceivedMessage, ack: Callable[[], Awaitable[bool]]) -> None:
        self.messages.append(message)

    def message_retried(self, account_id: str, event: RetryRequested | DuplicateIgnored) -> None:
        self.messages.append(event)

    def state_changed(self, account_id: str, old: AccountState, new: AccountState) -> None:
        self.transitions.append((old, new))

    def reconnecting(self, account_id: str, reason: str) -> None:
        self.reconnects.append(reason)

    async def persist_now(self, account_id: str) -> bool:
        return self.persisted

    def send_status(self, account_id: str, status: SendStatus) -> None:
        self.statuses.append(status)

    def socket_ended(self, account_id: str) -> None:
        self.sockets_ended += 1


def opens(session: FakeSession) -> None:
    session.push(opened())


def make(factory: FakeLinkFactory, hooks: Hooks, **kwargs: object) -> AccountSupervisor:
    store = MemoryAuthStore(AuthState.generate())
    return AccountSupervisor("a1", store, factory, hooks, **kwargs)  # type: ignore[arg-type]


async def test_restart_required_reconnects_at_once() -> None:
    factory = FakeLinkFactory(opens)
    hooks = Hooks()
    sup = make(factory, hooks)
    sup.start()
    await eventually(lambda: sup.state is AccountState.OPEN)
    factory.sessions[0].push(close_event("restart_required", 515))
    await eventually(lambda: len(factory.sessions) == 2 and sup.state is AccountState.OPEN)
    assert hooks.reconnects == ["restart_required"]
    assert AccountState.BACKING_OFF not in {new for _, new in hooks.transitions}
    await sup.stop("test")
    assert sup.state is AccountState.STOPPED
    assert all(s.closed for s in factory.sessions)


async def test_temporary_failure_backs_off_with_the_policy_delay() -> None:
    factory = FakeLinkFactory(opens)
    hooks = Hooks()
    delays: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        delays.append((low, high))
        return 0.05

    sup = make(factory, hooks, backoff=Backoff(uniform=uniform))
    sup.start()
    await eventually(lambda: sup.state is AccountState.OPEN)
    factory.sessions[0].push(close_event("connection_lost", 408))
    await eventually(lambda: sup.state is AccountState.BACKING_OFF)
    await eventually(lambda: len(factory.sessions) == 2 and sup.state is AccountState.OPEN)
    assert delays == [(0.0, 1.0)]
    assert (ConnectionState.RECONNECTING, None, 1) in hooks.reports
    await sup.stop("test")


async def test_logged_out_waits_for_pairing_and_never_reconnects_alone() -> None:
    factory = FakeLinkFactory(opens)
    hooks = Hooks()
    sup = make(factory, hooks)
    sup.start()
    await eventually(lambda: sup.state is AccountState.OPEN)
    factory.sessions[0].push(close_event("logged_out", 401))
    await eventually(lambda: sup.state is AccountState.NEEDS_PAIRING)
    await asyncio.sleep(0.1)
    assert len(factory.sessions) == 1
    assert hooks.reports[-1] == (ConnectionState.NEEDS_PAIRING, "logged_out", 0)
    sup.reconnect()  # an operator insists: try again with the same keys
    await eventually(lambda: len(factory.sessions) == 2 and sup.state is AccountState.OPEN)
    await sup.stop("test")


async def test_replaced_stands_down_without_fighting() -> None:
    factory = FakeLinkFactory(opens)
    hooks = Hooks()
    sup = make(factory, hooks)
    task = sup.start()
    await eventually(lambda: sup.state is AccountState.OPEN)
    factory.sessions[0].push(close_event("replaced", 440))
    await asyncio.wait_for(task, 1.0)
    assert sup.state is AccountState.STOPPED
    assert len(factory.sessions) == 1
    assert hooks.reports[-1][0] is ConnectionState.REPLACED


async def test_endless_restart_required_falls_back_to_backoff() -> None:
    def restart_at_once(session: FakeSession) -> None:
        session.push(close_event("restart_required", 515))

    factory = FakeLinkFactory(restart_at_once)
    hooks = Hooks()
    sup = make(factory, hooks, backoff=Backoff(uniform=lambda lo, hi: 10.0))
    sup.start()
    await eventually(lambda: sup.state is AccountState.BACKING_OFF)
    assert len(factory.sessions) == 4  # three immediate restarts, then a delay
    await sup.stop("test")
    assert sup.state is AccountState.STOPPED


async def test_pairing_request_is_used_until_paired_then_dropped() -> None:
    pairing = PairingRequest("code", "+40700000001")

    def pair_flow(session: FakeSession) -> None:
        if session.pairing is not None:
            session.push(code_shown("ABCD1234"))
            session.push(paired("40700000001:1@s.whatsapp.net"))
            session.push(close_event("restart_required", 515))
        else:
            session.push(opened())

    factory = FakeLinkFactory(pair_flow)
    hooks = Hooks()
    sup = make(factory, hooks, pairing=pairing)
    sup.start()
    await eventually(lambda: sup.state is AccountState.OPEN)
    assert [s.pairing for s in factory.sessions] == [pairing, None]
    assert hooks.codes == ["ABCD1234"]
    assert hooks.paired_jids == ["40700000001:1@s.whatsapp.net"]
    await sup.stop("test")


async def test_stop_during_backoff_ends_promptly() -> None:
    factory = FakeLinkFactory(lambda s: s.push(close_event("connection_lost")))
    sup = make(factory, Hooks(), backoff=Backoff(uniform=lambda lo, hi: 30.0))
    sup.start()
    await eventually(lambda: sup.state is AccountState.BACKING_OFF)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sup.stop("shutdown")
    assert loop.time() - started < 0.5
    assert sup.state is AccountState.STOPPED


async def test_pairing_that_expires_stops_and_is_reported() -> None:
    factory = FakeLinkFactory(lambda s: s.push(close_event("pairing_expired", 408)))
    hooks = Hooks()
    sup = make(factory, hooks, pairing=PairingRequest("qr", None))
    task = sup.start()
    await asyncio.wait_for(task, 1.0)
    assert sup.state is AccountState.STOPPED
    assert hooks.reports[-1] == (ConnectionState.STOPPED, "pairing_expired", -1)
    assert len(factory.sessions) == 1


async def test_logout_while_backing_off_opens_a_socket_only_to_unlink() -> None:
    factory = FakeLinkFactory(lambda s: s.push(close_event("connection_lost")))
    sup = make(factory, Hooks(), backoff=Backoff(uniform=lambda lo, hi: 30.0))
    sup.start()
    await eventually(lambda: sup.state is AccountState.BACKING_OFF)
    closed = await sup.logout()
    assert closed is not None and closed.reason == "logged_out_by_client"
    assert len(factory.sessions) == 2 and factory.sessions[1].logged_out
    assert sup.state is AccountState.STOPPED


async def test_a_send_state_not_persisted_in_time_keeps_its_ciphertext_back() -> None:
    factory = FakeLinkFactory(opens)
    hooks = Hooks()
    sup = make(factory, hooks)
    sup.start()
    await eventually(lambda: sup.state is AccountState.OPEN)
    hooks.persisted = False
    before_send = factory.sessions[0].before_send
    await before_send([CredsChanged("critical", creds_fields=frozenset({"me"}))])  # goes on, as before
    with pytest.raises(PublishError):
        await before_send([CredsChanged("critical", categories=SEND_STATE_CATEGORIES)])
    await sup.stop("test")
