"""How many retry receipts a message that did not decrypt has had, across the account's connections.

Policy (SIGNAL.md section 4; Baileys ``sendRetryRequest`` with ``maxMsgRetryCount`` 5, whatsmeow
``retry.go``): each failed delivery of a message gets the next retry receipt (count 1, 2, ... up to
:data:`MAX_RETRY_RECEIPTS`); the sender answers one with a resend of the same id, which the server
delivers. A delivery that fails after the last retry receipt is final: the message is undecryptable.
So is a message whose sender did not resend within ``resend_wait_s`` of our last retry receipt (the
retry receipt already made the server forget it): nothing else would ever report it.

One ledger per account, kept by the caller across ``Client`` instances (a resend may come on the
next connection); bounded (oldest entries go first). Time is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from connector.protocol.events import DecryptFailure

MAX_RETRY_RECEIPTS: Final = 5
DEFAULT_RESEND_WAIT_S: Final = 60.0
DEFAULT_CAPACITY: Final = 1000


@dataclass(slots=True)
class _Entry:
    failure: DecryptFailure
    count: int
    deadline: float


class RetryLedger:
    """Retry counts by message (id and author), with the deadline for the sender's resend."""

    def __init__(self, *, max_retries: int = MAX_RETRY_RECEIPTS, resend_wait_s: float = DEFAULT_RESEND_WAIT_S,
                 capacity: int = DEFAULT_CAPACITY) -> None:
        self.max_retries = max_retries
        self.resend_wait_s = resend_wait_s
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    @staticmethod
    def _key(failure: DecryptFailure) -> tuple[str, str]:
        return failure.incoming.id, failure.incoming.author

    def failed(self, failure: DecryptFailure, now: float) -> int | None:
        """Record a failed delivery: the count of the retry receipt to send, or None when the retries
        are spent (the message is undecryptable; the entry is dropped)."""
        key = self._key(failure)
        entry = self._entries.pop(key, None)
        count = 1 if entry is None else entry.count + 1
        if count > self.max_retries:
            return None
        self._entries[key] = _Entry(failure, count, now + self.resend_wait_s)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return count

    def retries(self, failure: DecryptFailure) -> int:
        entry = self._entries.get(self._key(failure))
        return 0 if entry is None else entry.count

    def settled(self, message_id: str, author: str) -> None:
        """The message decrypted (or was taken otherwise): forget its retries."""
        self._entries.pop((message_id, author), None)

    def expired(self, now: float) -> list[tuple[DecryptFailure, int]]:
        """Messages whose resend did not come in time, with their retry counts; dropped from the ledger."""
        due = [(key, entry) for key, entry in self._entries.items() if entry.deadline <= now]
        for key, _ in due:
            del self._entries[key]
        return [(entry.failure, entry.count) for _, entry in due]

    def next_deadline(self) -> float | None:
        return min((entry.deadline for entry in self._entries.values()), default=None)

    def __len__(self) -> int:
        return len(self._entries)
