"""The Slicer agent with each real engine: same file names, figures from the gate, a picture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trimesh

from printforge.agents.base import AgentContext
from printforge.agents.slicer import SlicerAgent
from printforge.models.artifact import MeshArtifact, file_sha256
from printforge.models.request import PrintRequest, SliceOverrides
from printforge.settings import load_settings
from printforge.slicing.curaengine import find_definitions

ENGINES = [
    pytest.param(
        "prusaslicer",
        marks=[
            pytest.mark.prusaslicer,
            pytest.mark.skipif(
                shutil.which("prusa-slicer") is None, reason="prusa-slicer not installed"
            ),
        ],
    ),
    pytest.param(
        "curaengine",
        marks=[
            pytest.mark.curaengine,
            pytest.mark.skipif(
                shutil.which("CuraEngine") is None or find_definitions(None) is None,
                reason="CuraEngine or the cura definitions not installed",
            ),
        ],
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("engine", ENGINES)
async def test_agent_with_real_engine(tmp_path: Path, engine: str) -> None:
    settings = load_settings()
    part = trimesh.creation.cylinder(radius=8, height=10, sections=64)
    stl = tmp_path / "part.stl"
    part.export(stl)
    mesh = MeshArtifact(
        path=stl,
        sha256=file_sha256(stl),
        size_bytes=stl.stat().st_size,
        triangles=len(part.faces),
        watertight=True,
        volume_mm3=float(part.volume),
        size_mm=tuple(part.extents),
    )
    ctx = AgentContext(
        job_id="j",
        job_dir=tmp_path / "job",
        request=PrintRequest(text="a puck", slice=SliceOverrides(engine=engine, perimeters=3)),
        printer="virtual",
        profile=settings.printer_profile("virtual"),
        material=settings.material("PLA"),
    )
    art = await SlicerAgent(settings).run(mesh, ctx)
    assert art.engine == engine
    assert art.path == ctx.job_dir / "model.gcode" and art.verify()
    assert art.layers == 50
    assert art.preview_png is not None and art.preview_png.stat().st_size > 1000
    assert art.bounds_max is not None and art.bounds_max[2] == pytest.approx(10.0)
    assert art.max_hotend_temp == 215
    report = ctx.report["slicer"]
    assert report["engine"] == engine and report["engine_estimate_s"] > 0
    # The gate's estimate and the engine's own stay in the same range.
    assert report["estimated_time_s"] == pytest.approx(report["engine_estimate_s"], rel=0.25)
