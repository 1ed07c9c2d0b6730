"""A circuit breaker: after N consecutive failures, refuse calls until a cool-down has passed."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from printforge.runtime.errors import CircuitOpen

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed -> open after `threshold` failures; open -> half-open after `reset_s`; one trial call
    decides whether it closes again. Permanent errors (bad input) do not count: they say nothing
    about the callee's health."""

    def __init__(
        self,
        name: str,
        threshold: int = 5,
        reset_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.opened_count = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def retry_after(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_s - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise CircuitOpen when the call must not be made."""
        state = self.state
        if state is BreakerState.OPEN:
            raise CircuitOpen(
                f"{self.name} is failing; circuit open for another {self.retry_after():.1f} s",
                retry_after=self.retry_after(),
            )
        if state is BreakerState.HALF_OPEN:
            if self._trial_in_flight:
                raise CircuitOpen(
                    f"{self.name} is being probed; circuit half-open", retry_after=1.0
                )
            self._trial_in_flight = True

    def on_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def on_failure(self) -> None:
        self._trial_in_flight = False
        if self._opened_at is not None:
            # The half-open trial failed: open again for a full period.
            self._opened_at = self._clock()
            self.opened_count += 1
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()
            self.opened_count += 1

    def on_neutral(self) -> None:
        """A call that ended in a way that says nothing about health (bad input, cancel)."""
        self._trial_in_flight = False
