"""Receipts and acks around messages: what we send after receiving one, and what we read after sending.

Outgoing (SIGNAL.md section 4; Baileys ``sendReceipt`` / ``sendRetryRequest`` / ``buildAckStanza``,
whatsmeow ``receipt.go`` / ``retry.go``):

* a message receipt goes back the way the message came: ``to`` its ``from``, with its ``participant`` and
  ``recipient``; ``type`` absent for delivery, ``sender`` for our own other devices' messages, ``read``
  (with ``t``), ``inactive``, ``peer_msg``; several ids of one chat go as ``<list><item id>``;
* a retry receipt asks the sender to encrypt again::

      <receipt id to type="retry" [participant] [recipient]>
        <retry count id t v="1" error="0"/><registration>4 bytes BE</registration>
        [<keys><type>05</type><identity/><key><id/><value/></key><skey><id/><value/><signature/></skey>
               <device-identity/></keys>]</receipt>

  with ``<keys>`` (a fresh one-time pre-key among them) from the second retry on;
* a negative ack answers a message we could not take: 487 for a duplicate, 500 for any other failure.

Incoming: receipts from peers (delivery, read, played, retry with its keys) and the server's
``<ack class="message" id t [phash] [error]>`` to a message we sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from connector.protocol import prekeys
from connector.protocol.binary import Jid, Node
from connector.protocol.bundles import KEY_ID_SIZE, KEY_TYPE_DJB, REGISTRATION_ID_SIZE, read_bundle
from connector.protocol.crypto import RandomSource
from connector.protocol.errors import JidError, MessageFormatError
from connector.protocol.events import IncomingMessage
from connector.protocol.signal.types import PreKeyBundle
from connector.protocol.stanzas import ack_for, uint_attr
from shared.authstore import AuthStore

RETRY_VERSION: Final = "1"
READ_TYPES: Final = frozenset({"read", "read-self"})
"""Receipt types that carry our clock (``t``)."""


class NackReason(IntEnum):
    """``<ack error>`` codes a client sends for a message it did not take (Baileys ``NACK_REASONS``)."""

    PARSING_ERROR = 487          # also a duplicate ("Key used already or never filled")
    UNRECOGNIZED_STANZA = 488
    INVALID_PROTOBUF = 491
    MISSING_MESSAGE_SECRET = 495
    SIGNAL_ERROR_OLD_COUNTER = 496
    UNHANDLED_ERROR = 500        # decryption failure after the retry receipt


DUPLICATE: Final = NackReason.PARSING_ERROR
FAILURE: Final = NackReason.UNHANDLED_ERROR


@dataclass(frozen=True, slots=True)
class SignedPreKeyPublic:
    key_id: int
    public: bytes
    signature: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OneTimePreKeyPublic:
    key_id: int
    public: bytes


@dataclass(frozen=True, slots=True)
class RetryKeys:
    """Our keys in a retry receipt: the sender starts a new session from them (no bundle fetch)."""

    identity: bytes
    pre_key: OneTimePreKeyPublic
    signed_pre_key: SignedPreKeyPublic
    device_identity: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """The ``<retry>`` of an incoming retry receipt, with the bundle its ``<keys>`` carry, if any."""

    count: int
    message_id: str
    timestamp: int | None
    error: int | None
    registration_id: int | None
    bundle: PreKeyBundle | None = None
    device_identity: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Receipt:
    """An incoming ``<receipt>``: ``ids`` holds the first id and any ``<list><item id>``."""

    ids: tuple[str, ...]
    sender: str
    participant: str | None
    recipient: str | None
    type: str | None
    timestamp: int | None
    retry: RetryRequest | None = None

    @property
    def id(self) -> str:
        return self.ids[0]


@dataclass(frozen=True, slots=True)
class ServerAck:
    """The server's ``<ack>`` of a stanza we sent (``class="message"`` for messages)."""

    id: str
    ack_class: str
    sender: str | None
    timestamp: int | None
    phash: str | None
    error: int | None
    server_id: str | None = None


# ---------------------------------------------------------------------------------------------- outgoing


def delivery_type(message: IncomingMessage, me: Jid, my_lid: Jid | None = None) -> str | None:
    """The type of the receipt confirming ``message``: ``sender`` when our own other device wrote it
    (by PN or LID user), else none (a plain delivery receipt)."""
    try:
        author = Jid.parse(message.author)
    except JidError:
        return None
    own = author.user == me.user and author.server == me.server
    own_lid = my_lid is not None and author.user == my_lid.user and author.server == my_lid.server
    return "sender" if own or own_lid else None


def message_receipt(message: IncomingMessage, *, receipt_type: str | None = None, now_s: int | None = None,
                    extra_ids: Sequence[str] = ()) -> Node:
    """The receipt for ``message`` (and ``extra_ids`` of the same chat and author)."""
    return receipt(message.id, message.sender, participant=message.participant, recipient=message.recipient,
                   receipt_type=receipt_type, now_s=now_s, extra_ids=extra_ids)


def receipt(message_id: str, to: str, *, participant: str | None = None, recipient: str | None = None,
            receipt_type: str | None = None, now_s: int | None = None, extra_ids: Sequence[str] = ()) -> Node:
    if not message_id or not to:
        raise MessageFormatError("a receipt needs a message id and an addressee")
    attrs = {"id": message_id, "to": to}
    if participant:
        attrs["participant"] = participant
    if recipient:
        attrs["recipient"] = recipient
    if receipt_type:
        attrs["type"] = receipt_type
    if receipt_type in READ_TYPES:
        if now_s is None:
            raise MessageFormatError("a read receipt carries our clock")
        attrs["t"] = str(now_s)
    content = [Node("list", {}, [Node("item", {"id": i}) for i in extra_ids])] if extra_ids else None
    return Node("receipt", attrs, content)


def retry_keys(store: AuthStore, rand: RandomSource, device_identity: bytes) -> RetryKeys:
    """Our keys for a retry receipt, with a fresh one-time pre-key written to ``store`` first.

    As Baileys (``getNextPreKeys(authState, 1)``): the key counts as handed out (``firstUnuploadedPreKeyId``
    moves past it), so no upload offers it again. The store change must be durable before the receipt
    leaves: the peer's pkmsg will consume that key.
    """
    batch = prekeys.prepare_pre_keys(store, 1, rand)
    prekeys.mark_uploaded(store, batch)
    creds = store.get_creds()
    signed = creds.signed_pre_key
    key_id, public = batch.keys[0]
    return RetryKeys(identity=creds.signed_identity_key.public, pre_key=OneTimePreKeyPublic(key_id, public),
                     signed_pre_key=SignedPreKeyPublic(signed.key_id, signed.key_pair.public, signed.signature),
                     device_identity=device_identity)


def retry_receipt(message: IncomingMessage, count: int, registration_id: int, *,
                  keys: RetryKeys | None = None, error: int = 0) -> Node:
    """The retry receipt for a message we could not decrypt (``count`` 1..5; ``keys`` from count 2)."""
    if count < 1:
        raise MessageFormatError("retry counts start at 1")
    if not 0 <= registration_id < 1 << 32:
        raise MessageFormatError("registration id out of range")
    retry_attrs = {"count": str(count), "id": message.id, "v": RETRY_VERSION, "error": str(error)}
    if message.timestamp is not None:
        retry_attrs["t"] = str(message.timestamp)
    content = [Node("retry", retry_attrs),
               Node("registration", {}, registration_id.to_bytes(REGISTRATION_ID_SIZE, "big"))]
    if keys is not None:
        content.append(Node("keys", {}, [
            Node("type", {}, KEY_TYPE_DJB),
            Node("identity", {}, keys.identity),
            Node("key", {}, [Node("id", {}, _key_id(keys.pre_key.key_id)), Node("value", {}, keys.pre_key.public)]),
            Node("skey", {}, [Node("id", {}, _key_id(keys.signed_pre_key.key_id)),
                              Node("value", {}, keys.signed_pre_key.public),
                              Node("signature", {}, keys.signed_pre_key.signature)]),
            Node("device-identity", {}, keys.device_identity),
        ]))
    attrs = {"id": message.id, "to": message.sender, "type": "retry"}
    if message.participant:
        attrs["participant"] = message.participant
    if message.recipient:
        attrs["recipient"] = message.recipient
    return Node("receipt", attrs, content)


def nack(node: Node, me: str | None, reason: NackReason | int) -> Node:
    """``<ack error>`` for a stanza we did not take (``ack_for`` plus the error code)."""
    ack = ack_for(node, me)
    ack.attrs["error"] = str(int(reason))
    return ack


# ---------------------------------------------------------------------------------------------- incoming


def parse_receipt(node: Node) -> Receipt:
    """Read an incoming ``<receipt>``; raises ``MessageFormatError`` when it is malformed."""
    attrs = node.attrs
    if node.tag != "receipt" or not attrs.get("id") or not attrs.get("from"):
        raise MessageFormatError("receipt lacks id or from")
    listing = node.child("list")
    extra = tuple(item.attrs["id"] for item in listing.children("item") if item.attrs.get("id")) if listing else ()
    kind = attrs.get("type") or None
    retry = _retry(node) if kind == "retry" else None
    return Receipt(ids=(attrs["id"], *extra), sender=attrs["from"], participant=attrs.get("participant") or None,
                   recipient=attrs.get("recipient") or None, type=kind, timestamp=uint_attr(attrs.get("t")),
                   retry=retry)


def parse_server_ack(node: Node) -> ServerAck:
    """Read the server's ``<ack>``; raises ``MessageFormatError`` without an id or class."""
    attrs = node.attrs
    if node.tag != "ack" or not attrs.get("id") or not attrs.get("class"):
        raise MessageFormatError("ack lacks id or class")
    error = attrs.get("error")
    if error is not None and uint_attr(error) is None:
        raise MessageFormatError(f"ack with a non-numeric error {error!r}")
    return ServerAck(id=attrs["id"], ack_class=attrs["class"], sender=attrs.get("from"),
                     timestamp=uint_attr(attrs.get("t")), phash=attrs.get("phash") or None,
                     error=uint_attr(error), server_id=attrs.get("server_id") or None)


def _retry(node: Node) -> RetryRequest:
    retry = node.child("retry")
    if retry is None:
        raise MessageFormatError("retry receipt without <retry>")
    count = uint_attr(retry.attrs.get("count"))
    if count is None or count < 1:
        raise MessageFormatError("retry receipt without a valid count")
    registration = node.child_bytes("registration")
    if registration is not None and len(registration) != REGISTRATION_ID_SIZE:
        raise MessageFormatError("retry receipt's registration must be 4 bytes")
    keys = node.child("keys")
    if keys is not None and registration is None:
        raise MessageFormatError("retry receipt with <keys> but no <registration>")
    bundle = read_bundle(node) if keys is not None else None
    return RetryRequest(
        count=count, message_id=retry.attrs.get("id") or node.attrs["id"], timestamp=uint_attr(retry.attrs.get("t")),
        error=uint_attr(retry.attrs.get("error")),
        registration_id=int.from_bytes(registration, "big") if registration is not None else None,
        bundle=bundle, device_identity=keys.child_bytes("device-identity") if keys is not None else None)


def _key_id(key_id: int) -> bytes:
    if not 0 <= key_id < 1 << (8 * KEY_ID_SIZE):
        raise MessageFormatError("pre-key id out of range")
    return key_id.to_bytes(KEY_ID_SIZE, "big")
