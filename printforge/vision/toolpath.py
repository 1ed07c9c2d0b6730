"""What the G-code lays at each layer, as the twin needs it: per layer (the one layer model's
numbering), the cells of a grid on the bed that the layer covers.

A cell is covered when an extruding move passes through it. The regions a layer encloses are
filled (sparse infill leaves holes a camera never sees, since the layer above closes them and
the side is what shows), so a layer's cells are its solid footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from printforge.gcode.layers import HEIGHT_DECIMALS, is_extruding
from printforge.gcode.reader import Reader
from printforge.gcode.source import split_lines
from printforge.gcode.syntax import Line, parse_line
from printforge.models.printer import PrinterProfile

__all__ = ["Toolpath", "read_toolpath"]

CELL_MM = 0.4  # a nozzle's width: finer shows nothing more to a webcam 150 mm away
BASE_LAYERS = 2  # layers a skirt or brim may take
_STEP_MM = 0.15  # sampling along a move, under half a cell so no cell is skipped


@dataclass(frozen=True)
class Toolpath:
    """Per layer (index 0 is layer 1), its top height and its covered cells.

    `origin` is the bed position (mm) of cell (0, 0)'s corner; `cells[i]` is a bool grid
    indexed [row = y, column = x].
    """

    heights: np.ndarray  # (layers,) top of each layer, mm
    cells: np.ndarray  # (layers, ny, nx) bool
    origin: tuple[float, float]
    cell_mm: float = CELL_MM
    # The plate's labelled objects (M486, EXCLUDE_OBJECT) and, per cell, which one covers it
    # (-1: none or unlabelled). A plate of one object, or unlabelled G-code, has none.
    objects: tuple[str, ...] = ()
    owner: np.ndarray | None = None  # (ny, nx) int16

    @property
    def layers(self) -> int:
        return int(self.heights.shape[0])

    def thickness(self, index: int) -> float:
        below = float(self.heights[index - 1]) if index > 0 else 0.0
        return float(self.heights[index]) - below


def read_toolpath(text: str, profile: PrinterProfile | None = None) -> Toolpath:
    """The layers a G-code file lays (blocking: seconds for a large file; run off the loop)."""
    reader = Reader(profile or PrinterProfile(name="twin"))
    prev = reader.state.machine()
    segs: dict[float, list[tuple[float, float, float, float]]] = {}
    labels = _Labels()
    owned: list[tuple[int, float, float, float, float]] = []  # object, segment
    for number, raw in enumerate(split_lines(text), 1):
        line = parse_line(raw, number)
        if line is None:
            continue
        labels.see(line)
        for point in reader.step(line).points:
            if is_extruding(prev, point):
                key = round(point[2], HEIGHT_DECIMALS)
                segs.setdefault(key, []).append((prev[0], prev[1], point[0], point[1]))
                if labels.current is not None:
                    owned.append((labels.current, prev[0], prev[1], point[0], point[1]))
            prev = point
    if not segs:
        return Toolpath(np.zeros(0), np.zeros((0, 1, 1), dtype=bool), (0.0, 0.0))
    heights = np.asarray(sorted(segs))
    allseg = np.concatenate([np.asarray(v) for v in segs.values()])
    lo = np.minimum(allseg[:, [0, 1]], allseg[:, [2, 3]]).min(axis=0) - 2 * CELL_MM
    hi = np.maximum(allseg[:, [0, 1]], allseg[:, [2, 3]]).max(axis=0) + 2 * CELL_MM
    nx, ny = (np.ceil((hi - lo) / CELL_MM).astype(int) + 1).tolist()
    cells = np.zeros((len(heights), ny, nx), dtype=bool)
    for i, z in enumerate(heights):
        cells[i] = _cover(np.asarray(segs[float(z)]), lo, nx, ny)
    # A skirt or brim is a loop around the first layers that filling would take for solid
    # plastic; a camera sees nothing of it. The base layers keep only what the layer above
    # the brim covers.
    base = min(BASE_LAYERS, len(heights) - 1)
    cells[:base] &= cells[base]
    names, owner = labels.names(), None
    if len(names) > 1 and owned:
        owner = np.full((ny, nx), -1, dtype=np.int16)
        arr = np.asarray(owned)
        for index in range(len(names)):
            mine = arr[arr[:, 0] == index][:, 1:]
            if mine.size:
                owner[_cover(mine, lo, nx, ny)] = index
    return Toolpath(heights, cells, (float(lo[0]), float(lo[1])), CELL_MM, names, owner)


class _Labels:
    """The object each move belongs to: `M486 S<n>` (and `A<name>`), Klipper's
    `EXCLUDE_OBJECT_START NAME=...` / `_END`."""

    def __init__(self) -> None:
        self.current: int | None = None
        self._names: dict[int, str] = {}
        self._klipper: dict[str, int] = {}

    def see(self, line: Line) -> None:
        if line.code == "M486":
            if line.text and self.current is not None:
                self._names[self.current] = line.text
            s = line.words.get("S")
            if s is not None:
                self.current = int(s) if s >= 0 else None
                if self.current is not None:
                    self._names.setdefault(self.current, str(self.current))
        elif line.code == "EXCLUDE_OBJECT_START":
            name = line.args.get("NAME", "")
            self.current = self._klipper.setdefault(name, len(self._klipper))
            self._names[self.current] = name
        elif line.code == "EXCLUDE_OBJECT_END":
            self.current = None

    def names(self) -> tuple[str, ...]:
        if not self._names:
            return ()
        return tuple(self._names.get(i, str(i)) for i in range(max(self._names) + 1))


def _cover(seg: np.ndarray, lo: np.ndarray, nx: int, ny: int) -> np.ndarray:
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    n = np.maximum(1, np.ceil(length / _STEP_MM).astype(int)) + 1
    owner = np.repeat(np.arange(len(seg)), n)
    start = np.cumsum(n) - n
    t = (np.arange(owner.size) - start[owner]) / (n[owner] - 1)
    x = seg[owner, 0] + t * (seg[owner, 2] - seg[owner, 0])
    y = seg[owner, 1] + t * (seg[owner, 3] - seg[owner, 1])
    col = ((x - lo[0]) / CELL_MM).astype(int)
    row = ((y - lo[1]) / CELL_MM).astype(int)
    grid = np.zeros((ny, nx), dtype=bool)
    grid[np.clip(row, 0, ny - 1), np.clip(col, 0, nx - 1)] = True
    # Lines a nozzle-width apart can fall in alternate cells: close them before filling.
    grid = ndimage.binary_closing(grid, iterations=2)
    filled: np.ndarray = ndimage.binary_fill_holes(grid)
    return filled
