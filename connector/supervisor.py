"""One account's connection, kept alive by an explicit state machine (``connector/states.py``).

The close policy comes from the engine (FACTS: disconnect codes) and is applied here:

- ``restart_now`` (515 restart required, e.g. right after pairing): reconnect at once. Three in a
  row without reaching ``open`` are treated as a temporary failure, so a server that answers every
  login with 515 cannot spin the connector.
- ``backoff`` (network loss, timeouts, 5xx): wait a fully jittered delay (1 s doubling up to 60 s,
  reset after a connection stable for a minute), then reconnect.
- ``stop_logged_out`` (401, device removed): stop, report ``needs_pairing``, wait until the account
  is paired again (a new claim) or removed. Never retried with the old keys.
- ``stop_replaced`` (440): another socket holds the account. Stop and report; never fight it.
- ``stop_outdated`` (405): the client version is refused; stop and report.
- ``stop_pairing``: pairing expired or failed; report it and stop (a new pairing must be asked).
- ``stop_requested``: the socket was closed on our request (stop or reconnect handle it).

Stopping from outside (lease lost or expiring, removed, shutdown) closes the socket and ends the
supervisor in ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from connector.backoff import Backoff
from connector.errors import PublishError
from connector.link import LinkFactory, LinkSession
from connector.logs import account_context, fields
from connector.protocol.client import SEND_STATE_CATEGORIES
from connector.protocol.close import CloseInfo, ClosePolicy, CloseReason, close_info
from connector.protocol.events import (
    Closed,
    CredsChanged,
    DuplicateIgnored,
    MessageDecrypted,
    MessageUndecryptable,
    Opened,
    Paired,
    PairingCodeShown,
    QrCodeShown,
    ReceivedMessage,
    RetryRequested,
)
from connector.protocol.outbound import SendRequest
from connector.protocol.send_status import SendStatus
from connector.states import AccountState, AccountStateMachine
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingRequest
from shared.events import ConnectionState

log = logging.getLogger(__name__)

MAX_RESTARTS_WITHOUT_OPEN = 3
CLOSE_TIMEOUT_S = 2.0
LOGOUT_TIMEOUT_S = 10.0


class SupervisorHooks(Protocol):
    """What a supervisor reports to the service."""

    def report(self, account_id: str, state: ConnectionState, reason: str | None, code: int | None,
               attempt: int) -> None: ...

    def pairing_code(self, account_id: str, code: str) -> None: ...

    def pairing_qr(self, account_id: str, qr: str) -> None: ...

    def paired(self, account_id: str, jid: str) -> None: ...

    def pairing_failed(self, account_id: str, reason: str) -> None: ...

    def message(self, account_id: str, message: ReceivedMessage, ack: Callable[[], Awaitable[bool]]) -> None:
        """A message arrived (decrypted, or undecryptable after its retries); ``ack()`` confirms it to
        WhatsApp (only once it is safe elsewhere)."""
        ...

    def message_retried(self, account_id: str, event: RetryRequested | DuplicateIgnored) -> None:
        """The link sent a retry receipt, or acked a duplicate, on its own (for the metrics)."""
        ...

    def state_changed(self, account_id: str, old: AccountState, new: AccountState) -> None: ...

    def reconnecting(self, account_id: str, reason: str) -> None: ...

    async def persist_now(self, account_id: str) -> bool:
        """Snapshot now and wait until Pub/Sub accepted it; False if that did not happen in time."""
        ...

    def send_status(self, account_id: str, status: SendStatus) -> None:
        """A send moved on (sent, delivered, read, failed)."""
        ...

    def socket_ended(self, account_id: str) -> None:
        """The account's socket is gone: sends still waiting for their server ack will not get it."""
        ...


class AccountSupervisor:
    """Runs one account until it is stopped; see the module docstring for the policy."""

    def __init__(
        self,
        account_id: str,
        store: MemoryAuthStore,
        factory: LinkFactory,
        hooks: SupervisorHooks,
        *,
        pairing: PairingRequest | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_id = account_id
        self.store = store
        self.pairing = pairing
        self._factory = factory
        self._hooks = hooks
        self.backoff = backoff or Backoff()
        self._clock = clock
        self.machine = AccountStateMachine(account_id, self._changed)
        self.stop_reason: str | None = None
        self.last_close: CloseInfo | None = None
        self._session: LinkSession | None = None
        self._stop = asyncio.Event()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._restarts_without_open = 0

    @property
    def state(self) -> AccountState:
        return self.machine.state

    def _changed(self, old: AccountState, new: AccountState) -> None:
        self._hooks.state_changed(self.account_id, old, new)

    # --- control from the service --------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"account:{self.account_id}")
        return self._task

    def reconnect(self) -> None:
        """Drop the socket and connect again now (operator command); also leaves needs_pairing."""
        self.backoff.reset()
        self._kick.set()
        if self._session is not None:
            asyncio.get_running_loop().create_task(self._session.close())

    async def send(self, request: SendRequest) -> bool:
        """Start a send on the live socket; False when there is none logged in (nothing was sent)."""
        session = self._session
        if session is None or self.state is not AccountState.OPEN:
            return False
        return await session.send(request)

    async def logout(self, timeout_s: float = LOGOUT_TIMEOUT_S) -> CloseInfo | None:
        """Unlink the device from the account (removal), then stop. Uses the live socket, or opens
        one just for this; returns how it ended, or None when the logout itself failed."""
        if self.stop_reason is None:
            self.stop_reason = "removed"
        self._stop.set()  # whatever happens next, no reconnect
        session = self._session or self._open(None)
        closed: CloseInfo | None = None
        try:
            closed = await asyncio.wait_for(session.logout(timeout_s), timeout_s + CLOSE_TIMEOUT_S)
        except Exception as exc:
            log.warning("logout failed", extra=fields(error=f"{type(exc).__name__}: {exc}"[:200]))
        await self.stop("removed")
        return closed

    async def stop(self, reason: str, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close the socket and end in ``stopped``; returns once the socket is closed."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        session = self._session
        if session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), timeout_s)
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self.machine.can(AccountState.STOPPED):
            self.machine.to(AccountState.STOPPED)

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        with account_context(self.account_id):
            try:
                await self._run()
            finally:
                if self.machine.can(AccountState.STOPPED):
                    self.machine.to(AccountState.STOPPED)

    async def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.machine.to(AccountState.CONNECTING)
            self._hooks.report(self.account_id, ConnectionState.CONNECTING if attempt == 0
                               else ConnectionState.RECONNECTING, None, None, attempt)
            closed = await self._serve_one_socket()
            self.last_close = closed
            if self._stop.is_set():
                break
            if self._kick.is_set():
                self._kick.clear()
                attempt += 1
                self._hooks.reconnecting(self.account_id, "operator")
                continue
            policy = closed.policy
            if policy is ClosePolicy.RESTART_NOW:
                self._restarts_without_open += 1
                if self._restarts_without_open > MAX_RESTARTS_WITHOUT_OPEN:
                    policy = ClosePolicy.BACKOFF
            if policy is ClosePolicy.RESTART_NOW:
                attempt += 1
                log.info("reconnecting at once", extra=fields(reason=closed.reason, code=closed.code))
                self._hooks.reconnecting(self.account_id, closed.reason)
                continue
            if policy is ClosePolicy.BACKOFF:
                attempt += 1
                self._hooks.reconnecting(self.account_id, closed.reason)
                await self._back_off(closed, attempt)
                continue
            if not await self._stand_down(closed, attempt):
                return
            # needs_pairing, then an operator asked to try again with the same keys.
            self._kick.clear()
            attempt += 1
            self._hooks.reconnecting(self.account_id, "operator")

    def _open(self, pairing: PairingRequest | None) -> LinkSession:
        return self._factory.open(self.account_id, self.store, pairing, self._persist_critical)

    async def _persist_critical(self, changes: list[CredsChanged]) -> None:
        """The link's before-send hook: the bytes that depend on ``changes`` wait for Pub/Sub."""
        # Bounded wait: if Pub/Sub is down the snapshot stays queued (and cached) and the engine goes
        # on, rather than failing a pairing the phone has already confirmed.
        if not await self._hooks.persist_now(self.account_id):
            if any(change.categories & SEND_STATE_CATEGORIES for change in changes):
                # Ciphertext of a send waits on this state: it must not leave before the state is
                # durable, or a restore would send an older ratchet step again. The socket ends
                # without sending it; the send is retried on the next one.
                raise PublishError("the Signal state of a send was not accepted by Pub/Sub in time")
            log.warning("critical credentials not yet accepted by Pub/Sub; going on "
                        "(they are in the local cache and the retry queue)")

    async def _serve_one_socket(self) -> CloseInfo:
        session = self._open(self.pairing)
        self._session = session
        closed: CloseInfo | None = None
        try:
            async for event in session.events():
                if isinstance(event, Closed):
                    closed = event.info
                    break
                if isinstance(event, MessageDecrypted | MessageUndecryptable):
                    self._hooks.message(self.account_id, event, functools.partial(session.ack, event))
                elif isinstance(event, RetryRequested | DuplicateIgnored):
                    self._hooks.message_retried(self.account_id, event)
                elif isinstance(event, SendStatus):
                    self._hooks.send_status(self.account_id, event)
                elif isinstance(event, Opened | PairingCodeShown | QrCodeShown | Paired):
                    self._handle(event)
                # CredsChanged went through _persist_critical / the store's listener already; the
                # other events (pre-keys uploaded, offline sync done) need nothing here.
        except Exception as exc:
            log.warning("socket failed", extra=fields(error=f"{type(exc).__name__}: {exc}"[:200]))
        finally:
            self._session = None
            self._hooks.socket_ended(self.account_id)
            if closed is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.close(), CLOSE_TIMEOUT_S)
            if self.state is AccountState.OPEN:
                self.backoff.closed(self._clock())
        return closed or close_info(CloseReason.CONNECTION_LOST)

    def _handle(self, event: Opened | PairingCodeShown | QrCodeShown | Paired) -> None:
        if isinstance(event, Opened):
            self.machine.to(AccountState.OPEN)
            self._restarts_without_open = 0
            self.backoff.opened(self._clock())
            self._hooks.report(self.account_id, ConnectionState.OPEN, None, None, 0)
        elif isinstance(event, PairingCodeShown):
            self._hooks.pairing_code(self.account_id, event.code)
        elif isinstance(event, QrCodeShown):
            self._hooks.pairing_qr(self.account_id, event.qr)
        elif isinstance(event, Paired):
            # From now on the account logs in with its new identity; never pair it again.
            self.pairing = None
            self._hooks.paired(self.account_id, event.jid)

    async def _back_off(self, closed: CloseInfo, attempt: int) -> None:
        self.machine.to(AccountState.BACKING_OFF)
        delay = self.backoff.next_delay_s()
        log.info("reconnecting after a delay",
                 extra=fields(reason=closed.reason, code=closed.code, delayS=round(delay, 2), attempt=attempt))
        await self._wait(delay)
        self._kick.clear()

    async def _stand_down(self, closed: CloseInfo, attempt: int) -> bool:
        """Apply a stop policy; True when a reconnect command ended a needs_pairing wait."""
        if closed.policy is ClosePolicy.STOP_LOGGED_OUT:
            self.machine.to(AccountState.NEEDS_PAIRING)
            log.warning("logged out by the phone: needs pairing", extra=fields(reason=closed.reason,
                                                                               code=closed.code))
            self._hooks.report(self.account_id, ConnectionState.NEEDS_PAIRING, closed.reason, closed.code,
                               attempt)
            await self._wait(None)
            return self._kick.is_set() and not self._stop.is_set()
        if closed.policy is ClosePolicy.STOP_REPLACED:
            log.warning("replaced by another socket: standing down", extra=fields(code=closed.code))
            self.machine.to(AccountState.STOPPED)
            self._hooks.report(self.account_id, ConnectionState.REPLACED, closed.reason, closed.code, attempt)
            return False
        if closed.policy is ClosePolicy.STOP_PAIRING:
            log.warning("pairing did not complete", extra=fields(reason=closed.reason))
            self.machine.to(AccountState.STOPPED)
            self._hooks.pairing_failed(self.account_id, closed.reason)
            return False
        if closed.policy is ClosePolicy.STOP_REQUESTED:
            # Closed on our side without a stop or reconnect pending: nothing more to do.
            self.machine.to(AccountState.STOPPED)
            self._hooks.report(self.account_id, ConnectionState.STOPPED, closed.reason, closed.code, attempt)
            return False
        log.error("client refused by the server: stopped", extra=fields(reason=closed.reason, code=closed.code))
        self.machine.to(AccountState.STOPPED)
        self._hooks.report(self.account_id, ConnectionState.STOPPED, closed.reason, closed.code, attempt)
        return False

    async def _wait(self, timeout_s: float | None) -> None:
        """Sleep until the timeout, a stop or a reconnect command, whichever comes first."""
        stop = asyncio.ensure_future(self._stop.wait())
        kick = asyncio.ensure_future(self._kick.wait())
        try:
            await asyncio.wait({stop, kick}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            kick.cancel()
