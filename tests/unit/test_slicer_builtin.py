"""The built-in slicer on meshes the tests build: layers, footprint, holes, skins, supports,
travel moves, start/end G-code and refusals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import trimesh

from printforge.gcode.gate import check_gcode
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import SliceOverrides
from printforge.runtime.errors import ConfigError, InputError
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params
from printforge.slicing.preview import extrusion_segments

PLA = MaterialProfile(
    name="PLA",
    hotend_temp=210,
    first_layer_hotend_temp=215,
    bed_temp=60,
    first_layer_bed_temp=65,
    max_hotend_temp=235,
    fan_from_layer=2,
)
GENERIC = PrinterProfile(name="generic-220")


def _stl(tmp_path: Path, mesh: trimesh.Trimesh, name: str = "part.stl") -> Path:
    path = tmp_path / name
    mesh.export(path)
    return path


def _slice(
    tmp_path: Path, mesh: trimesh.Trimesh, profile: PrinterProfile = GENERIC, **overrides: object
) -> tuple[Path, str]:
    params = resolve_params(SlicerSettings(), profile, PLA, SliceOverrides(**overrides))
    out = tmp_path / "out.gcode"
    slice_file(_stl(tmp_path, mesh), out, params, profile)
    return out, out.read_text()


def test_cube_layers_footprint_and_filament(tmp_path: Path) -> None:
    out, _text = _slice(tmp_path, trimesh.creation.box((20, 20, 20)), skirt_loops=0)
    a = check_gcode(out, GENERIC, PLA)
    assert a.layers == 100
    assert a.extrude_max[2] == pytest.approx(20.0)
    # Centred on the bed, the outer wall's centre-line half a line inside the part.
    assert a.extrude_min[0] == pytest.approx(100.225, abs=0.01)
    assert a.extrude_max[1] == pytest.approx(119.775, abs=0.01)
    volume = a.filament_mm * np.pi * (1.75 / 2) ** 2
    shells = 2 * 4 * 20 * 0.45 * 20 + 7 * 400 * 0.2  # two walls plus 3 bottom + 4 top layers
    assert shells < volume < 8000 * 0.6
    assert a.filament_g == pytest.approx(volume * 1.24 / 1000, rel=1e-3)


def test_layer_height_override_changes_layer_count(tmp_path: Path) -> None:
    out, _ = _slice(tmp_path, trimesh.creation.box((10, 10, 6)), layer_height=0.3)
    assert check_gcode(out, GENERIC, PLA).layers == 1 + 19  # 0.2 first, then 0.3 up to 6 mm


def test_hole_stays_empty(tmp_path: Path) -> None:
    ring = trimesh.creation.annulus(r_min=5, r_max=12, height=8, sections=96)
    _, text = _slice(tmp_path, ring, skirt_loops=0)
    segs = extrusion_segments(text)
    mid = segs[sorted(segs)[len(segs) // 2]]
    pts = np.vstack([mid[:, :2], mid[:, 2:]]) - [110, 110]
    r = np.hypot(pts[:, 0], pts[:, 1])
    assert r.min() > 5.0 and r.max() < 12.0
    # Both walls have their perimeters: lines on the inside of the hole and the outside.
    assert np.any(r < 5.5) and np.any(r > 11.5)


def test_top_and_bottom_skins_are_solid(tmp_path: Path) -> None:
    _, text = _slice(tmp_path, trimesh.creation.box((20, 20, 10)), infill_percent=10)
    blocks = re.split(r";LAYER:\d+\n", text)[1:]
    solid_lines = [b.count(";TYPE:solid") for b in blocks]
    sparse_lines = [b.count(";TYPE:infill") for b in blocks]
    assert all(solid_lines[:3]) and all(solid_lines[-4:])
    assert not any(sparse_lines[:3]) and not any(sparse_lines[-4:])
    assert all(sparse_lines[5:-5]) and not any(solid_lines[5:-5])


@pytest.mark.parametrize("pattern", ["rectilinear", "grid", "gyroid"])
def test_infill_patterns_fill_the_inside(tmp_path: Path, pattern: str) -> None:
    out, text = _slice(
        tmp_path,
        trimesh.creation.box((20, 20, 6)),
        infill_pattern=pattern,
        infill_percent=20,
        skirt_loops=0,
    )
    a = check_gcode(out, GENERIC, PLA)
    block = re.split(r";LAYER:\d+\n", text)[12]
    assert ";TYPE:infill" in block
    assert a.extrude_min[0] > 100 and a.extrude_max[0] < 120
    segs = extrusion_segments(text)
    mid = segs[sorted(segs)[12]]
    length = np.hypot(mid[:, 2] - mid[:, 0], mid[:, 3] - mid[:, 1]).sum()
    walls = 2 * 4 * 19.3
    # About 20 % of the 18.6 mm square's area at 0.45 mm lines, whatever the pattern.
    assert 0.1 * 18.6**2 / 0.45 < length - walls < 0.35 * 18.6**2 / 0.45


def test_two_islands_travel_with_retraction_and_hop(tmp_path: Path) -> None:
    a = trimesh.creation.box((10, 10, 4))
    b = a.copy()
    b.apply_translation((30, 0, 0))
    out, text = _slice(tmp_path, trimesh.util.concatenate([a, b]), skirt_loops=0)
    assert "G1 E-0.80000 F2100" in text  # PLA: 0.8 mm at 35 mm/s
    # z-hop: a travel at layer z + 0.2 between retract and unretract
    assert re.search(
        r"G1 E-0\.8\d* F2100\nG1 Z0\.400 F\d+\nG0 X[\d.]+ Y[\d.]+ F9000\n"
        r"G1 Z0\.200",
        text,
    )
    assert check_gcode(out, GENERIC, PLA).layers == 20


def test_heat_fan_and_temperature_changes(tmp_path: Path) -> None:
    _, text = _slice(tmp_path, trimesh.creation.box((10, 10, 2)))
    head = text[: text.index("G28")]
    assert (
        head.index("M140 S65")
        < head.index("M104 S215")
        < head.index("M190 S65")
        < head.index("M109 S215")
    )
    layer1 = text[text.index(";LAYER:1\n") : text.index(";LAYER:2\n")]
    assert "M104 S210" in layer1 and "M140 S60" in layer1 and "M106 S255" in layer1
    assert "M106" not in text[: text.index(";LAYER:1\n")]


def test_start_gcode_that_heats_is_not_preceded_by_heating(tmp_path: Path) -> None:
    profile = GENERIC.model_copy(
        update={
            "start_gcode": "M190 S{first_layer_bed_temp}\nM109 S{hotend_temp}\nG28\n",
            "end_gcode": "G1 Z{park_z}\nG1 X0 Y{bed_y}\nM84\n",
        }
    )
    _, text = _slice(tmp_path, trimesh.creation.box((10, 10, 2)), profile)
    assert "M140" not in text[: text.index("M190")]
    assert "M190 S65\nM109 S210\nG28" in text
    assert "G1 Z12\nG1 X0 Y220\nM84" in text  # park 10 mm above the 2 mm part


def test_unknown_placeholder_is_a_config_error(tmp_path: Path) -> None:
    profile = GENERIC.model_copy(update={"name": "odd", "end_gcode": "G1 Z{max_z_lift}\n"})
    with pytest.raises(ConfigError, match=r"'odd'.*\{max_z_lift\}"):
        _slice(tmp_path, trimesh.creation.box((10, 10, 2)), profile)


def test_supports_under_an_overhang_only_when_asked(tmp_path: Path) -> None:
    post = trimesh.creation.box((6, 6, 10))
    post.apply_translation((0, 0, 5))
    shelf = trimesh.creation.box((20, 6, 2))
    shelf.apply_translation((7, 0, 11))
    tee = trimesh.boolean.union([post, shelf])
    _, without = _slice(tmp_path, tee)
    _, with_support = _slice(tmp_path, tee, supports=True)
    assert ";TYPE:support" not in without
    assert ";TYPE:support" in with_support
    segs = extrusion_segments(with_support)
    low = segs[sorted(segs)[5]]
    # Support stands beside the post, under the shelf's overhanging part.
    assert (low[:, 0] > 110 + 3.5).any()


def test_brim_surrounds_the_first_layer(tmp_path: Path) -> None:
    out, text = _slice(tmp_path, trimesh.creation.box((10, 10, 2)), brim_width=4, skirt_loops=0)
    assert ";TYPE:brim" in text
    a = check_gcode(out, GENERIC, PLA)
    assert a.extrude_min[0] == pytest.approx(105 - 4, abs=0.5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (
            lambda p: trimesh.Trimesh(
                vertices=trimesh.creation.box((10, 10, 10)).vertices,
                faces=trimesh.creation.box((10, 10, 10)).faces[:-1],
            ).export(p),
            "not manifold",
        ),
        (lambda p: trimesh.creation.box((300, 20, 20)).export(p), "larger than"),
        (lambda p: p.write_text("solid x\nendsolid x\n"), "empty|cannot be read"),
    ],
    ids=["zero-bytes", "open-surface", "oversized", "no-triangles"],
)
def test_bad_models_are_refused_clearly(tmp_path: Path, make, match: str) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "bad.stl"
    make(model)
    params = resolve_params(SlicerSettings(), GENERIC, PLA)
    with pytest.raises(InputError, match=match):
        slice_file(model, tmp_path / "o.gcode", params, GENERIC)
    assert not (tmp_path / "o.gcode").exists()


@pytest.mark.parametrize("printer", ["generic-220", "ender3", "prusa-mk3s"])
def test_every_shipped_profile_gives_gcode_the_gate_passes(tmp_path: Path, printer: str) -> None:
    from printforge.settings import load_settings

    settings = load_settings()
    profile = settings.printer_profiles[printer]
    out, _ = _slice(tmp_path, trimesh.creation.box((20, 20, 20)), profile)
    a = check_gcode(out, profile, settings.material("PLA"))
    cx = profile.bed_x / 2
    assert a.layers == 100
    assert (a.extrude_min[0] + a.extrude_max[0]) / 2 == pytest.approx(cx, abs=0.01)


def test_min_layer_time_slows_small_layers(tmp_path: Path) -> None:
    tower = trimesh.creation.box((5, 5, 3))
    params = resolve_params(SlicerSettings(min_layer_time=8), GENERIC, PLA)
    out = tmp_path / "slow.gcode"
    slice_file(_stl(tmp_path, tower), out, params, GENERIC)
    fast_params = resolve_params(SlicerSettings(), GENERIC, PLA)
    fast = tmp_path / "fast.gcode"
    slice_file(_stl(tmp_path, tower, "t2.stl"), fast, fast_params, GENERIC)
    slow_a, fast_a = check_gcode(out, GENERIC, PLA), check_gcode(fast, GENERIC, PLA)
    assert slow_a.estimated_time_s > fast_a.estimated_time_s * 1.5
    feeds = [float(f) for f in re.findall(r"^G1 X\S+ Y\S+ E\S+ F(\d+)", out.read_text(), re.M)]
    assert max(feeds) < 45 * 60


@pytest.mark.parametrize("printer", ["generic-220", "ender3", "prusa-mk3s"])
def test_a_part_as_tall_as_the_machine_stays_inside(tmp_path: Path, printer: str) -> None:
    from printforge.settings import load_settings

    settings = load_settings()
    profile = settings.printer_profiles[printer]
    tall = trimesh.creation.box((6, 6, profile.max_z - 0.1))
    out, _ = _slice(tmp_path, tall, profile, layer_height=0.4, infill_percent=0)
    a = check_gcode(out, profile, settings.material("PLA"))
    assert a.move_max[2] <= profile.max_z  # z-hop and the parking lift are capped


def test_skirt_that_would_leave_the_bed_is_dropped_and_brim_cut(tmp_path: Path) -> None:
    out, text = _slice(tmp_path, trimesh.creation.box((216, 100, 1)), brim_width=5)
    assert ";TYPE:skirt" not in text and ";TYPE:brim" in text
    a = check_gcode(out, GENERIC, PLA)
    assert a.extrude_min[0] >= 0 and a.extrude_max[0] <= 220
    assert a.extrude_min[1] < 60 - 4  # the brim still runs along the front and back


def test_gap_between_perimeters_of_a_thin_wall_is_filled(tmp_path: Path) -> None:
    # 1.2 mm: room for one loop from each side (0.86 mm with the second) but not for two.
    _, text = _slice(tmp_path, trimesh.creation.box((30, 1.2, 3)), skirt_loops=0)
    assert ";TYPE:gap" in text
    segs = extrusion_segments(text)
    mid = segs[sorted(segs)[8]]
    centres = (mid[:, 1] + mid[:, 3]) / 2 - 110
    # Extrusion crosses the middle of the wall, not only its two faces (loops at +-0.375 mm).
    assert np.any(np.abs(centres) < 0.1)


def test_a_fin_thinner_than_a_line_is_still_printed(tmp_path: Path) -> None:
    base = trimesh.creation.box((20, 20, 2))
    base.apply_translation((0, 0, 1))
    fin = trimesh.creation.box((16, 0.35, 6))
    fin.apply_translation((0, 0, 3))
    out, text = _slice(tmp_path, trimesh.boolean.union([base, fin]), skirt_loops=0)
    a = check_gcode(out, GENERIC, PLA)
    assert a.layers == 30 and a.extrude_max[2] == pytest.approx(6.0)
    block = re.split(r";LAYER:\d+\n", text)[21]
    # One line along the fin's middle: at most one travel (none when the layer below ended
    # where this one starts), then extrusion only, as wide as the fin.
    assert block.count("G0 ") <= 1
    moves = re.findall(r"^G1 X(\S+) Y(\S+) E(\S+)", block, re.M)
    assert len(moves) > 40
    xy = np.array([[float(x), float(y)] for x, y, _ in moves])
    assert np.ptp(xy[:, 1]) < 0.01 and np.ptp(xy[:, 0]) > 15
    length = float(np.sum(np.hypot(*np.diff(xy, axis=0).T)))
    e = sum(float(de) for _, _, de in moves[1:])
    h = 0.2
    width = (e / length * np.pi * (1.75 / 2) ** 2 - np.pi * h * h / 4) / h + h
    assert width == pytest.approx(0.35, abs=0.01)


def test_start_gcode_heating_only_the_bed_still_gets_the_hotend_heated(tmp_path: Path) -> None:
    profile = GENERIC.model_copy(update={"start_gcode": "M190 S{bed_temp}\nG28\n"})
    _, text = _slice(tmp_path, trimesh.creation.box((10, 10, 2)), profile)
    head = text[: text.index("G28")]
    assert "M104 S215\nM109 S215\nM190 S60\n" in head
    assert "M140" not in head
