"""The one token bucket: LLM request and token limits (llm/limits.py) and the API's per-key
rate limits (server/limits.py) are both this."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Refills continuously at `rate_per_s` up to `capacity`, and starts full.

    `take` may leave the level below zero: a caller that learns the real size of what it took
    only afterwards (an LLM call's tokens) runs into debt and waits it off, rather than
    letting the overshoot go uncounted.
    """

    def __init__(
        self, capacity: float, rate_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(capacity)
        self.rate_s = rate_per_s
        self._clock = clock
        self._level = self.capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate_s)
        self._at = now

    @property
    def available(self) -> float:
        self._refill()
        return self._level

    @property
    def full(self) -> bool:
        return self.available >= self.capacity

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 when they are now); takes none."""
        self._refill()
        if self._level >= amount:
            return 0.0
        return (amount - self._level) / self.rate_s

    def take(self, amount: float) -> None:
        self._refill()
        self._level -= amount

    def try_take(self, amount: float) -> float:
        """Take `amount` if it is there and return 0; else take nothing and return the wait."""
        wait = self.wait_for(amount)
        if wait == 0.0:
            self._level -= amount
        return wait

    def give_back(self, amount: float) -> None:
        """Return an over-estimate once the real amount is known."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)
