"""Events the protocol client emits to its caller (``Client.events()``).

They carry identifiers and counts only: never key material, never message text. An incoming message's
encrypted payloads are carried as opaque ciphertext for the caller to forward; decryption is out of scope
of this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from connector.protocol.binary import Node
from connector.protocol.close import CloseInfo
from connector.protocol.send_status import SendStatus


@dataclass(frozen=True, slots=True)
class QrCodeShown:
    """A QR code to show (pairing by QR). Rotates as the previous one expires, until refs run out."""

    qr: str
    index: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class PairingCodeShown:
    """The 8-character code to type on the phone (pairing by code), formatted ``ABCD-EFGH``."""

    code: str
    phone_number: str


@dataclass(frozen=True, slots=True)
class Paired:
    """``pair-success`` verified and answered; the server will ask for a restart (515) next."""

    jid: str
    lid: str | None
    platform: str | None
    business_name: str | None


@dataclass(frozen=True, slots=True)
class Opened:
    """Login succeeded (``<success>``); the account is connected."""

    jid: str
    lid: str | None


@dataclass(frozen=True, slots=True)
class CredsChanged:
    """The client wrote to the auth store. ``critical`` changes must be persisted before going on.

    Critical: identity, registration and pairing fields of the creds (``CRITICAL_CREDS_FIELDS``), and new
    pre-keys (they are uploaded right after, and a message may soon need one). Routine: counters and the
    rest, which may be batched but never dropped.
    """

    kind: Literal["critical", "routine"]
    creds_fields: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PreKeysUploaded:
    count: int
    server_count_before: int


@dataclass(frozen=True, slots=True)
class EncryptedPayload:
    """One ``<enc>`` child: ``type`` is ``pkmsg``, ``msg`` or ``skmsg``; ``version`` ``"2"`` is padded Signal.

    ``count`` is the sender's retry count on a resend; ``media_type`` the ``mediatype`` hint of media.
    """

    type: str
    version: str
    ciphertext: bytes = field(repr=False)
    count: int | None = None
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """An incoming ``<message>`` stanza, kept until the caller acknowledges it (``Client.ack_message``).

    ``sender`` is the stanza's ``from`` (the chat: a user, a group, our own user for our other devices'
    sends); ``participant`` the author in a group. ``addressing_mode`` is ``lid`` or ``pn`` (given, or
    inferred from the author's server as Baileys does); ``sender_alt`` / ``recipient_alt`` are the same
    parties in the other addressing (``participant_pn``, ``sender_lid``, ``recipient_pn``, ...).
    ``payloads`` are the ``<enc>`` children in stanza order: decrypt them in that order.
    """

    id: str
    sender: str
    participant: str | None
    recipient: str | None
    timestamp: int | None
    type: str | None
    payloads: tuple[EncryptedPayload, ...]
    node: Node = field(repr=False)
    push_name: str | None = field(default=None, repr=False)
    addressing_mode: str = "pn"
    sender_alt: str | None = None
    recipient_alt: str | None = None
    category: str | None = None

    @property
    def author(self) -> str:
        """Who wrote the message: the group participant, else the sender."""
        return self.participant or self.sender


@dataclass(frozen=True, slots=True)
class MessageArrived:
    """A ``<message>`` stanza arrived; acknowledge it (``Client.ack_message``) once it is safe elsewhere."""

    message: IncomingMessage


@dataclass(frozen=True, slots=True)
class OfflineSyncDone:
    """The server delivered every message queued while the account was offline."""

    count: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over; ``info.policy`` says what the caller should do."""

    info: CloseInfo


Event = (
    QrCodeShown
    | PairingCodeShown
    | Paired
    | Opened
    | CredsChanged
    | PreKeysUploaded
    | MessageArrived
    | OfflineSyncDone
    | SendStatus
    | Closed
)
