"""Issue 15, item 4: a job goes to another printer of its profile when the spool on the first
is too short, and its filament is charged to the spool it printed from (orchestrator, store and
virtual printers all real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.models.job import JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.settings import load_settings


@pytest.mark.asyncio
async def test_a_job_goes_to_the_printer_whose_spool_holds_enough(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "sim_speed": 5000.0,
            "default_printer": "short",
            "printers": {
                "short": {"driver": "virtual", "profile": "generic-220"},
                "full": {"driver": "virtual", "profile": "generic-220"},
            },
        }
    )
    async with Orchestrator(settings) as orch:
        short = await orch.spools.add(material="PLA", remaining_weight=0.5, printer="short")
        full = await orch.spools.add(material="PLA", remaining_weight=800.0, printer="full")
        job = await orch.wait((await orch.submit(PrintRequest(text="a 20 mm cube"))).id, 120)
        assert job.state is JobState.COMPLETED, job.error
        assert job.printer == "full"
        assert job.gcode is not None and job.gcode.filament_g > 0.5
        await orch.spools.settle()
        assert orch.spools.get(short.id).remaining_weight == 0.5
        assert orch.spools.get(full.id).remaining_weight == pytest.approx(
            800.0 - round(job.gcode.filament_g, 2)
        )
        # Taken off, the short spool no longer limits its printer.
        await orch.spools.load("short", None)
        again = await orch.wait(
            (await orch.submit(PrintRequest(text="a 20 mm cube", printer="short"))).id, 120
        )
        assert again.state is JobState.COMPLETED and again.printer == "short"
        assert orch.spools.get(short.id).printer is None
