"""The supervisor's view of the engine (``connector.link`` types) against the simulator."""

from __future__ import annotations

import asyncio
import os

import pytest

from connector import link
from connector.engine_link import EngineLinkFactory
from connector.protocol.client import ClientConfig
from connector.protocol.events import CredsChanged
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingRequest
from shared.events import MessageKey, MessageUndecryptable
from simulator.testing import ControlClient, running_simulator

pytestmark = pytest.mark.integration

PHONE = "+40700000001"


async def next_of(events: object, kind: type[link.LinkEvent], seen: list[link.LinkEvent]) -> link.LinkEvent:
    async def find() -> link.LinkEvent:
        async for event in events:  # type: ignore[attr-defined]
            seen.append(event)
            if isinstance(event, kind):
                return event
        raise AssertionError(f"events ended before {kind.__name__}: {seen}")

    return await asyncio.wait_for(find(), 15)


async def test_pairing_login_and_message_through_the_link_interface() -> None:
    persisted: list[tuple[str, frozenset[str]]] = []

    async def persist(account_id: str, changes: list[CredsChanged]) -> None:
        persisted.extend((account_id, change.creds_fields) for change in changes)

    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key, persist_critical=persist,
                                    client_config=ClientConfig(initial_pre_key_count=10))
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        seen: list[link.LinkEvent] = []

        session = factory.open("acct-1", store, PairingRequest(method="qr", phone_number=None))
        events = session.events()
        qr = await next_of(events, link.QrShown, seen)
        assert isinstance(qr, link.QrShown)
        await control.scan(PHONE, qr.qr)
        paired = await next_of(events, link.Paired, seen)
        assert paired == link.Paired(jid="40700000001:1@s.whatsapp.net")
        closed = await next_of(events, link.Closed, seen)
        assert closed == link.Closed(reason="restart_required", policy="restart_now", code=515)
        assert any(account == "acct-1" and "account" in fields for account, fields in persisted)

        session = factory.open("acct-1", store, None)
        events = session.events()
        await next_of(events, link.Opened, seen)
        await control.send_message(PHONE, "+40711111111", id="3EB0CCCC")
        incoming = await next_of(events, link.Incoming, seen)
        assert isinstance(incoming, link.Incoming)
        message = incoming.message
        assert (message.account_id, message.message_id) == ("acct-1", "3EB0CCCC")
        assert message.chat == "40711111111@s.whatsapp.net"
        # no Signal layer wired yet: published as undecryptable (never as ciphertext), then acknowledged
        assert isinstance(message, MessageUndecryptable) and message.reason == "decryption_unavailable"
        assert message.key == MessageKey("40711111111@s.whatsapp.net", False, "3EB0CCCC")
        assert len(await control.pending_messages(PHONE, 1)) == 1
        await incoming.ack()
        for _ in range(50):
            if not await control.pending_messages(PHONE, 1):
                break
            await asyncio.sleep(0.05)
        assert await control.pending_messages(PHONE, 1) == []
        await session.close()
        final = await next_of(events, link.Closed, seen)
        assert final == link.Closed(reason="closed_by_client", policy="stop_requested", code=0)


async def test_code_pairing_shows_the_code() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        session = factory.open("acct-2", store, PairingRequest(method="code", phone_number=PHONE))
        seen: list[link.LinkEvent] = []
        events = session.events()
        shown = await next_of(events, link.PairingCodeShown, seen)
        assert isinstance(shown, link.PairingCodeShown)
        await control.link_code(PHONE, shown.code)
        await next_of(events, link.Paired, seen)
        assert not any(isinstance(e, link.QrShown) for e in seen)
        await session.close()


async def pair(control: ControlClient, factory: EngineLinkFactory, store: MemoryAuthStore) -> None:
    session = factory.open("acct-3", store, PairingRequest(method="qr", phone_number=None))
    seen: list[link.LinkEvent] = []
    events = session.events()
    qr = await next_of(events, link.QrShown, seen)
    assert isinstance(qr, link.QrShown)
    await control.scan(PHONE, qr.qr)
    await next_of(events, link.Closed, seen)  # 515 after pairing


async def test_logout_while_the_supervisor_reads_events_unlinks_the_device() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        await pair(control, factory, store)

        session = factory.open("acct-3", store, None)
        seen: list[link.LinkEvent] = []
        events = session.events()
        await next_of(events, link.Opened, seen)
        reader = asyncio.ensure_future(next_of(events, link.Closed, seen))  # the supervisor's loop goes on
        closed = await asyncio.wait_for(session.logout(5.0), 10)
        assert closed == link.Closed(reason="logged_out_by_client", policy="stop_requested", code=401)
        assert await reader == closed
        assert await control.devices(PHONE) == []


async def test_logout_of_a_socket_not_yet_read_connects_then_unlinks() -> None:
    """A claimed account that comes with a remove command: log in only to log out."""
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        factory = EngineLinkFactory(sim.ws_url, sim.root_public_key)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        await pair(control, factory, store)

        session = factory.open("acct-3", store, None)
        closed = await asyncio.wait_for(session.logout(), 15)
        assert closed.reason == "logged_out_by_client"
        seen: list[link.LinkEvent] = []
        assert await next_of(session.events(), link.Closed, seen) == closed
        assert not any(isinstance(e, link.Opened) for e in seen)  # never reported online
        assert await control.devices(PHONE) == []
        again = factory.open("acct-3", store, None)
        refused = await next_of(again.events(), link.Closed, seen)
        assert (refused.reason, refused.policy) == ("logged_out", "stop_logged_out")  # type: ignore[union-attr]
