"""The asyncio driver over real loopback websockets, against an in-test server built from the codecs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from connector.engine.driver import EngineConfig, EngineSession
from connector.protocol import pairing
from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.client import ClientConfig
from connector.protocol.close import ClosePolicy, CloseReason
from connector.protocol.crypto import KeyPair
from connector.protocol.events import Closed, CredsChanged, Event, Opened, Paired, QrCodeShown, RetryRequested
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from testkit.protocol.fake_server import FakeServer
from testkit.protocol.seeded import SeededRandom
from tests.connector.protocol.test_client import registered_store
from tests.support import phone_pairing

Script = Callable[[FakeServer, ServerConnection], Awaitable[None]]
ROOT = KeyPair.generate(SeededRandom("engine-root"))


@asynccontextmanager
async def wa_server(script: Script) -> AsyncIterator[str]:
    """A websocket server that runs the Noise handshake, then ``script``; yields its ws:// URL."""
    seen_origin: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        seen_origin.append(ws.request.headers.get("Origin") if ws.request else None)
        fake = FakeServer("engine-server", root=ROOT, now=time.time())
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        await ws.send(fake.handshake([hello]))
        finish = await ws.recv()
        assert isinstance(finish, bytes)
        fake.finish([finish])
        await script(fake, ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/chat"
    assert all(origin == "https://web.whatsapp.com" for origin in seen_origin)


def engine_config(url: str, **client: Any) -> EngineConfig:
    client_config = dataclasses.replace(ClientConfig(root_public_key=ROOT.public), **client)
    return EngineConfig(url=url, connect_timeout_s=2.0, close_timeout_s=1.0, client=client_config)


async def collect(session: EngineSession, until: type[Event] = Closed, timeout: float = 5.0) -> list[Event]:
    seen: list[Event] = []

    async def run() -> None:
        async for event in session.events():
            seen.append(event)
            if isinstance(event, until):
                return

    await asyncio.wait_for(run(), timeout)
    return seen


async def recv_nodes(fake: FakeServer, ws: ServerConnection) -> list[Node]:
    data = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(data, bytes)
    return fake.receive([data])


async def test_login_message_ack_and_clean_close() -> None:
    server_saw: list[Node] = []

    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("success", {"lid": "1:3@lid"})))
        for _ in range(2):  # count, passive (the key digest check follows seconds later)
            server_saw.extend(await recv_nodes(fake, ws))
        await ws.send(fake.send(Node("message", {"id": "M1", "from": "155500001@s.whatsapp.net", "t": "1"},
                                     [Node("enc", {"type": "msg", "v": "2"}, b"c")])))
        while True:
            try:
                server_saw.extend(await recv_nodes(fake, ws))
            except Exception:
                return

    async with wa_server(script) as url:
        session = EngineSession(registered_store(), engine_config(url))
        events = await collect(session, until=RetryRequested)
        assert any(isinstance(e, Opened) for e in events)
        retried = events[-1]
        assert isinstance(retried, RetryRequested) and retried.count == 1  # "c" is no Signal message
        await asyncio.sleep(0.1)
        info = await session.close()
    assert info.reason is CloseReason.CLOSED_BY_CLIENT and info.policy is ClosePolicy.STOP_REQUESTED
    receipt, ack = server_saw[-2:]
    assert (receipt.tag, receipt.attrs["type"], ack.tag, ack.attrs["error"]) == ("receipt", "retry", "ack", "500")


async def test_server_stream_error_515_ends_with_restart_now() -> None:
    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("stream:error", {"code": "515"})))
        await asyncio.wait_for(ws.wait_closed(), 5)

    async with wa_server(script) as url:
        session = EngineSession(registered_store(), engine_config(url))
        events = await collect(session)
    closed = events[-1]
    assert isinstance(closed, Closed) and closed.info.policy is ClosePolicy.RESTART_NOW


async def test_dropped_socket_is_connection_closed() -> None:
    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("success", {})))
        await ws.close()

    async with wa_server(script) as url:
        events = await collect(EngineSession(registered_store(), engine_config(url)))
    closed = events[-1]
    assert isinstance(closed, Closed) and closed.info.reason is CloseReason.CONNECTION_CLOSED
    assert closed.info.policy is ClosePolicy.BACKOFF


async def test_unanswered_keepalive_detects_dead_socket() -> None:
    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("success", {})))
        await asyncio.wait_for(ws.wait_closed(), 5)  # reads nothing: pings go unanswered

    async with wa_server(script) as url:
        config = engine_config(url, keepalive_min_s=0.2, keepalive_max_s=0.3, ping_timeout_s=0.3)
        events = await collect(EngineSession(registered_store(), config), timeout=4)
    closed = events[-1]
    assert isinstance(closed, Closed) and closed.info.reason is CloseReason.CONNECTION_LOST


async def test_connect_timeout_and_refused_connection() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # accepts TCP, never answers the websocket upgrade

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = dataclasses.replace(engine_config(f"ws://127.0.0.1:{port}/"), connect_timeout_s=0.3)
    events = await collect(EngineSession(registered_store(), config))
    server.close()
    assert isinstance(events[-1], Closed) and events[-1].info.reason is CloseReason.TIMED_OUT

    await server.wait_closed()
    events = await collect(EngineSession(registered_store(), engine_config(f"ws://127.0.0.1:{port}/")))
    assert isinstance(events[-1], Closed) and events[-1].info.reason is CloseReason.CONNECTION_CLOSED


async def test_critical_change_is_persisted_before_pairing_reply_is_sent() -> None:
    order: list[str] = []
    phone = KeyPair.generate(SeededRandom("engine-phone"))

    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("iq", {"id": "pd", "type": "set", "from": S_WHATSAPP_NET},
                                     [Node("pair-device", {}, [Node("ref", {}, b"R1")])])))
        await recv_nodes(fake, ws)  # pair-device result
        async with asyncio.timeout(5):  # bounded: a client that never shows the QR must not hang the server
            while not qr_holder:
                await asyncio.sleep(0.01)
        scanned = pairing.parse_qr_data(qr_holder[0])
        container = phone_pairing.primary_sign_device_identity(
            account_identity=phone, companion_identity_public=scanned.identity_public,
            adv_secret=scanned.adv_secret, raw_id=1, key_index=1, timestamp=1, rand=SeededRandom("x"),
        )
        await ws.send(fake.send(Node("iq", {"id": "ps", "type": "set", "from": S_WHATSAPP_NET}, [
            Node("pair-success", {}, [Node("device-identity", {}, container),
                                      Node("device", {"jid": "155512345:4@s.whatsapp.net"})])])))
        for node in await recv_nodes(fake, ws):
            order.append(f"server got {node.children()[0].tag}")
        await ws.send(fake.send(Node("stream:error", {"code": "515"})))
        await asyncio.wait_for(ws.wait_closed(), 5)

    qr_holder: list[str] = []

    async def persist(changes: list[CredsChanged]) -> None:
        await asyncio.sleep(0.05)
        order.append("persisted " + ",".join(sorted(changes[0].creds_fields & {"me", "account"})))

    store = MemoryAuthStore(AuthState.generate(SeededRandom("engine-fresh")))
    async with wa_server(script) as url:
        session = EngineSession(store, engine_config(url), before_send=persist)
        events: list[Event] = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, QrCodeShown):
                qr_holder.append(event.qr)
    assert order == ["persisted account,me", "server got pair-device-sign"]
    assert any(isinstance(e, Paired) for e in events)
    last = events[-1]
    assert isinstance(last, Closed) and last.info.policy is ClosePolicy.RESTART_NOW


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1/", "not a url", "ws://[::1/", "ws://127.0.0.1:99999/"])
async def test_unreachable_or_invalid_url(url: str) -> None:
    events = await collect(EngineSession(registered_store(), engine_config(url)))
    assert isinstance(events[-1], Closed) and events[-1].info.policy is ClosePolicy.BACKOFF


async def test_any_error_while_connecting_still_ends_with_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_connect(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the websocket library")

    monkeypatch.setattr("connector.engine.driver.connect", broken_connect)
    events = await collect(EngineSession(registered_store(), engine_config("ws://127.0.0.1:1/")))
    assert [type(e) for e in events] == [Closed]
    last = events[-1]
    assert isinstance(last, Closed) and last.info.detail == "connect error: RuntimeError"


async def test_failed_persistence_stops_the_session_before_the_pairing_reply() -> None:
    server_got: list[str] = []

    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("iq", {"id": "pd", "type": "set", "from": S_WHATSAPP_NET},
                                     [Node("pair-device", {}, [Node("ref", {}, b"R1")])])))
        await recv_nodes(fake, ws)
        async with asyncio.timeout(5):  # bounded: a client that never shows the QR must not hang the server
            while not qr_holder:
                await asyncio.sleep(0.01)
        scanned = pairing.parse_qr_data(qr_holder[0])
        container = phone_pairing.primary_sign_device_identity(
            account_identity=KeyPair.generate(SeededRandom("p")), companion_identity_public=scanned.identity_public,
            adv_secret=scanned.adv_secret, raw_id=1, key_index=1, timestamp=1, rand=SeededRandom("x"),
        )
        await ws.send(fake.send(Node("iq", {"id": "ps", "type": "set", "from": S_WHATSAPP_NET}, [
            Node("pair-success", {}, [Node("device-identity", {}, container),
                                      Node("device", {"jid": "155512345:4@s.whatsapp.net"})])])))
        with contextlib.suppress(Exception):
            while True:
                server_got.extend(n.tag for n in await recv_nodes(fake, ws))

    qr_holder: list[str] = []

    async def persist(changes: list[CredsChanged]) -> None:
        raise OSError("disk full")

    store = MemoryAuthStore(AuthState.generate(SeededRandom("engine-fresh-2")))
    async with wa_server(script) as url:
        session = EngineSession(store, engine_config(url), before_send=persist)
        events: list[Event] = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, QrCodeShown):
                qr_holder.append(event.qr)
    last = events[-1]
    assert isinstance(last, Closed) and last.info.reason is CloseReason.PROTOCOL_ERROR
    assert "OSError" in last.info.detail
    assert "iq" not in server_got  # the pair-device-sign reply never left


async def test_close_while_connecting_ends_promptly_as_requested() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = EngineSession(registered_store(), engine_config(f"ws://127.0.0.1:{port}/"))
    session.start()
    await asyncio.sleep(0.1)
    info = await asyncio.wait_for(session.close(), 1)
    server.close()
    assert info.reason is CloseReason.CLOSED_BY_CLIENT
    events = await collect(session)
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].info == info


async def test_close_before_start() -> None:
    session = EngineSession(registered_store(), engine_config("ws://127.0.0.1:1/"))
    info = await session.close()
    assert info.policy is ClosePolicy.STOP_REQUESTED
    events = await collect(session, timeout=1)
    assert [type(e) for e in events] == [Closed]


# ------------------------------------------------------------------------------------------ logout


async def test_logout_before_start_logs_in_sends_remove_companion_device_and_ends_logged_out() -> None:
    server_got: list[Node] = []

    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("success", {"lid": "987654321:3@lid"})))
        (request,) = await recv_nodes(fake, ws)
        server_got.append(request)
        await ws.send(fake.send(Node("iq", {"id": request.attrs["id"], "type": "result", "from": S_WHATSAPP_NET})))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.wait_closed(), 2)

    async with wa_server(script) as url:
        session = EngineSession(registered_store(), engine_config(url))
        info = await asyncio.wait_for(session.logout(3.0), 5)
        events = await collect(session, timeout=1)
    assert (info.reason, info.policy) == (CloseReason.LOGGED_OUT_BY_CLIENT, ClosePolicy.STOP_REQUESTED)
    assert not any(isinstance(e, Opened) for e in events)
    last = events[-1]
    assert isinstance(last, Closed) and last.info == info and session.close_info == info
    (request,) = server_got
    assert (request.attrs["xmlns"], request.attrs["type"]) == ("md", "set")
    assert request.children()[0].attrs == {"jid": "15551234567:3@s.whatsapp.net", "reason": "user_initiated"}


async def test_unanswered_logout_on_an_open_session_ends_failed_at_its_bound() -> None:
    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("success", {})))
        with contextlib.suppress(Exception):
            while True:
                await recv_nodes(fake, ws)  # read everything, answer nothing

    async with wa_server(script) as url:
        session = EngineSession(registered_store(), engine_config(url))
        await collect(session, until=Opened)
        started = time.monotonic()
        info = await asyncio.wait_for(session.logout(0.5), 5)
        elapsed = time.monotonic() - started
    assert info.reason is CloseReason.LOGOUT_FAILED and "waiting for an answer" in info.detail
    assert 0.4 <= elapsed < 1.5


async def test_logout_that_cannot_connect_fails_without_retry() -> None:
    info = await asyncio.wait_for(EngineSession(registered_store(), engine_config("ws://127.0.0.1:1/")).logout(1.0), 3)
    assert (info.reason, info.policy) == (CloseReason.LOGOUT_FAILED, ClosePolicy.STOP_REQUESTED)
    assert info.policy not in (ClosePolicy.RESTART_NOW, ClosePolicy.BACKOFF)


async def test_logout_against_a_server_that_hangs_while_connecting_is_bounded() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = dataclasses.replace(engine_config(f"ws://127.0.0.1:{port}/"), connect_timeout_s=4.0, close_timeout_s=0.2)
    session = EngineSession(registered_store(), config)
    started = time.monotonic()
    info = await asyncio.wait_for(session.logout(0.3), 3)
    elapsed = time.monotonic() - started
    server.close()
    assert info.reason is CloseReason.LOGOUT_FAILED and elapsed < 1.5
    events = await collect(session, timeout=1)
    assert [type(e) for e in events] == [Closed]


async def test_answer_buffered_before_the_server_closed_is_read_even_when_a_send_fails() -> None:
    """The server answers the logout and closes at once; a write that finds the socket closed must not
    hide the answer already received (it would turn a done logout into logout_failed)."""

    async def script(fake: FakeServer, ws: ServerConnection) -> None:
        await ws.send(fake.send(Node("success", {})))
        while True:
            (node,) = await recv_nodes(fake, ws)
            if node.child("remove-companion-device") is not None:
                break
        await ws.send(fake.send(Node("iq", {"id": node.attrs["id"], "type": "result"}),
                                Node("stream:error", {"code": "401"}, [Node("conflict", {"type": "device_removed"})])))
        await ws.close()

    async with wa_server(script) as url:
        session = EngineSession(registered_store(), engine_config(url))
        await collect(session, until=Opened)
        ws = session._ws
        assert ws is not None
        real_send = ws.send

        async def send_then_write_again(frame: Any) -> None:
            await real_send(frame)
            await asyncio.sleep(0.3)  # the server answers and closes meanwhile; this task holds the lock
            await real_send(frame)  # e.g. an ack queued in the same flush: the socket is closed now

        ws.send = send_then_write_again  # type: ignore[method-assign,assignment]
        info = await asyncio.wait_for(session.logout(3.0), 5)
    assert info.reason is CloseReason.LOGGED_OUT_BY_CLIENT, info
