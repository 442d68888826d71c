"""The message store's rules on the in-memory store: idempotency, ordering, unread counts, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.errors import MalformedMessageError
from functions.messages import MessageRecorder, message_time
from shared.events import (
    MessageKey,
    MessageReceived,
    MessageStatus,
    MessageStatusUpdate,
    MessageUndecryptable,
    UnsupportedVersionError,
)
from testkit.functions_world import Clock
from tests.functions.memory_messages import MemoryMessageStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
BOB = "40711111111@s.whatsapp.net"
ME = "40700000001@s.whatsapp.net"
GROUP = "120363012345678901@g.us"


def received(message_id: str, *, at: int = T, from_me: bool = False, text: str = "hi", kind: str = "text",
             chat: str = BOB, participant: str | None = None) -> MessageReceived:
    sender = ME if from_me else (participant or chat)
    return MessageReceived("a1", MessageKey(chat, from_me, message_id, participant), {"conversation": text}, chat,
                           sender, at, kind, text, "Bob")


@pytest.fixture
def store() -> MemoryMessageStore:
    return MemoryMessageStore()


@pytest.fixture
def recorder(store: MemoryMessageStore) -> MessageRecorder:
    return MessageRecorder(store, Clock(NOW))


def test_a_received_message_is_stored_and_counted_once(store: MemoryMessageStore, recorder: MessageRecorder) -> None:
    event = received("3EB0A1")
    assert recorder.handle(event.to_json()).changed
    for _ in range(3):  # redeliveries
        assert not recorder.handle(event.to_json()).changed
    doc = store.get_message("a1", "3EB0A1")
    assert doc is not None
    assert (doc["chat"], doc["sender"], doc["fromMe"], doc["type"], doc["text"], doc["status"]) == (
        BOB, BOB, False, "text", "hi", None)
    assert doc["timestamp"] == message_time(T) and doc["message"] == {"conversation": "hi"}
    assert doc["key"] == {"remoteJid": BOB, "fromMe": False, "id": "3EB0A1", "participant": None}
    chat = store.chat("a1", BOB)
    assert chat is not None
    assert chat["unreadCount"] == 1 and chat["lastMessage"]["id"] == "3EB0A1" and chat["name"] == "Bob"


def test_last_message_is_the_newest_whatever_the_arrival_order(store: MemoryMessageStore,
                                                                recorder: MessageRecorder) -> None:
    recorder.handle(received("3EB0B2", at=T + 10, text="second").to_json())
    recorder.handle(received("3EB0B1", at=T, text="first").to_json())  # late redelivery of an older one
    chat = store.chat("a1", BOB)
    assert chat is not None
    assert chat["lastMessage"]["id"] == "3EB0B2" and chat["lastMessage"]["text"] == "second"
    assert chat["lastMessageAt"] == message_time(T + 10) and chat["unreadCount"] == 2


def test_own_messages_reset_unread_and_silent_types_leave_the_chat(store: MemoryMessageStore,
                                                                   recorder: MessageRecorder) -> None:
    recorder.handle(received("3EB0C1").to_json())
    recorder.handle(received("3EB0C2").to_json())
    recorder.handle(received("3EB0C3", at=T + 1, kind="reaction").to_json())
    chat = store.chat("a1", BOB)
    assert chat is not None and chat["unreadCount"] == 2 and chat["lastMessage"]["id"] == "3EB0C2"
    recorder.handle(received("3EB0C4", at=T + 2, from_me=True, text="answered from the phone").to_json())
    chat = store.chat("a1", BOB)
    assert chat is not None and chat["unreadCount"] == 0 and chat["lastMessage"]["fromMe"]
    mine = store.get_message("a1", "3EB0C4")
    assert mine is not None and mine["status"] == "sent" and mine["sender"] == ME


def test_undecryptable_placeholder_is_replaced_by_the_decrypted_message(store: MemoryMessageStore,
                                                                        recorder: MessageRecorder) -> None:
    key = MessageKey(BOB, False, "3EB0D1")
    placeholder = MessageUndecryptable("a1", key, BOB, BOB, T, "no_session", 5)
    assert recorder.handle(placeholder.to_json()).changed
    assert not recorder.handle(placeholder.to_json()).changed
    doc = store.get_message("a1", "3EB0D1")
    assert doc is not None and doc["type"] == "undecryptable" and doc["reason"] == "no_session" and doc["retries"] == 5
    chat = store.chat("a1", BOB)
    assert chat is not None and chat["unreadCount"] == 0
    assert recorder.handle(received("3EB0D1").to_json()).changed
    doc = store.get_message("a1", "3EB0D1")
    assert doc is not None and doc["type"] == "text" and doc["text"] == "hi"
    chat = store.chat("a1", BOB)
    assert chat is not None and chat["unreadCount"] == 1
    # and a late placeholder does not take the decrypted message back
    assert not recorder.handle(placeholder.to_json()).changed


def _outgoing(store: MemoryMessageStore, message_id: str, chat: str = BOB) -> None:
    """An outgoing message as sendMessage stores it (pending, in the outbox)."""
    from functions.messages import MessageWrite
    from shared.events import OutboundSend, SendKind

    send = OutboundSend("a1", message_id, chat, SendKind.TEXT, NOW, text="out")
    doc = {"key": {"remoteJid": chat, "fromMe": True, "id": message_id, "participant": None}, "chat": chat,
           "sender": ME, "fromMe": True, "timestamp": NOW, "type": "text", "text": "out", "status": "pending",
           "receipts": {}}
    store.transact("a1", message_id, chat, lambda m, c: MessageWrite(message=doc, chat={
        "chat": chat, "lastMessage": {"id": message_id, "status": "pending"}, "unreadCount": 0}, outbox=send))


def status(message_id: str, value: MessageStatus, *, recipient: str | None = None, chat: str = BOB,
           reason: str | None = None) -> bytes:
    return MessageStatusUpdate("a1", message_id, chat, value, NOW, reason=reason, recipient=recipient).to_json()


def test_status_only_moves_up_and_takes_the_send_out_of_the_outbox(store: MemoryMessageStore,
                                                                   recorder: MessageRecorder) -> None:
    _outgoing(store, "3EB0E1")
    assert ("a1", "3EB0E1") in store.outbox
    assert recorder.handle(status("3EB0E1", MessageStatus.DELIVERED)).changed  # the ack's event may come late
    assert ("a1", "3EB0E1") not in store.outbox
    assert not recorder.handle(status("3EB0E1", MessageStatus.SENT)).changed
    assert not recorder.handle(status("3EB0E1", MessageStatus.FAILED, reason="server_error")).changed
    doc = store.get_message("a1", "3EB0E1")
    assert doc is not None and doc["status"] == "delivered"
    assert recorder.handle(status("3EB0E1", MessageStatus.READ)).changed
    doc = store.get_message("a1", "3EB0E1")
    chat = store.chat("a1", BOB)
    assert doc is not None and doc["status"] == "read" and chat is not None and chat["lastMessage"]["status"] == "read"


def test_failed_is_overtaken_by_proof_of_delivery(store: MemoryMessageStore, recorder: MessageRecorder) -> None:
    _outgoing(store, "3EB0E2")
    recorder.handle(status("3EB0E2", MessageStatus.FAILED, reason="not_on_whatsapp"))
    doc = store.get_message("a1", "3EB0E2")
    assert doc is not None and (doc["status"], doc["statusReason"]) == ("failed", "not_on_whatsapp")
    recorder.handle(status("3EB0E2", MessageStatus.SENT))
    doc = store.get_message("a1", "3EB0E2")
    assert doc is not None and (doc["status"], doc["statusReason"]) == ("sent", None)


def test_per_recipient_receipts_in_groups(store: MemoryMessageStore, recorder: MessageRecorder) -> None:
    _outgoing(store, "3EB0F1", chat=GROUP)
    recorder.handle(status("3EB0F1", MessageStatus.SENT, chat=GROUP))
    recorder.handle(status("3EB0F1", MessageStatus.READ, recipient=BOB, chat=GROUP))
    recorder.handle(status("3EB0F1", MessageStatus.DELIVERED, recipient=BOB, chat=GROUP))  # late: ignored
    recorder.handle(status("3EB0F1", MessageStatus.DELIVERED, recipient="40722222222@s.whatsapp.net", chat=GROUP))
    doc = store.get_message("a1", "3EB0F1")
    assert doc is not None and doc["status"] == "sent"  # the group as a whole: only what the connector says
    assert {r: v["status"] for r, v in doc["receipts"].items()} == {
        BOB: "read", "40722222222@s.whatsapp.net": "delivered"}


def test_status_of_an_unknown_or_incoming_message_changes_nothing(store: MemoryMessageStore,
                                                                  recorder: MessageRecorder) -> None:
    assert not recorder.handle(status("3EB0G1", MessageStatus.READ)).changed
    recorder.handle(received("3EB0G2").to_json())
    assert not recorder.handle(status("3EB0G2", MessageStatus.READ)).changed
    assert store.get_message("a1", "3EB0G1") is None


def test_messages_past_the_retention_are_not_stored(store: MemoryMessageStore) -> None:
    recorder = MessageRecorder(store, Clock(NOW), retention_s=86400)
    old = T - int(timedelta(days=2).total_seconds())
    assert not recorder.handle(received("3EB0H1", at=old).to_json()).changed
    assert store.get_message("a1", "3EB0H1") is None


def test_malformed_and_foreign_events_are_rejected_newer_ones_retried(recorder: MessageRecorder) -> None:
    with pytest.raises(MalformedMessageError):
        recorder.handle(b"not json")
    from shared.events import AccountRemoved

    with pytest.raises(MalformedMessageError, match="messages topic"):
        recorder.handle(AccountRemoved("a1").to_json())
    newer = received("3EB0I1").to_json().replace(b'"v":1', b'"v":9')
    with pytest.raises(UnsupportedVersionError):  # not a MessageRejectedError: Pub/Sub redelivers it
        recorder.handle(newer)


def test_retention_delete_removes_old_messages_and_chats(store: MemoryMessageStore, recorder: MessageRecorder) -> None:
    recorder.handle(received("3EB0J1", at=T - 100, chat="40733333333@s.whatsapp.net").to_json())
    recorder.handle(received("3EB0J2", at=T).to_json())
    assert store.delete_older_than(message_time(T - 50), 100) == 2  # one message and its chat
    assert store.get_message("a1", "3EB0J1") is None and store.get_message("a1", "3EB0J2") is not None
    assert store.chat("a1", "40733333333@s.whatsapp.net") is None and store.chat("a1", BOB) is not None


def test_a_message_nested_past_firestores_limit_is_kept_as_json_text(store: MemoryMessageStore,
                                                                     recorder: MessageRecorder) -> None:
    import json

    deep: dict[str, object] = {"conversation": "innermost"}
    for _ in range(24):
        deep = {"quotedMessage": deep}
    event = MessageReceived("a1", MessageKey(BOB, False, "3EB0K1"), deep, BOB, BOB, T, "text", "outer")
    recorder.handle(event.to_json())
    doc = store.get_message("a1", "3EB0K1")
    assert doc is not None and doc["message"] is None and json.loads(doc["messageJson"]) == deep
    recorder.handle(received("3EB0K2").to_json())
    shallow = store.get_message("a1", "3EB0K2")
    assert shallow is not None and shallow["message"] == {"conversation": "hi"} and "messageJson" not in shallow


class Alerts:
    def __init__(self) -> None:
        self.raised: list[tuple[str, str]] = []

    def raise_alert(self, account_id: str, kind: str, message: str) -> bool:
        self.raised.append((account_id, kind))
        return True


def test_an_account_that_keeps_failing_to_decrypt_is_alerted(store: MemoryMessageStore) -> None:
    alerts = Alerts()
    clock = Clock(NOW)
    recorder = MessageRecorder(store, clock, alerts=alerts, alert_threshold=3, alert_window_s=3600)

    def undecryptable(message_id: str) -> bytes:
        return MessageUndecryptable("a1", MessageKey(BOB, False, message_id), BOB, BOB, T, "bad_mac", 5).to_json()

    recorder.handle(undecryptable("3EB0U1"))
    recorder.handle(undecryptable("3EB0U2"))
    recorder.handle(undecryptable("3EB0U2"))  # a redelivery counts once
    assert alerts.raised == []  # one or two corrupted messages are no pattern
    recorder.handle(received("3EB0OK").to_json())
    recorder.handle(undecryptable("3EB0U3"))
    assert alerts.raised == [("a1", "messages_undecryptable")]


def test_undecryptable_messages_outside_the_window_do_not_alert(store: MemoryMessageStore) -> None:
    alerts = Alerts()
    clock = Clock(NOW - timedelta(hours=3))
    recorder = MessageRecorder(store, clock, alerts=alerts, alert_threshold=2, alert_window_s=3600)
    recorder.handle(MessageUndecryptable("a1", MessageKey(BOB, False, "3EB0V1"), BOB, BOB, T, "bad_mac", 5).to_json())
    clock.now = NOW
    recorder.handle(MessageUndecryptable("a1", MessageKey(BOB, False, "3EB0V2"), BOB, BOB, T, "bad_mac", 5).to_json())
    assert alerts.raised == []
