"""Every door through the one pipeline: printers found at run time, spans, typed job state."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.event import JobEvent
from printforge.models.job import Job, JobState, StageName, StageState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.orchestrator.store import _SCHEMA, JobStore
from printforge.settings import Settings, load_settings
from tests.fakes.llm_server import FakeLLM, Step
from tests.fakes.llm_settings import settings_for

CUBE = "a 20 mm calibration cube"


def cube_answer(side: float, cut: float | None = None) -> dict[str, Any]:
    """A model's design of a cube of `side` mm, with a centred cube of `cut` mm cut away."""
    part: dict[str, Any] = {"kind": "box", "size": [side, side, side], "center": True}
    if cut is not None:
        cutter = {"kind": "box", "size": [cut, cut, cut], "center": True}
        part = {"kind": "difference", "children": [part, cutter]}
    return {
        "name": "cube",
        "description": f"a {side:g} mm cube",
        "parts": [part],
        "requirements": [],
        "auto_orient": True,
    }


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "sim_speed": 2000.0}
    base.update(overrides)
    return load_settings(overrides=base)


@pytest.mark.asyncio
async def test_a_printer_attached_at_run_time_gets_gcode_for_its_own_profile(
    tmp_path: Path,
) -> None:
    """A printer the bus discovers is in no config file: its job is sliced for the profile the
    printer carries (an MK3S's 210 mm Y), not the generic 220 mm one its gate would refuse."""
    settings = make_settings(tmp_path)
    mk3s = settings.printer_profiles["prusa-mk3s"]
    async with Orchestrator(settings) as orch:
        driver = VirtualDriver(
            "found-mk3s", VirtualConfig(sim_speed=2000.0), mk3s, settings.material("PLA")
        )
        await orch.printers.add(driver)
        job = await orch.submit(PrintRequest(text=CUBE, printer="found-mk3s"))
        job = await orch.wait(job.id, timeout=120)
    assert job.state is JobState.COMPLETED, job.error
    assert job.printer == "found-mk3s"
    assert job.gcode is not None
    assert job.report["gate"]["profile"] == "prusa-mk3s"


@pytest.mark.asyncio
async def test_the_server_s_pipeline_sends_a_design_cad_refuses_back_to_the_model(
    tmp_path: Path,
) -> None:
    """The repair loop `design` had is the pipeline's: a job submitted as the server submits it
    gets a design CAD cannot build (its cut removes everything, which only building shows)
    sent back with the reason, and completes."""
    empty = cube_answer(20, cut=30)
    right = cube_answer(20)
    async with FakeLLM(Step(answer=right)) as fake:
        fake.queue("openai", Step(answer=empty))
        settings = settings_for(fake, tmp_path, ["openai"])
        settings.sim_speed = 2000.0
        async with Orchestrator(settings) as orch:
            job = await orch.submit(PrintRequest(text="a cube", print=False))
            job = await orch.wait(job.id, timeout=120)
        assert fake.calls("openai") == 2
        repair = json.dumps(fake.received[1].body["messages"])
    assert job.state is JobState.COMPLETED, job.error
    assert "cuts remove everything" in repair
    assert "cuts remove everything" in job.report["research_feedback"][0]
    assert job.mesh is not None and job.mesh.size_mm == pytest.approx((20, 20, 20), abs=0.1)


@pytest.mark.asyncio
async def test_copies_carry_typed_state_asked_of_the_store(tmp_path: Path) -> None:
    async with Orchestrator(make_settings(tmp_path)) as orch:
        first = await orch.submit(PrintRequest(text="a 10 mm cube", copies=2))
        assert first.copies is not None and len(first.copies) == 2
        copy_id = first.copies[1]
        jobs = [await orch.wait(i, timeout=60) for i in first.copies]
    original, copy = jobs
    assert copy.state is JobState.COMPLETED, copy.error
    assert copy.copy_of == original.id and copy.copy_number == 2
    assert original.sliced_for == "generic-220" and copy.sliced_for == original.sliced_for
    assert "copy_of" not in copy.report and "sliced_for" not in original.report
    assert copy.id == copy_id


@pytest.mark.asyncio
async def test_a_store_from_before_typed_state_is_migrated(tmp_path: Path) -> None:
    """Rows written when control state lived in the report are rewritten once, on open."""
    path = tmp_path / "old.sqlite3"
    old = Job(request=PrintRequest(text="a cube"))
    data = json.loads(old.model_dump_json())
    for key in ("copy_of", "copy_number", "copies", "sliced_for", "print_attempts"):
        data.pop(key)
    data["report"] = {"copy_of": "abc", "copy_number": 2, "sliced_for": "ender3",
                      "print_attempts": 2, "gate": {"passed": True}}  # fmt: skip
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT INTO jobs (id, state, created_at, updated_at, data) VALUES (?, ?, ?, ?, ?)",
            (old.id, "queued", "2026-01-01", "2026-01-01", json.dumps(data)),
        )
    store = JobStore(path)
    await store.open()
    try:
        job = await store.get(old.id)
    finally:
        await store.close()
    assert job is not None
    assert (job.copy_of, job.copy_number, job.sliced_for, job.print_attempts) == (
        "abc", 2, "ender3", 2,
    )  # fmt: skip
    with sqlite3.connect(path) as db:
        (raw,) = db.execute("SELECT data FROM jobs WHERE id = ?", (old.id,)).fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
    stored = json.loads(raw)
    assert stored["copy_of"] == "abc" and stored["report"] == {"gate": {"passed": True}}
    assert version >= 1


@pytest.mark.asyncio
async def test_a_job_stopped_at_the_printer_ends_cancelled(tmp_path: Path) -> None:
    async with Orchestrator(make_settings(tmp_path, sim_speed=5.0)) as orch:
        sub = orch.bus.subscribe()
        job = await orch.submit(PrintRequest(text=CUBE))
        async with asyncio.timeout(120):
            async for event in sub:
                if (
                    isinstance(event, JobEvent)
                    and event.job_id == job.id
                    and event.kind == "stage.progress"
                    and (event.data or {}).get("lines_acked")
                ):
                    break
        await orch.printers.get("virtual").cancel()  # Stop on the printer's own screen
        job = await orch.wait(job.id, timeout=60)
    assert job.state is JobState.CANCELLED
    assert job.error is not None and job.error.code == "cancelled"
    assert job.stage(StageName.PRINTER).state is StageState.CANCELLED
