"""An in-memory :class:`functions.messages.MessageStore` for unit tests (the same rules run on it:
they live in :mod:`functions.messages`; this only stores documents, under one lock)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from datetime import datetime

from functions.messages import Doc, MessageWrite, Plan
from shared.events import OutboundSend


class MemoryMessageStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: dict[tuple[str, str], Doc] = {}
        self.chats: dict[tuple[str, str], Doc] = {}
        self.outbox: dict[tuple[str, str], OutboundSend] = {}
        self.transactions = 0

    def transact(self, account_id: str, message_id: str, chat_id: str, plan: Plan) -> MessageWrite:
        with self._lock:
            self.transactions += 1
            message = self.messages.get((account_id, message_id))
            chat = self.chats.get((account_id, chat_id))
            written = plan(copy.deepcopy(message), copy.deepcopy(chat))
            if written.message is not None:
                self.messages[(account_id, message_id)] = copy.deepcopy(written.message)
            if written.chat is not None:
                self.chats[(account_id, chat_id)] = copy.deepcopy(written.chat)
            if written.outbox is not None:
                self.outbox[(account_id, message_id)] = written.outbox
            if written.outbox_done:
                self.outbox.pop((account_id, message_id), None)
            return written

    def get_message(self, account_id: str, message_id: str) -> Doc | None:
        with self._lock:
            return copy.deepcopy(self.messages.get((account_id, message_id)))

    def chat(self, account_id: str, chat_id: str) -> Doc | None:
        with self._lock:
            return copy.deepcopy(self.chats.get((account_id, chat_id)))

    def _sorted(self, sends: list[OutboundSend]) -> list[OutboundSend]:
        return sorted(sends, key=lambda s: (s.accepted_at, s.message_id))

    def pending_sends(self, account_ids: Sequence[str]) -> list[OutboundSend]:
        wanted = set(account_ids)
        with self._lock:
            return self._sorted([s for (a, _), s in self.outbox.items() if a in wanted])

    def sends_accepted_since(self, at: datetime) -> list[OutboundSend]:
        with self._lock:
            return self._sorted([s for s in self.outbox.values() if s.accepted_at >= at])

    def sends_accepted_before(self, at: datetime, limit: int) -> list[OutboundSend]:
        with self._lock:
            return self._sorted([s for s in self.outbox.values() if s.accepted_at < at])[:limit]

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        with self._lock:
            old = [k for k, d in self.messages.items() if d["timestamp"] < cutoff][:limit]
            for key in old:
                del self.messages[key]
            chats = [k for k, d in self.chats.items()
                     if d.get("lastMessageAt") is not None and d["lastMessageAt"] < cutoff][:limit - len(old)]
            for key in chats:
                del self.chats[key]
            return len(old) + len(chats)

    def delete_account(self, account_id: str) -> int:
        with self._lock:
            deleted = 0
            for table in (self.messages, self.chats, self.outbox):
                keys = [k for k in table if k[0] == account_id]
                for key in keys:
                    del table[key]
                deleted += len(keys)
            return deleted
