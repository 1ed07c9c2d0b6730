"""The built-in slicer against the real PrusaSlicer with the same settings, and the gate on
PrusaSlicer's output. Needs the prusa-slicer binary (CI installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trimesh

from printforge.gcode.analysis import GcodeAnalysis
from printforge.gcode.gate import check_gcode
from printforge.models.request import SliceOverrides
from printforge.runtime.errors import InputError
from printforge.settings import load_settings
from printforge.slicing.engine import make_engine
from printforge.slicing.params import resolve_params

pytestmark = [
    pytest.mark.prusaslicer,
    pytest.mark.skipif(shutil.which("prusa-slicer") is None, reason="prusa-slicer not installed"),
]


def _cube() -> trimesh.Trimesh:
    return trimesh.creation.box((20, 20, 20))


def _cylinder() -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=10, height=15.1, sections=128)


def _bracket() -> trimesh.Trimesh:
    """A plate with two through holes and a shelf sticking out 8 mm at 45°-plus overhang."""
    plate = trimesh.creation.box((40, 24, 12))
    plate.apply_translation((0, 0, 6))
    shelf = trimesh.creation.box((8, 24, 3))
    shelf.apply_translation((24, 0, 10.5))
    body = trimesh.boolean.union([plate, shelf])
    for x in (-10, 10):
        hole = trimesh.creation.cylinder(radius=4, height=30, sections=64)
        hole.apply_translation((x, 0, 6))
        body = trimesh.boolean.difference([body, hole])
    return body


async def _both(
    tmp_path: Path, mesh: trimesh.Trimesh, **overrides: object
) -> tuple[GcodeAnalysis, GcodeAnalysis, float | None]:
    settings = load_settings()
    profile = settings.printer_profile("virtual")
    material = settings.material("PLA")
    params = resolve_params(
        settings.slicer, profile, material, SliceOverrides(skirt_loops=0, **overrides)
    )
    model = tmp_path / "m.stl"
    mesh.export(model)
    out = {}
    estimate = None
    for name in ("builtin", "prusaslicer"):
        engine = make_engine(name, settings.slicer)
        result = await engine.slice(model, tmp_path / f"{name}.gcode", params, profile, material)
        out[name] = check_gcode(result.gcode, profile, material)
        if name == "prusaslicer":
            estimate = result.engine_estimate_s
    return out["builtin"], out["prusaslicer"], estimate


@pytest.mark.asyncio
@pytest.mark.parametrize("make", [_cube, _cylinder, _bracket], ids=["cube", "cylinder", "bracket"])
async def test_builtin_matches_prusaslicer(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    ours, theirs, estimate = await _both(tmp_path, make())
    assert ours.layers == theirs.layers
    assert ours.layer_heights == pytest.approx(theirs.layer_heights, abs=1e-3)
    for k in range(3):
        assert ours.extrude_min[k] == pytest.approx(theirs.extrude_min[k], abs=0.3)
        assert ours.extrude_max[k] == pytest.approx(theirs.extrude_max[k], abs=0.3)
    assert ours.filament_mm == pytest.approx(theirs.filament_mm, rel=0.15)
    # Our estimator reads PrusaSlicer's G-code as PrusaSlicer itself does.
    assert estimate is not None
    assert theirs.estimated_time_s == pytest.approx(estimate, rel=0.05)


@pytest.mark.asyncio
async def test_overrides_reach_prusaslicer(tmp_path: Path) -> None:
    ours, theirs, _ = await _both(
        tmp_path, _cube(), layer_height=0.3, perimeters=3, infill_percent=40
    )
    assert theirs.layers == ours.layers == 1 + 66  # 0.2 first layer, then 0.3 mm to 20 mm
    text = (tmp_path / "prusaslicer.gcode").read_text()
    assert "; perimeters = 3" in text and "; fill_density = 40%" in text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (
            lambda p: trimesh.Trimesh(vertices=_cube().vertices, faces=_cube().faces[:-1]).export(
                p
            ),
            "not manifold",
        ),
        (lambda p: trimesh.creation.box((20, 20, 400)).export(p), "larger than"),
    ],
    ids=["empty", "open", "too-tall"],
)
async def test_prusaslicer_bad_models_are_input_errors(
    tmp_path: Path,
    make,
    match: str,  # type: ignore[no-untyped-def]
) -> None:
    settings = load_settings()
    profile = settings.printer_profile("virtual")
    material = settings.material("PLA")
    model = tmp_path / "bad.stl"
    make(model)
    engine = make_engine("prusaslicer", settings.slicer)
    with pytest.raises(InputError, match=match):
        await engine.slice(
            model,
            tmp_path / "o.gcode",
            resolve_params(settings.slicer, profile, material),
            profile,
            material,
        )


@pytest.mark.asyncio
@pytest.mark.parametrize(("height", "layer"), [(20, 0.25), (20.1, 0.2), (7.33, 0.15)])
async def test_layer_count_rule_matches_prusaslicer(
    tmp_path: Path, height: float, layer: float
) -> None:
    ours, theirs, _ = await _both(
        tmp_path, trimesh.creation.box((8, 8, height)), layer_height=layer, infill_percent=0
    )
    assert ours.layers == theirs.layers
    assert ours.extrude_max[2] == pytest.approx(theirs.extrude_max[2], abs=1e-3)


@pytest.mark.asyncio
async def test_progress_is_reported_live_and_never_goes_back(tmp_path: Path) -> None:
    settings = load_settings()
    profile = settings.printer_profile("virtual")
    material = settings.material("PLA")
    model = tmp_path / "m.stl"
    _cube().export(model)
    seen: list[float] = []
    engine = make_engine("prusaslicer", settings.slicer)
    result = await engine.slice(
        model,
        tmp_path / "o.gcode",
        resolve_params(settings.slicer, profile, material),
        profile,
        material,
        lambda f, m: seen.append(f),
    )
    assert len(seen) >= 3 and seen == sorted(seen)
    assert result.process_s is not None and result.process_s <= result.wall_s


def _fan_by_layer(text: str) -> list[int]:
    """The fan (0-255) in force at each layer's first extrusion."""
    fan, fans, seen = 0, [], False
    for line in text.splitlines():
        if line.startswith(";LAYER_CHANGE") or line.startswith(";LAYER:"):
            seen = False
        elif line.startswith("M106"):
            fan = int(float(line.split("S")[1].split()[0]))
        elif line.startswith("M107"):
            fan = 0
        elif line.startswith("G1 X") and " E" in line and not seen:
            fans.append(fan)
            seen = True
    return fans


@pytest.mark.asyncio
async def test_prusaslicer_keeps_the_material_fan_on_like_builtin(tmp_path: Path) -> None:
    # PLA asks for 100 % fan from layer 2. PrusaSlicer with `fan_always_on = 0` only cools
    # layers faster than fan_below_layer_time (and bridges), so it printed with the fan off.
    await _both(tmp_path, _cube())
    for name in ("builtin", "prusaslicer"):
        fans = _fan_by_layer((tmp_path / f"{name}.gcode").read_text())
        assert len(fans) == 100, name
        assert fans[0] == 0, name
        assert set(fans[1:]) == {255}, name


@pytest.mark.asyncio
async def test_a_part_nearly_as_wide_as_the_bed_loses_its_skirt_not_the_job(
    tmp_path: Path,
) -> None:
    # 214 mm on the 220 mm bed: PrusaSlicer's skirt 3 mm out would leave the bed and the gate
    # would refuse the file; the built-in slicer already drops it.
    settings = load_settings()
    profile = settings.printer_profile("virtual")
    material = settings.material("PLA")
    params = resolve_params(settings.slicer, profile, material, SliceOverrides(skirt_loops=1))
    model = tmp_path / "m.stl"
    trimesh.creation.box((214, 20, 2)).export(model)
    engine = make_engine("prusaslicer", settings.slicer)
    result = await engine.slice(model, tmp_path / "ps.gcode", params, profile, material)
    a = check_gcode(result.gcode, profile, material)
    assert a.extrude_min is not None and a.extrude_min[0] > 2.5
