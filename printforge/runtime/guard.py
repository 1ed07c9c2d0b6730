"""The one wrapper every agent call runs through.

Timeout, retry with backoff, circuit breaker, health and metrics, in one place.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from printforge.runtime import metrics
from printforge.runtime.breaker import BreakerState, CircuitBreaker
from printforge.runtime.errors import (
    CircuitOpen,
    InputError,
    OperationTimeout,
    UnsafeGcode,
)
from printforge.runtime.health import HealthRegistry
from printforge.runtime.policy import CallPolicy
from printforge.runtime.retry import backoff_delay, is_transient, retry_after_of

__all__ = ["Guard", "RetryListener"]

log = logging.getLogger(__name__)
T = TypeVar("T")
RetryListener = Callable[[int, BaseException, float], None]

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
# Refusals that prove the callee works: they must not trip the breaker or mark it unhealthy.
_NEUTRAL = (InputError, UnsafeGcode)


class Guard:
    """Guards calls to one named component under one policy."""

    def __init__(
        self,
        name: str,
        policy: CallPolicy,
        health: HealthRegistry,
        *,
        component: str = "agent",
        target: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.health = health
        self.component = component
        # What the breaker protects when that is narrower than the agent: one printer of many
        # (its breaker is its own; health and call metrics stay the agent's).
        self.target = target
        self.breaker = CircuitBreaker(
            f"{component} {name}" + (f" on {target}" if target else ""),
            policy.breaker_failure_threshold,
            policy.breaker_reset_s,
        )
        self._sleep = sleep
        self._rng = rng

    def _publish_breaker(self) -> None:
        state = self.breaker.state
        label = f"{self.component}/{self.name}" + (f"/{self.target}" if self.target else "")
        metrics.BREAKER_STATE.labels(label).set(_BREAKER_VALUE[state])
        self.health.get(self.name, self.component).breaker = state.value

    async def call(
        self,
        fn: Callable[[int], Awaitable[T]],
        *,
        on_retry: RetryListener | None = None,
    ) -> T:
        """Run `fn(attempt)` until it succeeds, fails permanently or the attempts run out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self.breaker.before_call()
            except CircuitOpen:
                metrics.AGENT_CALLS.labels(self.name, "circuit_open").inc()
                self._publish_breaker()
                raise
            metrics.AGENT_ATTEMPTS.labels(self.name).inc()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.policy.timeout_s):
                    result = await fn(attempt)
            except asyncio.CancelledError:
                self.breaker.on_neutral()
                metrics.AGENT_CALLS.labels(self.name, "cancelled").inc()
                raise
            except Exception as raw:
                elapsed = time.perf_counter() - started
                metrics.AGENT_LATENCY.labels(self.name).observe(elapsed)
                err: BaseException = raw
                if isinstance(raw, TimeoutError) and not isinstance(raw, OperationTimeout):
                    err = OperationTimeout(
                        f"{self.name} did not finish within {self.policy.timeout_s:g} s"
                    )
                    err.__cause__ = raw
                if isinstance(err, _NEUTRAL):
                    self.breaker.on_neutral()
                    metrics.AGENT_CALLS.labels(self.name, "refused").inc()
                    raise
                self.breaker.on_failure()
                self.health.record_failure(
                    self.name, f"{type(err).__name__}: {err}", component=self.component
                )
                self._publish_breaker()
                transient = is_transient(err)
                # This failure opened the breaker: another attempt would only be refused, and
                # the caller would see "circuit open" instead of what actually went wrong.
                tripped = self.breaker.state is BreakerState.OPEN
                if not transient or tripped or attempt >= self.policy.max_attempts:
                    outcome = "timeout" if isinstance(err, OperationTimeout) else "failure"
                    metrics.AGENT_CALLS.labels(self.name, outcome).inc()
                    if err is raw:
                        raise
                    raise err from raw
                delay = backoff_delay(
                    attempt, self.policy, retry_after=retry_after_of(err), rng=self._rng
                )
                log.info(
                    "%s attempt %d failed (%s); retrying in %.2f s",
                    self.name,
                    attempt,
                    type(err).__name__,
                    delay,
                )
                if on_retry is not None:
                    on_retry(attempt, err, delay)
                await self._sleep(delay)
                continue
            elapsed = time.perf_counter() - started
            metrics.AGENT_LATENCY.labels(self.name).observe(elapsed)
            metrics.AGENT_CALLS.labels(self.name, "success").inc()
            self.breaker.on_success()
            self.health.record_success(
                self.name, elapsed, component=self.component, slow_s=self.policy.slow_call_s
            )
            self._publish_breaker()
            return result
