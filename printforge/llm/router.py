"""The one LLM routing layer: ordered fallbacks, retries, breakers, rate limits, budgets, cache.

Every agent that needs a model calls `LLMRouter.complete`. It is the only retry loop (SDK retries
are off): it honours Retry-After, backs off with jitter, takes a failing provider out of rotation
with a circuit breaker (an open breaker costs no network round trip), waits briefly for its own
token buckets, refuses calls that would cross a USD budget, and caches answers that validated.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printforge.llm.base import LLMProvider, LLMRequest, LLMResponse, ProviderUnavailable
from printforge.llm.cache import ResponseCache, cache_key
from printforge.llm.config import LLMSettings, ProviderSettings
from printforge.llm.limits import Reservation, SpendLedger, TokenBucket, price_of
from printforge.llm.schema import schema_fingerprint
from printforge.runtime import metrics
from printforge.runtime.breaker import BreakerState, CircuitBreaker
from printforge.runtime.errors import (
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    InputError,
    OperationTimeout,
    PrintforgeError,
    RateLimited,
)
from printforge.runtime.health import HealthRegistry
from printforge.runtime.retry import Backoff, is_transient, retry_after_of

__all__ = ["LLMRouter", "ProviderSlot", "Validator"]

log = logging.getLogger(__name__)

# Checks an answer object; returns readable problems (empty when it is fine).
Validator = Callable[[dict[str, Any]], list[str]]

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
_FREE_KINDS = {"offline", "openai_compatible"}


def _outcome(err: BaseException) -> str:
    if isinstance(err, CircuitOpen):
        return "circuit_open"
    if isinstance(err, RateLimited):
        return "rate_limited"
    if isinstance(err, OperationTimeout):
        return "timeout"
    if isinstance(err, BudgetExceeded):
        return "over_budget"
    if isinstance(err, InputError):
        return "refused"
    return "error"


@dataclass
class ProviderSlot:
    """A provider and the router's state about it."""

    provider: LLMProvider
    breaker: CircuitBreaker
    requests: TokenBucket | None
    tokens: TokenBucket | None
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.provider.name

    def count(self, outcome: str) -> None:
        self.stats[outcome] = self.stats.get(outcome, 0) + 1


class LLMRouter:
    """Routes structured-output requests across the configured providers."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        health: HealthRegistry | None = None,
        data_dir: Path | None = None,
        providers: dict[str, LLMProvider] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.health = health or HealthRegistry()
        spend_path = (
            data_dir / settings.spend_file if data_dir is not None and settings.spend_file else None
        )
        self.ledger = SpendLedger(
            settings.budget_per_job_usd, settings.budget_per_day_usd, spend_path
        )
        self.cache = ResponseCache(settings.cache, health=self.health, clock=clock)
        self._given = dict(providers or {})
        self._slots: dict[str, ProviderSlot] = {}
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._backoff = Backoff(
            settings.backoff_initial_s, settings.backoff_max_s, jitter=settings.jitter
        )

    # -- providers ---------------------------------------------------------------------------
    def provider_settings(self, name: str) -> ProviderSettings:
        if name in self.settings.provider:
            return self.settings.provider[name]
        if name in self._given:
            return self._given[name].settings
        if name == "offline":
            return ProviderSettings(kind="offline")
        known = sorted({*self.settings.provider, *self._given, "offline"})
        raise ConfigError(f"unknown LLM provider {name!r} (configured: {', '.join(known)})")

    def slot(self, name: str) -> ProviderSlot:
        found = self._slots.get(name)
        if found is not None:
            return found
        cfg = self.provider_settings(name)
        if name in self._given:
            provider = self._given[name]
        else:
            from printforge.llm.base import load_provider

            provider = load_provider(name, cfg)
        slot = ProviderSlot(
            provider=provider,
            breaker=CircuitBreaker(
                f"llm {name}",
                self.settings.breaker_failure_threshold,
                self.settings.breaker_reset_s,
                clock=self._clock,
            ),
            requests=TokenBucket(cfg.requests_per_minute, self._clock)
            if cfg.requests_per_minute
            else None,
            tokens=TokenBucket(cfg.tokens_per_minute, self._clock)
            if cfg.tokens_per_minute
            else None,
        )
        self._slots[name] = slot
        return slot

    # -- the call ----------------------------------------------------------------------------
    async def complete(
        self,
        request: LLMRequest,
        *,
        order: list[str] | None = None,
        validate: Validator | None = None,
    ) -> LLMResponse:
        """The first good answer along `order` (default: settings.providers).

        Raises InputError when the last word was a provider that could not understand the request,
        BudgetExceeded when budgets stopped every provider, ProviderUnavailable otherwise.
        """
        names = [n.strip() for n in (order or self.settings.providers) if n.strip()]
        if not names:
            raise ConfigError("no LLM providers given")
        reasons: list[str] = []
        errors: list[PrintforgeError] = []
        for index, name in enumerate(names):
            cfg = self.provider_settings(name)
            if not cfg.enabled:
                reasons.append(f"{name}: disabled in config")
                continue
            try:
                last = index == len(names) - 1
                response = await self._call(self.slot(name), request, validate, last=last)
            except PrintforgeError as err:
                if isinstance(err, ConfigError):
                    raise
                said = err.message
                reasons.append(said if said.startswith(f"{name}:") else f"{name}: {said}")
                errors.append(err)
                log.info("LLM provider %s failed over: %s", name, type(err).__name__)
                continue
            response.fallbacks = reasons
            return response
        raise self._final_error(errors, reasons)

    @staticmethod
    def _final_error(errors: list[PrintforgeError], reasons: list[str]) -> PrintforgeError:
        others = "; ".join(reasons)
        refusal = next((e for e in reversed(errors) if isinstance(e, InputError)), None)
        if refusal is not None:
            rest = [r for r, e in zip(reasons, errors, strict=False) if e is not refusal]
            tail = f" (other providers: {'; '.join(rest)})" if rest else ""
            return InputError(refusal.message + tail, code=refusal.code)
        if errors and all(isinstance(e, BudgetExceeded) for e in errors):
            return BudgetExceeded(f"every LLM provider is over budget: {others}")
        return ProviderUnavailable(f"no LLM provider could answer: {others}")

    def _estimate(self, slot: ProviderSlot, model: str, request: LLMRequest) -> tuple[int, float]:
        chars = len(request.system) + sum(len(m.content) for m in request.messages)
        chars += schema_fingerprint(request.json_schema)[1]
        tokens_in = chars // 4 + 16
        if slot.provider.settings.kind == "offline":
            return 0, 0.0
        cost = price_of(self.settings.prices, model, tokens_in, request.max_tokens)
        if cost is None and slot.provider.settings.kind not in _FREE_KINDS:
            # A paid model without a price would run outside both budgets and report $0: refuse
            # it (the next provider is tried) rather than spend money nobody can see.
            raise BudgetExceeded(
                f"{slot.name}: no price for model {model!r} in [llm.prices], so its spend cannot"
                f' be held to the budget; add "{model}" = {{ input = ..., output = ... }}'
                " (USD per million tokens) under [llm.prices]"
            )
        return tokens_in + request.max_tokens, cost or 0.0

    async def _admit(
        self, slot: ProviderSlot, request: LLMRequest, tokens: int, cost: float, last: bool
    ) -> Reservation:
        """Budgets and token buckets; raises instead of waiting long, unless `last`.

        The worst-case cost is reserved in the shared ledger last, after any wait, so another
        process's spend during the wait is seen; `_call` settles or releases it.
        """
        self.ledger.check(request.job_id, cost, slot.name)
        wait = 0.0
        if slot.requests is not None:
            wait = slot.requests.wait_for(1)
        if slot.tokens is not None and tokens:
            wait = max(wait, slot.tokens.wait_for(tokens))
        # Failing over beats waiting only when there is somewhere to go: the last provider in the
        # order (a repair round, `--provider anthropic` alone) waits for its own bucket instead,
        # which refills within a minute by construction.
        if wait > self.settings.max_rate_wait_s and not last:
            raise RateLimited(
                f"{slot.name}: local rate limit reached, {wait:.1f} s until capacity",
                retry_after=wait,
            )
        if wait > 0:
            if wait > self.settings.max_rate_wait_s:
                log.info("LLM provider %s: waiting %.1f s for its rate limit", slot.name, wait)
            await self._sleep(wait)
        reservation = self.ledger.reserve(request.job_id, cost, slot.name)
        if slot.requests is not None:
            slot.requests.take(1)
        if slot.tokens is not None and tokens:
            slot.tokens.take(tokens)
        return reservation

    def _publish(self, slot: ProviderSlot) -> None:
        state = slot.breaker.state
        metrics.BREAKER_STATE.labels(f"llm/{slot.name}").set(_BREAKER_VALUE[state])
        self.health.get(slot.name, "llm").breaker = state.value

    async def _call(
        self, slot: ProviderSlot, request: LLMRequest, validate: Validator | None, last: bool
    ) -> LLMResponse:
        provider = slot.provider
        if request.model_provider is not None and request.model_provider != slot.name:
            # A model named for one provider means nothing to another.
            request = request.model_copy(update={"model": None, "model_provider": None})
        model = provider.model_for(request)
        key = cache_key(slot.name, model, request)
        hit = await self.cache.get(key)
        if hit is not None:
            slot.count("cache_hit")
            metrics.LLM_CALLS.labels(slot.name, model, "cache_hit").inc()
            # A hit spends nothing: no tokens, no dollars (the job report adds these up).
            return hit.model_copy(
                update={"cost_usd": 0.0, "latency_s": 0.0, "tokens_in": 0, "tokens_out": 0}
            )
        timeout = provider.settings.timeout_s + 1.0
        attempt = 0
        while True:
            attempt += 1
            try:
                slot.breaker.before_call()
            except CircuitOpen:
                slot.count("circuit_open")
                metrics.LLM_CALLS.labels(slot.name, model, "circuit_open").inc()
                self._publish(slot)
                raise
            try:
                tokens, estimate = self._estimate(slot, model, request)
                reservation = await self._admit(slot, request, tokens, estimate, last)
            except PrintforgeError as err:
                slot.breaker.on_neutral()
                slot.count(_outcome(err))
                metrics.LLM_CALLS.labels(slot.name, model, _outcome(err)).inc()
                raise
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    response = await provider.complete(request)
            except asyncio.CancelledError:
                slot.breaker.on_neutral()
                self.ledger.settle(reservation, slot.name, 0.0)
                raise
            except Exception as raw:
                # Failed calls are not charged (as before); the reservation is given back.
                self.ledger.settle(reservation, slot.name, 0.0)
                elapsed = time.perf_counter() - started
                err = self._translate(raw, slot.name, timeout)
                if slot.tokens is not None and tokens:
                    slot.tokens.give_back(tokens)
                delay = self._on_failure(slot, model, err, elapsed, attempt)
                if delay is None:
                    if err is raw:
                        raise
                    raise err from raw
                await self._sleep(delay)
                continue
            elapsed = time.perf_counter() - started
            return await self._on_success(
                slot, request, response, key, elapsed, tokens, validate, reservation, model
            )

    @staticmethod
    def _translate(raw: Exception, name: str, timeout: float) -> Exception:
        if isinstance(raw, TimeoutError) and not isinstance(raw, OperationTimeout):
            return OperationTimeout(f"{name}: no answer within {timeout:g} s")
        if isinstance(raw, PrintforgeError):
            return raw
        # A provider bug or an SDK error we did not map: one line, the type only (no payloads).
        return ProviderUnavailable(f"{name}: unexpected {type(raw).__name__}")

    def _on_failure(
        self, slot: ProviderSlot, model: str, err: Exception, elapsed: float, attempt: int
    ) -> float | None:
        """Record a failed attempt; the delay before the next one, or None to give up here."""
        outcome = _outcome(err)
        slot.count(outcome)
        metrics.LLM_CALLS.labels(slot.name, model, outcome).inc()
        metrics.LLM_LATENCY.labels(slot.name, model).observe(elapsed)
        if isinstance(err, InputError):
            # The provider worked and said the request makes no sense: not a health problem.
            slot.breaker.on_neutral()
            return None
        slot.breaker.on_failure()
        self.health.record_failure(
            slot.name,
            f"{type(err).__name__}: {err}",
            component="llm",
            unhealthy_after=self.settings.breaker_failure_threshold,
        )
        self._publish(slot)
        if not is_transient(err) or attempt >= self.settings.max_attempts:
            return None
        if slot.breaker.state is not BreakerState.CLOSED:
            return None
        retry_after = retry_after_of(err)
        if retry_after is not None and retry_after > self.settings.max_retry_after_s:
            return None  # another provider now beats waiting this long
        delay = self._backoff.delay(attempt, self._rng)
        # The server's Retry-After is a floor, not a hint (bounded above by max_retry_after_s).
        return max(delay, retry_after) if retry_after is not None else delay

    async def _on_success(
        self,
        slot: ProviderSlot,
        request: LLMRequest,
        response: LLMResponse,
        key: str,
        elapsed: float,
        reserved_tokens: int,
        validate: Validator | None,
        reservation: Reservation,
        asked: str,
    ) -> LLMResponse:
        name, model = slot.name, response.model
        slot.breaker.on_success()
        self.health.record_success(name, elapsed, component="llm")
        self._publish(slot)
        if slot.tokens is not None and reserved_tokens:
            used = response.tokens_in + response.tokens_out
            slot.tokens.give_back(max(0, reserved_tokens - used))
        cost = price_of(self.settings.prices, model, response.tokens_in, response.tokens_out)
        if cost is None:
            # An answer from a model name the table does not know (an alias resolved by the
            # provider) is priced as the model that was asked for, never as free.
            cost = price_of(self.settings.prices, asked, response.tokens_in, response.tokens_out)
        cost = cost or 0.0
        self.ledger.settle(reservation, name, cost)
        metrics.LLM_LATENCY.labels(name, model).observe(elapsed)
        metrics.LLM_TOKENS.labels(name, model, "input").inc(response.tokens_in)
        metrics.LLM_TOKENS.labels(name, model, "output").inc(response.tokens_out)
        if cost:
            metrics.LLM_COST.labels(name, model).inc(cost)
        problems: list[str] = []
        if response.data is not None and response.parse_error is None and validate is not None:
            # The CAD agent's pre-build checks (shapely outlines): tens of ms off the loop.
            problems = await asyncio.to_thread(validate, response.data)
        outcome = "success" if response.parse_error is None and not problems else "invalid"
        slot.count(outcome)
        metrics.LLM_CALLS.labels(name, model, outcome).inc()
        response = response.model_copy(
            update={"cost_usd": cost, "latency_s": elapsed, "problems": problems}
        )
        if response.ok:
            await self.cache.put(key, response)
        return response

    # -- introspection -----------------------------------------------------------------------
    async def probe(self, name: str) -> str | None:
        """Check one provider with a free call; None when it works, else the reason."""
        slot = self.slot(name)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(slot.provider.settings.timeout_s):
                await slot.provider.probe()
        except Exception as raw:
            err = self._translate(raw, name, slot.provider.settings.timeout_s)
            self.health.record_failure(name, f"{type(err).__name__}: {err}", component="llm")
            return str(err)
        self.health.record_success(name, time.perf_counter() - started, component="llm")
        return None

    def status(self) -> list[dict[str, Any]]:
        """Each configured provider: kind, model, health, breaker, limits, spend, call counts."""
        rows = []
        names = list(dict.fromkeys([*self.settings.providers, *self.settings.provider]))
        for name in names:
            cfg = self.provider_settings(name)
            slot = self._slots.get(name)
            record = self.health.get(name, "llm")
            rows.append(
                {
                    "name": name,
                    "kind": cfg.kind,
                    "model": cfg.model or ("rules-v1" if cfg.kind == "offline" else None),
                    "escalation_model": cfg.escalation_model,
                    "enabled": cfg.enabled,
                    "in_order": name in self.settings.providers,
                    "health": record.state.value,
                    "last_error": record.last_error,
                    "breaker": slot.breaker.state.value if slot else BreakerState.CLOSED.value,
                    "requests_per_minute": cfg.requests_per_minute,
                    "tokens_per_minute": cfg.tokens_per_minute,
                    "spend_usd": round(self.ledger.provider_usd(name), 6),
                    # Paid models the price table lacks: calls to them are refused.
                    "unpriced_models": self._unpriced(cfg),
                    "calls": dict(slot.stats) if slot else {},
                }
            )
        return rows

    def _unpriced(self, cfg: ProviderSettings) -> list[str]:
        """The configured paid models the price table lacks (the router refuses calls to them)."""
        if cfg.kind in _FREE_KINDS:
            return []
        models = [m for m in (cfg.model, cfg.escalation_model) if m]
        return [m for m in models if price_of(self.settings.prices, m, 0, 0) is None]

    async def close(self) -> None:
        for slot in self._slots.values():
            await slot.provider.close()
        await self.cache.close()
