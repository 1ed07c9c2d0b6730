"""Every door through the one pipeline: printers found at run time, spans, typed job state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.job import JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.runtime.settings import Settings, load_settings

CUBE = "a 20 mm calibration cube"


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
