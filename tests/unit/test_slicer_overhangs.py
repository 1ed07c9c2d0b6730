"""Overhang perimeters in the built-in slicer: the part of a wall with more than half its width
over air prints as `;TYPE:overhang`, slower and with the bridge fan; walls that stand on the
layer below do not."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import trimesh

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params

# Half fan for ordinary printing, so the bridge fan (100 %) on overhangs is told apart.
PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235, fan_percent=50)
GENERIC = PrinterProfile(name="generic-220")


def _bridge(tmp_path: Path) -> Path:
    """Two 10 mm pillars 20 mm apart carrying a 40 x 10 x 2 mm slab (the bench's bridge)."""
    parts = []
    for x in (5.0, 35.0):
        pillar = trimesh.creation.box((10, 10, 10))
        pillar.apply_translation((x, 5, 5))
        parts.append(pillar)
    slab = trimesh.creation.box((40, 10, 2))
    slab.apply_translation((20, 5, 11))
    path = tmp_path / "bridge.stl"
    trimesh.boolean.union([*parts, slab], engine="manifold").export(path)
    return path


def _moves(text: str) -> dict[float, list[tuple[str, int, float, float]]]:
    """Per layer z: (role, fan 0-255, feed mm/s, length) of every extruding move."""
    out: dict[float, list[tuple[str, int, float, float]]] = {}
    z, role, fan, feed = 0.0, "", 0, 0.0
    x = y = math.nan
    for line in text.splitlines():
        if line.startswith(";Z:"):
            z = round(float(line[3:]), 2)
        elif line.startswith(";TYPE:"):
            role = line[6:]
        elif line.startswith("M106"):
            fan = int(line.split("S")[1])
        elif line.startswith("M107"):
            fan = 0
        elif line.startswith(("G0 ", "G1 ")):
            words = dict(re.findall(r"([XYEF])(-?[\d.]+)", line))
            feed = float(words.get("F", feed * 60)) / 60
            nx, ny = float(words.get("X", x)), float(words.get("Y", y))
            if float(words.get("E", 0)) > 0 and "X" in words:
                out.setdefault(z, []).append((role, fan, feed, math.hypot(nx - x, ny - y)))
            x, y = nx, ny
    return out


def _slice(tmp_path: Path, model: Path, material: MaterialProfile = PLA, **settings: object) -> str:
    params = resolve_params(SlicerSettings(**settings), GENERIC, material)
    out = tmp_path / "out.gcode"
    slice_file(model, out, params, GENERIC)
    return out.read_text()


def test_the_walls_over_a_bridge_gap_print_as_overhang_perimeters(tmp_path: Path) -> None:
    by_z = _moves(_slice(tmp_path, _bridge(tmp_path), overhang_speed=15.0))
    over = [m for m in by_z[10.2] if m[0] == "overhang"]
    # The slab's two long sides over the 20 mm gap, for each of the two perimeters: about
    # 4 x 20 mm, less what the half-width rule counts as held by the pillars.
    length = sum(m[3] for m in over)
    assert 70 < length < 85
    assert {(m[1], m[2]) for m in over} == {(255, 15.0)}
    # Walls that stand on the layer below stay ordinary, and no layer but the slab's first has
    # any overhang.
    assert {z for z, ms in by_z.items() if any(m[0] == "overhang" for m in ms)} == {10.2}
    assert any(m[0] == "external" for m in by_z[10.2])


def test_a_material_sets_its_own_overhang_speed(tmp_path: Path) -> None:
    petg = PLA.model_copy(update={"name": "PETG", "overhang_speed": 10.0})
    by_z = _moves(_slice(tmp_path, _bridge(tmp_path), petg))
    assert {m[2] for m in by_z[10.2] if m[0] == "overhang"} == {10.0}


def test_a_box_has_no_overhang(tmp_path: Path) -> None:
    path = tmp_path / "box.stl"
    trimesh.creation.box((10, 10, 3)).export(path)
    assert ";TYPE:overhang" not in _slice(tmp_path, path)


@pytest.mark.parametrize("angle", [30.0])
def test_a_gentle_slope_stands_on_the_layer_below(tmp_path: Path, angle: float) -> None:
    """A wall leaning 30 degrees from vertical steps out 0.12 mm a layer: less than half the
    line over air, so no overhang."""
    lean = math.tan(math.radians(angle)) * 8
    prism = trimesh.Trimesh(
        vertices=[
            (0, 0, 0), (10, 0, 0), (10, 10, 0), (0, 10, 0),
            (0, 0, 8), (10 + lean, 0, 8), (10 + lean, 10, 8), (0, 10, 8),
        ],
        faces=[
            (0, 2, 1), (0, 3, 2), (4, 5, 6), (4, 6, 7), (0, 1, 5), (0, 5, 4),
            (1, 2, 6), (1, 6, 5), (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7),
        ],
    )  # fmt: skip
    path = tmp_path / "lean.stl"
    prism.export(path)
    assert ";TYPE:overhang" not in _slice(tmp_path, path)
