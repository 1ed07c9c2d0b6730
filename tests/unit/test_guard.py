"""The runtime guard under injected faults: retry, backoff, breaker, timeout, health, metrics."""

from __future__ import annotations

import asyncio
import random

import pytest

from printforge.runtime import metrics
from printforge.runtime.breaker import BreakerState, CircuitBreaker
from printforge.runtime.errors import (
    CircuitOpen,
    ConnectionLost,
    InputError,
    OperationTimeout,
    PermanentError,
    RateLimited,
)
from printforge.runtime.guard import Guard
from printforge.runtime.health import HealthRegistry, HealthState
from printforge.runtime.policy import CallPolicy
from printforge.runtime.retry import backoff_delay, is_transient


class Flaky:
    """Fails with the given errors in order, then returns 'ok'. Counts calls."""

    def __init__(self, *errors: BaseException, delay: float = 0.0) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.delay = delay

    async def __call__(self, attempt: int) -> str:
        self.calls += 1
        assert attempt == self.calls
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make(policy: CallPolicy, name: str = "t") -> tuple[Guard, Sleeps, HealthRegistry]:
    sleeps = Sleeps()
    health = HealthRegistry()
    guard = Guard(name, policy, health, sleep=sleeps, rng=random.Random(1))
    return guard, sleeps, health


POLICY = CallPolicy(
    timeout_s=5,
    max_attempts=4,
    backoff_initial_s=0.1,
    backoff_multiplier=2,
    backoff_max_s=1.0,
    jitter=0.5,
    breaker_failure_threshold=10,
)


@pytest.mark.asyncio
async def test_transient_errors_are_retried_with_growing_backoff() -> None:
    guard, sleeps, health = make(POLICY, "retry-ok")
    fn = Flaky(ConnectionLost("link down"), TimeoutError(), ConnectionLost("again"))
    assert await guard.call(fn) == "ok"
    assert fn.calls == 4
    assert len(sleeps.delays) == 3
    # Equal jitter: each delay lies in [base/2, base] and the bases double.
    for delay, base in zip(sleeps.delays, (0.1, 0.2, 0.4), strict=True):
        assert base * 0.5 <= delay <= base
    record = health.get("retry-ok")
    assert record.state is HealthState.HEALTHY
    assert record.failures == 3
    assert record.consecutive_failures == 0


@pytest.mark.asyncio
async def test_permanent_errors_are_not_retried() -> None:
    guard, sleeps, health = make(POLICY, "perm")
    fn = Flaky(PermanentError("broken"))
    with pytest.raises(PermanentError):
        await guard.call(fn)
    assert fn.calls == 1
    assert sleeps.delays == []
    assert health.get("perm").last_error == "PermanentError: broken"


@pytest.mark.asyncio
async def test_unknown_exceptions_are_bugs_not_retried() -> None:
    guard, _sleeps, _ = make(POLICY)
    fn = Flaky(ZeroDivisionError("oops"))
    with pytest.raises(ZeroDivisionError):
        await guard.call(fn)
    assert fn.calls == 1


@pytest.mark.asyncio
async def test_attempts_run_out() -> None:
    guard, _sleeps, health = make(POLICY, "gives-up")
    fn = Flaky(*(ConnectionLost(f"down {i}") for i in range(10)))
    with pytest.raises(ConnectionLost, match="down 3"):
        await guard.call(fn)
    assert fn.calls == POLICY.max_attempts
    assert health.get("gives-up").state is HealthState.UNHEALTHY


@pytest.mark.asyncio
async def test_retry_after_is_honoured() -> None:
    guard, sleeps, _ = make(POLICY)
    fn = Flaky(RateLimited("slow down", retry_after=2.5))
    await guard.call(fn)
    assert sleeps.delays == [2.5]


@pytest.mark.asyncio
async def test_timeout_becomes_operation_timeout_and_is_retried() -> None:
    policy = POLICY.model_copy(update={"timeout_s": 0.05, "max_attempts": 2})
    guard, _sleeps, health = make(policy, "slow")
    fn = Flaky(delay=1.0)
    with pytest.raises(OperationTimeout, match=r"did not finish within 0\.05 s"):
        await guard.call(fn)
    assert fn.calls == 2
    assert "OperationTimeout" in (health.get("slow").last_error or "")


@pytest.mark.asyncio
async def test_input_errors_do_not_trip_the_breaker_or_health() -> None:
    policy = POLICY.model_copy(update={"breaker_failure_threshold": 1})
    guard, _, health = make(policy, "refuses")
    for _ in range(3):
        with pytest.raises(InputError):
            await guard.call(Flaky(InputError("a cube of -3 mm")))
    assert guard.breaker.state is BreakerState.CLOSED
    assert health.get("refuses").state is HealthState.HEALTHY


@pytest.mark.asyncio
async def test_breaker_opens_and_refuses_without_calling() -> None:
    policy = POLICY.model_copy(
        update={"max_attempts": 1, "breaker_failure_threshold": 3, "breaker_reset_s": 60}
    )
    guard, _, _ = make(policy, "opens")
    for _ in range(3):
        with pytest.raises(ConnectionLost):
            await guard.call(Flaky(ConnectionLost("down")))
    assert guard.breaker.state is BreakerState.OPEN
    fn = Flaky()
    with pytest.raises(CircuitOpen) as err:
        await guard.call(fn)
    assert fn.calls == 0
    assert 0 < (err.value.retry_after or 0) <= 60
    text = metrics.render().decode()
    assert 'printforge_agent_calls_total{agent="opens",outcome="circuit_open"} 1.0' in text
    assert 'printforge_breaker_state{name="agent/opens"} 2.0' in text


def test_breaker_half_open_trial_closes_or_reopens() -> None:
    now = [0.0]
    b = CircuitBreaker("b", threshold=2, reset_s=10, clock=lambda: now[0])
    b.on_failure()
    b.on_failure()
    assert b.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        b.before_call()
    now[0] = 10.0
    assert b.state is BreakerState.HALF_OPEN
    b.before_call()  # the one trial call
    with pytest.raises(CircuitOpen, match="half-open"):
        b.before_call()  # no second caller while the trial runs
    b.on_failure()
    assert b.state is BreakerState.OPEN
    now[0] = 20.0
    b.before_call()
    b.on_success()
    assert b.state is BreakerState.CLOSED
    b.before_call()


def test_backoff_is_capped_and_decided_by_type() -> None:
    policy = CallPolicy(backoff_initial_s=1, backoff_multiplier=10, backoff_max_s=5, jitter=0)
    assert [backoff_delay(n, policy) for n in (1, 2, 3)] == [1, 5, 5]
    assert is_transient(ConnectionLost("x"))
    assert is_transient(ConnectionResetError())
    assert is_transient(TimeoutError())
    assert not is_transient(InputError("x"))
    assert not is_transient(ValueError("x"))


class FixedRandom(random.Random):
    """A random source that returns the values given, so the jitter can be pinned down."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def test_jitter_spreads_the_delay_between_its_bounds() -> None:
    # Without jitter every client retries in lockstep; the delay must depend on the draw.
    policy = CallPolicy(backoff_initial_s=1, backoff_multiplier=2, backoff_max_s=60, jitter=0.5)
    assert backoff_delay(2, policy, rng=FixedRandom(0.0)) == pytest.approx(1.0)
    assert backoff_delay(2, policy, rng=FixedRandom(1.0)) == pytest.approx(2.0)
    assert backoff_delay(2, policy, rng=FixedRandom(0.5)) == pytest.approx(1.5)
    full = policy.model_copy(update={"jitter": 1.0})
    assert backoff_delay(1, full, rng=FixedRandom(0.25)) == pytest.approx(0.25)


@pytest.mark.asyncio
async def test_retries_stop_when_the_breaker_opens_and_keep_the_real_error() -> None:
    # Retrying into an open breaker only turns "connection refused" into "circuit open".
    policy = POLICY.model_copy(update={"max_attempts": 5, "breaker_failure_threshold": 2})
    guard, sleeps, _ = make(policy, "trips")
    fn = Flaky(*(ConnectionLost(f"refused {i}") for i in range(5)))
    with pytest.raises(ConnectionLost, match="refused 1"):
        await guard.call(fn)
    assert fn.calls == 2
    assert len(sleeps.delays) == 1
    assert guard.breaker.state is BreakerState.OPEN
