"""Issue 13 on the built-in slicer's walls and writer: no path printed with the filament still
retracted, thin walls filled along their middle with lines as wide as the strip, nothing laid
twice, and the minimum layer time kept by a floor speed and a wait aside."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
import trimesh

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import SliceOverrides
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import SliceParams, resolve_params

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
FILAMENT_AREA = math.pi * (1.75 / 2) ** 2


@dataclass
class Stroke:
    """One extruding move: where, how much filament, and whether it was laid dry."""

    z: float
    a: tuple[float, float]
    b: tuple[float, float]
    e: float
    feed: float
    dry: float  # mm of this move printed while the filament was still retracted
    role: str

    @property
    def length(self) -> float:
        return math.dist(self.a, self.b)


def _walk(text: str) -> list[Stroke]:
    """Every extruding move of a relative-E (M83) file, with the retraction it was laid under.

    A move of E alone retracts (negative) or primes (positive); an XY move that extrudes while
    some retraction is still outstanding first refills the nozzle with its own E, and the part
    of its length that does so is laid dry.
    """
    x = y = z = 0.0
    feed = 0.0
    pending = 0.0  # filament retracted and not yet given back, mm
    role = ""
    out: list[Stroke] = []
    for raw in text.splitlines():
        if raw.startswith(";TYPE:"):
            role = raw[6:]
        line = raw.split(";", 1)[0].strip()
        if not line.startswith(("G0 ", "G1 ")):
            continue
        words = {w[0]: float(w[1:]) for w in line.split()[1:]}
        feed = words.get("F", feed)
        nx, ny, z = words.get("X", x), words.get("Y", y), words.get("Z", z)
        e = words.get("E", 0.0)
        moved = (nx, ny) != (x, y)
        if not moved:
            pending = max(0.0, pending - e)
        elif e > 0:
            refill = min(pending, e)
            pending -= refill
            length = math.dist((x, y), (nx, ny))
            out.append(Stroke(z, (x, y), (nx, ny), e, feed, length * refill / e, role))
        x, y = nx, ny
    return out


def _stl(tmp_path: Path, mesh: trimesh.Trimesh, name: str = "part.stl") -> Path:
    path = tmp_path / name
    mesh.export(path)
    return path


def _params(settings: SlicerSettings | None = None, **overrides: object) -> SliceParams:
    return resolve_params(settings or SlicerSettings(), GENERIC, PLA, SliceOverrides(**overrides))


def _slice(tmp_path: Path, mesh: trimesh.Trimesh, params: SliceParams) -> str:
    out = tmp_path / "out.gcode"
    slice_file(_stl(tmp_path, mesh), out, params, GENERIC)
    return out.read_text()


def _box(
    x: float, y: float, z: float, at: tuple[float, float, float] = (0, 0, 0)
) -> trimesh.Trimesh:
    box = trimesh.creation.box((x, y, z))
    box.apply_translation((at[0] + x / 2, at[1] + y / 2, at[2] + z / 2))
    return box


def _open_box(wall: float, x: float = 30, y: float = 20, z: float = 4) -> trimesh.Trimesh:
    """A box without a lid: `wall` mm walls on a 1 mm floor."""
    inner = _box(x - 2 * wall, y - 2 * wall, z, (wall, wall, 1.0))
    return trimesh.boolean.difference([_box(x, y, z), inner])


# --- 1. dry layers -------------------------------------------------------------------------


def test_the_walker_counts_a_move_after_an_unreturned_retraction_as_dry() -> None:
    text = "G1 X0 Y0\nG1 E-0.8\nG1 X10 Y0 E0.4\nG1 X20 Y0 E0.4\nG1 X30 Y0 E0.4\n"
    strokes = _walk(text)
    assert [round(s.dry, 3) for s in strokes] == [10.0, 10.0, 0.0]


@pytest.mark.parametrize("retract", [0.8, 2.0])
def test_a_layer_starting_where_the_last_one_ended_is_not_printed_dry(
    tmp_path: Path, retract: float
) -> None:
    # A fin a loop wide: every layer is the one loop, seamed at the same rearmost corner, so
    # each layer's first path starts exactly where the layer below ended.
    material = PLA.model_copy(update={"retract_length": retract})
    params = resolve_params(SlicerSettings(), GENERIC, material, SliceOverrides(skirt_loops=0))
    strokes = _walk(_slice(tmp_path, _box(0.9, 20, 3), params))
    assert strokes
    assert sum(s.dry for s in strokes) == 0.0


def test_letters_of_thin_strokes_are_never_printed_dry(tmp_path: Path) -> None:
    plate = _box(40, 12, 1)
    strokes = [_box(0.8, 8, 3, (2 + 7.5 * k, 2, 1)) for k in range(4)]
    strokes += [_box(6, 0.8, 3, (2 + 7.5 * k, 2, 1)) for k in range(4)]
    text = _slice(tmp_path, trimesh.boolean.union([plate, *strokes]), _params())
    assert sum(s.dry for s in _walk(text)) == 0.0


# --- 2./3. thin walls: filled once --------------------------------------------------------


def _width(stroke: Stroke, h: float) -> float:
    """The flow model's width of a stroke from its filament (PrusaSlicer's, and ours)."""
    area = stroke.e * FILAMENT_AREA / stroke.length
    return (area - math.pi * h * h / 4) / h + h


def _layer_cover(strokes: list[Stroke], z: float, h: float) -> tuple[shapely.Geometry, float]:
    """What a layer's strokes cover at their own widths, and the area laid twice: inside the
    cores (the strokes narrowed by 0.025 mm a side, so neighbours at the flow model's spacing,
    which overlap by 0.043 mm, do not count) of two strokes."""
    mine = [s for s in strokes if abs(s.z - z) < 1e-6 and s.length > 1e-6]
    lines = shapely.linestrings([[s.a, s.b] for s in mine])
    widths = np.array([_width(s, h) for s in mine])
    # Round ends: the plastic at a corner of a loop covers the corner's inside; 5 µm more for
    # the file's 3-decimal coordinates, so an outer loop touching the surface leaves no sliver.
    cover = shapely.union_all(shapely.buffer(lines, widths / 2 + 0.005))
    cores = shapely.buffer(lines, widths / 2 - 0.025, cap_style="flat")
    # Consecutive segments of one line meet at joints; those wedges are not laid twice.
    twice = float(np.sum(shapely.area(cores))) - shapely.union_all(cores).area
    return cover, twice


@pytest.mark.parametrize("wall", [1.2, 1.6, 2.0])
def test_a_thin_wall_is_covered_once_with_no_slot(tmp_path: Path, wall: float) -> None:
    # 2 mm: two loops a side leave a 0.33 mm strip in the middle, narrower than a line, which
    # stayed empty (a slot all round, two unbonded shells). 1.2 mm: the strip left by the
    # second loop was zigzagged at full width over both perimeters. 1.6 mm: the second loop's
    # two sides were 0.34 mm apart, one over the other.
    text = _slice(tmp_path, _open_box(wall), _params(skirt_loops=0))
    strokes = _walk(text)
    section = shapely.difference(
        shapely.box(95, 100, 125, 120), shapely.box(95 + wall, 100 + wall, 125 - wall, 120 - wall)
    )
    for z in (2.0, 3.0):
        cover, twice = _layer_cover(strokes, z, 0.2)
        voids = shapely.get_parts(shapely.difference(section, cover))
        largest = max((v.area for v in voids), default=0.0)
        assert largest <= 0.05, f"z {z}: a {largest:.3f} mm² void in the wall"
        assert cover.intersection(section).area / section.area > 0.99
        assert twice / section.area < 0.025, f"z {z}: {100 * twice / section.area:.1f} % twice"


def test_gap_fill_lines_take_their_flow_from_their_own_width(tmp_path: Path) -> None:
    # A wedge from 0.2 to 0.45 mm thick, too thin for a loop: one line along its middle,
    # widening with it (a zigzag at one width, before).
    wedge = trimesh.creation.extrude_polygon(
        shapely.Polygon([(0, 0), (20, 0), (20, 0.45), (0, 0.2)]), 2.0
    )
    text = _slice(tmp_path, wedge, _params(skirt_loops=0))
    strokes = [s for s in _walk(text) if s.role == "gap" and abs(s.z - 1.0) < 1e-6]
    assert strokes
    widths = np.array([_width(s, 0.2) for s in strokes])
    assert widths.max() - widths.min() > 0.15


# --- 4. minimum layer time: a floor speed, then a wait aside ---------------------------------


def test_a_tiny_layer_slows_to_the_floor_then_waits_lifted_beside_the_part(
    tmp_path: Path,
) -> None:
    # A 3 x 3 mm pin: a layer takes ~2 s at full speed, far under 12 s. Slowing it 5x (the old
    # limit) left lines at 4 mm/s and the layer still short; now no line goes under the floor,
    # and the rest is waited out with the nozzle off the part.
    settings = SlicerSettings(min_layer_time=12, min_print_speed=15)
    text = _slice(tmp_path, _box(3, 3, 3), _params(settings, skirt_loops=0))
    strokes = _walk(text)
    later = [s for s in strokes if s.z > 0.3]
    assert min(s.feed for s in later) >= 15 * 60
    blocks = re.split(r";LAYER:\d+\n", text)[2:]
    for block in blocks[:-1]:
        waits = re.findall(r"^G4 P(\d+)", block, re.M)
        assert len(waits) == 1 and int(waits[0]) > 1000
        # Before the wait: retracted, lifted 2 mm and moved 10 mm clear of the 3 mm pin.
        before = block[: block.index("G4 ")].splitlines()
        assert before[-3].startswith("G1 E-")
        z = float(re.search(r";Z:(\S+)", block).group(1))
        assert before[-2] == f"G1 Z{z + 2:.3f} F720"
        x = float(re.match(r"G0 X(\S+)", before[-1]).group(1))
        assert x > 110 + 1.5 + 9
    # Each layer lasts the minimum: its lines' time plus the wait.
    for block in blocks[:-1]:
        moves = _walk(block)
        t = sum(s.length / (s.feed / 60) for s in moves)
        wait = int(re.search(r"^G4 P(\d+)", block, re.M).group(1)) / 1000
        assert t + wait == pytest.approx(12, abs=0.05)


def test_lines_meeting_at_a_junction_are_laid_once(tmp_path: Path) -> None:
    # Letters of 0.8 mm strokes: each is one line along its middle (a loop's two sides 0.35 mm
    # apart overlapped by 0.1 mm), and at a T the stem stops at the bar's edge instead of three
    # line ends covering the crossing each (a blob laid three times).
    plate = _box(30, 12, 1)
    bar = _box(20, 0.8, 2, (5, 9, 1))
    stem = _box(0.8, 8, 2, (14.6, 1.5, 1))
    text = _slice(tmp_path, trimesh.boolean.union([plate, bar, stem]), _params(skirt_loops=0))
    strokes = _walk(text)
    section = shapely.union(
        shapely.box(100, 113, 120, 113.8), shapely.box(109.6, 105.5, 110.4, 113.8)
    )
    cover, twice = _layer_cover(strokes, 2.0, 0.2)
    assert cover.intersection(section).area / section.area > 0.99
    assert twice / section.area < 0.02, f"{100 * twice / section.area:.1f} % twice"


def test_the_rim_of_a_thin_wall_has_no_corner_specks(tmp_path: Path) -> None:
    # A 1.6 mm wall is the outer loop and one gap-fill line along the strip between; the
    # line's corner is round and left a speck at each outer corner of the rim, inside the
    # outer loop (the quality benchmark: 4 pinholes on the rim against PrusaSlicer's 0).
    wall = 1.6
    strokes = _walk(_slice(tmp_path, _open_box(wall, z=4), _params(skirt_loops=0)))
    section = shapely.difference(
        shapely.box(95, 100, 125, 120), shapely.box(95 + wall, 100 + wall, 125 - wall, 120 - wall)
    )
    cover, twice = _layer_cover(strokes, 4.0, 0.2)
    specks = [
        v.area
        for v in shapely.get_parts(section.buffer(-0.225).difference(cover))
        if v.area >= 0.005
    ]
    assert not specks, f"{len(specks)} specks, {sum(specks):.4f} mm²"
    assert twice / section.area < 0.01


# --- 8. a 1.3 mm core --------------------------------------------------------------------------


def test_a_3mm_walls_core_is_laid_along_the_wall_not_across_it(tmp_path: Path) -> None:
    # Two perimeters a side leave a 1.3 mm core in a 3 mm wall: too narrow for sparse infill,
    # too wide for one gap-fill line. It was filled solid at ±45°, runs of 1.9 mm diagonals;
    # PrusaSlicer lays it along the wall. Now it gets a loop along it, the rest of its middle
    # gap fill; the wall stays covered once, with no void.
    wall = 3.0
    text = _slice(tmp_path, _open_box(wall, 40, 30, 5), _params(skirt_loops=0))
    strokes = _walk(text)
    section = shapely.difference(
        shapely.box(90, 95, 130, 125), shapely.box(90 + wall, 95 + wall, 130 - wall, 125 - wall)
    )
    for z in (2.0, 3.0):
        layer = [s for s in strokes if abs(s.z - z) < 1e-6 and s.length > 1e-6]
        # A box's walls run along X or Y: a move at an angle to both, longer than a gap line's
        # chamfer at a corner (0.16 mm) and shorter than the wall is thick twice, crosses it.
        across = [
            s
            for s in layer
            if min(abs(s.a[0] - s.b[0]), abs(s.a[1] - s.b[1])) > 0.2 * s.length
            and 0.5 < s.length < 2 * wall
        ]
        assert not across, f"z {z}: {len(across)} short diagonals, e.g. {across[0]}"
        assert sum(s.length for s in layer if s.role == "solid") > 4 * 30
        cover, twice = _layer_cover(strokes, z, 0.2)
        voids = shapely.get_parts(shapely.difference(section, cover))
        largest = max((v.area for v in voids), default=0.0)
        assert largest <= 0.05, f"z {z}: a {largest:.3f} mm² void in the wall"
        assert twice / section.area < 0.025, f"z {z}: {100 * twice / section.area:.1f} % twice"
