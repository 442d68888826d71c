"""The real link (``connector.engine.driver.EngineLinkFactory`` as a ``connector.link.LinkFactory``) against the
simulator."""

from __future__ import annotations

import asyncio
import os

import pytest

from connector.engine.driver import EngineLinkFactory
from connector.link import BeforeSend
from connector.protocol.client import ClientConfig
from connector.protocol.close import CloseInfo, ClosePolicy, CloseReason
from connector.protocol.events import (
    Closed,
    CredsChanged,
    Event,
    MessageArrived,
    Opened,
    Paired,
    PairingCodeShown,
    QrCodeShown,
)
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingRequest
from simulator.testing import ControlClient, running_simulator

pytestmark = pytest.mark.integration

PHONE = "+40700000001"


async def nothing_to_persist(changes: list[CredsChanged]) -> None:
    pass


def outcome(info: CloseInfo) -> tuple[CloseReason, ClosePolicy, int]:
    return info.reason, info.policy, info.code


async def next_of(events: object, kind: type[Event], seen: list[Event]) -> Event:
    async def find() -> Event:
        async for event in events:  # type: ignore[attr-defined]
            seen.append(event)
            if isinstance(event, kind):
                return event
        raise AssertionError(f"events ended before {kind.__name__}: {seen}")

    return await asyncio.wait_for(find(), 15)


async def test_pairing_login_and_message_through_the_link_interface() -> None:
    persisted: list[tuple[str, frozenset[str]]] = []

    def persist(account_id: str) -> BeforeSend:
        async def before_send(changes: list[CredsChanged]) -> None:
            persisted.extend((account_id, change.creds_fields) for change in changes)

        return before_send

    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key,
                                    client_config=ClientConfig(initial_pre_key_count=10))
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        seen: list[Event] = []

        session = factory.open("acct-1", store, PairingRequest(method="qr", phone_number=None), persist("acct-1"))
        events = session.events()
        qr = await next_of(events, QrCodeShown, seen)
        assert isinstance(qr, QrCodeShown)
        await control.scan(PHONE, qr.qr)
        paired = await next_of(events, Paired, seen)
        assert isinstance(paired, Paired) and paired.jid == "40700000001:1@s.whatsapp.net"
        closed = await next_of(events, Closed, seen)
        assert isinstance(closed, Closed) and outcome(closed.info) == ("restart_required", "restart_now", 515)
        assert any(account == "acct-1" and "account" in fields for account, fields in persisted)

        session = factory.open("acct-1", store, None, persist("acct-1"))
        events = session.events()
        await next_of(events, Opened, seen)
        await control.send_message(PHONE, "+40711111111", id="3EB0CCCC")
        incoming = await next_of(events, MessageArrived, seen)
        assert isinstance(incoming, MessageArrived)
        message = incoming.message
        assert message.id == "3EB0CCCC"
        assert message.sender == "40711111111@s.whatsapp.net"
        assert message.node.child("enc") is not None
        assert len(await control.pending_messages(PHONE, 1)) == 1
        assert await session.ack(message)
        for _ in range(50):
            if not await control.pending_messages(PHONE, 1):
                break
            await asyncio.sleep(0.05)
        assert await control.pending_messages(PHONE, 1) == []
        await session.close()
        final = await next_of(events, Closed, seen)
        assert isinstance(final, Closed) and outcome(final.info) == ("closed_by_client", "stop_requested", 0)


async def test_code_pairing_shows_the_code() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        session = factory.open("acct-2", store, PairingRequest(method="code", phone_number=PHONE),
                               nothing_to_persist)
        seen: list[Event] = []
        events = session.events()
        shown = await next_of(events, PairingCodeShown, seen)
        assert isinstance(shown, PairingCodeShown)
        await control.link_code(PHONE, shown.code)
        await next_of(events, Paired, seen)
        assert not any(isinstance(e, QrCodeShown) for e in seen)
        await session.close()


async def pair(control: ControlClient, factory: EngineLinkFactory, store: MemoryAuthStore) -> None:
    session = factory.open("acct-3", store, PairingRequest(method="qr", phone_number=None), nothing_to_persist)
    seen: list[Event] = []
    events = session.events()
    qr = await next_of(events, QrCodeShown, seen)
    assert isinstance(qr, QrCodeShown)
    await control.scan(PHONE, qr.qr)
    await next_of(events, Closed, seen)  # 515 after pairing


async def test_logout_while_the_supervisor_reads_events_unlinks_the_device() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        await pair(control, factory, store)

        session = factory.open("acct-3", store, None, nothing_to_persist)
        seen: list[Event] = []
        events = session.events()
        await next_of(events, Opened, seen)
        reader = asyncio.ensure_future(next_of(events, Closed, seen))  # the supervisor's loop goes on
        closed = await asyncio.wait_for(session.logout(5.0), 10)
        assert outcome(closed) == ("logged_out_by_client", "stop_requested", 401)
        assert await reader == Closed(closed)
        assert await control.devices(PHONE) == []


async def test_logout_of_a_socket_not_yet_read_connects_then_unlinks() -> None:
    """A claimed account that comes with a remove command: log in only to log out."""
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        await pair(control, factory, store)

        session = factory.open("acct-3", store, None, nothing_to_persist)
        closed = await asyncio.wait_for(session.logout(), 15)
        assert closed.reason == "logged_out_by_client"
        seen: list[Event] = []
        assert await next_of(session.events(), Closed, seen) == Closed(closed)
        assert not any(isinstance(e, Opened) for e in seen)  # never reported online
        assert await control.devices(PHONE) == []
        again = factory.open("acct-3", store, None, nothing_to_persist)
        refused = await next_of(again.events(), Closed, seen)
        assert isinstance(refused, Closed)
        assert (refused.info.reason, refused.info.policy) == ("logged_out", "stop_logged_out")
