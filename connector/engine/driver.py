"""Runs one protocol ``Client`` over one websocket: the only place where sockets, clocks and timers live.

``EngineLinkFactory`` is the real :class:`connector.link.LinkFactory`: each ``open`` is one
``EngineSession``, which is a :class:`connector.link.LinkSession` as it stands.

``EngineSession`` connects (with a timeout), feeds received bytes and the passage of time to the client,
writes what the client wants written, and hands the client's events to the caller through an async
iterator that ends with ``Closed``. It never reconnects: the caller reads ``Closed.info.policy`` and
decides. Credentials live in the caller's ``AuthStore``; the optional ``before_send`` hook is awaited
with every critical change before the bytes that depend on it go out (so a pairing is never confirmed
to the server before its credentials are persisted). ``logout()`` unlinks the device
(``remove-companion-device``), logging in first if needed, and ends the session, bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Origin

from connector.link import BeforeSend
from connector.protocol import certs
from connector.protocol.client import Client, ClientConfig, ClientState
from connector.protocol.close import CloseInfo, CloseReason, close_info, logout_outcome
from connector.protocol.crypto import RandomSource
from connector.protocol.events import (
    Closed,
    CredsChanged,
    Event,
    MessageDecrypted,
    MessageUndecryptable,
    ReceivedMessage,
)
from connector.protocol.frames import FRAME_MAX_SIZE
from connector.protocol.outbound import SendRequest, SentLog
from connector.protocol.retries import DEFAULT_RESEND_WAIT_S, RetryLedger
from shared.authstore import AuthStore, MemoryAuthStore
from shared.connector_sync import PairingMethod, PairingRequest

log = logging.getLogger(__name__)

WHATSAPP_WEB_URL: Final = "wss://web.whatsapp.com/ws/chat"
WHATSAPP_WEB_ORIGIN: Final = "https://web.whatsapp.com"

@dataclass(frozen=True, slots=True)
class EngineConfig:
    url: str = WHATSAPP_WEB_URL
    origin: str = WHATSAPP_WEB_ORIGIN
    connect_timeout_s: float = 20.0
    close_timeout_s: float = 5.0
    client: ClientConfig = field(default_factory=ClientConfig)


class EngineSession:
    """One connection attempt for one account. Use once: ``start()``, read ``events()``, ``close()``."""

    def __init__(
        self,
        store: AuthStore,
        config: EngineConfig,
        *,
        rand: RandomSource = os.urandom,
        clock: Callable[[], float] = time.time,
        before_send: BeforeSend | None = None,
        retries: RetryLedger | None = None,
        sent: SentLog | None = None,
    ) -> None:
        """``retries``: the account's retry ledger, kept across its sessions (a resend may come on the next);
        ``sent``: the account's sent messages, kept across its connections for retry receipts."""
        self._config = config
        self._client = Client(store, config.client, rand, retries=retries, sent=sent)
        self._clock = clock
        self._before_send = before_send
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[CloseInfo] | None = None
        self._closed = asyncio.Event()
        self._wakeup = asyncio.Event()  # set when a caller moved the client's next deadline
        self.close_info: CloseInfo | None = None

    # ------------------------------------------------------------------------------ caller API

    def start(self) -> asyncio.Task[CloseInfo]:
        """Connect and run in a task; the task's result is the ``CloseInfo``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="engine-session")
            if self._closed.is_set():  # closed before it started: nothing to connect
                self._task.cancel()
        return self._task

    async def events(self) -> AsyncIterator[Event]:
        """Every event in order; the last one is ``Closed``."""
        self.start()
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Closed):
                return

    async def ack(self, message: ReceivedMessage) -> bool:
        """Confirm a message to the server; False when the connection is already gone."""
        async with self._send_lock:
            queued = self._client.ack_message(message)
            await self._flush_locked()
        return queued

    async def send(self, request: SendRequest) -> bool:
        """Start a send (its outcome comes as ``SendStatus`` events); False when not logged in."""
        async with self._send_lock:
            started = self._client.send_message(request, self._clock())
            await self._flush_locked()
        self._wakeup.set()  # the send's deadlines are the client's now
        return started

    async def logout(self, timeout_s: float | None = None) -> CloseInfo:
        """Unlink this device from the account (``remove-companion-device``), then close.

        Connects and logs in first when the session is not open yet. Returns how the session ended:
        ``logged_out_by_client`` when the server confirmed, ``logout_failed`` when it refused, did not
        answer or the connection ended first (the phone may then still list the device). Bounded by
        ``timeout_s`` (default ``ClientConfig.logout_timeout_s``) plus the socket close timeout.
        """
        bound = self._config.client.logout_timeout_s if timeout_s is None else timeout_s
        task = self.start()
        async with self._send_lock:
            self._client.logout(self._clock(), bound)
            await self._flush_locked()
        self._wakeup.set()
        done, _ = await asyncio.wait({task}, timeout=bound + self._config.close_timeout_s)
        if not done or task.cancelled():
            return await self.close()
        return task.result()

    async def close(self) -> CloseInfo:
        """Close cleanly (if still open) and wait for the session to end."""
        async with self._send_lock:
            self._client.close()
            await self._flush_locked()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), self._config.close_timeout_s)
        elif self._task is not None and not self._task.done():
            self._task.cancel()  # still connecting: give up the attempt
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._task is None or self._task.cancelled():
            return self._finish(self._client.close_info or close_info(CloseReason.CLOSED_BY_CLIENT))
        return await self._task

    @property
    def state(self) -> ClientState:
        return self._client.state

    # ------------------------------------------------------------------------------ the loop

    async def _run(self) -> CloseInfo:
        try:
            ws = await self._connect()
        except _ConnectFailed as failed:
            log.info("connect failed", extra={"fields": {"reason": failed.info.reason, "detail": failed.info.detail}})
            return self._finish(failed.info)
        except Exception as exc:
            # Whatever else connecting raises, the caller still gets its one Closed event.
            log.exception("engine connect failed", extra={"fields": {"error": type(exc).__name__}})
            detail = f"connect error: {type(exc).__name__}"
            return self._finish(close_info(CloseReason.CONNECTION_CLOSED, detail=detail))
        self._ws = ws
        failure: CloseInfo | None = None
        try:
            async with self._send_lock:
                self._client.start(self._clock())
                await self._flush_locked()
            await self._pump(ws)
        except Exception as exc:
            # A bug here, or the caller's before_send hook failing to persist: nothing more is sent.
            log.exception("engine session failed", extra={"fields": {"error": type(exc).__name__}})
            failure = close_info(CloseReason.PROTOCOL_ERROR, detail=f"engine error: {type(exc).__name__}")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), self._config.close_timeout_s)
        info = failure or self._client.close_info or close_info(CloseReason.CONNECTION_CLOSED)
        log.info(
            "connection closed",
            extra={"fields": {"reason": info.reason, "code": info.code, "policy": info.policy, "detail": info.detail}},
        )
        return self._finish(info)

    async def _connect(self) -> ClientConnection:
        try:
            return await asyncio.wait_for(
                connect(
                    self._config.url,
                    origin=Origin(self._config.origin),
                    open_timeout=None,
                    ping_interval=None,  # liveness is the protocol's own ping iq
                    max_size=FRAME_MAX_SIZE + 64,
                    compression=None,
                    proxy=None,
                    user_agent_header=None,
                ),
                self._config.connect_timeout_s,
            )
        except TimeoutError as exc:
            raise _ConnectFailed(close_info(CloseReason.TIMED_OUT, detail="websocket connect timed out")) from exc
        except (OSError, InvalidHandshake, InvalidURI, ValueError) as exc:
            # ValueError: a URL urllib cannot parse (bad IPv6 literal, port out of range)
            detail = f"websocket connect failed: {type(exc).__name__}"
            raise _ConnectFailed(close_info(CloseReason.CONNECTION_CLOSED, detail=detail)) from exc

    async def _pump(self, ws: ClientConnection) -> None:
        receiving: asyncio.Task[str | bytes] | None = None
        try:
            while self._client.state is not ClientState.CLOSED:
                if receiving is None:
                    receiving = asyncio.ensure_future(ws.recv())
                if not await self._wait_for_data(receiving):
                    continue
                received, receiving = receiving, None
                if not await self._on_received(received):
                    return
        finally:
            if receiving is not None:
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receiving

    async def _wait_for_data(self, receiving: asyncio.Task[str | bytes]) -> bool:
        """Wait for data, the client's next deadline, or a caller's request that moved it (``logout``);
        True when data (or the end of the socket) arrived, else the client has been ticked."""
        deadline = self._client.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - self._clock())
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({receiving, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
        if receiving.done():
            return True
        self._wakeup.clear()
        async with self._send_lock:
            self._client.tick(self._clock())
            await self._flush_locked()
        return False

    async def _on_received(self, receiving: asyncio.Task[str | bytes]) -> bool:
        """Feed what the socket gave to the client; False when the socket is closed."""
        client = self._client
        try:
            data = receiving.result()
        except ConnectionClosed as exc:
            async with self._send_lock:
                client.connection_lost(f"socket closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})")
                await self._flush_locked()
            return False
        if isinstance(data, str):
            return True  # WhatsApp speaks binary frames only
        async with self._send_lock:
            now = self._clock()
            client.receive_data(data, now)
            client.tick(now)
            await self._flush_locked()
        return True

    async def _flush_locked(self) -> None:
        """Deliver events (persisting critical changes first), then write the client's bytes."""
        events = self._client.events()
        critical = [e for e in events if isinstance(e, CredsChanged) and e.kind == "critical"]
        if critical and self._before_send is not None:
            # Messages decrypted in this batch go to the caller first: the snapshot the hook waits
            # for carries their Signal state, and is held until their events are accepted.
            for event in events:
                if isinstance(event, MessageDecrypted | MessageUndecryptable):
                    self._events.put_nowait(event)
            await self._before_send(critical)
            events = [e for e in events if not isinstance(e, MessageDecrypted | MessageUndecryptable)]
        for event in events:
            if not isinstance(event, Closed):  # the single Closed is queued by _finish
                self._events.put_nowait(event)
        frames = self._client.data_to_send()
        if not frames or self._ws is None:
            return
        try:
            for frame in frames:
                await self._ws.send(frame)
        except ConnectionClosed:
            # Not the end yet: frames the server sent before closing (the answer to a logout, a stream
            # error saying why) are still buffered; the pump reads them, then learns of the close.
            log.debug("socket closed while sending; reading what the server sent before")

    def _finish(self, info: CloseInfo) -> CloseInfo:
        if self._client.logging_out:  # e.g. the connect failed: the logout did not happen
            info = logout_outcome(info)
        if not self._closed.is_set():
            self._closed.set()
            self.close_info = info
            self._events.put_nowait(Closed(info))
        return self.close_info or info


class _ConnectFailed(Exception):
    def __init__(self, info: CloseInfo) -> None:
        super().__init__(info.detail)
        self.info = info


class EngineLinkFactory:
    """:class:`connector.link.LinkFactory` over the real engine: one ``EngineSession`` per ``open``."""

    def __init__(
        self,
        url: str = WHATSAPP_WEB_URL,
        root_key: bytes | None = None,
        *,
        client_config: ClientConfig | None = None,
        connect_timeout_s: float = 20.0,
        retry_resend_wait_s: float = DEFAULT_RESEND_WAIT_S,
    ) -> None:
        """``root_key``: the trust root of the server certificate chain (WhatsApp's by default);
        ``retry_resend_wait_s``: how long a failed message waits for its resend (``protocol.retries``)."""
        base = client_config or ClientConfig()
        self._client_config = replace(base, root_public_key=root_key or certs.WHATSAPP_ROOT_PUBLIC_KEY)
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._retries: dict[str, RetryLedger] = {}
        self._resend_wait_s = retry_resend_wait_s
        # Each account's sent messages outlive its sockets (a retry receipt may come after a reconnect)
        # and go with its store when the account is released.
        self._sent: weakref.WeakKeyDictionary[MemoryAuthStore, SentLog] = weakref.WeakKeyDictionary()

    def open(self, account_id: str, store: MemoryAuthStore, pairing: PairingRequest | None,
             before_send: BeforeSend) -> EngineSession:
        phone = pairing.phone_number if pairing is not None and pairing.method == PairingMethod.CODE else None
        config = EngineConfig(url=self._url, connect_timeout_s=self._connect_timeout_s,
                              client=replace(self._client_config, pairing_phone_number=phone))
        retries = self._retries.get(account_id)
        if retries is None:
            retries = self._retries[account_id] = RetryLedger(resend_wait_s=self._resend_wait_s)
        sent = self._sent.setdefault(store, SentLog())
        return EngineSession(store, config, before_send=before_send, retries=retries, sent=sent)
