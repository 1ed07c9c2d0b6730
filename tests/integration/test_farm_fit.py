"""A job that names no printer goes to a printer its part fits: a farm with a bigger printer
does not refuse a part that is only too big for the first choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from printforge.models.job import JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.settings import load_settings

# generic-220 is 220 x 220 x 250 mm; prusa-mk3s is 250 x 210 x 210 mm.
WIDE = "a 240 x 100 x 20 mm box"


def farm(tmp_path: Path) -> Any:
    return load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "sim_speed": 5000.0,
            "default_printer": "small",
            "printers": {
                "small": {"driver": "virtual", "profile": "generic-220"},
                "big": {"driver": "virtual", "profile": "prusa-mk3s"},
            },
        }
    )


@pytest.mark.asyncio
async def test_a_part_too_wide_for_the_default_printer_prints_on_one_it_fits(
    tmp_path: Path,
) -> None:
    async with Orchestrator(farm(tmp_path)) as orch:
        wide = await orch.wait((await orch.submit(PrintRequest(text=WIDE))).id)
        cube = await orch.wait((await orch.submit(PrintRequest(text="a 20 mm cube"))).id)
    assert wide.state is JobState.COMPLETED, wide.error
    assert wide.printer == "big"
    assert wide.sliced_for == "prusa-mk3s"
    assert wide.mesh is not None and wide.mesh.size_mm[0] == pytest.approx(240, abs=0.1)
    # A part that fits the default printer still goes there.
    assert cube.state is JobState.COMPLETED and cube.printer == "small"
    assert cube.sliced_for == "generic-220"


@pytest.mark.asyncio
async def test_a_named_printer_is_kept_and_the_part_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    async with Orchestrator(farm(tmp_path)) as orch:
        job = await orch.wait((await orch.submit(PrintRequest(text=WIDE, printer="small"))).id)
    assert job.state is JobState.FAILED
    assert job.error is not None and "220" in job.error.message
    assert job.printer in (None, "small")


@pytest.mark.asyncio
async def test_a_part_no_printer_fits_is_refused_against_the_largest(tmp_path: Path) -> None:
    async with Orchestrator(farm(tmp_path)) as orch:
        job = await orch.wait((await orch.submit(PrintRequest(text="a 300 mm cube"))).id)
    assert job.state is JobState.FAILED
    assert job.error is not None and "300" in job.error.message
