"""Issue 13 on the built-in slicer's walls and writer: no path printed with the filament still
retracted, thin walls filled along their middle with lines as wide as the strip, nothing laid
twice, and the minimum layer time kept by a floor speed and a wait aside."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest
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
