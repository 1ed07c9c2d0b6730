"""Backoff arithmetic and the transient/permanent decision, shared by every retry loop."""

from __future__ import annotations

import asyncio
import random

from printforge.runtime.errors import (
    CircuitOpen,
    PermanentError,
    PrintforgeError,
    RateLimited,
    TransientError,
)
from printforge.runtime.policy import CallPolicy

__all__ = ["backoff_delay", "is_transient", "retry_after_of"]


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


def backoff_delay(
    attempt: int,
    policy: CallPolicy,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Delay before attempt `attempt + 1`: exponential, capped, jittered; Retry-After wins."""
    base = policy.backoff_initial_s * policy.backoff_multiplier ** max(0, attempt - 1)
    base = min(base, policy.backoff_max_s)
    r = (rng or random).random()
    # "Equal jitter": keep (1 - jitter) of the delay, randomise the rest, so retries spread out.
    delay = base * (1 - policy.jitter) + base * policy.jitter * r
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.backoff_max_s * 4))
    return delay
