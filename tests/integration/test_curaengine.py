"""CuraEngine as an engine: its G-code passes the gate and agrees with the built-in slicer on
layers and footprint; bad models get the same clear errors. Needs CuraEngine and the `cura`
package's definition files (CI installs both)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trimesh

from printforge.gcode.gate import check_gcode
from printforge.models.request import SliceOverrides
from printforge.runtime.errors import InputError
from printforge.settings import load_settings
from printforge.slicing.curaengine import find_definitions
from printforge.slicing.engine import make_engine
from printforge.slicing.params import resolve_params

pytestmark = [
    pytest.mark.curaengine,
    pytest.mark.skipif(
        shutil.which("CuraEngine") is None or find_definitions(None) is None,
        reason="CuraEngine or the cura package's definitions not installed",
    ),
]


def _setup(tmp_path: Path, mesh: trimesh.Trimesh | None, **overrides: object):  # type: ignore[no-untyped-def]
    settings = load_settings()
    profile = settings.printer_profile("virtual")
    material = settings.material("PLA")
    params = resolve_params(settings.slicer, profile, material, SliceOverrides(**overrides))
    model = tmp_path / "m.stl"
    if mesh is not None:
        mesh.export(model)
    return settings, profile, material, params, model


@pytest.mark.asyncio
async def test_cura_output_passes_the_gate_and_matches_builtin(tmp_path: Path) -> None:
    part = trimesh.creation.annulus(r_min=4, r_max=10, height=8, sections=96)
    settings, profile, material, params, model = _setup(tmp_path, part, skirt_loops=0)
    results = {}
    for name in ("curaengine", "builtin"):
        engine = make_engine(name, settings.slicer)
        result = await engine.slice(model, tmp_path / f"{name}.gcode", params, profile, material)
        results[name] = (result, check_gcode(result.gcode, profile, material))
    cura, cura_a = results["curaengine"]
    _, ours = results["builtin"]
    assert cura_a.generator == "curaengine"
    assert cura_a.layers == ours.layers == 40
    assert cura_a.max_hotend_temp == 215 and cura_a.max_bed_temp == 60
    for k in range(2):  # centred on the bed like ours
        centre = (cura_a.extrude_min[k] + cura_a.extrude_max[k]) / 2
        assert centre == pytest.approx(110, abs=0.3)
    assert cura_a.extrude_max[2] == pytest.approx(8.0)
    assert cura_a.filament_mm == pytest.approx(ours.filament_mm, rel=0.25)
    assert cura.engine_estimate_s is not None and cura.engine_estimate_s > 0
    assert cura.engine_filament_mm == pytest.approx(cura_a.filament_mm, rel=0.05)


@pytest.mark.asyncio
async def test_cura_header_carries_the_real_figures(tmp_path: Path) -> None:
    # CuraEngine's command line leaves the placeholders Cura's front end fills in (;TIME:6666,
    # ;Filament used: 0m, ;MINX:2.14748e+06); Moonraker and printer screens read them.
    settings, profile, material, params, model = _setup(tmp_path, trimesh.creation.box((20,) * 3))
    engine = make_engine("curaengine", settings.slicer)
    result = await engine.slice(model, tmp_path / "c.gcode", params, profile, material)
    head = result.gcode.read_text()[:600]
    assert "6666" not in head and "2.14748e+06" not in head and "used: 0m" not in head
    a = check_gcode(result.gcode, profile, material)
    assert result.engine_estimate_s is not None
    assert f";TIME:{round(result.engine_estimate_s)}\n" in head
    assert a.slicer_estimate_s == round(result.engine_estimate_s)
    metres = float(head.split(";Filament used: ")[1].split("m")[0])
    assert result.engine_filament_mm is not None
    assert metres * 1000 == pytest.approx(result.engine_filament_mm, abs=0.01)
    assert a.extrude_min is not None and a.extrude_max is not None
    for k, axis in enumerate("XYZ"):
        low = float(head.split(f";MIN{axis}:")[1].split()[0])
        high = float(head.split(f";MAX{axis}:")[1].split()[0])
        assert low == pytest.approx(a.extrude_min[k], abs=0.01)
        assert high == pytest.approx(a.extrude_max[k], abs=0.01)


@pytest.mark.asyncio
async def test_cura_settings_reach_the_engine(tmp_path: Path) -> None:
    settings, profile, material, params, model = _setup(
        tmp_path,
        trimesh.creation.box((20, 20, 6.2)),
        layer_height=0.3,
        infill_percent=0,
        skirt_loops=0,
    )
    engine = make_engine("curaengine", settings.slicer)
    result = await engine.slice(model, tmp_path / "o.gcode", params, profile, material)
    text = result.gcode.read_text()
    a = check_gcode(result.gcode, profile, material)
    assert a.layers == 1 + 20  # 0.2 mm first layer then 0.3 mm layers
    assert "M83" in text and "M106 S255" in text
    assert ";TYPE:FILL" not in text  # 0 % infill: skins only


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (
            lambda p: trimesh.Trimesh(
                vertices=trimesh.creation.box((9, 9, 9)).vertices,
                faces=trimesh.creation.box((9, 9, 9)).faces[:-1],
            ).export(p),
            "not manifold",
        ),
        (lambda p: trimesh.creation.box((250, 20, 20)).export(p), "larger than"),
    ],
    ids=["empty", "open", "too-wide"],
)
async def test_cura_bad_models_are_input_errors(tmp_path: Path, make, match: str) -> None:  # type: ignore[no-untyped-def]
    settings, profile, material, params, model = _setup(tmp_path, None)
    make(model)
    engine = make_engine("curaengine", settings.slicer)
    with pytest.raises(InputError, match=match):
        await engine.slice(model, tmp_path / "o.gcode", params, profile, material)


@pytest.mark.asyncio
async def test_a_part_nearly_as_wide_as_the_bed_loses_its_skirt_not_the_job(
    tmp_path: Path,
) -> None:
    # 214 mm on the 220 mm bed: Cura's skirt 3 mm out would leave the bed and the gate would
    # refuse the file.
    part = trimesh.creation.box((214, 20, 2))
    settings, profile, material, params, model = _setup(tmp_path, part, skirt_loops=1)
    engine = make_engine("curaengine", settings.slicer)
    result = await engine.slice(model, tmp_path / "c.gcode", params, profile, material)
    a = check_gcode(result.gcode, profile, material)
    assert a.extrude_min is not None and a.extrude_min[0] > 2.5
