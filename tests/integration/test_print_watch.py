"""A watched print (issue 17), end to end on real parts: the virtual printer prints a box, its
virtual camera serves pictures over HTTP, the watch takes a snapshot per layer through
CameraClient and the detector compares each with the twin drawn from the G-code. A part
knocked off the bed is detected: the print is paused and stopped, the job fails with the
diagnosis (and its picture), people are told, and the recovery queues a reprint that waits for
the bed to be confirmed clear. A clean print is watched to the end without a stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from printforge.models.event import JobEvent
from printforge.models.job import JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.watch import list_snapshots
from printforge.settings import load_settings
from tests.fakes.camera import box_stl

pytestmark = pytest.mark.timeout(600)


def _settings(tmp_path: Path, virtual: dict[str, Any], sim_speed: float) -> Any:
    return load_settings(
        env="development",
        overrides={
            "data_dir": str(tmp_path / "data"),
            "mock": True,
            # Slow enough that the watch sees several layers before and after the failure
            # even on a loaded machine (each snapshot is a render and a comparison).
            "sim_speed": sim_speed,
            "printers": {
                "cam": {
                    "bed_clear_required": True,
                    "camera": {"timeout_s": 90, "virtual": {"seed": 3, **virtual}},
                    "detection": {"start_layer": 4},
                }
            },
        },
    )


@pytest.mark.asyncio
async def test_a_knocked_off_part_is_caught_and_the_job_recovers(tmp_path: Path) -> None:
    from printforge.orchestrator.service import Orchestrator

    stl = box_stl(tmp_path, (16.0, 14.0, 6.0))
    settings = _settings(tmp_path, {"failures": ["detached@14"]}, 3.0)
    async with Orchestrator(settings) as orch:
        events = orch.bus.subscribe(maxsize=10_000)
        job = await orch.submit(PrintRequest(model_path=stl, printer="cam"))
        job = await orch.wait(job.id, timeout=500)
        assert job.state is JobState.FAILED, job.error
        assert job.error is not None and job.error.code == "failure_detected"
        diagnosis = job.report["vision"]["diagnosis"]
        assert diagnosis["layer"] >= 14 and diagnosis["score"] >= diagnosis["threshold"]
        assert diagnosis["paused"] is True
        assert diagnosis["recovery"]["action"] == "retry"
        folder = orch.job_dir(job.id)
        assert (folder / diagnosis["picture"]).stat().st_size > 1000
        shots = list_snapshots(folder)
        assert shots[0]["layer"] == 0 and len(shots) >= 3
        # The reprint is queued and waits for a person to clear the bed.
        retries = [j for j in await orch.list_jobs(None, 10) if j.retry_of == job.id]
        assert len(retries) == 1 and retries[0].request.gcode_path == job.gcode.path
        assert orch.printers.bed_dirty("cam")
        events.close()  # what was published so far stays to be read, then the end
        seen = [e.kind async for e in events if isinstance(e, JobEvent) and e.job_id == job.id]
        assert "snapshot" in seen and "diagnosis" in seen
        await orch.cancel(retries[0].id)


@pytest.mark.asyncio
async def test_a_clean_print_is_watched_to_the_end(tmp_path: Path) -> None:
    from printforge.orchestrator.service import Orchestrator

    stl = box_stl(tmp_path, (16.0, 14.0, 5.0))
    async with Orchestrator(_settings(tmp_path, {}, 8.0)) as orch:
        job = await orch.submit(PrintRequest(model_path=stl, printer="cam"))
        job = await orch.wait(job.id, timeout=500)
        assert job.state is JobState.COMPLETED, job.error
        assert "vision" not in job.report
        shots = list_snapshots(orch.job_dir(job.id))
        assert shots and shots[0]["layer"] == 0
        assert (orch.job_dir(job.id) / "timelapse.mp4").stat().st_size > 0
