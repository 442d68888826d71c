"""Events the protocol client emits to its caller (``Client.events()``).

They carry identifiers and counts only, never key material; the one exception is a decrypted message
(``MessageDecrypted``), whose content fields are plaintext: kept out of ``repr``, never to be logged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from connector.protocol.binary import Node
from connector.protocol.close import CloseInfo
from connector.protocol.send_status import SendStatus

if TYPE_CHECKING:
    from connector.protocol.wamessage import DecodedMessage


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


class FailureReason(enum.StrEnum):
    """Why a message could not be read; the slug travels in ``message.undecryptable`` and ``/metrics``."""

    BAD_MAC = "bad_mac"                        # MAC/signature mismatch: a desynced or restored-old session
    NO_SESSION = "no_session"                  # a msg with no session, or every session failed
    NO_SENDER_KEY = "no_sender_key"            # an skmsg whose sender key we never got
    DUPLICATE = "duplicate"                    # the message key was used already
    TOO_FAR_AHEAD = "too_far_ahead"            # over 2000 keys past the chain
    NO_PRE_KEY = "no_pre_key"                  # a pkmsg naming a pre-key we do not hold
    UNTRUSTED_IDENTITY = "untrusted_identity"  # an identity that does not check out
    BAD_RECORD = "bad_record"                  # a stored record we cannot read
    INVALID = "invalid"                        # not a Signal message, bad padding, not a Message protobuf
    UNSUPPORTED = "unsupported"                # an enc version or type we do not handle, or no enc at all


@dataclass(frozen=True, slots=True)
class Addressing:
    """Who a message is between, as its key names it (Baileys ``WAMessageKey``): ``chat`` is the chat
    JID (a user without device, or a group), ``sender`` the author's user JID, ``participant`` the
    author in a group, ``from_me`` when one of our own other devices wrote it."""

    chat: str
    sender: str
    participant: str | None
    from_me: bool


@dataclass(frozen=True, slots=True)
class DecryptedMessage:
    """An incoming message, decrypted and decoded (``connector.protocol.inbound``). ``decoded`` is plaintext."""

    incoming: IncomingMessage
    decoded: DecodedMessage = field(repr=False)
    addressing: Addressing


@dataclass(frozen=True, slots=True)
class DecryptFailure:
    """An incoming message that did not open; ``detail`` is the error's class name (no content)."""

    incoming: IncomingMessage
    reason: FailureReason
    detail: str
    addressing: Addressing


@dataclass(frozen=True, slots=True)
class MessageDecrypted:
    """A message arrived and decrypted. Acknowledge it (``Client.ack_message``) only once it is safe
    elsewhere (its event accepted, the Signal state that opened it durable): the receipt makes
    WhatsApp forget it."""

    message: DecryptedMessage


@dataclass(frozen=True, slots=True)
class MessageUndecryptable:
    """A message that did not decrypt after ``retries`` retry receipts: final. Acknowledge it like a
    decrypted one once its event is safe (``Client.ack_message`` sends the error ack, unless
    ``acked``: the sender never resent it and the server forgot it with our last retry receipt)."""

    failure: DecryptFailure
    retries: int
    acked: bool = False


@dataclass(frozen=True, slots=True)
class RetryRequested:
    """A message did not decrypt: retry receipt ``count`` and the error ack (500) were sent."""

    failure: DecryptFailure
    count: int


@dataclass(frozen=True, slots=True)
class DuplicateIgnored:
    """A message whose key was used already (decrypted before, its receipt lost): acked with error 487."""

    message: IncomingMessage


ReceivedMessage = MessageDecrypted | MessageUndecryptable
"""What the caller acknowledges with ``Client.ack_message``."""


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
    | MessageDecrypted
    | MessageUndecryptable
    | RetryRequested
    | DuplicateIgnored
    | OfflineSyncDone
    | SendStatus
    | Closed
)
