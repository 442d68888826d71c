"""The ``sendMessage`` input schema, strict like :mod:`functions.validation`.

``{accountId, to, text?, replyTo?, react?: {messageId, emoji}, clientMessageId?}``: exactly one of
``text`` and ``react``; ``replyTo`` only with ``text``. ``to`` is one of

- an E.164 number, ``+40700000001`` (a WhatsApp user);
- a user JID, ``40700000001@s.whatsapp.net`` (``@c.us`` is read as the same), or ``...@lid``;
- a group JID, ``120363012345678901@g.us`` (or the older ``40700000001-1600000000@g.us``).

Device JIDs (``user:3@...``), broadcast lists, status and newsletters are refused: a send goes to a
user or a group, and the connector fans it out to their devices. Every error names its field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from functions.errors import InvalidArgumentError
from functions.validation import PHONE_RE, _account_id, _object
from shared.events import MAX_EMOJI_CHARS, MAX_MESSAGE_TEXT_CHARS

#: Largest sendMessage body: a 65,536-character text is up to 256 KiB of UTF-8, more once JSON-escaped.
MAX_SEND_BODY_BYTES = 400 * 1024

_USER_JID_RE = re.compile(r"([1-9][0-9]{4,19})@(s\.whatsapp\.net|c\.us)")
_LID_JID_RE = re.compile(r"[1-9][0-9]{4,24}@lid")
_GROUP_JID_RE = re.compile(r"[1-9][0-9]{4,24}(-[0-9]{6,12})?@g\.us")
_MESSAGE_REF_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_TO_HINT = ("use an E.164 number (+40700000001), a user JID (40700000001@s.whatsapp.net) "
            "or a group JID (120363012345678901@g.us)")


def _fail(field: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, {"field": field})


def chat_jid(to: str) -> str:
    """The chat JID ``to`` names, normalised; :class:`InvalidArgumentError` (field ``to``) otherwise."""
    if PHONE_RE.fullmatch(to):
        return f"{to[1:]}@s.whatsapp.net"
    user = _USER_JID_RE.fullmatch(to)
    if user:
        return f"{user.group(1)}@s.whatsapp.net"
    if _LID_JID_RE.fullmatch(to) or _GROUP_JID_RE.fullmatch(to):
        return to
    if ":" in to.partition("@")[0] and "@" in to:
        raise _fail("to", "to is a device JID: send to the user (drop the ':device' part), not one of their devices")
    if to.endswith(("@broadcast", "@newsletter")):
        raise _fail("to", "to: broadcast lists, status and newsletters are not supported")
    raise _fail("to", f"to is malformed: {_TO_HINT}")


@dataclass(frozen=True, slots=True)
class ReactInput:
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True)
class SendInput:
    account_id: str
    #: The normalised chat JID of ``to``.
    chat: str
    text: str | None
    reply_to: str | None
    react: ReactInput | None
    client_message_id: str | None

    def __repr__(self) -> str:  # the text is plaintext: never in a repr
        return (f"SendInput(account_id={self.account_id!r}, chat={self.chat!r}, reply_to={self.reply_to!r}, "
                f"react={self.react is not None}, client_message_id={self.client_message_id!r})")


def _ref(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, f"{field} must be a string")
    if not _MESSAGE_REF_RE.fullmatch(value):
        raise _fail(field, f"{field} is malformed: a WhatsApp message id (letters, digits, _.:-)")
    return value


def parse_send_message(data: Any) -> SendInput:
    obj = _object(data, "data", ("accountId", "to", "text", "replyTo", "react", "clientMessageId"),
                  ("accountId", "to"))
    account_id = _account_id(obj)
    to = obj["to"]
    if not isinstance(to, str):
        raise _fail("to", "to must be a string")
    if len(to) > 128:
        raise _fail("to", f"to is malformed: {_TO_HINT}")
    chat = chat_jid(to)
    text, react_obj = obj.get("text"), obj.get("react")
    if (text is None) == (react_obj is None):
        raise _fail("text", "give exactly one of text and react")
    if text is not None:
        if not isinstance(text, str):
            raise _fail("text", "text must be a string")
        if not text.strip():
            raise _fail("text", "text is empty")
        if len(text) > MAX_MESSAGE_TEXT_CHARS:
            raise _fail("text", f"text is longer than {MAX_MESSAGE_TEXT_CHARS} characters")
    reply_to = None
    if obj.get("replyTo") is not None:
        if text is None:
            raise _fail("replyTo", "replyTo goes with text (a reaction names its message in react)")
        reply_to = _ref(obj["replyTo"], "replyTo")
    react = None
    if react_obj is not None:
        fields = _object(react_obj, "react", ("messageId", "emoji"), ("messageId", "emoji"))
        emoji = fields["emoji"]
        if not isinstance(emoji, str) or len(emoji) > MAX_EMOJI_CHARS:
            raise _fail("react.emoji", 'react.emoji must be one emoji (or "" to take a reaction back)')
        react = ReactInput(_ref(fields["messageId"], "react.messageId"), emoji)
    client_id = obj.get("clientMessageId")
    if client_id is not None and (not isinstance(client_id, str) or not _CLIENT_ID_RE.fullmatch(client_id)):
        raise _fail("clientMessageId", "clientMessageId must be 1-128 letters, digits or _.:-")
    return SendInput(account_id, chat, text, reply_to, react, client_id)
