"""sendMessage on the in-memory stores: validation, ownership, the outbox, dedupe, replies, reactions, expiry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from functions.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from functions.message_input import chat_jid, parse_send_message
from functions.messages import MessageRecorder
from functions.model import Account, AccountStatus, PairingMethod
from functions.send import SendService, pending_for_sync
from shared.events import MessageKey, MessageReceived, OutboundSend, SendKind
from shared.message_ids import MESSAGE_ID_RE
from testkit.functions_world import ALICE, BOB, T0, Clock, world
from tests.functions.memory_messages import MemoryMessageStore

ME = "40700000001@s.whatsapp.net"
PEER = "40711111111@s.whatsapp.net"
GROUP = "120363012345678901@g.us"


class Publisher:
    def __init__(self) -> None:
        self.sent: list[OutboundSend] = []
        self.down = False

    def publish(self, send: OutboundSend) -> None:
        if self.down:
            raise ConnectionError("pubsub down")
        self.sent.append(send)


@pytest.fixture
def parts(tmp_path: Path) -> tuple[SendService, MemoryMessageStore, Publisher, Clock, Any]:
    w = world(tmp_path)
    w.services.stores.accounts.create(Account(
        account_id="a1", owner_uid="alice", phone_number="+40700000001", method=PairingMethod.CODE,
        status=AccountStatus.CONNECTED, serve=True, created_at=T0, updated_at=T0,
        linked_jid="40700000001:7@s.whatsapp.net"))
    store, publisher = MemoryMessageStore(), Publisher()
    service = SendService(w.services.stores.accounts, store, publisher, w.clock, outbox_ttl_s=3600)
    return service, store, publisher, w.clock, w


def send(data: dict[str, Any]) -> Any:
    return parse_send_message({"accountId": "a1", **data})


@pytest.mark.parametrize(("to", "chat"), [
    ("+40711111111", PEER), (PEER, PEER), ("40711111111@c.us", PEER), (GROUP, GROUP),
    ("40711111111-1600000000@g.us", "40711111111-1600000000@g.us"), ("123456789012345@lid", "123456789012345@lid"),
])
def test_to_forms(to: str, chat: str) -> None:
    assert chat_jid(to) == chat


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"to": "0711111111", "text": "x"}, "to", "E.164"),
    ({"to": "40711111111:3@s.whatsapp.net", "text": "x"}, "to", "device JID"),
    ({"to": "status@broadcast", "text": "x"}, "to", "broadcast"),
    ({"to": 40711111111, "text": "x"}, "to", "string"),
    ({"to": PEER}, "text", "exactly one"),
    ({"to": PEER, "text": "x", "react": {"messageId": "3EB0A", "emoji": "👍"}}, "text", "exactly one"),
    ({"to": PEER, "text": "   "}, "text", "empty"),
    ({"to": PEER, "text": "x" * 65_537}, "text", "longer"),
    ({"to": PEER, "text": "x", "replyTo": "not an id"}, "replyTo", "malformed"),
    ({"to": PEER, "react": {"messageId": "3EB0A", "emoji": "👍"}, "replyTo": "3EB0B"}, "replyTo", "goes with text"),
    ({"to": PEER, "react": {"messageId": "3EB0A"}}, "emoji", "required"),
    ({"to": PEER, "react": {"messageId": "3EB0A", "emoji": "x" * 40}}, "react.emoji", "one emoji"),
    ({"to": PEER, "text": "x", "clientMessageId": "has space"}, "clientMessageId", "letters"),
    ({"to": PEER, "text": "x", "extra": 1}, "extra", "unexpected"),
])
def test_validation_names_the_field(data: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words) as raised:
        send(data)
    assert raised.value.details == {"field": field}


def test_the_text_is_not_in_the_input_repr() -> None:
    assert "very private" not in repr(send({"to": PEER, "text": "very private"}))


def test_a_send_is_pending_in_the_store_and_the_outbox_and_published(parts: Any) -> None:
    service, store, publisher, _, _ = parts
    reply = service.send(ALICE, send({"to": "+40711111111", "text": "hello"}))
    assert reply["status"] == "pending" and MESSAGE_ID_RE.fullmatch(reply["messageId"])
    message_id = reply["messageId"]
    doc = store.get_message("a1", message_id)
    assert doc is not None
    assert (doc["chat"], doc["sender"], doc["fromMe"], doc["status"], doc["text"], doc["type"]) == (
        PEER, ME, True, "pending", "hello", "text")
    assert doc["message"] == {"conversation": "hello"}
    assert [s.message_id for s in publisher.sent] == [message_id]
    (queued,) = store.pending_sends(["a1"])
    assert queued == publisher.sent[0] and queued.kind is SendKind.TEXT and queued.chat == PEER
    chat = store.chat("a1", PEER)
    assert chat is not None and chat["lastMessage"]["status"] == "pending" and chat["unreadCount"] == 0


def test_a_repeated_client_message_id_is_the_same_send(parts: Any) -> None:
    service, store, publisher, _, _ = parts
    first = service.send(ALICE, send({"to": PEER, "text": "once", "clientMessageId": "c-1"}))
    again = service.send(ALICE, send({"to": PEER, "text": "once", "clientMessageId": "c-1"}))
    assert first == again
    assert len(store.outbox) == 1 and len(publisher.sent) == 1
    with pytest.raises(AlreadyExistsError, match="different message"):
        service.send(ALICE, send({"to": PEER, "text": "another", "clientMessageId": "c-1"}))
    other = service.send(ALICE, send({"to": PEER, "text": "once", "clientMessageId": "c-2"}))
    assert other["messageId"] != first["messageId"] and len(store.outbox) == 2


def test_publish_failure_still_accepts_the_send(parts: Any) -> None:
    service, store, publisher, _, _ = parts
    publisher.down = True
    reply = service.send(ALICE, send({"to": PEER, "text": "later"}))
    assert reply["status"] == "pending" and [s.message_id for s in store.pending_sends(["a1"])] == [reply["messageId"]]


def _incoming(store: MemoryMessageStore, clock: Clock, chat: str = PEER, participant: str | None = None) -> None:
    MessageRecorder(store, clock).record(MessageReceived(
        "a1", MessageKey(chat, False, "3EB0IN", participant), {"conversation": "question?"}, chat,
        participant or chat, int(clock().timestamp()), "text", "question?"))


def test_reply_quotes_the_stored_message(parts: Any) -> None:
    service, store, publisher, clock, _ = parts
    _incoming(store, clock)
    reply = service.send(ALICE, send({"to": PEER, "text": "answer", "replyTo": "3EB0IN"}))
    (sent,) = publisher.sent
    assert sent.reply_to is not None
    assert (sent.reply_to.id, sent.reply_to.participant, sent.reply_to.message) == (
        "3EB0IN", PEER, {"conversation": "question?"})
    doc = store.get_message("a1", reply["messageId"])
    assert doc is not None and doc["type"] == "extended_text"
    assert doc["message"]["extendedTextMessage"]["contextInfo"]["stanzaId"] == "3EB0IN"
    with pytest.raises(NotFoundError, match="replyTo"):
        service.send(ALICE, send({"to": "+40722222222", "text": "x", "replyTo": "3EB0IN"}))  # another chat


def test_reaction_names_the_stored_key(parts: Any) -> None:
    service, store, publisher, clock, _ = parts
    _incoming(store, clock, chat=GROUP, participant=PEER)
    service.send(ALICE, send({"to": GROUP, "react": {"messageId": "3EB0IN", "emoji": "👍"}}))
    (sent,) = publisher.sent
    assert sent.kind is SendKind.REACTION and sent.react is not None
    assert sent.react.key == MessageKey(GROUP, False, "3EB0IN", PEER) and sent.react.emoji == "👍"
    with pytest.raises(NotFoundError, match=r"react\.messageId"):
        service.send(ALICE, send({"to": GROUP, "react": {"messageId": "3EB0NO", "emoji": "👍"}}))


def test_only_the_owner_of_a_linked_account_sends(parts: Any) -> None:
    service, _, _, _, w = parts
    with pytest.raises(PermissionDeniedError):
        service.send(BOB, send({"to": PEER, "text": "x"}))
    with pytest.raises(NotFoundError):
        service.send(ALICE, parse_send_message({"accountId": "nope", "to": PEER, "text": "x"}))
    for status in (AccountStatus.PAIRING, AccountStatus.NEEDS_PAIRING, AccountStatus.REMOVING):
        w.services.stores.accounts.update("a1", {"status": status})
        with pytest.raises(FailedPreconditionError, match=status.value):
            service.send(ALICE, send({"to": PEER, "text": "x"}))


def test_sends_waiting_past_the_ttl_fail_as_expired(parts: Any) -> None:
    service, store, _, clock, _ = parts
    reply = service.send(ALICE, send({"to": PEER, "text": "never sent"}))
    assert service.expire() == 0
    clock.advance(3601)
    assert service.expire() == 1
    doc = store.get_message("a1", reply["messageId"])
    assert doc is not None and (doc["status"], doc["statusReason"]) == ("failed", "expired")
    assert not store.outbox


def test_pending_for_sync_claimed_all_held_only_recent(parts: Any) -> None:
    service, store, _, clock, w = parts
    w.services.stores.accounts.create(replace(w.services.stores.accounts.get("a1"), account_id="a2",
                                              phone_number="+40700000002"))
    old = service.send(ALICE, send({"to": PEER, "text": "old"}))
    old2 = service.send(ALICE, parse_send_message({"accountId": "a2", "to": PEER, "text": "old"}))
    clock.advance(300)
    since = clock()
    new = service.send(ALICE, send({"to": PEER, "text": "new"}))
    ids = lambda sends: [s.message_id for s in sends]  # noqa: E731
    assert ids(pending_for_sync(store, ["a2"], ["a1"], since)) == [old2["messageId"], new["messageId"]]
    assert ids(pending_for_sync(store, [], ["a1"], None)) == [old["messageId"], new["messageId"]]
    assert ids(pending_for_sync(store, [], ["a3"], since)) == []


def test_cleanup_purges_a_removed_accounts_messages_and_keeps_others(parts: Any) -> None:
    from functions.cleanup import Cleaner, CleanupSettings

    service, store, _, clock, w = parts
    w.services.stores.accounts.create(replace(w.services.stores.accounts.get("a1"), account_id="a2",
                                              phone_number="+40700000002"))
    service.send(ALICE, send({"to": PEER, "text": "gone with the account"}))
    kept = service.send(ALICE, parse_send_message({"accountId": "a2", "to": PEER, "text": "stays"}))
    _incoming(store, clock)
    w.services.stores.accounts.update("a1", {"status": AccountStatus.REMOVED, "removed_at": clock()})
    clock.advance(8 * 86400)
    cleaner = Cleaner(w.services.stores, w.services.vault, clock, CleanupSettings(7 * 86400, 600, 30 * 86400),
                      messages=store, sender=None)
    result = cleaner.run()
    assert result["purged"] == 1
    assert not [k for k in (*store.messages, *store.chats, *store.outbox) if k[0] == "a1"]
    assert store.get_message("a2", kept["messageId"]) is not None
