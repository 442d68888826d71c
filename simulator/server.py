"""The simulator's I/O: one aiohttp application serving the websocket ``/ws/chat`` and the control API.

Per socket: frames (3-byte length, intro header on the client's first message; its last byte names
the token dictionary, version 2 or 3, spoken for the whole connection, and an unknown one is closed
before the handshake), the Noise XX
handshake as responder with the simulator's static key and certificate chain, then binary nodes
encrypted with the transport keys. Everything a socket receives goes to ``SimulatorCore``; the
actions it returns are carried out here, possibly on other sockets (440 replaced, pairing code
notification, unlink). Closing another socket never blocks the socket that caused it.

A graceful close is the websocket closing handshake, run by the socket's own read loop: close frame,
then the client's stanzas are read (and dropped) until its close frame, then the TCP connection
ends. Closing the TCP connection sooner would make the kernel answer the client's next write (an ack
sent just before it read ``<stream:error code=515/>``) with a reset, which discards what it has not
read yet: the stream error itself (Baileys then sees 428 instead of 515).

State changes are written to the ``StateStore`` at most every ``SAVE_INTERVAL_S`` and at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from connector.protocol.binary import Node, decode_node, encode_node
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import ProtocolError
from connector.protocol.frames import FrameDecoder, encode_frame
from connector.protocol.noise import NoiseHandshake, NoiseTransport
from connector.protocol.tokens import DICT_VERSION, DICTIONARIES
from simulator.core import Action, Close, Send, SendLater, SendMalformed, SimulatorCore
from simulator.errors import ClientProtocolError
from simulator.faults import MalformedVariant
from simulator.identity import new_server_identity
from simulator.state import SimulatorState
from simulator.store import MemoryStateStore, StateStore

log = logging.getLogger(__name__)

WS_PATH = "/ws/chat"
HANDSHAKE_TIMEOUT_S = 20.0  # whatsmeow NoiseHandshakeResponseTimeout
# The real server's first stanza after ClientFinish comes no sooner than a network round trip.
# Baileys 6.7 relies on that: it derives its transport keys asynchronously after sending
# ClientFinish and drops a frame that arrives before; on loopback that race is lost without this.
POST_HANDSHAKE_DELAY_S = 0.05
CLOSE_TIMEOUT_S = 2.0
SAVE_INTERVAL_S = 0.5
SAVE_DUTY_FACTOR = 10
MAX_WS_MESSAGE_BYTES = 1 << 24
BAD_NODE_PLAINTEXT = b"\x00\xf8\x09\x01"  # flags, LIST_8 of 9 items, then the stream ends


@dataclass
class _Socket:
    """One websocket after (or during) its handshake."""

    conn_id: int
    ws: web.WebSocketResponse
    request: web.Request
    transport: NoiseTransport | None = None
    lock: asyncio.Lock | None = None
    dict_version: int = DICT_VERSION  # the token dictionary the client announced in its intro header
    reader: asyncio.Task[Any] | None = None  # the task running this socket's read loop
    receiving: bool = False  # that task is waiting for the client's next message
    close_requested: bool = False

    def __post_init__(self) -> None:
        self.lock = asyncio.Lock()

    def request_close(self) -> None:
        """Have the read loop close this socket (``close``) once its current stanza is handled; a
        loop waiting for the client is woken up for it."""
        if self.close_requested:
            return
        self.close_requested = True
        if self.receiving and self.reader is not None:
            self.reader.cancel()

    async def send_node(self, node: Node) -> None:
        assert self.lock is not None
        async with self.lock:
            if self.transport is None or self.ws.closed:
                return
            frame = encode_frame(self.transport.encrypt(encode_node(node, dict_version=self.dict_version)))
            await self.ws.send_bytes(frame)

    async def send_malformed(self, variant: MalformedVariant) -> None:
        assert self.lock is not None
        async with self.lock:
            if self.transport is None or self.ws.closed:
                return
            if variant is MalformedVariant.GARBAGE:
                payload = os.urandom(48)  # cannot authenticate under the client's read key
            else:
                payload = self.transport.encrypt(BAD_NODE_PLAINTEXT)
            await self.ws.send_bytes(encode_frame(payload))

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        """The closing handshake, bounded by ``CLOSE_TIMEOUT_S``; call it from the read loop only (with
        a ``receive`` pending elsewhere, aiohttp would end the TCP connection without waiting)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT_S)
        if not self.ws.closed:
            self.abort()


def load_or_create_state(store: StateStore, *, now: float) -> SimulatorState:
    state = store.load()
    if state is None:
        state = SimulatorState(identity=new_server_identity(os.urandom, now))
        store.save(state)
    return state


class SimulatorServer:
    """Owns the core, the sockets and the persistence loop. ``app`` is the aiohttp application."""

    def __init__(
        self,
        store: StateStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        post_handshake_delay_s: float = POST_HANDSHAKE_DELAY_S,
    ) -> None:
        self.store: StateStore = store or MemoryStateStore()
        self.handshake_timeout_s = handshake_timeout_s
        self.post_handshake_delay_s = post_handshake_delay_s
        self.state = load_or_create_state(self.store, now=clock())
        self.core = SimulatorCore(
            self.state, clock=clock, random_bytes=os.urandom, on_change=self._mark_dirty
        )
        identity = self.state.identity
        self._static = KeyPair(private=identity.static_private, public=identity.static_public)
        self._sockets: dict[int, _Socket] = {}
        self._dirty = False
        self._saver: asyncio.Task[None] | None = None
        self._delayed: set[asyncio.Task[None]] = set()  # stanzas the delay_stanza fault holds back
        self.app = web.Application()
        self.app.router.add_get(WS_PATH, self._websocket)
        self.app.on_startup.append(self._on_startup)
        self.app.on_shutdown.append(self._on_shutdown)
        self.app.on_cleanup.append(self._on_cleanup)
        from simulator.control import add_control_routes

        add_control_routes(self.app, self)

    @property
    def root_public_key(self) -> bytes:
        return self.state.identity.root_public

    @property
    def root_public_key_b64(self) -> str:
        return base64.b64encode(self.root_public_key).decode("ascii")

    # ------------------------------------------------------------------ persistence

    def _mark_dirty(self) -> None:
        self._dirty = True

    def save_now(self) -> None:
        if self._dirty:
            self._dirty = False
            self.store.save(self.state)

    async def _save_loop(self) -> None:
        pause_s = SAVE_INTERVAL_S
        while True:
            await asyncio.sleep(pause_s)
            started = time.monotonic()
            try:
                self.save_now()
            except OSError:
                log.exception("saving simulator state failed; will retry")
                self._dirty = True
            # A save serializes the whole state on the event loop: keep it under ~10% of the time.
            pause_s = max(SAVE_INTERVAL_S, SAVE_DUTY_FACTOR * (time.monotonic() - started))

    async def _on_startup(self, app: web.Application) -> None:
        self._saver = asyncio.create_task(self._save_loop())

    async def _on_shutdown(self, app: web.Application) -> None:
        for sock in list(self._sockets.values()):
            sock.abort()

    async def _on_cleanup(self, app: web.Application) -> None:
        for task in list(self._delayed):
            task.cancel()
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
        self.save_now()

    # ------------------------------------------------------------------ actions

    async def run_actions(self, actions: list[Action]) -> None:
        """Carry out core actions in order. A graceful close is handed to that socket's own read loop
        (it waits for the peer's close frame), so one client cannot stall another."""
        for action in actions:
            sock = self._sockets.get(action.conn)
            if sock is None:
                continue
            try:
                if isinstance(action, Send):
                    await sock.send_node(action.node)
                elif isinstance(action, SendLater):
                    self._spawn(self._send_later(action))
                elif isinstance(action, SendMalformed):
                    await sock.send_malformed(action.variant)
            except ConnectionError:
                # That socket is already gone (its reader will report it); never let it fail the
                # socket whose stanza caused this action.
                sock.abort()
                continue
            if isinstance(action, Close):
                if action.abrupt:
                    sock.abort()
                else:
                    sock.request_close()

    async def _send_later(self, action: SendLater) -> None:
        await asyncio.sleep(action.delay_s)
        await self.run_actions([Send(action.conn, action.node)])

    def _spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` beside the sockets (a delayed stanza); cancelled at cleanup."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._delayed.add(task)
        task.add_done_callback(self._delayed.discard)

    # ------------------------------------------------------------------ websocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.core.faults.refuses_everyone(self.core.now()):
            return web.Response(status=503, text="refused by fault injection")
        # No permessage-deflate: frames are Noise ciphertext (incompressible) and zlib contexts cost ~100 KiB a socket.
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE_BYTES, autoping=True, compress=False)
        await ws.prepare(request)
        conn_id = self.core.open_connection()
        sock = _Socket(conn_id, ws, request, reader=asyncio.current_task())
        self._sockets[conn_id] = sock
        try:
            await self._serve(sock)
        except (ProtocolError, ClientProtocolError) as exc:
            log.info("connection %d closed: client broke the protocol: %s", conn_id, exc)
            sock.abort()
        except TimeoutError:
            log.info("connection %d closed: handshake timed out", conn_id)
            sock.abort()
        except ConnectionError as exc:
            log.info("connection %d lost: %s", conn_id, exc)
        finally:
            self.core.connection_lost(conn_id)
            self._sockets.pop(conn_id, None)
        return ws

    async def _serve(self, sock: _Socket) -> None:
        decoder = FrameDecoder(expect_intro=True)
        handshake: NoiseHandshake | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.handshake_timeout_s
        while True:
            if sock.close_requested:
                await sock.close()
                return
            timeout = None if sock.transport is not None else max(0.0, deadline - loop.time())
            sock.receiving = True
            try:
                message = await asyncio.wait_for(sock.ws.receive(), timeout)
            except asyncio.CancelledError:
                if not sock.close_requested:
                    raise
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                continue
            finally:
                sock.receiving = False
            if message.type != WSMsgType.BINARY:
                return  # close, error or a text frame the real server would not accept either
            for frame in decoder.feed(message.data):
                if sock.close_requested:
                    break  # the rest of the message comes after the stanza that closed the socket
                if sock.transport is not None:
                    node = decode_node(sock.transport.decrypt(frame), dict_version=sock.dict_version)
                    await self.run_actions(self.core.receive(sock.conn_id, node))
                elif handshake is None:
                    prologue = decoder.intro_header or b""
                    version = prologue[-1] if prologue else DICT_VERSION
                    if version not in DICTIONARIES:
                        log.info("connection %d closed: unknown dictionary version %d", sock.conn_id, version)
                        await sock.close()
                        return
                    sock.dict_version = version
                    handshake = NoiseHandshake("responder", prologue, self._static, os.urandom)
                    handshake.read_client_hello(frame)
                    await sock.ws.send_bytes(
                        encode_frame(handshake.write_server_hello(self.state.identity.cert_chain))
                    )
                else:
                    payload = handshake.read_client_finish(frame)
                    assert handshake.remote_static is not None
                    sock.transport = handshake.split()
                    if self.post_handshake_delay_s > 0:
                        # Before the login is taken in: once it is, the device is live and stanzas for
                        # it go out at once, so waiting after it would let them overtake <success>
                        # (a client drops a <message> before it: unacknowledged on that socket for good).
                        await asyncio.sleep(self.post_handshake_delay_s)
                    actions = self.core.client_hello(sock.conn_id, handshake.remote_static, payload)
                    await self.run_actions(actions)

    # ------------------------------------------------------------------ introspection

    def socket_count(self) -> int:
        return len(self._sockets)
