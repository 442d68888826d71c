"""The link: one live WhatsApp Web socket per account, as the supervisor drives it.

A :class:`LinkFactory` opens a :class:`LinkSession` for an account; the session yields the protocol
core's own events (:mod:`connector.protocol.events`), unchanged, and ends with ``Closed`` whose
:class:`~connector.protocol.close.CloseInfo` carries the reason and the policy as enums. The real
link is :class:`connector.engine.driver.EngineLinkFactory` (one ``EngineSession`` per socket); the
test doubles are in ``testkit/fake_links.py``. Nothing here is translated or re-encoded.

Persist before send: every session is opened with a :data:`BeforeSend` hook. The link awaits it with
each batch of critical credentials changes (identity, registration, pairing, new pre-keys) before
the bytes that depend on them leave (e.g. the ``pair-device-sign`` reply); if it raises, the
session ends (``protocol_error``) without sending them. The ``CredsChanged`` events that follow are
informational: the account's auth store listener has seen every change already.

Incoming messages arrive decrypted (``MessageDecrypted``) or, after the retry receipts, as
``MessageUndecryptable``; :meth:`LinkSession.ack` confirms either to WhatsApp, to be called only once
it is safe elsewhere (its event accepted by Pub/Sub, the Signal state that opened it durable): an
unconfirmed message is redelivered on the next login. ``RetryRequested`` and ``DuplicateIgnored``
say what the link did on its own (a retry receipt, a 487 ack).

Sends: :meth:`LinkSession.send` starts one (:mod:`connector.protocol.outbound`); what becomes of it
comes as ``SendStatus`` events. Its ciphertext leaves only after the before-send hook saw the Signal
state that produced it (the client reports that state as a critical change).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from connector.protocol.close import CloseInfo
from connector.protocol.events import CredsChanged, Event, ReceivedMessage
from connector.protocol.outbound import SendRequest
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingRequest

__all__ = ["BeforeSend", "LinkFactory", "LinkSession"]

BeforeSend = Callable[[list[CredsChanged]], Awaitable[None]]
"""Awaited with critical credentials changes before the bytes that depend on them are sent."""


class LinkSession(Protocol):
    """One socket for one account; it never reconnects (the supervisor reads the close policy)."""

    def events(self) -> AsyncIterator[Event]:
        """Every event in order, connecting first; the last one is ``Closed``."""
        ...

    async def ack(self, message: ReceivedMessage) -> bool:
        """Confirm a message to WhatsApp; False when the socket is gone (it will be redelivered)."""
        ...

    async def send(self, request: SendRequest) -> bool:
        """Start a send; False when the socket is not logged in (nothing was sent)."""
        ...

    async def logout(self, timeout_s: float | None = None) -> CloseInfo:
        """Unlink the device (``remove-companion-device``), logging in first if needed, then close.

        Ends with reason ``logged_out_by_client`` when WhatsApp confirmed, ``logout_failed`` otherwise
        (policy ``stop_requested`` both times); the event iterator ends with the same ``Closed``."""
        ...

    async def close(self) -> CloseInfo:
        """Close the socket and wait for the session to end; the event iterator then ends."""
        ...


class LinkFactory(Protocol):
    """Opens sockets."""

    def open(self, account_id: str, store: MemoryAuthStore, pairing: PairingRequest | None,
             before_send: BeforeSend) -> LinkSession:
        """A session over ``store`` (credentials are read and written there); ``pairing`` when the
        account has no identity yet; ``before_send`` as in the module docstring."""
        ...
