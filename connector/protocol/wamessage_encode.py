"""``Message`` protobufs for our own sends: text, reply, reaction, and the wrappers a send fans out with.

Each builder returns the protobuf bytes of one ``Message``, unpadded: ``padding.pad`` comes next, right
before the Signal encryption of each copy. Shapes follow Baileys (``generateWAMessageContent``,
``relayMessage``) and whatsmeow (``SendMessage``, ``send.go``):

* text is ``conversation``; a reply is ``extendedTextMessage{text, contextInfo{stanzaId, participant,
  quotedMessage[, remoteJid]}}`` with the quoted content stripped of its own context (no nested quotes);
* a reaction is ``reactionMessage{key, text, senderTimestampMs}`` (an empty text removes it);
* our own other devices get ``{deviceSentMessage{destinationJid, message[, phash]}, messageContextInfo}``
  (the inner message's ``messageContextInfo`` copied out, as both libraries do);
* a group's sender key travels pairwise as ``{senderKeyDistributionMessage{groupId,
  axolotlSenderKeyDistributionMessage}}``, alone or joined to the content on a retry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

from google.protobuf import json_format

from connector.protocol.errors import MessageFormatError
from connector.protocol.proto import wa_e2e_pb2 as e2e
from connector.protocol.wamessage import MAX_WRAPPER_DEPTH, WRAPPER_FIELDS, MessageRef, parse_message

_P = ParamSpec("_P")

MESSAGE_SECRET_SIZE = 32
"""``messageContextInfo.messageSecret``: 32 random bytes (Baileys ``randomBytes(32)``)."""

def _builder(build: Callable[_P, bytes]) -> Callable[_P, bytes]:
    """Values protobuf refuses (a lone surrogate in a text, an integer out of range) become
    ``MessageFormatError``, the one error a builder raises."""

    @functools.wraps(build)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> bytes:
        try:
            return build(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise MessageFormatError(f"cannot encode the message: {exc}") from None

    return checked


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """The message a reply quotes: its id, its author (``participant``), and its plaintext when known.

    ``remote_jid`` names the quoted message's chat when it differs from the chat of the reply.
    """

    message_id: str
    participant: str
    message: bytes | None = None
    remote_jid: str | None = None


@_builder
def text_message(text: str, *, message_secret: bytes | None = None) -> bytes:
    message = e2e.Message(conversation=text)
    _set_secret(message, message_secret)
    return message.SerializeToString()


@_builder
def reply_message(text: str, target: ReplyTarget, *, mentioned_jids: tuple[str, ...] = (),
                  message_secret: bytes | None = None) -> bytes:
    """A text replying to ``target``; raises ``MessageFormatError`` when the quoted plaintext is malformed."""
    if not target.message_id or not target.participant:
        raise MessageFormatError("a reply needs the quoted message's id and author")
    context = e2e.ContextInfo(stanzaId=target.message_id, participant=target.participant,
                              mentionedJid=list(mentioned_jids))
    if target.remote_jid:
        context.remoteJid = target.remote_jid
    if target.message is not None:
        context.quotedMessage.CopyFrom(_quotable(parse_message(target.message)))
    message = e2e.Message(extendedTextMessage=e2e.Message.ExtendedTextMessage(text=text, contextInfo=context))
    _set_secret(message, message_secret)
    return message.SerializeToString()


@_builder
def reaction_message(target: MessageRef, emoji: str, sender_timestamp_ms: int) -> bytes:
    """A reaction (``emoji``, or ``""`` to take it back) to ``target``."""
    if not target.id:
        raise MessageFormatError("a reaction needs the id of its message")
    key = e2e.MessageKey(id=target.id, fromMe=target.from_me)
    if target.remote_jid:
        key.remoteJid = target.remote_jid
    if target.participant:
        key.participant = target.participant
    reaction = e2e.Message.ReactionMessage(key=key, text=emoji, senderTimestampMs=sender_timestamp_ms)
    return e2e.Message(reactionMessage=reaction).SerializeToString()


@_builder
def device_sent_message(plaintext: bytes, destination_jid: str, *, phash: str | None = None) -> bytes:
    """The copy of ``plaintext`` (a ``Message`` sent to ``destination_jid``) for our own other devices."""
    if not destination_jid:
        raise MessageFormatError("deviceSentMessage needs a destination")
    inner = parse_message(plaintext)
    wrapper = e2e.Message.DeviceSentMessage(destinationJid=destination_jid, message=inner)
    if phash is not None:
        wrapper.phash = phash
    message = e2e.Message(deviceSentMessage=wrapper)
    if inner.HasField("messageContextInfo"):
        message.messageContextInfo.CopyFrom(inner.messageContextInfo)
    return message.SerializeToString()


@_builder
def sender_key_distribution_message(group_id: str, axolotl_message: bytes, *, content: bytes | None = None) -> bytes:
    """The pairwise carrier of our sender key for ``group_id``; ``content`` joins it on a retry resend."""
    if not group_id or not axolotl_message:
        raise MessageFormatError("a sender key distribution needs its group and its key")
    message = parse_message(content) if content is not None else e2e.Message()
    message.senderKeyDistributionMessage.groupId = group_id
    message.senderKeyDistributionMessage.axolotlSenderKeyDistributionMessage = axolotl_message
    return message.SerializeToString()


def _quotable(message: e2e.Message) -> e2e.Message:
    """The quoted content alone: wrappers removed, its own reply context and sender key dropped."""
    for _ in range(MAX_WRAPPER_DEPTH):
        wrapper = next((name for name in WRAPPER_FIELDS if message.HasField(name)), None)
        if wrapper is None:
            break
        message = getattr(message, wrapper).message
    if message.HasField("deviceSentMessage"):
        message = message.deviceSentMessage.message
    quoted = e2e.Message()
    quoted.CopyFrom(message)
    for name in ("senderKeyDistributionMessage", "messageContextInfo", "deviceSentMessage"):
        quoted.ClearField(name)
    for descriptor, value in quoted.ListFields():
        if descriptor.message_type is not None and "contextInfo" in descriptor.message_type.fields_by_name:
            value.ClearField("contextInfo")
    return quoted


def _set_secret(message: e2e.Message, secret: bytes | None) -> None:
    if secret is None:
        return
    if len(secret) != MESSAGE_SECRET_SIZE:
        raise MessageFormatError(f"messageSecret must be {MESSAGE_SECRET_SIZE} bytes")
    message.messageContextInfo.messageSecret = secret


def message_from_json(obj: dict[str, Any]) -> bytes:
    """A ``Message`` from its protobuf JSON form (what ``message.received`` events and the store carry);
    raises ``MessageFormatError`` when it is not one."""
    try:
        return json_format.ParseDict(obj, e2e.Message(), ignore_unknown_fields=True).SerializeToString()
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise MessageFormatError(f"not a Message in JSON form: {type(exc).__name__}") from None
