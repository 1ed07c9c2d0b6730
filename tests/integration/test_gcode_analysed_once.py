"""A job's G-code is analysed once, end to end (issue 14): the printer stage's gate takes the
analysis the slicer's gate or the file's import made, and `printforge print` hands its own
pre-gate's analysis to the job. Counted by the analysis itself (`analyses_made`), on a real
pipeline streaming to an in-process virtual printer; the printer agent's options (`gate`,
`material_from`) still decide what is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import trimesh

from printforge.cli.print_cmd import _gate
from printforge.gcode.analysis import analyses_made
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.job import SPANS, JobState, Span, StageName
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import PrintRequest
from printforge.orchestrator.local import LocalPipeline
from printforge.settings import Settings, load_settings
from tests.fakes.vmarlin import cube_gcode, write_gcode

PROFILE = PrinterProfile(name="generic-220")
# The printer's own spool, PLA with a hotend limit below what cube_gcode sets (210 °C); the
# configured PLA allows it. Only a gate that applies the printer's material refuses the file.
COOL = MaterialProfile(name="PLA", hotend_temp=190, bed_temp=60, max_hotend_temp=200)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env="development", overrides={"data_dir": str(tmp_path / "data")})


@pytest_asyncio.fixture
async def driver() -> AsyncIterator[VirtualDriver]:
    # Started by the pipeline's printer manager, stopped here (as `printforge print` does).
    printer = VirtualDriver("v1", VirtualConfig(sim_speed=20000.0), PROFILE)
    try:
        yield printer
    finally:
        await printer.stop()


async def _print(
    settings: Settings,
    driver: VirtualDriver,
    request: PrintRequest,
    span: Span,
    *,
    analysed: Any = None,
    **options: Any,
) -> Any:
    async with LocalPipeline(settings, span, driver=driver, printer_agent=options) as local:
        job = await local.submit(request)
        if analysed is None:
            return await local.run(job, target=driver.name)
        return await local.run(job, target=driver.name, analysed=analysed)


@pytest.mark.asyncio
async def test_a_users_gcode_is_analysed_once_as_imported(
    tmp_path: Path, settings: Settings, driver: VirtualDriver
) -> None:
    path = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5))
    before = analyses_made()
    job = await _print(settings, driver, PrintRequest(gcode_path=path), SPANS["print"])
    assert job.state is JobState.COMPLETED, job.error
    assert analyses_made() - before == 1
    assert job.report["gate"]["passed"] is True
    assert job.gcode is not None and job.gcode.layers == 8


@pytest.mark.asyncio
async def test_print_hands_its_own_gate_analysis_to_the_job(
    tmp_path: Path, settings: Settings, driver: VirtualDriver
) -> None:
    path = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5))
    before = analyses_made()
    analysed = _gate(path, driver)  # what `printforge print` runs before it opens the port
    job = await _print(
        settings,
        driver,
        PrintRequest(gcode_path=path),
        SPANS["print"],
        analysed=analysed,
        material_from="printer",
    )
    assert job.state is JobState.COMPLETED, job.error
    assert analyses_made() - before == 1
    # The job's figures are the file's, its filament weighed with the job's material.
    assert job.gcode is not None and job.gcode.layers == 8 and job.gcode.filament_g > 0


@pytest.mark.asyncio
async def test_a_file_changed_after_the_pre_gate_is_analysed_again(
    tmp_path: Path, settings: Settings, driver: VirtualDriver
) -> None:
    path = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5))
    analysed = _gate(path, driver)
    write_gcode(tmp_path, cube_gcode(size=6.0, layer=0.5))  # same name, other bytes
    before = analyses_made()
    job = await _print(
        settings, driver, PrintRequest(gcode_path=path), SPANS["print"], analysed=analysed
    )
    assert job.state is JobState.COMPLETED, job.error
    assert analyses_made() - before == 1
    assert job.gcode is not None and job.gcode.layers == 12


@pytest.mark.asyncio
async def test_a_sliced_job_is_analysed_once(
    tmp_path: Path, settings: Settings, driver: VirtualDriver
) -> None:
    stl = tmp_path / "cube.stl"
    trimesh.creation.box((8.0, 8.0, 2.0)).export(stl)
    before = analyses_made()
    job = await _print(
        settings,
        driver,
        PrintRequest(model_path=stl),
        Span(entry=StageName.SLICER, exit=StageName.PRINTER),
    )
    assert job.state is JobState.COMPLETED, job.error
    assert analyses_made() - before == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("analysed_first", [False, True])
async def test_the_gate_applies_the_printers_material_when_told(
    tmp_path: Path, settings: Settings, analysed_first: bool
) -> None:
    """`material_from="printer"`: the spool on the printer limits the hotend, whether or not
    the analysis was made before (by `print`'s pre-gate, which knows no material here)."""
    path = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5))
    driver = VirtualDriver("v1", VirtualConfig(sim_speed=20000.0), PROFILE, COOL)
    try:
        bare = VirtualDriver("v0", VirtualConfig(), PROFILE)  # never started: no material
        analysed = _gate(path, bare) if analysed_first else None
        job = await _print(
            settings,
            driver,
            PrintRequest(gcode_path=path),
            SPANS["print"],
            analysed=analysed,
            material_from="printer",
        )
    finally:
        await driver.stop()
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "unsafe_gcode"
    assert "material 'PLA' limit of 200" in job.error.message
    assert driver.machine is None or not driver.moves  # nothing was sent


@pytest.mark.asyncio
async def test_the_gate_applies_the_jobs_material_by_default(
    tmp_path: Path, settings: Settings
) -> None:
    """`material_from="job"` (the default, every farm job): the job's material, as configured,
    decides, not the spool object the driver holds."""
    path = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5))
    driver = VirtualDriver("v1", VirtualConfig(sim_speed=20000.0), PROFILE, COOL)
    try:
        job = await _print(settings, driver, PrintRequest(gcode_path=path), SPANS["print"])
    finally:
        await driver.stop()
    assert job.state is JobState.COMPLETED, job.error


@pytest.mark.asyncio
async def test_gate_false_sends_what_the_gate_would_refuse(
    tmp_path: Path, settings: Settings
) -> None:
    path = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5))
    driver = VirtualDriver("v1", VirtualConfig(sim_speed=20000.0), PROFILE, COOL)
    before = analyses_made()
    try:
        job = await _print(
            settings,
            driver,
            PrintRequest(gcode_path=path),
            SPANS["print"],
            gate=False,
            material_from="printer",
        )
    finally:
        await driver.stop()
    assert job.state is JobState.COMPLETED, job.error
    assert job.report["gate"] == {"passed": None, "printer": "v1", "skipped": True}
    assert analyses_made() - before == 1  # the import's figures, no gate


@pytest.mark.asyncio
async def test_the_server_gates_with_the_jobs_material_and_analyses_once(tmp_path: Path) -> None:
    """The orchestrator's door (server, `run`): the printer agent with its defaults, `gate` on
    and the job's material. 245 °C is above PLA's limit (235) and within the printer's."""
    from printforge.orchestrator.service import Orchestrator

    hot = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5).replace("S210", "S245"))
    fine = write_gcode(tmp_path, cube_gcode(size=4.0, layer=0.5), name="fine.gcode")
    # workers = 0: every analysis in this process, where it is counted (a worker's is not).
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "sim_speed": 20000.0,
            "mock": True,
            "runtime": {"workers": 0},
        }
    )
    async with Orchestrator(settings) as orch:
        refused = await orch.submit(PrintRequest(gcode_path=hot, material="PLA"))
        refused = await orch.wait(refused.id, timeout=60)
        before = analyses_made()
        done = await orch.submit(PrintRequest(gcode_path=fine, material="PLA"))
        done = await orch.wait(done.id, timeout=60)
    assert refused.state is JobState.FAILED
    assert refused.error is not None and refused.error.code == "unsafe_gcode"
    assert "material 'PLA' limit of 235" in refused.error.message
    assert done.state is JobState.COMPLETED, done.error
    assert analyses_made() - before == 1
