"""Decides when a changed account's auth state is snapshotted.

Every credential or key change from the engine marks its account dirty. A *critical* change (new
identity, pairing, registration ids, account details) is due at once: losing it means re-pairing.
*Routine* churn (session ratchets, pre-key use, sender keys, app-state sync) is coalesced: the
account becomes due ``window_s`` after its first unsnapshotted change, so a burst of a hundred
messages costs one snapshot, and no change waits longer than the window.

:class:`Coalescer` is the pure rule (time passed in); :class:`CoalescingFlusher` is the asyncio
loop that calls ``flush(account_id, dirty_since)`` when accounts fall due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

ChangeKind = Literal["critical", "routine"]
DEFAULT_WINDOW_S = 2.0


class Coalescer:
    """Which accounts are dirty, since when, and when each falls due."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.window_s = window_s
        self._dirty_since: dict[str, float] = {}
        self._due_at: dict[str, float] = {}

    def mark(self, account_id: str, kind: ChangeKind, now: float) -> None:
        """Record a change; a critical one makes the account due at ``now``."""
        first = self._dirty_since.setdefault(account_id, now)
        due = now if kind == "critical" else first + self.window_s
        self._due_at[account_id] = min(due, self._due_at.get(account_id, due))

    def next_due_at(self) -> float | None:
        return min(self._due_at.values(), default=None)

    def take_due(self, now: float) -> list[tuple[str, float]]:
        """Pop every account due at ``now``: ``(account_id, dirty_since)``, oldest first."""
        due = [a for a, at in self._due_at.items() if at <= now]
        return self._pop(due)

    def take_all(self) -> list[tuple[str, float]]:
        """Pop every dirty account regardless of its window (shutdown, lease about to go)."""
        return self._pop(list(self._due_at))

    def take(self, account_id: str) -> tuple[str, float] | None:
        popped = self._pop([account_id] if account_id in self._due_at else [])
        return popped[0] if popped else None

    def forget(self, account_id: str) -> None:
        self._dirty_since.pop(account_id, None)
        self._due_at.pop(account_id, None)

    def is_dirty(self, account_id: str) -> bool:
        return account_id in self._due_at

    def __len__(self) -> int:
        return len(self._due_at)

    def _pop(self, accounts: list[str]) -> list[tuple[str, float]]:
        out = [(a, self._dirty_since.pop(a)) for a in accounts]
        for a in accounts:
            del self._due_at[a]
        out.sort(key=lambda item: item[1])
        return out


Flush = Callable[[str, float], None]


class CoalescingFlusher:
    """Runs a :class:`Coalescer` against the event loop's clock."""

    def __init__(self, flush: Flush, window_s: float = DEFAULT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.coalescer = Coalescer(window_s)
        self._flush = flush
        self._clock = clock
        self._wake = asyncio.Event()

    def mark(self, account_id: str, kind: ChangeKind) -> None:
        self.coalescer.mark(account_id, kind, self._clock())
        self._wake.set()

    def flush_now(self, account_id: str | None = None) -> int:
        """Flush one account (or all) immediately; return how many were flushed."""
        if account_id is None:
            items = self.coalescer.take_all()
        else:
            one = self.coalescer.take(account_id)
            items = [one] if one is not None else []
        self._run(items)
        return len(items)

    def forget(self, account_id: str) -> None:
        self.coalescer.forget(account_id)

    async def run(self) -> None:
        """Flush accounts as they fall due, until cancelled."""
        while True:
            self._wake.clear()
            self._run(self.coalescer.take_due(self._clock()))
            next_at = self.coalescer.next_due_at()
            timeout = None if next_at is None else max(0.0, next_at - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _run(self, items: list[tuple[str, float]]) -> None:
        for account_id, since in items:
            try:
                self._flush(account_id, since)
            except Exception:
                # One account's broken state must not stop every other account's snapshots.
                log.exception("snapshot flush failed", extra={"account_id": account_id})
