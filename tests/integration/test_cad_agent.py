"""The CAD agent writes a checked model and its files into the job folder, imports users'
meshes, and refuses impossible designs before building anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trimesh
from PIL import Image

from printforge.agents.base import AgentContext
from printforge.agents.cad import CADAgent
from printforge.models.artifact import file_sha256
from printforge.models.printability import PrintabilityReport
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import PrintRequest
from printforge.models.spec import DesignSpec
from printforge.runtime.errors import InputError
from printforge.settings import Settings


def _ctx(tmp_path: Path, bed: float = 220.0) -> tuple[AgentContext, list[Any]]:
    seen: list[Any] = []
    ctx = AgentContext(
        job_id="j1",
        job_dir=tmp_path / "job",
        request=PrintRequest(text="a part"),
        printer="virtual",
        profile=PrinterProfile(name="p", bed_x=bed, bed_y=bed),
        material=MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=240),
        progress=lambda f, m, d: seen.append((f, m)),
    )
    return ctx, seen


def _spec(*parts: dict[str, object]) -> DesignSpec:
    return DesignSpec.model_validate({"name": "test part", "parts": list(parts)})


@pytest.mark.asyncio
async def test_cube_to_stl(tmp_path: Path) -> None:
    ctx, seen = _ctx(tmp_path)
    art = await CADAgent(Settings()).run(_spec({"kind": "box", "size": [20, 20, 20]}), ctx)
    assert art.path == ctx.job_dir / "model.stl"
    assert art.sha256 == file_sha256(art.path) and art.size_bytes == art.path.stat().st_size
    assert art.watertight and art.bodies == 1 and art.triangles == 12
    assert art.size_mm == pytest.approx((20, 20, 20), abs=0.1)
    assert art.volume_mm3 == pytest.approx(8000, rel=1e-6)
    assert ctx.report["cad"]["ok"] is True and art.report == ctx.report["cad"]
    PrintabilityReport.model_validate({k: v for k, v in art.report.items() if k != "files"})
    again = trimesh.load(art.path, force="mesh")
    assert again.is_watertight
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.asyncio
async def test_box_with_lid_writes_every_file(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    art = await CADAgent(Settings()).run(
        _spec({"kind": "box_with_lid", "size": [60, 40, 30], "corner_radius": 4}), ctx
    )
    names = {p.name for p in ctx.job_dir.iterdir()}
    assert {"model.stl", "model.3mf", "model.scad", "preview.png"} <= names
    assert art.bodies == 2 and art.preview_png == ctx.job_dir / "preview.png"
    with Image.open(art.preview_png) as img:
        assert img.size == (640, 480)
    assert "pf_slab(60, 40, 30, 4);" in (ctx.job_dir / "model.scad").read_text()
    assert len(trimesh.load(ctx.job_dir / "model.3mf").geometry) == 2
    assert sorted(art.report["files"]) == sorted(names)


@pytest.mark.asyncio
async def test_too_big_refused_before_building(tmp_path: Path) -> None:
    ctx, seen = _ctx(tmp_path, bed=100)
    with pytest.raises(InputError, match="make it smaller"):
        await CADAgent(Settings()).run(_spec({"kind": "box", "size": [150, 20, 20]}), ctx)
    assert not (ctx.job_dir / "model.stl").exists()
    assert seen == []  # refused before the build even started


@pytest.mark.asyncio
async def test_import_repairs_a_broken_stl(tmp_path: Path) -> None:
    cube = trimesh.creation.box((30, 20, 10))
    broken = trimesh.Trimesh(cube.vertices, cube.faces[1:], process=False)
    source = tmp_path / "user.stl"
    broken.export(source)
    ctx, _ = _ctx(tmp_path)
    art = await CADAgent(Settings()).run(source, ctx)
    assert art.watertight and art.volume_mm3 == pytest.approx(6000, rel=1e-6)
    assert any("filled small holes" in r for r in art.report["repaired"])
    assert not (ctx.job_dir / "model.scad").exists()  # no spec, no OpenSCAD source
    assert (ctx.job_dir / "preview.png").is_file()


@pytest.mark.asyncio
async def test_import_turns_a_model_onto_its_best_side(tmp_path: Path) -> None:
    # A T standing on its thin stem; on its top bar it prints without any overhang.
    stem = trimesh.creation.box((6, 6, 30))
    bar = trimesh.creation.box((40, 6, 6))
    bar.apply_translation((0, 0, 18))
    tee = trimesh.boolean.union([stem, bar], engine="manifold")
    source = tmp_path / "tee.obj"
    tee.export(source)
    ctx, _ = _ctx(tmp_path)
    art = await CADAgent(Settings()).run(source, ctx)
    orientation = art.report["orientation"]
    assert orientation["rotated"] is True
    assert orientation["overhang_after_mm2"] < orientation["overhang_before_mm2"]
    assert art.report["overhang_area_mm2"] == pytest.approx(orientation["overhang_after_mm2"])


@pytest.mark.asyncio
async def test_import_refuses_an_open_mesh(tmp_path: Path) -> None:
    cup = trimesh.creation.cylinder(radius=10, height=20, sections=24)
    source = tmp_path / "cup.stl"
    trimesh.Trimesh(cup.vertices, cup.faces[cup.face_normals[:, 2] < 0.9], process=False).export(
        source
    )
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(InputError, match="hole too big to fill safely"):
        await CADAgent(Settings()).run(source, ctx)
    assert not (ctx.job_dir / "model.stl").exists()


def test_design_cli_shows_the_printability_warnings(tmp_path: Path) -> None:
    # A ball overhangs 13 % of its surface: the person running `design` must be told to add
    # supports, not only that the mesh is watertight.
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    base = [
        sys.executable,
        "-m",
        "printforge",
        "--data-dir",
        str(tmp_path / "d"),
        "design",
        "a ball 20 mm diameter",
        "--out",
        str(tmp_path / "ball.stl"),
        "--provider",
        "offline",
    ]
    text = subprocess.run(
        base, capture_output=True, text=True, env=env, cwd=root, timeout=120, check=False
    )
    assert text.returncode == 0, text.stderr
    assert "warning:" in text.stdout and "overhangs more than 45" in text.stdout
    done = subprocess.run(
        [*base, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    check = json.loads(done.stdout)["printability"]
    assert check["ok"] and check["overhang_area_mm2"] > 100
    assert any("supports" in w for w in check["warnings"])
