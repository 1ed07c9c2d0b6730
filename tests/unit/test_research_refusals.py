"""Refusals of designs the target printer cannot make keep what the offline parser understood,
and the response cache never hands one printer's answer to another."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.agents.base import AgentContext
from printforge.agents.research import ResearchAgent
from printforge.llm.base import LLMMessage, LLMRequest
from printforge.llm.cache import cache_key
from printforge.llm.offline.provider import OfflineProvider
from printforge.models.printer import PrinterProfile
from printforge.models.request import PrintRequest
from printforge.runtime.errors import InputError
from printforge.settings import Settings, load_settings

BOX = "a box 300 x 40 x 30 mm with 2 mm walls"
BIG = PrinterProfile(name="big-400", bed_x=400, bed_y=400, max_z=400)
SMALL = PrinterProfile(name="generic-220")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(overrides={"data_dir": str(tmp_path)})


def ctx_for(
    settings: Settings, tmp_path: Path, request: PrintRequest, profile: PrinterProfile
) -> AgentContext:
    return AgentContext(
        job_id="j",
        job_dir=tmp_path,
        request=request,
        printer="p",
        profile=profile,
        material=settings.material("PLA"),
    )


def _request(text: str, printer: PrinterProfile | None) -> LLMRequest:
    return LLMRequest(
        system="s",
        messages=[LLMMessage(role="user", content=text)],
        json_schema={"type": "object"},
        text=text,
        printer=printer,
    )


@pytest.mark.asyncio
async def test_oversize_refusal_says_what_was_understood_and_why(
    settings: Settings, tmp_path: Path
) -> None:
    request = PrintRequest(text=BOX)
    agent = ResearchAgent(settings)
    with pytest.raises(InputError) as err:
        await agent.run(request, ctx_for(settings, tmp_path, request, SMALL))
    await agent.stop()
    message = err.value.message
    assert "understood a box; size 300 mm x 40 mm x 30 mm; wall 2 mm" in message
    assert "cannot be printed on 'generic-220' (220 x 220 x 250 mm" in message
    assert "the design needs 300.0 x 40.0 mm of bed" in message
    assert message.endswith("make it smaller")
    assert "no provider produced" not in message


@pytest.mark.asyncio
async def test_the_same_words_build_on_a_bigger_printer(settings: Settings, tmp_path: Path) -> None:
    request = PrintRequest(text=BOX)
    agent = ResearchAgent(settings)
    spec = await agent.run(request, ctx_for(settings, tmp_path, request, BIG))
    assert spec.parts[0].size == [300, 40, 30]  # type: ignore[union-attr]
    # Same agent, same router, same cache: the smaller printer must not get the cached answer.
    with pytest.raises(InputError, match="make it smaller"):
        await agent.run(request, ctx_for(settings, tmp_path, request, SMALL))
    again = ctx_for(settings, tmp_path, request, BIG)
    await agent.run(request, again)
    assert again.report["research"]["cached"] is True
    await agent.stop()


@pytest.mark.asyncio
async def test_the_offline_provider_checks_the_printer_only_when_told() -> None:
    provider = OfflineProvider()
    response = await provider.complete(_request(BOX, None))
    assert response.data is not None and response.data["parts"][0]["size"] == [300, 40, 30]
    assert (await provider.complete(_request(BOX, BIG))).data == response.data
    with pytest.raises(InputError, match=r"understood a box.*generic-220"):
        await provider.complete(_request(BOX, SMALL))


def test_the_cache_key_follows_the_printer_bed() -> None:
    bare = cache_key("offline", "rules-v1", _request(BOX, None))
    big = cache_key("offline", "rules-v1", _request(BOX, BIG))
    small = cache_key("offline", "rules-v1", _request(BOX, SMALL))
    assert len({bare, big, small}) == 3
    # Only what the checks read counts: a renamed printer with the same bed shares answers.
    renamed = PrinterProfile(name="other", bed_x=400, bed_y=400, max_z=400)
    assert cache_key("offline", "rules-v1", _request(BOX, renamed)) == big
    finer = PrinterProfile(name="big-400", bed_x=400, bed_y=400, max_z=400, nozzle_diameter=0.25)
    assert cache_key("offline", "rules-v1", _request(BOX, finer)) != big


@pytest.mark.asyncio
async def test_the_research_agent_sends_the_printer(settings: Settings, tmp_path: Path) -> None:
    from printforge.llm.router import LLMRouter

    seen: list[LLMRequest] = []

    class Recorder(OfflineProvider):
        async def complete(self, request: LLMRequest):  # type: ignore[no-untyped-def]
            seen.append(request)
            return await super().complete(request)

    router = LLMRouter(settings.llm, providers={"offline": Recorder()})
    request = PrintRequest(text="a 20 mm calibration cube", providers=["offline"])
    await ResearchAgent(settings, router=router).run(
        request, ctx_for(settings, tmp_path, request, SMALL)
    )
    await router.close()
    assert seen and seen[0].printer == SMALL
