"""The outgoing ``<message>`` stanza: one send's ciphertexts, fanned out per device.

Shape (Baileys ``relayMessage``, whatsmeow ``prepareMessageNode`` / ``sendGroup``)::

    <message id to type="text|media|reaction|poll|event" [phash] [edit] [addressing_mode]>
      [<enc v="2" type="skmsg" [mediatype]>group ciphertext</enc>]          groups only
      [<participants><to jid="user:dev@server"><enc v="2" type="pkmsg|msg" [mediatype]>...</to>...
       </participants>]                                                  every device needing a copy
      [<device-identity>ADVSignedDeviceIdentity</device-identity>]        when any copy is a pkmsg
    </message>

A 1:1 send needs at least one device copy; a group send needs the ``skmsg`` and gives pairwise copies
only to the devices that get our sender key (their copy carries the SKDM). ``phash`` is set on group
sends (whatsmeow; ``message_ids.participant_hash``); clients do not set ``t``.

A resend after a retry receipt carries one ``<enc count>`` straight under ``<message>``, addressed back
the way the receipt came (``to`` its ``from``, its ``participant`` / ``recipient``), with
``device_fanout="false"`` outside groups, the original ``t``, and ``<device-identity>`` when it is a
``pkmsg`` (whatsmeow ``handleRetryReceipt``, Baileys ``sendMessagesAgain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from connector.protocol.binary import GROUP_SERVER, Jid, Node
from connector.protocol.errors import MessageFormatError
from connector.protocol.proto import wa_pb2
from connector.protocol.wamessage import ContentKind, MessageContent
from shared.authstate import AdvSignedDeviceIdentity

SIGNAL_VERSION: Final = "2"
PAIRWISE_TYPES: Final = frozenset({"pkmsg", "msg"})
MESSAGE_TYPES: Final = frozenset({"text", "media", "reaction", "poll", "event"})


@dataclass(frozen=True, slots=True)
class DeviceCiphertext:
    """One device's pairwise copy: ``pkmsg`` while the session is still pending, else ``msg``."""

    device: Jid
    type: str
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ResendTarget:
    """Where a retry receipt came from (its ``from``, ``participant``, ``recipient``) and for which send."""

    message_id: str
    to: str
    participant: str | None = None
    recipient: str | None = None
    group: bool = False


def stanza_types(content: MessageContent) -> tuple[str, str | None]:
    """The stanza ``type`` and the ``enc`` ``mediatype`` of a message (Baileys ``getMessageType`` /
    ``getMediaType``): ``reaction``, ``media`` with its media type, else ``text``."""
    if content.kind is ContentKind.REACTION:
        return "reaction", None
    media = content.media
    if content.kind is ContentKind.IMAGE:
        return "media", "image"
    if content.kind is ContentKind.VIDEO:
        return "media", "gif" if media is not None and media.gif_playback else "video"
    if content.kind is ContentKind.AUDIO:
        return "media", "ptt" if media is not None and media.voice_note else "audio"
    if content.kind is ContentKind.DOCUMENT:
        return "media", "document"
    if content.kind is ContentKind.STICKER:
        return "media", "sticker"
    if content.kind is ContentKind.CONTACT:
        return "media", "vcard"
    if content.kind is ContentKind.LOCATION and content.location is not None and content.location.live:
        return "media", "livelocation"
    return "text", None


def device_identity(account: AdvSignedDeviceIdentity) -> bytes:
    """``<device-identity>``'s content: our ``creds.account`` with ``accountSignatureKey`` kept, as Baileys
    (``encodeSignedDeviceIdentity(account, true)``) and whatsmeow (``makeDeviceIdentityNode``) send it."""
    return wa_pb2.ADVSignedDeviceIdentity(
        details=account.details, accountSignatureKey=account.account_signature_key,
        accountSignature=account.account_signature, deviceSignature=account.device_signature,
    ).SerializeToString()


def outgoing_message(message_id: str, to: Jid, message_type: str, copies: Sequence[DeviceCiphertext], *,
                     group_ciphertext: bytes | None = None, device_identity: bytes | None = None,
                     phash: str | None = None, media_type: str | None = None, edit: str | None = None,
                     addressing_mode: str | None = None) -> Node:
    """The stanza of one send to ``to`` (a user or a group JID); raises ``MessageFormatError`` on misuse."""
    if not message_id:
        raise MessageFormatError("a message needs an id")
    _check_type(message_type)
    is_group = to.server == GROUP_SERVER
    if is_group and group_ciphertext is None:
        raise MessageFormatError("a group message needs its skmsg ciphertext")
    if not is_group and group_ciphertext is not None:
        raise MessageFormatError("only group messages carry an skmsg")
    if not is_group and not copies:
        raise MessageFormatError("a 1:1 message needs at least one device copy")
    enc_extra = {"mediatype": media_type} if media_type else {}
    content: list[Node] = []
    if group_ciphertext is not None:
        content.append(Node("enc", {"v": SIGNAL_VERSION, "type": "skmsg", **enc_extra}, group_ciphertext))
    if copies:
        content.append(Node("participants", {}, [
            Node("to", {"jid": str(copy.device)}, [_pairwise_enc(copy, enc_extra)]) for copy in copies]))
    if any(copy.type == "pkmsg" for copy in copies):
        content.append(_device_identity(device_identity))
    attrs = {"id": message_id, "to": str(to), "type": message_type}
    if phash is not None:
        attrs["phash"] = phash
    if edit is not None:
        attrs["edit"] = edit
    if addressing_mode is not None:
        attrs["addressing_mode"] = addressing_mode
    return Node("message", attrs, content)


def resend_message(target: ResendTarget, message_type: str, copy: DeviceCiphertext, count: int, *,
                   timestamp: int | None = None, device_identity: bytes | None = None,
                   media_type: str | None = None) -> Node:
    """The re-encrypted copy answering a retry receipt (``count`` is the receipt's retry count)."""
    if not target.message_id or not target.to:
        raise MessageFormatError("a resend needs the message id and the receipt's sender")
    if count < 1:
        raise MessageFormatError("a resend's retry count starts at 1")
    _check_type(message_type)
    attrs = {"id": target.message_id, "to": target.to, "type": message_type}
    if timestamp is not None:
        attrs["t"] = str(timestamp)
    if target.participant:
        attrs["participant"] = target.participant
    if target.recipient:
        attrs["recipient"] = target.recipient
    if not target.group:
        attrs["device_fanout"] = "false"
    enc_extra = {"count": str(count), **({"mediatype": media_type} if media_type else {})}
    content = [_pairwise_enc(copy, enc_extra)]
    if copy.type == "pkmsg":
        content.append(_device_identity(device_identity))
    return Node("message", attrs, content)


def _pairwise_enc(copy: DeviceCiphertext, extra: dict[str, str]) -> Node:
    if copy.type not in PAIRWISE_TYPES:
        raise MessageFormatError(f"a device copy is a pkmsg or a msg, not {copy.type!r}")
    if not copy.ciphertext:
        raise MessageFormatError(f"empty ciphertext for {copy.device}")
    return Node("enc", {"v": SIGNAL_VERSION, "type": copy.type, **extra}, copy.ciphertext)


def _device_identity(device_identity: bytes | None) -> Node:
    if not device_identity:
        raise MessageFormatError("a pkmsg goes with our <device-identity> (ADVSignedDeviceIdentity)")
    return Node("device-identity", {}, device_identity)


def _check_type(message_type: str) -> None:
    if message_type not in MESSAGE_TYPES:
        raise MessageFormatError(f"unknown message type {message_type!r}")
