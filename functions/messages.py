"""The message store: ``message.*`` events from the ``messages`` topic onto the owner's account.

Documents (the frontend reads them; field names are the contract, docs/ARCHITECTURE.md):

- ``accounts/{accountId}/messages/{messageId}``: ``key`` {remoteJid, fromMe, id, participant},
  ``chat``, ``sender``, ``fromMe``, ``timestamp`` (the message time), ``type``, ``text``,
  ``message`` (protobuf JSON; past Firestore's nesting limit, its text in ``messageJson``), ``pushName``,
  ``status`` (outgoing: pending, failed, sent, delivered, read; incoming: null), ``statusAt``,
  ``statusReason``, ``receipts`` {recipient JID: {status, at}} (groups), ``reason``/``retries`` (an
  undecryptable placeholder), ``storedAt``, ``updatedAt``.
- ``accounts/{accountId}/chats/{chatId}`` (the chat JID is the id): ``chat``, ``isGroup``,
  ``lastMessage`` {id, fromMe, sender, type, text (a preview), timestamp, status},
  ``lastMessageAt``, ``unreadCount``, ``name`` (the last push name seen in a 1:1 chat), ``updatedAt``.

Delivery is at least once and not ordered between redeliveries, so every rule is idempotent and
commutative where it matters. Each event is one transaction over its message and its chat:

- a ``message.received`` whose message is stored already changes nothing (a redelivery, or the
  echo of our own send); otherwise the message is written and the chat counts it once: unread + 1
  when it came in, back to 0 when the account itself wrote (the user answered from the phone). It
  becomes the chat's ``lastMessage`` only when it is the newest by (timestamp, id), so an old
  message redelivered late does not take the chat back. It replaces an undecryptable placeholder
  with the same id (a resend that decrypted). Types that are not conversation
  (:data:`SILENT_TYPES`: reactions, protocol messages, ...) are stored but leave the chat alone;
- a ``message.undecryptable`` stores a placeholder (type ``undecryptable``) unless the message is
  stored;
- a ``message.status`` raises the status of a stored outgoing message, never lowers it
  (:class:`shared.events.MessageStatus`), per recipient when it names one, and takes the send
  out of the outbox once it is no longer pending. A status for a message that is not stored
  (one sent before keeper held the account) is dropped.

Messages older than the retention (``KEEPER_MESSAGE_RETENTION_S``, 30 days) are not stored, and the
cleanup function deletes what passes it (:meth:`MessageStore.delete_older_than`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from functions.errors import MalformedMessageError
from functions.model import Clock
from shared.events import (
    InvalidEventError,
    MessageEvent,
    MessageReceived,
    MessageStatus,
    MessageStatusUpdate,
    MessageUndecryptable,
    OutboundSend,
    UnsupportedVersionError,
    parse_event,
)

_log = logging.getLogger(__name__)

#: Message types stored without touching the chat's last message or unread count.
SILENT_TYPES = frozenset({
    "reaction", "protocol", "revoke", "edit", "ephemeral_setting", "app_state_key_share",
    "sender_key_distribution", "undecryptable",
})
UNDECRYPTABLE = "undecryptable"
#: Characters of text kept in a chat's ``lastMessage`` (the chat list shows one line).
PREVIEW_CHARS = 200
DEFAULT_RETENTION_S = 30 * 86400.0
#: Firestore refuses maps nested deeper than 20 in a document.
FIRESTORE_MAX_DEPTH = 20

#: A document as Firestore stores it (camelCase fields; times are aware datetimes).
Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MessageWrite:
    """What one transaction writes: each part None when unchanged."""

    message: Doc | None = None
    chat: Doc | None = None
    #: A new outbox entry (``sendMessage``) for this message.
    outbox: OutboundSend | None = None
    #: Take this message's send out of the outbox.
    outbox_done: bool = False

    @property
    def empty(self) -> bool:
        return self.message is None and self.chat is None and self.outbox is None and not self.outbox_done


NOTHING = MessageWrite()

#: Decides a transaction's writes from the message and chat documents as read (None: absent). It may
#: run more than once (a transaction retried after contention) and must not have side effects.
Plan = Callable[[Doc | None, Doc | None], MessageWrite]


class MessageStore(Protocol):
    """``accounts/{id}/messages``, ``accounts/{id}/chats`` and ``accounts/{id}/outbox``."""

    def transact(self, account_id: str, message_id: str, chat_id: str, plan: Plan) -> MessageWrite:
        """Read the message and the chat, and write what ``plan`` decides, in one transaction:
        two concurrent deliveries of one event cannot both count it. Returns what was written."""
        ...

    def get_message(self, account_id: str, message_id: str) -> Doc | None: ...

    def pending_sends(self, account_ids: Sequence[str]) -> list[OutboundSend]:
        """The outbox of these accounts (every send not yet sent or failed), oldest first."""
        ...

    def sends_accepted_since(self, at: datetime) -> list[OutboundSend]:
        """Outbox entries of any account accepted at or after ``at``, oldest first."""
        ...

    def sends_accepted_before(self, at: datetime, limit: int) -> list[OutboundSend]:
        """Outbox entries of any account accepted before ``at`` (cleanup expires them), oldest first."""
        ...

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` messages whose ``timestamp`` is before ``cutoff`` and chats whose last
        message is; returns how many documents went."""
        ...

    def delete_account(self, account_id: str) -> int:
        """Delete every message, chat and outbox entry of the account (its purge); returns how many."""
        ...


# --- pure rules ------------------------------------------------------------------------------------


def message_time(timestamp_s: int) -> datetime:
    return datetime.fromtimestamp(timestamp_s, UTC)


def _is_newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    if not current:
        return True
    return (candidate["timestamp"], candidate["id"]) >= (current.get("timestamp"), current.get("id", ""))


def last_message(message_id: str, doc: Mapping[str, Any]) -> Doc:
    text = doc.get("text")
    return {"id": message_id, "fromMe": doc["fromMe"], "sender": doc["sender"], "type": doc["type"],
            "text": text[:PREVIEW_CHARS] if isinstance(text, str) else None, "timestamp": doc["timestamp"],
            "status": doc.get("status")}


def new_chat(chat_id: str, now: datetime) -> Doc:
    return {"chat": chat_id, "isGroup": chat_id.endswith("@g.us"), "lastMessage": None, "lastMessageAt": None,
            "unreadCount": 0, "name": None, "updatedAt": now}


def chat_with(chat: Doc | None, chat_id: str, message_id: str, doc: Mapping[str, Any], now: datetime,
              *, count_unread: bool) -> Doc | None:
    """The chat after ``doc`` (a message new to the store) joined it; None when it stays as it is."""
    if doc["type"] in SILENT_TYPES:
        return None if chat is not None else new_chat(chat_id, now)
    updated = dict(chat) if chat is not None else new_chat(chat_id, now)
    if doc["fromMe"]:
        updated["unreadCount"] = 0
    elif count_unread:
        updated["unreadCount"] = int(updated.get("unreadCount") or 0) + 1
    preview = last_message(message_id, doc)
    if _is_newer(preview, updated.get("lastMessage")):
        updated["lastMessage"] = preview
        updated["lastMessageAt"] = doc["timestamp"]
    if not doc["fromMe"] and doc.get("pushName") and not updated["isGroup"]:
        updated["name"] = doc["pushName"]
    updated["updatedAt"] = now
    return updated


def _depth(value: Any) -> int:
    """How deep maps and lists nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def storable_message(message: Doc) -> Doc:
    """``message`` as document fields: a map, or past Firestore's nesting limit (20 levels, the
    document's own counted) its JSON text under ``messageJson`` (a deeply quoted message)."""
    if _depth(message) < FIRESTORE_MAX_DEPTH:
        return {"message": message}
    return {"message": None, "messageJson": json.dumps(message, separators=(",", ":"), ensure_ascii=False)}


def plan_received(event: MessageReceived, now: datetime) -> Plan:
    def plan(current: Doc | None, chat: Doc | None) -> MessageWrite:
        if current is not None and current.get("type") != UNDECRYPTABLE:
            return NOTHING  # stored already: a redelivery, or our own send coming back
        key = event.key
        doc: Doc = {
            "key": key.to_dict(), "chat": event.chat, "sender": event.sender, "fromMe": key.from_me,
            "timestamp": message_time(event.timestamp), "type": event.type, "text": event.text,
            **storable_message(event.message), "pushName": event.push_name,
            # a message from our own other device was sent by it; an incoming one has no send status
            "status": MessageStatus.SENT.value if key.from_me else None,
            "statusAt": now if key.from_me else None, "statusReason": None, "receipts": {},
            "storedAt": current.get("storedAt", now) if current else now, "updatedAt": now,
        }
        return MessageWrite(message=doc, chat=chat_with(chat, event.chat, key.id, doc, now, count_unread=True))

    return plan


def plan_undecryptable(event: MessageUndecryptable, now: datetime) -> Plan:
    def plan(current: Doc | None, chat: Doc | None) -> MessageWrite:
        if current is not None:
            return NOTHING
        key = event.key
        doc: Doc = {
            "key": key.to_dict(), "chat": event.chat, "sender": event.sender, "fromMe": key.from_me,
            "timestamp": message_time(event.timestamp), "type": UNDECRYPTABLE, "text": None, "message": None,
            "pushName": None, "status": None, "statusAt": None, "statusReason": None, "receipts": {},
            "reason": event.reason, "retries": event.retries, "storedAt": now, "updatedAt": now,
        }
        return MessageWrite(message=doc, chat=chat_with(chat, event.chat, key.id, doc, now, count_unread=False))

    return plan


def _rank(value: Any) -> int:
    try:
        return MessageStatus(value).rank
    except ValueError:
        return -1


def plan_status(event: MessageStatusUpdate, now: datetime) -> Plan:
    def plan(current: Doc | None, chat: Doc | None) -> MessageWrite:
        if current is None or not current.get("fromMe"):
            return NOTHING
        # The outbox entry leaves in the transaction that moves the message past pending.
        done = current.get("status") == MessageStatus.PENDING.value
        status = event.status.value
        if event.recipient is not None:
            receipts = dict(current.get("receipts") or {})
            mine = receipts.get(event.recipient) or {}
            if _rank(mine.get("status")) >= event.status.rank:
                return MessageWrite(outbox_done=done)
            receipts[event.recipient] = {"status": status, "at": event.at}
            return MessageWrite(message={**current, "receipts": receipts, "updatedAt": now}, outbox_done=done)
        if _rank(current.get("status")) >= event.status.rank:
            return MessageWrite(outbox_done=done)
        message = {**current, "status": status, "statusAt": event.at, "statusReason": event.reason,
                   "updatedAt": now}
        new_chat_doc = None
        if chat is not None and (chat.get("lastMessage") or {}).get("id") == event.message_id:
            new_chat_doc = {**chat, "lastMessage": {**chat["lastMessage"], "status": status}, "updatedAt": now}
        return MessageWrite(message=message, chat=new_chat_doc, outbox_done=done)

    return plan


# --- the Pub/Sub handler ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordResult:
    account_id: str
    message_id: str
    changed: bool


class MessageRecorder:
    """Records one ``messages`` topic event (``recordMessageEvent``)."""

    def __init__(self, store: MessageStore, clock: Clock, *, retention_s: float = DEFAULT_RETENTION_S) -> None:
        self._store = store
        self._clock = clock
        self._retention = timedelta(seconds=retention_s)

    def handle(self, data: bytes) -> RecordResult:
        try:
            event = parse_event(data)
        except UnsupportedVersionError:
            raise  # not ours to drop: redelivered until this function is upgraded
        except InvalidEventError as exc:
            raise MalformedMessageError(f"not a message event: {exc}") from None
        if not isinstance(event, MessageReceived | MessageUndecryptable | MessageStatusUpdate):
            raise MalformedMessageError(f"{event.TYPE} does not belong on the messages topic")
        return self.record(event)

    def record(self, event: MessageEvent) -> RecordResult:
        now = self._clock()
        if isinstance(event, MessageStatusUpdate):
            plan = plan_status(event, now)
        else:
            if message_time(event.timestamp) < now - self._retention:
                _log.info("account %s: message %s older than the retention, not stored", event.account_id,
                          event.message_id)
                return RecordResult(event.account_id, event.message_id, False)
            plan = plan_received(event, now) if isinstance(event, MessageReceived) else plan_undecryptable(event, now)
        written = self._store.transact(event.account_id, event.message_id, event.chat, plan)
        if written.empty:
            _log.info("account %s: %s for message %s changed nothing (a redelivery, or not stored)",
                      event.account_id, event.TYPE, event.message_id)
        else:
            _log.info("account %s: %s for message %s recorded", event.account_id, event.TYPE, event.message_id)
        return RecordResult(event.account_id, event.message_id, not written.empty)
