"""Firestore transactions that ride out contention.

The client library retries a transaction whose commit is aborted (``max_attempts``, 5 by default) at
once and then gives up with ``ValueError``; an abort during one of its reads ("Transaction lock
timeout": another transaction holds the documents) is not retried at all. Concurrent callers on the
same documents (a double-clicked ``sendMessage``, connectors claiming the same accounts, a busy
owner adding accounts) meet both under load. :func:`run_contended` runs the transaction again, after a
short jittered pause, a bounded number of times and only within a short time budget (a caller waiting on
an HTTP answer, or Pub/Sub waiting for its ack, must get one: past the budget the abort is raised, a 5xx
that Pub/Sub redelivers and a client retries), and lets every other error through unchanged.
Re-running is safe: a transactional body only reads and writes through its transaction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from google.api_core.exceptions import Aborted

T = TypeVar("T")

CONTENDED_ROUNDS: Final = 5
"""Runs of a transaction (each with the library's own commit retries) before the abort is raised."""
CONTENDED_BUDGET_S: Final = 6.0
"""No new run starts once this long has passed since the first (each run may itself wait on locks)."""
CONTENDED_PAUSE_S: Final = 0.05
"""The first pause between runs; it doubles each time and is drawn at random below that bound."""


def contended(exc: BaseException) -> bool:
    """Whether ``exc`` says only that other transactions held the documents (worth running again)."""
    if isinstance(exc, Aborted):
        return True
    return isinstance(exc, ValueError) and isinstance(exc.__cause__, Aborted)


def run_contended(run: Callable[[Any], T], client: Any, *, rounds: int = CONTENDED_ROUNDS,
                  budget_s: float = CONTENDED_BUDGET_S, sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> T:
    """``run(client.transaction())`` for a ``@firestore.transactional`` ``run``, again when contended."""
    started = clock()
    for attempt in range(rounds):
        try:
            return run(client.transaction())
        except (Aborted, ValueError) as exc:
            pause = random.uniform(0, CONTENDED_PAUSE_S * 2 ** attempt)
            if not contended(exc) or attempt == rounds - 1 or clock() - started + pause > budget_s:
                raise
        sleep(pause)
    raise AssertionError("unreachable")  # the last round returns or raises
