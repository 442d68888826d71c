"""The WhatsApp ``Message`` protobuf (a decrypted, unpadded ``<enc>`` plaintext) read into typed values.

``decode_message`` gives, for one plaintext:

* a ``DecodedMessage``, frozen: what the message is (``ContentKind``), its text where it has text, media
  metadata with the media keys (no download), the reaction, the reply context, the protocol action
  (revoke, edit, ephemeral setting, app-state sync key share), the sender-key distribution it carries,
  and, for a message our own other device sent, the chat it went to;
* the protobuf JSON of the same message (``DecodedMessage.json``): the shape Baileys users know from
  ``WAMessage.message``, i.e. protobufjs' ``toJSON`` (camelCase names, bytes as base64, 64-bit integers
  as decimal strings, enums by name).

Unwrapping follows Baileys (``decode-wa-message.ts``, ``normalizeMessageContent``): a
``deviceSentMessage`` is replaced by its inner message (JSON included), and the content is looked for
under the future-proof wrappers (ephemeral, view-once, document-with-caption, edited). Any bytes give a
``DecodedMessage`` or a ``MessageFormatError``, never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from connector.protocol.errors import MessageFormatError
from connector.protocol.proto import wa_e2e_pb2 as e2e

MAX_QUOTE_DEPTH: Final = 2
"""A quoted message's own quote is read this many levels deep; WhatsApp clients strip nested quotes."""
MAX_WRAPPER_DEPTH: Final = 5
"""Future-proof wrappers unwrapped at most (Baileys ``normalizeMessageContent`` stops at 5 too)."""

WRAPPER_FIELDS: Final = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
                    "documentWithCaptionMessage", "editedMessage")
_VIEW_ONCE_WRAPPERS: Final = frozenset({"viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension"})
_Type = e2e.Message.ProtocolMessage.Type


class ContentKind(StrEnum):
    """What a message holds, named after its ``Message`` field."""

    TEXT = "text"                         # conversation
    EXTENDED_TEXT = "extended_text"       # extendedTextMessage (replies, mentions, link previews)
    IMAGE = "image"
    VIDEO = "video"                       # videoMessage and ptvMessage (a round video note)
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"                 # locationMessage and liveLocationMessage
    CONTACT = "contact"
    REACTION = "reaction"
    REVOKE = "revoke"                     # protocolMessage REVOKE: "delete for everyone"
    EDIT = "edit"                         # protocolMessage MESSAGE_EDIT
    EPHEMERAL_SETTING = "ephemeral_setting"
    APP_STATE_KEY_SHARE = "app_state_key_share"
    PROTOCOL = "protocol"                 # any other protocolMessage type
    SENDER_KEY_DISTRIBUTION = "sender_key_distribution"  # nothing but a sender key for a group
    UNKNOWN = "unknown"                   # no content this schema knows


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A ``MessageKey``: the message a reaction, revoke or edit is about."""

    id: str
    remote_jid: str | None = None
    from_me: bool = False
    participant: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """Metadata of an attachment and the keys to fetch and decrypt it later; the media is not downloaded."""

    mimetype: str | None
    direct_path: str | None
    url: str | None
    media_key: bytes | None = field(repr=False)
    file_sha256: bytes | None
    file_enc_sha256: bytes | None
    file_length: int | None
    media_key_timestamp: int | None
    width: int | None = None
    height: int | None = None
    seconds: int | None = None
    file_name: str | None = None
    voice_note: bool = False      # audio with ptt
    video_note: bool = False      # ptvMessage
    gif_playback: bool = False
    animated: bool = False        # stickers


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    live: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    display_name: str | None
    vcard: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reaction:
    """A reaction to ``target``; an empty ``emoji`` takes the reaction back."""

    target: MessageRef
    emoji: str
    sender_timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class Quote:
    """The reply context (``contextInfo``): the quoted message's id, author, chat and content."""

    message_id: str
    participant: str | None
    remote_jid: str | None
    content: MessageContent | None


@dataclass(frozen=True, slots=True)
class Revoke:
    target: MessageRef


@dataclass(frozen=True, slots=True)
class Edit:
    target: MessageRef
    content: MessageContent | None
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class EphemeralSetting:
    """Disappearing messages turned on (``expiration_s`` > 0) or off (0) in the chat."""

    expiration_s: int
    setting_timestamp: int | None


@dataclass(frozen=True, slots=True)
class AppStateSyncKey:
    """One key of the phone's app-state key share, as the syncd layer stores it (``app-state-sync-key``)."""

    key_id: bytes
    key_data: bytes = field(repr=False)
    timestamp: int | None = None
    fingerprint_raw_id: int | None = None
    fingerprint_current_index: int | None = None
    fingerprint_device_indexes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class AppStateKeyShare:
    keys: tuple[AppStateSyncKey, ...]


@dataclass(frozen=True, slots=True)
class OtherProtocolMessage:
    """A ``protocolMessage`` of a type read no further (history sync notification, PDO, ...)."""

    type: int
    name: str


ProtocolAction = Revoke | Edit | EphemeralSetting | AppStateKeyShare | OtherProtocolMessage


@dataclass(frozen=True, slots=True)
class SenderKeyDistribution:
    """``senderKeyDistributionMessage``: a sender's key for ``group_id`` (the Signal layer processes it)."""

    group_id: str
    axolotl_message: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class MessageContent:
    """The user-visible part of a message; the same type describes quoted and edited messages."""

    kind: ContentKind
    text: str | None = field(default=None, repr=False)
    media: Media | None = None
    location: Location | None = field(default=None, repr=False)
    contact: Contact | None = field(default=None, repr=False)
    reaction: Reaction | None = None
    quote: Quote | None = None
    protocol: ProtocolAction | None = None
    mentioned_jids: tuple[str, ...] = ()
    forwarded: bool = False
    view_once: bool = False
    expiration_s: int | None = None  # the chat's disappearing timer the sender had set


@dataclass(frozen=True, slots=True)
class DeviceSent:
    """Our own other device sent this message to ``destination_jid`` (``deviceSentMessage``)."""

    destination_jid: str
    phash: str | None


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    """One decrypted ``Message``: its content, its sender key for a group, and its protobuf JSON."""

    content: MessageContent
    sender_key_distribution: SenderKeyDistribution | None = None
    device_sent: DeviceSent | None = None
    json: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """The protobuf JSON of the (unwrapped) message; a fresh dict the caller owns."""

    @property
    def text(self) -> str | None:
        return self.content.text


def parse_message(data: bytes) -> e2e.Message:
    """Parse protobuf bytes (already unpadded) as a ``Message``; raises ``MessageFormatError``."""
    message = e2e.Message()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise MessageFormatError(f"not a WhatsApp Message protobuf: {exc}") from None
    return message


def decode_message(data: bytes) -> DecodedMessage:
    """Read a decrypted, unpadded plaintext; raises ``MessageFormatError`` for anything malformed."""
    message = parse_message(data)
    device_sent: DeviceSent | None = None
    if message.HasField("deviceSentMessage"):
        wrapper = message.deviceSentMessage
        if not wrapper.destinationJid:
            raise MessageFormatError("deviceSentMessage without a destination")
        device_sent = DeviceSent(destination_jid=wrapper.destinationJid,
                                 phash=wrapper.phash if wrapper.HasField("phash") else None)
        if wrapper.HasField("message"):  # Baileys: msg.deviceSentMessage?.message || msg
            message = wrapper.message
    distribution: SenderKeyDistribution | None = None
    if message.HasField("senderKeyDistributionMessage"):
        skdm = message.senderKeyDistributionMessage
        if not skdm.groupId or not skdm.axolotlSenderKeyDistributionMessage:
            raise MessageFormatError("senderKeyDistributionMessage lacks its group or its key")
        distribution = SenderKeyDistribution(group_id=skdm.groupId,
                                             axolotl_message=skdm.axolotlSenderKeyDistributionMessage)
    content = _content(message, quote_depth=0)
    if content.kind is ContentKind.UNKNOWN and distribution is not None:
        content = MessageContent(kind=ContentKind.SENDER_KEY_DISTRIBUTION)
    return DecodedMessage(content=content, sender_key_distribution=distribution, device_sent=device_sent,
                          json=message_json(message))


def message_json(message: e2e.Message) -> dict[str, Any]:
    """The protobuf JSON mapping of ``message`` (protobufjs ``toJSON``'s shape)."""
    try:
        return json_format.MessageToDict(message)
    except (ValueError, RecursionError) as exc:  # e.g. a float that JSON cannot carry
        raise MessageFormatError(f"message has no JSON form: {exc}") from None


# ------------------------------------------------------------------------------------------ content


def _content(message: e2e.Message, *, quote_depth: int) -> MessageContent:
    view_once = False
    for _ in range(MAX_WRAPPER_DEPTH):
        wrapper = next((name for name in WRAPPER_FIELDS if message.HasField(name)), None)
        if wrapper is None:
            break
        view_once = view_once or wrapper in _VIEW_ONCE_WRAPPERS
        message = getattr(message, wrapper).message
    content = _unwrapped_content(message, quote_depth)
    return replace(content, view_once=True) if view_once and not content.view_once else content


def _unwrapped_content(message: e2e.Message, quote_depth: int) -> MessageContent:
    if message.HasField("conversation"):
        return MessageContent(kind=ContentKind.TEXT, text=message.conversation)
    if message.HasField("extendedTextMessage"):
        ext = message.extendedTextMessage
        return _with_context(ContentKind.EXTENDED_TEXT, ext.text if ext.HasField("text") else None, None,
                             ext.contextInfo if ext.HasField("contextInfo") else None, quote_depth,
                             view_once=ext.viewOnce)
    media = _media_content(message, quote_depth)
    if media is not None:
        return media
    if message.HasField("locationMessage") or message.HasField("liveLocationMessage"):
        return _location_content(message, quote_depth)
    if message.HasField("contactMessage"):
        contact = message.contactMessage
        return _with_context(ContentKind.CONTACT, None, None,
                             contact.contextInfo if contact.HasField("contextInfo") else None, quote_depth,
                             contact=Contact(display_name=_opt(contact, "displayName"), vcard=_opt(contact, "vcard")))
    if message.HasField("reactionMessage"):
        reaction = message.reactionMessage
        if not reaction.HasField("key"):
            raise MessageFormatError("reactionMessage without the key of its message")
        return MessageContent(kind=ContentKind.REACTION, reaction=Reaction(
            target=_ref(reaction.key), emoji=reaction.text,
            sender_timestamp_ms=_opt(reaction, "senderTimestampMs")))
    if message.HasField("protocolMessage"):
        return _protocol_content(message.protocolMessage, quote_depth)
    return MessageContent(kind=ContentKind.UNKNOWN)


def _media_content(message: e2e.Message, quote_depth: int) -> MessageContent | None:
    if message.HasField("imageMessage"):
        image = message.imageMessage
        return _with_context(ContentKind.IMAGE, _opt(image, "caption"), _media(image, width=image.width,
                             height=image.height), image.contextInfo if image.HasField("contextInfo") else None,
                             quote_depth, view_once=image.viewOnce)
    for name in ("videoMessage", "ptvMessage"):
        if message.HasField(name):
            video: e2e.Message.VideoMessage = getattr(message, name)
            return _with_context(ContentKind.VIDEO, _opt(video, "caption"), _media(
                video, width=video.width, height=video.height, seconds=video.seconds,
                video_note=name == "ptvMessage", gif_playback=video.gifPlayback),
                video.contextInfo if video.HasField("contextInfo") else None, quote_depth, view_once=video.viewOnce)
    if message.HasField("audioMessage"):
        audio = message.audioMessage
        return _with_context(ContentKind.AUDIO, None, _media(audio, seconds=audio.seconds, voice_note=audio.ptt),
                             audio.contextInfo if audio.HasField("contextInfo") else None, quote_depth,
                             view_once=audio.viewOnce)
    if message.HasField("documentMessage"):
        document = message.documentMessage
        return _with_context(ContentKind.DOCUMENT, _opt(document, "caption"),
                             _media(document, file_name=_opt(document, "fileName")),
                             document.contextInfo if document.HasField("contextInfo") else None, quote_depth)
    if message.HasField("stickerMessage"):
        sticker = message.stickerMessage
        return _with_context(ContentKind.STICKER, None, _media(sticker, width=sticker.width, height=sticker.height,
                                                              animated=sticker.isAnimated),
                             sticker.contextInfo if sticker.HasField("contextInfo") else None, quote_depth)
    return None


def _location_content(message: e2e.Message, quote_depth: int) -> MessageContent:
    if message.HasField("locationMessage"):
        loc = message.locationMessage
        location = Location(latitude=loc.degreesLatitude, longitude=loc.degreesLongitude, name=_opt(loc, "name"),
                            address=_opt(loc, "address"), live=loc.isLive)
        context = loc.contextInfo if loc.HasField("contextInfo") else None
        text = _opt(loc, "comment")
    else:
        live = message.liveLocationMessage
        location = Location(latitude=live.degreesLatitude, longitude=live.degreesLongitude, live=True)
        context = live.contextInfo if live.HasField("contextInfo") else None
        text = _opt(live, "caption")
    return _with_context(ContentKind.LOCATION, text, None, context, quote_depth, location=location)


def _protocol_content(protocol: e2e.Message.ProtocolMessage, quote_depth: int) -> MessageContent:
    if not protocol.HasField("type"):
        raise MessageFormatError("protocolMessage without a type")
    kind = protocol.type
    if kind in (_Type.REVOKE, _Type.MESSAGE_EDIT) and not protocol.HasField("key"):
        raise MessageFormatError("revoke or edit without the key of its message")
    if kind == _Type.REVOKE:
        return MessageContent(kind=ContentKind.REVOKE, protocol=Revoke(target=_ref(protocol.key)))
    if kind == _Type.MESSAGE_EDIT:
        edited = _content(protocol.editedMessage, quote_depth=quote_depth) if protocol.HasField(
            "editedMessage") else None
        return MessageContent(kind=ContentKind.EDIT, text=edited.text if edited else None, protocol=Edit(
            target=_ref(protocol.key), content=edited, timestamp_ms=_opt(protocol, "timestampMs")))
    if kind == _Type.EPHEMERAL_SETTING:
        return MessageContent(kind=ContentKind.EPHEMERAL_SETTING, protocol=EphemeralSetting(
            expiration_s=protocol.ephemeralExpiration,
            setting_timestamp=_opt(protocol, "ephemeralSettingTimestamp")))
    if kind == _Type.APP_STATE_SYNC_KEY_SHARE:
        return MessageContent(kind=ContentKind.APP_STATE_KEY_SHARE, protocol=AppStateKeyShare(
            keys=tuple(_sync_key(key) for key in protocol.appStateSyncKeyShare.keys)))
    name = _Type.Name(kind) if kind in _Type.values() else str(kind)
    return MessageContent(kind=ContentKind.PROTOCOL, protocol=OtherProtocolMessage(type=kind, name=name))


def _sync_key(key: e2e.Message.AppStateSyncKey) -> AppStateSyncKey:
    if not key.keyId.keyId or not key.keyData.keyData:
        raise MessageFormatError("app-state sync key without an id or key data")
    data = key.keyData
    fingerprint = data.fingerprint
    return AppStateSyncKey(
        key_id=key.keyId.keyId, key_data=data.keyData, timestamp=_opt(data, "timestamp"),
        fingerprint_raw_id=_opt(fingerprint, "rawId"), fingerprint_current_index=_opt(fingerprint, "currentIndex"),
        fingerprint_device_indexes=tuple(fingerprint.deviceIndexes))


def _with_context(kind: ContentKind, text: str | None, media: Media | None, context: e2e.ContextInfo | None,
                  quote_depth: int, *, view_once: bool = False, location: Location | None = None,
                  contact: Contact | None = None) -> MessageContent:
    if context is None:
        return MessageContent(kind=kind, text=text, media=media, location=location, contact=contact,
                              view_once=view_once)
    quote: Quote | None = None
    if context.stanzaId:
        quoted = None
        if context.HasField("quotedMessage") and quote_depth < MAX_QUOTE_DEPTH:
            quoted = _content(context.quotedMessage, quote_depth=quote_depth + 1)
        quote = Quote(message_id=context.stanzaId, participant=_opt(context, "participant"),
                      remote_jid=_opt(context, "remoteJid"), content=quoted)
    return MessageContent(kind=kind, text=text, media=media, location=location, contact=contact, quote=quote,
                          mentioned_jids=tuple(context.mentionedJid), forwarded=context.isForwarded,
                          view_once=view_once, expiration_s=_opt(context, "expiration"))


_MediaProto = (e2e.Message.ImageMessage | e2e.Message.VideoMessage | e2e.Message.AudioMessage
               | e2e.Message.DocumentMessage | e2e.Message.StickerMessage)


def _media(proto: _MediaProto, *, width: int = 0, height: int = 0, seconds: int = 0, file_name: str | None = None,
           voice_note: bool = False, video_note: bool = False, gif_playback: bool = False,
           animated: bool = False) -> Media:
    return Media(
        mimetype=_opt(proto, "mimetype"), direct_path=_opt(proto, "directPath"), url=_opt(proto, "url"),
        media_key=_opt(proto, "mediaKey"), file_sha256=_opt(proto, "fileSha256"),
        file_enc_sha256=_opt(proto, "fileEncSha256"), file_length=_opt(proto, "fileLength"),
        media_key_timestamp=_opt(proto, "mediaKeyTimestamp"), width=width or None, height=height or None,
        seconds=seconds or None, file_name=file_name, voice_note=voice_note, video_note=video_note,
        gif_playback=gif_playback, animated=animated)


def _ref(key: e2e.MessageKey) -> MessageRef:
    if not key.id:
        raise MessageFormatError("message key without an id")
    return MessageRef(id=key.id, remote_jid=_opt(key, "remoteJid"), from_me=key.fromMe,
                      participant=_opt(key, "participant"))


def _opt(proto: Any, name: str) -> Any:
    """The field's value when present, else None (proto3 ``optional`` keeps presence)."""
    return getattr(proto, name) if proto.HasField(name) else None
