"""The router's policy with scripted in-process providers: order, retries, breaker, limits, budgets,
cache and escalation. Scripted providers stand in for networks here because these tests are about
decisions, not wire formats (those are covered against the fake server in tests/integration)."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from printforge.llm.base import LLMMessage, LLMRequest, LLMResponse, ProviderUnavailable
from printforge.llm.config import CacheSettings, LLMSettings, ProviderSettings
from printforge.llm.limits import SpendLedger, TokenBucket, price_of
from printforge.llm.router import LLMRouter
from printforge.runtime import metrics
from printforge.runtime.errors import (
    AuthError,
    BudgetExceeded,
    ConfigError,
    InputError,
    RateLimited,
)
from printforge.runtime.health import HealthRecord, HealthState


class Scripted:
    """A provider whose outcomes are a queue: an exception to raise or a dict to answer with."""

    def __init__(self, name: str, *outcomes: Any, kind: str = "openai", **cfg: Any) -> None:
        self.name = name
        self.kind = kind
        self.settings = ProviderSettings(kind=kind, model=f"{name}-small", **cfg)  # type: ignore[arg-type]
        self.outcomes: deque[Any] = deque(outcomes)
        self.calls: list[LLMRequest] = []
        self.models: list[str] = []

    def model_for(self, request: LLMRequest) -> str:
        if request.model:
            return request.model
        if request.escalate and self.settings.escalation_model:
            return self.settings.escalation_model
        return self.settings.model or "m"

    def health(self) -> HealthRecord:
        return HealthRecord(name=self.name, component="llm")

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls.append(request)
        model = self.model_for(request)
        self.models.append(model)
        outcome = self.outcomes.popleft() if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return LLMResponse(
            provider=self.name,
            model=model,
            text="{}",
            data=outcome,
            tokens_in=1000,
            tokens_out=500,
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(text: str = "a cube", **kw: Any) -> LLMRequest:
    return LLMRequest(
        system="sys",
        messages=[LLMMessage(role="user", content=text)],
        json_schema={"type": "object"},
        text=text,
        **kw,
    )


def make_router(
    *providers: Scripted, clock: Clock | None = None, **llm: Any
) -> tuple[LLMRouter, list[float]]:
    slept: list[float] = []
    clk = clock or Clock()

    async def sleep(s: float) -> None:
        slept.append(s)
        clk.now += s

    # Every scripted model has a price (an unpriced paid model is refused); "a" is the one whose
    # costs the tests check.
    prices = {f"{p.name}-": {"input": 0.5, "output": 1.0} for p in providers}
    prices |= {"a-small": {"input": 1.0, "output": 2.0}, "a-big": {"input": 10.0, "output": 20.0}}
    settings = LLMSettings(
        providers=[p.name for p in providers],
        prices=llm.pop("prices", prices),
        cache=CacheSettings(enabled=llm.pop("cache", False)),
        **llm,
    )
    router = LLMRouter(
        settings,
        providers={p.name: p for p in providers},
        sleep=sleep,
        clock=clk,
        rng=random.Random(1),
    )
    return router, slept


def calls_metric(provider: str, model: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "printforge_llm_calls_total", {"provider": provider, "model": model, "outcome": outcome}
    )
    return value or 0.0


@pytest.mark.asyncio
async def test_first_provider_answers_and_cost_is_priced() -> None:
    a = Scripted("a", {"x": 1})
    router, _ = make_router(a)
    r = await router.complete(request())
    assert (r.provider, r.model, r.data) == ("a", "a-small", {"x": 1})
    assert r.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert router.ledger.provider_usd("a") == pytest.approx(r.cost_usd)
    assert r.fallbacks == []


@pytest.mark.asyncio
async def test_retry_after_is_honoured_then_success() -> None:
    a = Scripted("a", RateLimited("429", retry_after=3.0), {"x": 1})
    router, slept = make_router(a, max_attempts=2)
    r = await router.complete(request())
    assert r.data == {"x": 1}
    assert slept and slept[0] >= 3.0  # waited at least what the server asked
    assert len(a.calls) == 2


@pytest.mark.asyncio
async def test_long_retry_after_fails_over_instead_of_waiting() -> None:
    a = Scripted("a", RateLimited("429", retry_after=120.0))
    b = Scripted("b", {"y": 2})
    router, slept = make_router(a, b, max_attempts=3, max_retry_after_s=20)
    r = await router.complete(request())
    assert r.provider == "b" and len(a.calls) == 1 and slept == []
    assert "a: 429" in r.fallbacks[0]


@pytest.mark.asyncio
async def test_breaker_opens_and_then_costs_no_call() -> None:
    a = Scripted("a", ProviderUnavailable("a: 500"))
    b = Scripted("b", {"y": 2})
    router, _ = make_router(a, b, max_attempts=2, breaker_failure_threshold=2)
    before = calls_metric("a", "a-small", "circuit_open")
    await router.complete(request())
    assert len(a.calls) == 2  # bounded: max_attempts, and the breaker opened on the second
    for _ in range(5):
        r = await router.complete(request())
        assert r.provider == "b"
    assert len(a.calls) == 2  # open breaker: no further call reached the provider
    assert calls_metric("a", "a-small", "circuit_open") - before == 5
    assert router.status()[0]["breaker"] == "open"
    assert router.health.get("a", "llm").state is not HealthState.HEALTHY


@pytest.mark.asyncio
async def test_breaker_half_opens_after_cooldown() -> None:
    clock = Clock()
    a = Scripted("a", ProviderUnavailable("down"), {"ok": 1})
    router, _ = make_router(
        a,
        Scripted("b", {"y": 1}),
        clock=clock,
        max_attempts=1,
        breaker_failure_threshold=1,
        breaker_reset_s=30,
    )
    assert (await router.complete(request())).provider == "b"
    assert (await router.complete(request())).provider == "b"
    assert len(a.calls) == 1
    clock.now += 31
    assert (await router.complete(request())).provider == "a"


@pytest.mark.asyncio
async def test_auth_error_is_not_retried() -> None:
    a = Scripted("a", AuthError("a: key refused"))
    router, slept = make_router(a, Scripted("b", {"y": 1}), max_attempts=3)
    r = await router.complete(request())
    assert r.provider == "b" and len(a.calls) == 1 and slept == []


@pytest.mark.asyncio
async def test_all_fail_raises_unavailable_with_every_reason() -> None:
    a = Scripted("a", ProviderUnavailable("a: 500"))
    b = Scripted("b", AuthError("b: no key"))
    router, _ = make_router(a, b, max_attempts=1)
    with pytest.raises(ProviderUnavailable, match=r"a: 500.*b: no key"):
        await router.complete(request())


@pytest.mark.asyncio
async def test_refusal_from_last_provider_wins_and_is_neutral_for_breaker() -> None:
    a = Scripted("a", ProviderUnavailable("a: 500"))
    off = Scripted("off", InputError("cannot design: understood nothing"), kind="offline")
    router, _ = make_router(a, off, max_attempts=1, breaker_failure_threshold=1)
    for _ in range(3):
        with pytest.raises(InputError, match=r"understood nothing.*other providers: a: "):
            await router.complete(request())
    assert len(off.calls) == 3 and router.slot("off").breaker.state == "closed"


@pytest.mark.asyncio
async def test_job_budget_refuses_before_calling() -> None:
    a = Scripted("a", {"x": 1})
    router, _ = make_router(a, budget_per_job_usd=0.0001)
    with pytest.raises(BudgetExceeded, match="per-job LLM budget"):
        await router.complete(request(job_id="j1"))
    assert a.calls == []


def test_budget_refusal_shows_small_budgets_and_says_what_to_do() -> None:
    ledger = SpendLedger(0.001, 10.0)
    with pytest.raises(BudgetExceeded) as caught:
        ledger.check("j", 0.0032, "openai")
    text = caught.value.message
    assert "per-job LLM budget of $0.001 " in text and "may cost $0.0032" in text
    assert "raise llm.budget_per_job_usd" in text


@pytest.mark.asyncio
async def test_an_unpriced_paid_model_is_refused_not_run_for_free() -> None:
    # `--model` naming a model the price table lacks must not slip past both budgets at $0.
    a = Scripted("a", {"x": 1})
    local = Scripted("local", {"y": 1}, kind="openai_compatible")
    router, _ = make_router(a, local, prices={})
    r = await router.complete(request(model="a-huge", model_provider="a"))
    assert a.calls == [] and r.provider == "local"  # a local server is free: never refused
    assert "no price for model 'a-huge'" in r.fallbacks[0] and "[llm.prices]" in r.fallbacks[0]
    assert calls_metric("a", "a-huge", "over_budget") >= 1


@pytest.mark.asyncio
async def test_an_answer_from_an_unpriced_alias_costs_what_was_asked() -> None:
    class Alias(Scripted):
        async def complete(self, request: LLMRequest) -> LLMResponse:
            answer = await super().complete(request)
            return answer.model_copy(update={"model": "alias-resolved-elsewhere"})

    a = Alias("a", {"x": 1})
    router, _ = make_router(a)
    r = await router.complete(request())
    assert r.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)


@pytest.mark.asyncio
async def test_daily_budget_exhaustion_falls_over_to_a_free_provider() -> None:
    a = Scripted("a", {"x": 1})
    off = Scripted("off", {"free": True}, kind="offline")
    router, _ = make_router(a, off, budget_per_day_usd=0.01, max_tokens=2048)
    spent = 0
    while True:
        r = await router.complete(request(job_id=f"j{spent}"))
        if r.provider == "off":
            break
        spent += 1
    assert spent >= 1 and "daily LLM budget" in r.fallbacks[0]
    assert router.ledger.today_usd() <= 0.01


def test_spend_ledger_persists(tmp_path: Any) -> None:
    ledger = SpendLedger(1.0, 5.0, tmp_path / "spend.json", today=lambda: "2026-01-02")
    ledger.add("j", "openai", 0.25)
    again = SpendLedger(1.0, 5.0, tmp_path / "spend.json", today=lambda: "2026-01-02")
    assert again.today_usd() == pytest.approx(0.25) and again.provider_usd("openai") == 0.25
    tomorrow = SpendLedger(1.0, 5.0, tmp_path / "spend.json", today=lambda: "2026-01-03")
    assert tomorrow.today_usd() == 0.0


@pytest.mark.asyncio
async def test_local_rate_limit_waits_briefly_then_fails_over() -> None:
    clock = Clock()
    a = Scripted("a", {"x": 1}, requests_per_minute=2)
    b = Scripted("b", {"y": 1})
    router, slept = make_router(a, b, clock=clock, max_rate_wait_s=2.0)
    assert (await router.complete(request())).provider == "a"
    assert (await router.complete(request())).provider == "a"
    r = await router.complete(request())  # bucket empty: 30 s to refill one request
    assert r.provider == "b" and "local rate limit" in r.fallbacks[0] and slept == []
    clock.now += 30
    assert (await router.complete(request())).provider == "a"


@pytest.mark.asyncio
async def test_the_last_provider_waits_for_its_rate_limit_instead_of_failing() -> None:
    # A repair round (order = [that provider]) or `--provider a` alone: nowhere to fail over to,
    # so giving up after max_rate_wait_s would fail a design that a short wait completes.
    clock = Clock()
    a = Scripted("a", {"x": 1}, {"x": 2}, {"x": 3}, requests_per_minute=2)
    router, slept = make_router(a, clock=clock, max_rate_wait_s=2.0)
    await router.complete(request())
    await router.complete(request())
    r = await router.complete(request())
    assert r.provider == "a" and r.data == {"x": 3} and slept == [pytest.approx(30.0)]


def test_token_bucket_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    bucket.take(60)
    assert bucket.wait_for(6) == pytest.approx(6.0)
    clock.now += 6
    assert bucket.wait_for(6) == 0.0


@pytest.mark.asyncio
async def test_cache_hit_skips_the_provider_and_costs_nothing() -> None:
    a = Scripted("a", {"x": 1})
    router, _ = make_router(a, cache=True)
    first = await router.complete(request())
    second = await router.complete(request())
    assert len(a.calls) == 1 and second.cached and not first.cached
    assert second.cost_usd == 0.0 and second.data == first.data
    assert first.tokens_in > 0 and (second.tokens_in, second.tokens_out) == (0, 0)
    await router.complete(request("another prompt"))
    assert len(a.calls) == 2
    await router.close()


@pytest.mark.asyncio
async def test_invalid_answers_are_not_cached_and_escalation_uses_the_big_model() -> None:
    a = Scripted("a", {"bad": 1}, escalation_model="a-big")
    router, _ = make_router(a, cache=True)

    def validate(data: dict[str, Any]) -> list[str]:
        return ["bad answer"] if "bad" in data else []

    r1 = await router.complete(request(), validate=validate)
    assert r1.problems == ["bad answer"] and not r1.ok
    await router.complete(request(), validate=validate)
    assert len(a.calls) == 2  # nothing cached
    r3 = await router.complete(request(escalate=True), validate=validate)
    assert r3.model == "a-big"
    assert calls_metric("a", "a-small", "invalid") >= 2


@pytest.mark.asyncio
async def test_unknown_provider_is_a_config_error() -> None:
    router, _ = make_router(Scripted("a", {"x": 1}))
    with pytest.raises(ConfigError, match="unknown LLM provider 'nope'"):
        await router.complete(request(), order=["nope"])


def test_price_of_matches_dated_model_names() -> None:
    prices = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "gpt-4o": {"input": 2.5}}
    assert price_of(prices, "gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert price_of(prices, "gpt-4o-2024", 1_000_000, 0) == pytest.approx(2.5)
    assert price_of(prices, "llama", 10, 10) is None


@pytest.mark.asyncio
async def test_a_named_model_applies_to_its_provider_only() -> None:
    a = Scripted("a", ProviderUnavailable("down"))
    b = Scripted("b", {"y": 1})
    router, _ = make_router(a, b, max_attempts=1)
    r = await router.complete(request(model="a-huge", model_provider="a"))
    assert a.models == ["a-huge"] and b.models == ["b-small"] and r.model == "b-small"


def test_redis_cache_needs_a_url() -> None:
    from printforge.llm.cache import ResponseCache

    # At construction, so a server with a half-configured cache fails at startup.
    with pytest.raises(ConfigError, match=r"llm\.cache\.redis_url is required"):
        ResponseCache(CacheSettings(backend="redis"))
    ResponseCache(CacheSettings(backend="redis", enabled=False))  # off: the URL is not needed
