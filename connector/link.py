"""What the supervisor needs from the protocol engine: a small typed interface of its own.

The supervisor never imports the engine. ``connector/engine_link.py`` adapts the real engine to
:class:`LinkFactory`; tests use in-memory fakes. Credential and key changes do not travel through
here: the engine writes them to the account's :class:`~shared.authstore.MemoryAuthStore`, whose
listener marks the account dirty for the snapshot coalescer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingRequest
from shared.events import MessageReceived, MessageUndecryptable

#: What to do after a close, decided by the engine from the close code (FACTS: disconnect codes).
ClosePolicy = Literal["restart_now", "backoff", "stop_logged_out", "stop_replaced", "stop_outdated",
                      "stop_pairing", "stop_requested"]


@dataclass(frozen=True)
class QrShown:
    """A QR string to show the user (``ref,noisePub,identityPub,advSecret``)."""

    qr: str = field(repr=False)


@dataclass(frozen=True)
class PairingCodeShown:
    """An 8-character code to type on the phone."""

    code: str = field(repr=False)


@dataclass(frozen=True)
class Paired:
    """The phone accepted this device; ``jid`` is the new companion device JID."""

    jid: str


@dataclass(frozen=True)
class Opened:
    """Logged in: the account is online."""


@dataclass(frozen=True)
class CredsChanged:
    """The engine changed the auth state. After a ``critical`` change the engine waits for the next
    event to be pulled before it goes on, and the supervisor pulls it only once the snapshot is
    accepted by Pub/Sub (e.g. the pair-device-sign reply must not leave before its credentials are
    safe). ``routine`` changes are left to the coalescer."""

    kind: Literal["critical", "routine"]


@dataclass(frozen=True)
class Closed:
    """The socket closed; ``reason`` is a slug (``restart_required``, ``connection_lost``, ...)."""

    reason: str
    policy: ClosePolicy
    code: int | None = None


@dataclass(frozen=True)
class Incoming:
    """A message to publish; call ``ack`` only after Pub/Sub accepted it (at-least-once). It is the
    decrypted message, or the placeholder of one that could not be decrypted."""

    message: MessageReceived | MessageUndecryptable
    ack: Callable[[], Awaitable[None]] = field(repr=False)


LinkEvent = QrShown | PairingCodeShown | Paired | Opened | CredsChanged | Closed | Incoming


class LinkSession(Protocol):
    """One live socket for one account."""

    def events(self) -> AsyncIterator[LinkEvent]:
        """Events until the socket closes; the last one is a :class:`Closed`."""
        ...

    async def close(self) -> None:
        """Close the socket; the event iterator then ends."""
        ...


@runtime_checkable
class SupportsLogout(Protocol):
    """A session that can unlink its device (remove-companion-device) before closing."""

    async def logout(self, timeout_s: float | None = None) -> Closed:
        """Unlink, then close; ``Closed.reason`` is ``logged_out_by_client`` when WhatsApp confirmed."""
        ...


class LinkFactory(Protocol):
    """Opens sockets."""

    def open(self, account_id: str, store: MemoryAuthStore, pairing: PairingRequest | None) -> LinkSession:
        ...
