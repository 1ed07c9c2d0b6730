"""The research agent with the offline provider and scripted providers: report, order, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from printforge.agents.base import AgentContext
from printforge.agents.research import FEEDBACK_KEY, ResearchAgent
from printforge.llm.base import LLMRequest, LLMResponse
from printforge.llm.config import ProviderSettings
from printforge.llm.offline import parse_request
from printforge.llm.router import LLMRouter
from printforge.models.request import PrintRequest
from printforge.runtime.errors import InputError
from printforge.runtime.health import HealthRecord
from printforge.settings import Settings, load_settings

CUBE = parse_request("a 20 mm calibration cube").model_dump(mode="json")


class Answers:
    """A provider that answers from a list (the last one repeats) and records the requests."""

    kind = "openai"

    def __init__(self, name: str, *answers: dict[str, Any]) -> None:
        self.name = name
        self.settings = ProviderSettings(kind="openai", model="small", escalation_model="big")
        self.answers = list(answers)
        self.requests: list[LLMRequest] = []

    def model_for(self, request: LLMRequest) -> str:
        return "big" if request.escalate else "small"

    def health(self) -> HealthRecord:
        return HealthRecord(name=self.name, component="llm")

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        data = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return LLMResponse(
            provider=self.name,
            model=self.model_for(request),
            text="{}",
            data=data,
            tokens_in=10,
            tokens_out=5,
        )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The scripted models need prices: an unpriced paid model is refused by the router.
    prices = {"small": {"input": 0.1, "output": 0.2}, "big": {"input": 1.0, "output": 2.0}}
    return load_settings(overrides={"data_dir": str(tmp_path), "llm": {"prices": prices}})


def ctx_for(settings: Settings, tmp_path: Path, request: PrintRequest) -> AgentContext:
    return AgentContext(
        job_id="j",
        job_dir=tmp_path,
        request=request,
        printer="virtual",
        profile=settings.printer_profile("virtual"),
        material=settings.material("PLA"),
    )


@pytest.mark.asyncio
async def test_offline_by_default_and_the_report_shape(settings: Settings, tmp_path: Path) -> None:
    request = PrintRequest(text="a 20 mm calibration cube")
    ctx = ctx_for(settings, tmp_path, request)
    agent = ResearchAgent(settings)
    spec = await agent.run(request, ctx)
    await agent.stop()
    assert spec.model_dump(mode="json") == CUBE
    assert ctx.report["research"] == {
        "provider": "offline",
        "model": "rules-v1",
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": 0.0,
        "rounds": 1,
        "fallbacks": [],
        "cached": False,
    }


@pytest.mark.asyncio
async def test_request_order_and_repair_rounds(settings: Settings, tmp_path: Path) -> None:
    bad = {"name": "x", "parts": []}
    scripted = Answers("mine", bad, bad, CUBE)
    router = LLMRouter(settings.llm, providers={"mine": scripted})
    request = PrintRequest(text="a cube", providers=["mine"])
    ctx = ctx_for(settings, tmp_path, request)
    spec = await ResearchAgent(settings, router=router).run(request, ctx)
    assert spec.family == "box"
    report = ctx.report["research"]
    assert report["rounds"] == 3 and report["model"] == "big" and report["tokens_in"] == 30
    assert [r.escalate for r in scripted.requests] == [False, True, True]
    assert "parts" in scripted.requests[1].messages[-1].content


@pytest.mark.asyncio
async def test_a_design_too_big_for_the_bed_is_refused(settings: Settings, tmp_path: Path) -> None:
    request = PrintRequest(text="a 400 mm cube")
    agent = ResearchAgent(settings)
    with pytest.raises(InputError, match=r"understood a cube; side 400 mm\. It cannot be printed"):
        await agent.run(request, ctx_for(settings, tmp_path, request))
    await agent.stop()


@pytest.mark.asyncio
async def test_needs_text(settings: Settings, tmp_path: Path) -> None:
    request = PrintRequest(model_path=tmp_path / "x.stl")
    with pytest.raises(InputError, match="text request"):
        await ResearchAgent(settings).run(request, ctx_for(settings, tmp_path, request))


@pytest.mark.asyncio
async def test_later_stage_feedback_reaches_the_model(settings: Settings, tmp_path: Path) -> None:
    scripted = Answers("mine", CUBE)
    router = LLMRouter(settings.llm, providers={"mine": scripted})
    request = PrintRequest(text="a cube", providers=["mine"])
    ctx = ctx_for(settings, tmp_path, request)
    ctx.report[FEEDBACK_KEY] = ["the mesh has a 0.1 mm wall that will not print"]
    await ResearchAgent(settings, router=router).run(request, ctx)
    first = scripted.requests[0].messages[0].content
    assert "a cube" in first and "0.1 mm wall that will not print" in first
    # A built design failed the CAD checks: the larger model is asked (escalation).
    assert scripted.requests[0].escalate and ctx.report["research"]["model"] == "big"


@pytest.mark.asyncio
async def test_a_model_for_the_offline_parser_is_refused_not_dropped(
    settings: Settings, tmp_path: Path
) -> None:
    request = PrintRequest(text="a 20 mm calibration cube", llm_model="gpt-4o")
    with pytest.raises(InputError, match=r"'gpt-4o' applies to the first provider.*'offline'"):
        await ResearchAgent(settings).run(request, ctx_for(settings, tmp_path, request))


def test_start_prepares_in_a_thread_what_the_first_design_would_build_on_the_loop(
    tmp_path: Path,
) -> None:
    """The prompt (it parses the worked examples), the schema and the cache client's import
    cost the first design 0.25-1.5 s of the event loop when left to it. A fresh interpreter,
    since this one has long since built them."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    code = f"""
import asyncio, sys
from printforge.agents.research import ResearchAgent
from printforge.llm.prompt import design_schema, system_prompt
from printforge.settings import load_settings

async def start():
    settings = load_settings(env="development", overrides={{"data_dir": {str(tmp_path)!r}}})
    agent = ResearchAgent(settings)
    await agent.start()
    await agent.stop()

assert "aiocache" not in sys.modules
assert system_prompt.cache_info().currsize == 0 and design_schema.cache_info().currsize == 0
asyncio.run(start())
print("aiocache" in sys.modules, system_prompt.cache_info().currsize,
      design_schema.cache_info().currsize)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=repo,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "1", "1"]
