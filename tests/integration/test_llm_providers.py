"""The real OpenAI and Anthropic SDKs against the local fake server, through the router and the
research agent: good answers, repairs, 429 + Retry-After, 5xx, timeouts, truncated JSON, budgets,
cache hits, failover to offline, and keys that never leak."""

from __future__ import annotations

import copy
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest

from printforge.agents.research import ResearchAgent
from printforge.llm.base import LLMMessage, LLMRequest, ProviderUnavailable
from printforge.llm.offline import parse_request
from printforge.llm.router import LLMRouter
from printforge.models.request import PrintRequest
from printforge.runtime import metrics
from printforge.runtime.errors import BudgetExceeded, InputError
from printforge.settings import Settings
from tests.fakes.llm_server import FakeLLM, Step
from tests.fakes.llm_settings import SECRET, context, settings_for

CUBE = parse_request("a 20 mm calibration cube").model_dump(mode="json")
# A small schema OpenAI's strict mode accepts (the fake server refuses any other).
NAME_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}


async def research(
    settings: Settings, tmp: Path, text: str, router: LLMRouter | None = None
) -> tuple[Any, dict[str, Any]]:
    agent = ResearchAgent(settings, router=router)
    ctx = context(settings, tmp, text)
    try:
        spec = await agent.run(PrintRequest(text=text), ctx)
    finally:
        await agent.stop()
    return spec, ctx.report["research"]


def simple_request(text: str = "a cube") -> LLMRequest:
    return LLMRequest(
        system="s",
        messages=[LLMMessage(role="user", content=text)],
        json_schema=NAME_SCHEMA,
        text=text,
    )


@pytest.mark.asyncio
async def test_openai_good_answer_uses_strict_schema_and_the_key(tmp_path: Path) -> None:
    async with FakeLLM(Step(answer=CUBE)) as fake:
        settings = settings_for(fake, tmp_path, ["openai"])
        spec, report = await research(settings, tmp_path, "a cube for calibration")
    assert spec.model_dump(mode="json") == CUBE
    body = fake.received[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["model"] == "gpt-4o-mini" and body["max_completion_tokens"] == 2048
    assert fake.received[0].headers["authorization"] == f"Bearer {SECRET}"
    assert report["provider"] == "openai" and report["model"] == "gpt-4o-mini"
    assert report["rounds"] == 1 and report["tokens_in"] > 0 and report["cost_usd"] > 0


@pytest.mark.asyncio
async def test_anthropic_forced_tool_call(tmp_path: Path) -> None:
    async with FakeLLM(Step(answer=CUBE)) as fake:
        settings = settings_for(fake, tmp_path, ["anthropic"])
        spec, report = await research(settings, tmp_path, "a cube")
    body = fake.received[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "design_spec"}
    assert body["tools"][0]["input_schema"]["additionalProperties"] is False
    headers = fake.received[0].headers
    assert SECRET in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert spec.family == "box" and report["provider"] == "anthropic"


@pytest.mark.asyncio
async def test_local_openai_compatible_server_needs_no_key(tmp_path: Path) -> None:
    async with FakeLLM(Step(raw_text="```json\n" + __import__("json").dumps(CUBE) + "\n```")) as f:
        settings = settings_for(f, tmp_path, ["local"])
        spec, report = await research(settings, tmp_path, "a cube")
    assert spec.model_dump(mode="json") == CUBE
    assert report["provider"] == "local" and report["cost_usd"] == 0.0
    assert f.calls("local") == 1 and "JSON schema" in f.received[0].body["messages"][0]["content"]
    assert f.received[0].body["max_tokens"] == 2048


@pytest.mark.asyncio
async def test_schema_violation_is_repaired_on_the_larger_model(tmp_path: Path) -> None:
    bad = copy.deepcopy(CUBE)
    bad["parts"][0]["size"] = [20, 20, -5]
    async with FakeLLM() as fake:
        fake.queue("openai", Step(answer=bad), Step(answer=CUBE))
        settings = settings_for(fake, tmp_path, ["openai"])
        spec, report = await research(settings, tmp_path, "a cube")
    assert spec.model_dump(mode="json") == CUBE
    assert report["rounds"] == 2 and report["model"] == "gpt-4o"
    second = fake.received[1].body
    assert second["model"] == "gpt-4o"
    repair = second["messages"][-1]["content"]
    assert "cannot be built" in repair and "-5.0" in repair
    assert second["messages"][-2]["role"] == "assistant"


@pytest.mark.asyncio
async def test_truncated_json_is_repaired(tmp_path: Path) -> None:
    async with FakeLLM() as fake:
        fake.queue("openai", Step(answer=CUBE, truncate=True), Step(answer=CUBE))
        fake.queue("anthropic", Step(answer=CUBE, truncate=True), Step(answer=CUBE))
        for order in (["openai"], ["anthropic"]):
            settings = settings_for(fake, tmp_path, order)
            spec, report = await research(settings, tmp_path, "a cube")
            assert spec.family == "box" and report["rounds"] == 2
    assert "cut off" in fake.received[1].body["messages"][-1]["content"]


@pytest.mark.asyncio
async def test_unrepairable_answers_move_on_to_the_next_provider(tmp_path: Path) -> None:
    async with FakeLLM(openai=Step(raw_text="sorry, no JSON today")) as fake:
        settings = settings_for(fake, tmp_path, ["openai", "offline"], repair_rounds=2)
        spec, report = await research(settings, tmp_path, "a 20 mm calibration cube")
    assert fake.calls("openai") == 3  # the first answer and two repairs, then offline
    assert report["provider"] == "offline" and report["rounds"] == 4
    assert "no valid design after 3 round(s)" in report["fallbacks"][-1]
    assert spec.model_dump(mode="json") == CUBE


@pytest.mark.asyncio
async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    async with FakeLLM(Step(answer={"name": "x"})) as fake:
        fake.queue("openai", Step(status=429, headers={"Retry-After": "7"}))
        settings = settings_for(fake, tmp_path, ["openai"], max_attempts=2)
        router = LLMRouter(settings.llm, sleep=sleep)
        r = await router.complete(simple_request())
        await router.close()
    assert r.data == {"name": "x"} and fake.calls("openai") == 2
    assert slept and 7.0 <= slept[0] <= 8.0


@pytest.mark.asyncio
async def test_5xx_and_timeouts_fail_over_with_bounded_calls(tmp_path: Path) -> None:
    async with FakeLLM(
        Step(answer={"name": "ok"}),
        openai=Step(status=503),
        anthropic=Step(answer={"name": "slow"}, delay_s=0.6),
    ) as fake:
        settings = settings_for(
            fake,
            tmp_path,
            ["openai", "anthropic", "local"],
            max_attempts=2,
            breaker_failure_threshold=2,
            provider={"anthropic": {"timeout_s": 0.2}},
        )
        router = LLMRouter(settings.llm)
        for _ in range(4):
            r = await router.complete(simple_request())
            assert r.provider == "local" and r.data == {"name": "ok"}
        await router.close()
    # Two attempts each opened the breakers; the other three calls cost no round trip.
    assert fake.calls("openai") == 2 and fake.calls("anthropic") == 2
    status = {row["name"]: row for row in router.status()}
    assert status["openai"]["breaker"] == "open" and status["openai"]["calls"]["circuit_open"] == 3
    assert status["anthropic"]["calls"]["timeout"] == 2
    assert all("circuit open" in reason for reason in r.fallbacks)


@pytest.mark.asyncio
async def test_both_clouds_down_completes_offline_and_says_why(tmp_path: Path) -> None:
    async with FakeLLM(openai=Step(status=500), anthropic=Step(status=529)) as fake:
        # A base_url with credentials in it (a proxy): named in the reason, password masked.
        dead = {"base_url": "http://user:hunter2@127.0.0.1:9/v1"}
        order = ["openai", "anthropic", "dead", "offline"]
        settings = settings_for(fake, tmp_path, order, provider={"dead": dead})
        spec, report = await research(settings, tmp_path, "a 20 mm calibration cube")
    assert spec.model_dump(mode="json") == CUBE
    assert report["provider"] == "offline" and report["cost_usd"] == 0
    reasons = report["fallbacks"]
    assert [r.split(":")[0] for r in reasons] == ["openai", "anthropic", "dead"]
    assert "500" in reasons[0] and "529" in reasons[1] and "cannot reach" in reasons[2]
    # The server's own sentence, not the SDK's dump of the reply body.
    assert reasons[0] == "openai: server error 500: fake error 500"
    assert reasons[1] == "anthropic: server error 529: fake error 529"
    assert reasons[2] == "dead: cannot reach the server at http://user:***@127.0.0.1:9/v1"


@pytest.mark.asyncio
async def test_budget_exhaustion(tmp_path: Path) -> None:
    async with FakeLLM(Step(answer=CUBE)) as fake:
        settings = settings_for(fake, tmp_path, ["openai"], budget_per_job_usd=0.0001)
        with pytest.raises(BudgetExceeded, match=r"over budget.*per-job LLM budget of \$0.00"):
            await research(settings, tmp_path, "a cube")
        settings = settings_for(fake, tmp_path, ["openai", "offline"], budget_per_job_usd=0.0001)
        _, report = await research(settings, tmp_path, "a 20 mm calibration cube")
    assert fake.received == []  # refused before any call
    assert report["provider"] == "offline" and "budget" in report["fallbacks"][0]


@pytest.mark.asyncio
async def test_cache_hit_costs_no_call(tmp_path: Path) -> None:
    async with FakeLLM(Step(answer=CUBE)) as fake:
        settings = settings_for(fake, tmp_path, ["anthropic"])
        router = LLMRouter(settings.llm)
        _, first = await research(settings, tmp_path, "a cube", router=router)
        _, second = await research(settings, tmp_path, "a cube", router=router)
        await router.close()
    assert fake.calls("anthropic") == 1
    assert not first["cached"] and second["cached"] and second["cost_usd"] == 0
    assert first["tokens_in"] > 0 and second["tokens_in"] == second["tokens_out"] == 0


@pytest.mark.asyncio
async def test_offline_refusal_says_what_it_understood(tmp_path: Path) -> None:
    async with FakeLLM(openai=Step(status=500)) as fake:
        settings = settings_for(fake, tmp_path, ["openai", "offline"], max_attempts=1)
        with pytest.raises(InputError, match=r"understood a washer.*missing.*other providers"):
            await research(settings, tmp_path, "a washer 20 mm")


@pytest.mark.asyncio
async def test_keys_never_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # Both servers quote the key they were sent in their error text, as some proxies do.
    openai, anthropic = Step(status=401, echo_key=True), Step(status=500, echo_key=True)
    async with FakeLLM(openai=openai, anthropic=anthropic) as fake:
        settings = settings_for(fake, tmp_path, ["openai", "anthropic", "offline"])
        _, report = await research(settings, tmp_path, "a 20 mm calibration cube")
        router = LLMRouter(settings.llm)
        with pytest.raises(Exception) as info:
            await router.complete(simple_request(), order=["openai", "anthropic"])
        health = [r.model_dump_json() for r in router.health.records()]
        await router.close()
    seen = [caplog.text, repr(report), str(info.value), repr(settings), settings.model_dump_json()]
    seen += [metrics.render().decode(), *health]
    # What --debug prints: the traceback with every chained exception.
    seen.append("".join(traceback.format_exception(info.value)))
    assert "key was refused" in str(info.value)
    assert "Incorrect API key provided: ***" in str(info.value)  # the echo arrived, scrubbed
    assert not any(SECRET in text for text in seen)


@pytest.mark.asyncio
async def test_openai_refuses_a_schema_outside_strict_mode(tmp_path: Path) -> None:
    # The fake answers 400 as OpenAI does, so a schema regression fails here, not in production.
    loose = {**NAME_SCHEMA, "properties": {"name": {"type": "string", "maxLength": 80}}}
    async with FakeLLM(Step(answer={"name": "x"})) as fake:
        settings = settings_for(fake, tmp_path, ["openai"], max_attempts=3)
        router = LLMRouter(settings.llm, data_dir=tmp_path)
        request = simple_request().model_copy(update={"json_schema": loose})
        try:
            with pytest.raises(ProviderUnavailable, match="maxLength' is not permitted"):
                await router.complete(request)
        finally:
            await router.close()
    assert fake.calls("openai") == 1  # a 400 is not retried
