"""Firestore implementation of :class:`functions.messages.MessageStore`.

``accounts/{id}/messages/{messageId}`` and ``accounts/{id}/chats/{chatId}`` hold the documents
:mod:`functions.messages` describes; ``accounts/{id}/outbox/{messageId}`` holds each send not yet
sent or failed: ``accountId``, ``acceptedAt`` (a timestamp, for the catch-up and expiry queries) and
``send`` (:meth:`shared.events.OutboundSend.to_dict`). The catch-up and cleanup queries are
collection-group queries on single fields (``outbox.accountId``, ``outbox.acceptedAt``,
``messages.timestamp``, ``chats.lastMessageAt``); firestore.indexes.json enables them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.firestore_batches import BATCH_WRITES, delete_in_batches
from functions.messages import UNDECRYPTABLE, Doc, MessageWrite, Plan
from functions.transactions import run_contended
from shared.events import OutboundSend

ACCOUNTS = "accounts"
MESSAGES = "messages"
CHATS = "chats"
OUTBOX = "outbox"
#: Firestore's ``in`` filter takes at most 30 values.
_IN_LIMIT = 30


def outbox_doc(send: OutboundSend) -> Doc:
    return {"accountId": send.account_id, "acceptedAt": send.accepted_at, "send": send.to_dict()}


def _send_from(snap: Any) -> OutboundSend:
    return OutboundSend.from_dict(snap.to_dict()["send"])


class FirestoreMessageStore:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _account(self, account_id: str) -> Any:
        return self._client.collection(ACCOUNTS).document(account_id)

    def transact(self, account_id: str, message_id: str, chat_id: str, plan: Plan) -> MessageWrite:
        account = self._account(account_id)
        message_ref = account.collection(MESSAGES).document(message_id)
        chat_ref = account.collection(CHATS).document(chat_id)
        outbox_ref = account.collection(OUTBOX).document(message_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> MessageWrite:
            snaps = {snap.reference.path: snap for snap in transaction.get_all([message_ref, chat_ref])}
            message = snaps.get(message_ref.path)
            chat = snaps.get(chat_ref.path)
            written = plan(message.to_dict() if message is not None and message.exists else None,
                           chat.to_dict() if chat is not None and chat.exists else None)
            if written.message is not None:
                transaction.set(message_ref, written.message)
            if written.chat is not None:
                transaction.set(chat_ref, written.chat)
            if written.outbox is not None:
                transaction.set(outbox_ref, outbox_doc(written.outbox))
            if written.outbox_done:
                transaction.delete(outbox_ref)
            return written

        result: MessageWrite = run_contended(run, self._client)
        return result

    def get_message(self, account_id: str, message_id: str) -> Doc | None:
        snap = self._account(account_id).collection(MESSAGES).document(message_id).get()
        return snap.to_dict() if snap.exists else None

    def pending_sends(self, account_ids: Sequence[str]) -> list[OutboundSend]:
        found: list[OutboundSend] = []
        ids = list(dict.fromkeys(account_ids))
        for start in range(0, len(ids), _IN_LIMIT):
            query = self._client.collection_group(OUTBOX).where(
                filter=FieldFilter("accountId", "in", ids[start:start + _IN_LIMIT]))
            found.extend(_send_from(snap) for snap in query.stream())
        return sorted(found, key=lambda s: (s.accepted_at, s.message_id))

    def sends_accepted_since(self, at: datetime) -> list[OutboundSend]:
        query = self._client.collection_group(OUTBOX).where(filter=FieldFilter("acceptedAt", ">=", at))
        return sorted((_send_from(snap) for snap in query.stream()), key=lambda s: (s.accepted_at, s.message_id))

    def sends_accepted_before(self, at: datetime, limit: int) -> list[OutboundSend]:
        query = (self._client.collection_group(OUTBOX).where(filter=FieldFilter("acceptedAt", "<", at))
                 .order_by("acceptedAt").limit(limit))
        return [_send_from(snap) for snap in query.stream()]

    def count_undecryptable_since(self, account_id: str, since: datetime, limit: int) -> int:
        query = (self._account(account_id).collection(MESSAGES)
                 .where(filter=FieldFilter("type", "==", UNDECRYPTABLE))
                 .where(filter=FieldFilter("storedAt", ">=", since)).limit(limit))
        return sum(1 for _ in query.stream())

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        deleted = 0
        for group, field in ((MESSAGES, "timestamp"), (CHATS, "lastMessageAt")):
            while deleted < limit:
                query = (self._client.collection_group(group).where(filter=FieldFilter(field, "<", cutoff))
                         .limit(min(BATCH_WRITES, limit - deleted)))
                refs = [snap.reference for snap in query.stream()]
                if not refs:
                    break
                deleted += delete_in_batches(self._client, refs)
        return deleted

    def delete_account(self, account_id: str) -> int:
        deleted = 0
        for group in (MESSAGES, CHATS, OUTBOX):
            collection = self._account(account_id).collection(group)
            while True:
                refs = [snap.reference for snap in collection.limit(BATCH_WRITES).stream()]
                if not refs:
                    break
                deleted += delete_in_batches(self._client, refs)
        return deleted
