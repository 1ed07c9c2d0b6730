"""A model's design is held to its own requirement list, through the real SDKs and the fake
provider servers: what it marks built is measured on the mesh and a miss goes back through the
repair loop; what it marks not_built stops the job with one question unless the request
accepts a partial design; a spec_path that names no field is a repair too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from printforge.agents.research import ResearchAgent
from printforge.models.request import PrintRequest
from printforge.runtime.errors import NeedsInput
from tests.fakes.llm_server import FakeLLM, Step
from tests.fakes.llm_settings import context, settings_for


def cube_answer(side: float, requirements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "cube",
        "description": f"a {side:g} mm cube",
        "parts": [{"kind": "box", "size": [side, side, side], "center": False}],
        "requirements": requirements,
        "auto_orient": True,
    }


def req(text: str, role: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "text": text,
        "role": role,
        "status": status,
        "value": extra.get("value"),
        "spec_path": extra.get("spec_path"),
        "note": extra.get("note"),
    }


async def run(settings: Any, tmp: Path, text: str, accept_partial: bool = False) -> Any:
    agent = ResearchAgent(settings)
    request = PrintRequest(text=text, accept_partial=accept_partial)
    ctx = context(settings, tmp, text)
    try:
        spec = await agent.run(request, ctx)
    finally:
        await agent.stop()
    return spec, ctx.report


@pytest.mark.asyncio
async def test_a_built_size_the_mesh_does_not_have_goes_back_to_the_model(tmp_path: Path) -> None:
    wrong = cube_answer(40, [req("50 mm", "size", "built", value=50, spec_path="parts[0].size[0]")])
    right = cube_answer(50, [req("50 mm", "size", "built", value=50, spec_path="parts[0].size[0]")])
    async with FakeLLM(Step(answer=right)) as fake:
        fake.queue("openai", Step(answer=wrong))
        settings = settings_for(fake, tmp_path, ["openai"])
        spec, report = await run(settings, tmp_path, "a 50 mm cube")
        assert fake.calls("openai") == 2
        repair = fake.received[1].body["messages"][-1]["content"]
    assert "asks for an outside size of 50 mm" in repair and "40.0 x 40.0 x 40.0" in repair
    assert spec.parts[0].size == [50, 50, 50]
    assert report["research"]["rounds"] == 2
    assert report["requirements"][0]["status"] == "built"


@pytest.mark.asyncio
async def test_a_not_built_requirement_asks_one_question(tmp_path: Path) -> None:
    answer = cube_answer(
        20,
        [
            req("20 mm", "size", "built", value=20, spec_path="parts[0].size[0]"),
            req(
                "threaded hole",
                "feature",
                "not_built",
                note="threads are not modelled; a plain cube instead",
            ),
        ],
    )
    async with FakeLLM(Step(answer=answer)) as fake:
        settings = settings_for(fake, tmp_path, ["anthropic"])
        with pytest.raises(NeedsInput) as info:
            await run(settings, tmp_path, "a 20 mm cube with a threaded hole")
        question = info.value.question
        assert "threaded hole" in question and "threads are not modelled" in question
        assert "--accept-partial" in question
        assert info.value.code == "needs_input"
        assert [r["status"] for r in info.value.requirements] == ["built", "not_built"]
        # The same answer, accepted as it is: built, and the left-out part is said.
        spec, report = await run(
            settings, tmp_path, "a 20 mm cube with a threaded hole", accept_partial=True
        )
    assert spec.description.endswith("Left out: threaded hole")
    assert report["requirements"][1]["status"] == "not_built"


@pytest.mark.asyncio
async def test_a_spec_path_that_names_no_field_is_repaired(tmp_path: Path) -> None:
    bad = cube_answer(20, [req("20 mm", "size", "built", value=20, spec_path="parts[0].side")])
    good = cube_answer(20, [req("20 mm", "size", "built", value=20, spec_path="parts[0].size[1]")])
    async with FakeLLM(Step(answer=good)) as fake:
        fake.queue("openai", Step(answer=bad))
        settings = settings_for(fake, tmp_path, ["openai"])
        spec, _ = await run(settings, tmp_path, "a 20 mm cube")
        assert fake.calls("openai") == 2
        repair = fake.received[1].body["messages"][-1]["content"]
    assert "spec_path 'parts[0].side' names no field" in repair
    assert spec.requirements[0].spec_path == "parts[0].size[1]"


@pytest.mark.asyncio
async def test_the_offline_parser_asks_too(tmp_path: Path) -> None:
    async with FakeLLM(Step(answer={})) as fake:
        settings = settings_for(fake, tmp_path, ["offline"])
        with pytest.raises(NeedsInput) as info:
            await run(settings, tmp_path, "a 40 x 30 x 3 mm plate with 2 holes and a magnet pocket")
    assert "magnet" in info.value.question
    assert fake.calls("openai") == 0
