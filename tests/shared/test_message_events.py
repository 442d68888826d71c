"""The message event schemas: round trips, versions, limits, key consistency, plaintext never in repr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import (
    MAX_MESSAGE_DEPTH,
    MAX_MESSAGE_EVENT_BYTES,
    MAX_MESSAGE_TEXT_CHARS,
    InvalidEventError,
    MessageKey,
    MessageReceived,
    MessageStatus,
    MessageStatusUpdate,
    MessageUndecryptable,
    OutboundSend,
    QuotedMessage,
    Reaction,
    SendKind,
    UnsupportedVersionError,
    parse_event,
)
from shared.message_ids import MESSAGE_ID_RE, client_message_id, new_message_id

AT = datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
BOB = "40711111111@s.whatsapp.net"
GROUP = "120363012345678901@g.us"
KEY = MessageKey(BOB, False, "3EB0AAAA")
SECRET = "the plaintext nobody may log"

RECEIVED = MessageReceived("a1", KEY, {"conversation": SECRET}, BOB, BOB, 1_764_072_000, "text", SECRET, "Bob Secret")
IN_GROUP = MessageReceived(
    "a1", MessageKey(GROUP, False, "3EB0BBBB", BOB),
    {"extendedTextMessage": {"text": SECRET, "contextInfo": {"stanzaId": "3EB0AAAA", "participant": BOB}}},
    GROUP, BOB, 1_764_072_001, "extended_text", SECRET)
UNDECRYPTABLE = MessageUndecryptable("a1", KEY, BOB, BOB, 1_764_072_000, "bad_mac", 5)
STATUS = MessageStatusUpdate("a1", "3EB0CCCC", BOB, MessageStatus.DELIVERED, AT)
FAILED = MessageStatusUpdate("a1", "3EB0CCCC", GROUP, MessageStatus.FAILED, AT, reason="not_on_whatsapp")
PER_RECIPIENT = MessageStatusUpdate("a1", "3EB0CCCC", GROUP, MessageStatus.READ, AT, recipient=BOB)
TEXT_SEND = OutboundSend("a1", "3EB0DDDD", BOB, SendKind.TEXT, AT, text=SECRET,
                         reply_to=QuotedMessage("3EB0AAAA", BOB, {"conversation": SECRET}))
REACTION_SEND = OutboundSend("a1", "3EB0EEEE", BOB, SendKind.REACTION, AT, react=Reaction(KEY, "👍"))
ALL = [RECEIVED, IN_GROUP, UNDECRYPTABLE, STATUS, FAILED, PER_RECIPIENT, TEXT_SEND, REACTION_SEND]


@pytest.mark.parametrize("event", ALL, ids=lambda e: e.TYPE)
def test_round_trip_and_attributes(event: Any) -> None:
    data = event.to_json()
    assert parse_event(data) == event
    assert type(event).from_json(data) == event
    obj = json.loads(data)
    assert obj["v"] == 1
    assert event.attributes() == {"type": event.TYPE, "accountId": "a1", "messageId": event.message_id}


def test_topics() -> None:
    assert {RECEIVED.DEFAULT_TOPIC, UNDECRYPTABLE.DEFAULT_TOPIC, STATUS.DEFAULT_TOPIC} == {"messages"}
    assert TEXT_SEND.DEFAULT_TOPIC == "outbox"


def test_received_wire_shape_is_baileys_like() -> None:
    obj = json.loads(IN_GROUP.to_json())
    assert obj["key"] == {"remoteJid": GROUP, "fromMe": False, "id": "3EB0BBBB", "participant": BOB}
    assert obj["messageType"] == "extended_text" and obj["text"] == SECRET
    assert obj["message"]["extendedTextMessage"]["contextInfo"]["stanzaId"] == "3EB0AAAA"


@pytest.mark.parametrize("event", ALL, ids=lambda e: e.TYPE)
def test_plaintext_is_never_in_repr(event: Any) -> None:
    assert SECRET not in repr(event)
    assert "Bob Secret" not in repr(event)
    assert "👍" not in repr(event)


def test_a_newer_schema_version_is_not_malformed_but_unsupported() -> None:
    obj = json.loads(RECEIVED.to_json())
    obj["v"] = 2
    with pytest.raises(UnsupportedVersionError):
        parse_event(json.dumps(obj))
    obj["v"] = "1"
    with pytest.raises(InvalidEventError, match="'v'"):
        parse_event(json.dumps(obj))


@pytest.mark.parametrize(("mutation", "field"), [
    ({"chat": "4072@s.whatsapp.net"}, "remoteJid"),
    ({"key": {"remoteJid": BOB, "fromMe": "no", "id": "3EB0AAAA"}}, "fromMe"),
    ({"key": {"remoteJid": BOB, "fromMe": False, "id": "has space"}}, "id"),
    ({"key": "3EB0"}, "key"),
    ({"message": ["conversation"]}, "message"),
    ({"message": {"": 1}}, "message"),
    ({"timestamp": -1}, "timestamp"),
    ({"timestamp": True}, "timestamp"),
    ({"messageType": "Text Message"}, "messageType"),
    ({"text": 5}, "text"),
    ({"text": "x" * (MAX_MESSAGE_TEXT_CHARS + 1)}, "text"),
    ({"pushName": "x" * 300}, "pushName"),
    ({"sender": "nobody"}, "sender"),
])
def test_received_refuses_malformed_fields(mutation: dict[str, Any], field: str) -> None:
    obj = json.loads(RECEIVED.to_json())
    obj.update(mutation)
    with pytest.raises(InvalidEventError, match=field):
        parse_event(json.dumps(obj))


def test_deep_or_huge_messages_are_refused_without_crashing() -> None:
    deep: dict[str, Any] = {"conversation": "x"}
    for _ in range(MAX_MESSAGE_DEPTH):
        deep = {"quotedMessage": deep}
    with pytest.raises(InvalidEventError, match="nested"):
        MessageReceived("a1", KEY, deep, BOB, BOB, 1, "text")
    nested = b'{"type":"message.received","message":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
    with pytest.raises(InvalidEventError):
        parse_event(nested)
    big = MessageReceived("a1", KEY, {"conversation": "x" * MAX_MESSAGE_EVENT_BYTES}, BOB, BOB, 1, "text")
    with pytest.raises(InvalidEventError, match="over"):
        big.to_json()
    obj = json.loads(RECEIVED.to_json())
    obj["message"] = {"conversation": "x" * MAX_MESSAGE_EVENT_BYTES}
    with pytest.raises(InvalidEventError, match="too large"):
        parse_event(json.dumps(obj))


def test_status_rules() -> None:
    with pytest.raises(InvalidEventError, match="status"):
        MessageStatusUpdate("a1", "3EB0CCCC", BOB, MessageStatus.PENDING, AT)
    with pytest.raises(InvalidEventError, match="reason"):
        MessageStatusUpdate("a1", "3EB0CCCC", BOB, MessageStatus.SENT, AT, reason="whatever")
    obj = json.loads(STATUS.to_json())
    obj["status"] = "lost"
    with pytest.raises(InvalidEventError, match="status"):
        parse_event(json.dumps(obj))
    ranks = [s.rank for s in (MessageStatus.PENDING, MessageStatus.FAILED, MessageStatus.SENT,
                              MessageStatus.DELIVERED, MessageStatus.READ)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 5


def test_outbound_send_rules() -> None:
    with pytest.raises(InvalidEventError, match="text"):
        OutboundSend("a1", "3EB0DDDD", BOB, SendKind.TEXT, AT)
    with pytest.raises(InvalidEventError, match="react"):
        OutboundSend("a1", "3EB0DDDD", BOB, SendKind.REACTION, AT)
    with pytest.raises(InvalidEventError, match="chat of its message"):
        OutboundSend("a1", "3EB0DDDD", GROUP, SendKind.REACTION, AT, react=Reaction(KEY, "👍"))
    with pytest.raises(InvalidEventError, match="no text"):
        OutboundSend("a1", "3EB0DDDD", BOB, SendKind.REACTION, AT, text="x", react=Reaction(KEY, "👍"))
    with pytest.raises(InvalidEventError, match="emoji"):
        Reaction(KEY, "👍" * 40)
    obj = json.loads(REACTION_SEND.to_json())
    obj["kind"] = "poll"
    with pytest.raises(InvalidEventError, match="kind"):
        parse_event(json.dumps(obj))
    assert Reaction(KEY, "").emoji == ""  # taking a reaction back


def test_message_ids_have_the_whatsapp_web_form() -> None:
    first = new_message_id(1_764_072_000, "40700000001", bytes(16))
    assert MESSAGE_ID_RE.fullmatch(first)
    assert first != new_message_id(1_764_072_000, "40700000001", bytes([1]) * 16)
    assert client_message_id("a1", "c-1") == client_message_id("a1", "c-1")
    assert client_message_id("a1", "c-1") != client_message_id("a2", "c-1")
    assert MESSAGE_ID_RE.fullmatch(client_message_id("a1", "c-1"))
    with pytest.raises(ValueError):
        new_message_id(1, None, b"short")
