"""Reconnect delays: exponential backoff with full jitter, reset after a stable connection.

Full jitter (delay drawn uniformly from [0, min(cap, base * 2**attempt)]) spreads a thousand
accounts that lost their sockets at the same instant over the whole window instead of having them
retry in lock-step. The attempt counter resets once a connection has stayed open for
``stable_after_s``, so an account that flaps once a day does not inherit yesterday's delay.

Time and randomness are passed in: the policy does no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
STABLE_AFTER_S = 60.0


@dataclass
class Backoff:
    """The backoff state of one account."""

    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S
    stable_after_s: float = STABLE_AFTER_S
    uniform: Callable[[float, float], float] = random.uniform
    attempt: int = 0
    _opened_at: float | None = None

    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        # 2**attempt overflows floats long after the cap is reached; stop growing at 2**32.
        return min(self.cap_s, self.base_s * float(2 ** min(self.attempt, 32)))

    def next_delay_s(self) -> float:
        """Draw the delay before the next attempt and count the attempt."""
        delay = self.uniform(0.0, self.ceiling_s())
        self.attempt += 1
        return delay

    def opened(self, now_s: float) -> None:
        """Record that a connection opened at ``now_s`` (monotonic seconds)."""
        self._opened_at = now_s

    def closed(self, now_s: float) -> None:
        """Record that the connection closed; reset the attempts if it had been stable."""
        if self._opened_at is not None and now_s - self._opened_at >= self.stable_after_s:
            self.attempt = 0
        self._opened_at = None

    def reset(self) -> None:
        """Forget every attempt (an operator asked for a reconnect)."""
        self.attempt = 0
        self._opened_at = None
