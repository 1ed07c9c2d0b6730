"""The Slicer agent end to end with the built-in engine: files, artifact, report, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trimesh

from printforge.agents.base import AgentContext
from printforge.agents.slicer import SlicerAgent
from printforge.models.artifact import MeshArtifact, file_sha256
from printforge.models.request import PrintRequest, SliceOverrides
from printforge.runtime.errors import ConfigError, InputError
from printforge.settings import Settings, load_settings


def _mesh(tmp_path: Path, mesh: trimesh.Trimesh) -> MeshArtifact:
    path = tmp_path / "model.stl"
    mesh.export(path)
    return MeshArtifact(
        path=path,
        sha256=file_sha256(path),
        size_bytes=path.stat().st_size,
        triangles=len(mesh.faces),
        watertight=mesh.is_watertight,
        volume_mm3=float(mesh.volume),
        size_mm=tuple(mesh.extents),
    )


def _ctx(settings: Settings, tmp_path: Path, calls: list[Any], **slice_: Any) -> AgentContext:
    return AgentContext(
        job_id="j1",
        job_dir=tmp_path / "job",
        request=PrintRequest(text="a 20 mm cube", slice=SliceOverrides(**slice_)),
        printer="virtual",
        profile=settings.printer_profile("virtual"),
        material=settings.material("PLA"),
        progress=lambda f, m, d: calls.append((f, m)),
    )


@pytest.mark.asyncio
async def test_agent_slices_checks_and_draws(tmp_path: Path) -> None:
    settings = load_settings()
    calls: list[Any] = []
    ctx = _ctx(settings, tmp_path, calls, perimeters=3, infill_percent=15)
    art = await SlicerAgent(settings).run(_mesh(tmp_path, trimesh.creation.box((20, 20, 20))), ctx)
    assert art.path == ctx.job_dir / "model.gcode"
    assert art.verify()
    assert art.engine == "builtin"
    assert art.layers == 100
    assert art.preview_png == ctx.job_dir / "layers.png"
    assert art.preview_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 600 < art.estimated_time_s < 3600
    assert art.filament_g > 0 and art.filament_mm > 0
    assert art.max_hotend_temp == 215 and art.max_bed_temp == 60
    assert art.bounds_max is not None and art.bounds_max[2] == pytest.approx(20)
    report = ctx.report["slicer"]
    assert report["settings"]["perimeters"] == 3
    assert report["settings"]["infill_percent"] == 15
    assert report["layers"] == 100
    fractions = [f for f, _ in calls if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.asyncio
async def test_agent_refuses_a_bad_model_as_input_error(tmp_path: Path) -> None:
    settings = load_settings()
    box = trimesh.creation.box((10, 10, 10))
    broken = trimesh.Trimesh(vertices=box.vertices, faces=box.faces[:-2])
    with pytest.raises(InputError, match="not manifold"):
        await SlicerAgent(settings).run(_mesh(tmp_path, broken), _ctx(settings, tmp_path, []))


@pytest.mark.asyncio
async def test_unknown_engine_and_missing_binary(tmp_path: Path) -> None:
    settings = load_settings(overrides={"slicer": {"prusaslicer_path": "no-such-slicer-here"}})
    mesh = _mesh(tmp_path, trimesh.creation.box((10, 10, 10)))
    with pytest.raises(InputError, match="unknown slicer engine"):
        await SlicerAgent(settings).run(mesh, _ctx(settings, tmp_path, [], engine="slic3r"))
    with pytest.raises(ConfigError, match="not installed"):
        await SlicerAgent(settings).run(mesh, _ctx(settings, tmp_path, [], engine="prusaslicer"))
    # auto falls back to the built-in slicer when nothing preferred is installed
    settings = load_settings(
        overrides={
            "slicer": {"preferred_engines": ["prusaslicer"], "prusaslicer_path": "no-such-slicer"}
        }
    )
    art = await SlicerAgent(settings).run(mesh, _ctx(settings, tmp_path, [], engine="auto"))
    assert art.engine == "builtin"


@pytest.mark.asyncio
async def test_concurrent_jobs_take_turns_for_the_slicer(tmp_path: Path) -> None:
    import asyncio

    settings = load_settings(overrides={"slicer": {"max_concurrent": 1}})
    events: list[tuple[str, str | None]] = []
    mesh = _mesh(tmp_path, trimesh.creation.box((10, 10, 10)))

    def ctx(name: str) -> AgentContext:
        c = _ctx(settings, tmp_path / name, [])
        c.progress = lambda f, m, d: events.append((name, m))
        return c

    agent = SlicerAgent(settings)
    await asyncio.gather(agent.run(mesh, ctx("a")), agent.run(mesh, ctx("b")))
    started = [n for n, m in events if m and m.startswith("slicing with")]
    finished = [n for n, m in events if m == "drawing layers"]
    first = started[0]
    # The second job starts slicing only after the first has finished with the slicer.
    order = [
        (n, m) for n, m in events if m and (m.startswith("slicing with") or m == "drawing layers")
    ]
    assert order == [
        (first, order[0][1]),
        (first, "drawing layers"),
        (order[2][0], order[2][1]),
        (order[2][0], "drawing layers"),
    ]
    assert set(started) == set(finished) == {"a", "b"}


@pytest.mark.asyncio
async def test_health_names_installed_engines() -> None:
    from printforge.runtime.health import HealthState

    ok = await SlicerAgent(load_settings()).health()
    assert ok is not None and ok.state == HealthState.HEALTHY
    assert ok.detail["installed"]["builtin"] is True  # type: ignore[index]
    missing = load_settings(
        overrides={"slicer": {"engine": "curaengine", "curaengine_path": "no-such-cura"}}
    )
    bad = await SlicerAgent(missing).health()
    assert bad is not None and bad.state == HealthState.UNHEALTHY
    assert "'curaengine' is not installed" in (bad.last_error or "")
