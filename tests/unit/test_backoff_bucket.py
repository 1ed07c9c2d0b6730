"""The one backoff formula and the one token bucket (runtime/retry.py, runtime/bucket.py)."""

from __future__ import annotations

import random

import pytest

from printforge.runtime.bucket import TokenBucket
from printforge.runtime.policy import CallPolicy
from printforge.runtime.retry import Backoff, backoff_delay


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize("attempt", [1, 3, 10])
def test_equal_jitter_keeps_the_unjittered_share(attempt: int) -> None:
    backoff, plain = Backoff(1.0, 20.0, jitter=0.5), Backoff(1.0, 20.0)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng) for _ in range(200)]
    base = plain.delay(attempt)
    assert all(base / 2 <= d <= base for d in delays)
    assert len(set(delays)) > 100  # spread out, not in lockstep


def test_policy_backoff_lets_retry_after_win_within_four_caps() -> None:
    policy = CallPolicy(backoff_initial_s=1.0, backoff_max_s=2.0, jitter=0.0)
    assert backoff_delay(1, policy) == 1.0
    assert backoff_delay(1, policy, retry_after=5.0) == 5.0
    assert backoff_delay(1, policy, retry_after=60.0) == 8.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_to_capacity_and_tells_the_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(capacity=10, rate_per_s=2.0, clock=clock)
    assert bucket.try_take(10) == 0.0
    assert bucket.try_take(4) == 2.0  # nothing taken on refusal
    clock.now += 1.0
    assert bucket.available == 2.0
    clock.now += 100.0
    assert bucket.full
    bucket.take(15)  # debt: the real amount was known only afterwards
    assert bucket.wait_for(1) == 3.0
    bucket.give_back(100)
    assert bucket.available == 10.0
