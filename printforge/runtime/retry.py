"""Backoff arithmetic and the transient/permanent decision, shared by every retry loop."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from printforge.runtime.errors import (
    CircuitOpen,
    PermanentError,
    PrintforgeError,
    RateLimited,
    TransientError,
)
from printforge.runtime.policy import CallPolicy

__all__ = ["Backoff", "backoff_delay", "is_transient", "retry_after_of"]


def is_transient(err: BaseException) -> bool:
    """Decide by type: our own hierarchy first, then the builtins that mean 'try again'."""
    if isinstance(err, PermanentError):
        return False
    if isinstance(err, TransientError):
        return True
    if isinstance(err, PrintforgeError):
        return False
    return isinstance(err, TimeoutError | ConnectionError | asyncio.TimeoutError)


def retry_after_of(err: BaseException) -> float | None:
    if isinstance(err, RateLimited | CircuitOpen):
        return err.retry_after
    return None


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter: the one formula behind every retry loop
    (the runtime guard, the LLM router, the MQTT supervisor, Moonraker's websocket)."""

    initial_s: float
    max_s: float
    multiplier: float = 2.0
    jitter: float = 0.0  # the randomised fraction of each delay

    @classmethod
    def of(cls, policy: CallPolicy) -> Backoff:
        return cls(
            policy.backoff_initial_s,
            policy.backoff_max_s,
            policy.backoff_multiplier,
            policy.jitter,
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt `attempt` (1 for the first)."""
        base = min(self.initial_s * self.multiplier ** max(0, attempt - 1), self.max_s)
        r = (rng or random).random()
        # "Equal jitter": keep (1 - jitter) of the delay, randomise the rest, so that clients
        # failing together (a farm of nodes losing one broker) do not retry in lockstep.
        return base * (1 - self.jitter) + base * self.jitter * r


def backoff_delay(
    attempt: int,
    policy: CallPolicy,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Delay before attempt `attempt + 1` under `policy`; a Retry-After wins, within reason."""
    delay = Backoff.of(policy).delay(attempt, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.backoff_max_s * 4))
    return delay
