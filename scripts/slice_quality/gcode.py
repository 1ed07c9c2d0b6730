"""A small G-code reader for the slice-quality benchmark.

It is deliberately independent of printforge's own reader (`printforge.slicing`): the benchmark
judges the built-in slicer as a black box, so it must not share its parser or its mistakes.

What it understands: G0/G1 moves, G2/G3 arcs (I/J centre or R radius, cut into chords of at most
`ARC_STEP` mm), G90/G91, M82/M83, G92, G28, G20/G21, M106/M107 (part fan), G10/G11 (firmware
retraction), `N… *…` line numbers and checksums, lower case and blanks between letter and value.
Mode rule: G91 makes X, Y, Z and E relative; G90 makes X, Y, Z absolute and E follows the last
M82/M83. Firmware differ here (Marlin's G90 also resets M83, RepRapFirmware's G91 leaves E alone);
the files we read always send M83 after their last G90, and then every reading agrees.

`;TYPE:` comments are kept per segment for display only; no metric depends on them.

Dry extrusion: the reader keeps the filament retracted and not yet restored (`retracted`, mm of
filament). A move with negative E adds to it; a move with positive E and no XY motion (a prime)
takes from it; a move with positive E and XY motion first refills what is retracted, and the part
of the path travelled while refilling is *dry*: the nozzle moves, the slicer expects plastic, and
none comes out. Dry parts are reported and are not drawn as extrusion.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ARC_STEP", "Toolpaths", "read_gcode"]

ARC_STEP = 0.3  # mm; chords of an arc are at most this long
_WORD = re.compile(r"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))")
_Z_DECIMALS = 4  # layer heights are grouped at 0.1 µm


@dataclass
class Toolpaths:
    """Extruding segments of one G-code file, one row per segment (numpy arrays)."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    z: np.ndarray
    filament: np.ndarray  # mm of filament the slicer commanded for the segment
    speed: np.ndarray  # mm/s
    fan: np.ndarray  # 0..1
    path: np.ndarray  # int: a new id after every non-extruding move (travel, retract, z change)
    dry: np.ndarray  # mm of this segment travelled while the filament was still retracted
    kind: np.ndarray  # int index into `kinds` (the `;TYPE:` comment in force, "" if none)
    kinds: list[str] = field(default_factory=list)
    dry_total_mm: float = 0.0  # path length extruded while retracted
    dry_filament_mm: float = 0.0  # filament that refilled the nozzle during those moves
    # (z of the next extrusion, fan 0..1) for every fan command: when the fan really changes
    fan_changes: list[tuple[float, float]] = field(default_factory=list)
    temperatures: list[tuple[str, float]] = field(default_factory=list)  # (M104/M109 …, S) in order
    retractions: list[float] = field(default_factory=list)  # lengths of negative-E moves
    _length: np.ndarray | None = field(default=None, repr=False)
    _by_z: dict[float, np.ndarray] | None = field(default=None, repr=False)

    @property
    def length(self) -> np.ndarray:
        if self._length is None:
            self._length = np.hypot(self.x1 - self.x0, self.y1 - self.y0)
        return self._length

    def _index(self) -> dict[float, np.ndarray]:
        # Built once: asking for each layer's segments would otherwise scan the file per layer.
        if self._by_z is None:
            zr = np.round(self.z, _Z_DECIMALS)
            order = np.argsort(zr, kind="stable")
            zs, starts = np.unique(zr[order], return_index=True)
            parts = np.split(order, starts[1:])
            self._by_z = {float(z): np.sort(p) for z, p in zip(zs, parts, strict=True)}
        return self._by_z

    def layer_zs(self) -> np.ndarray:
        """Distinct heights at which the file extrudes, ascending."""
        return np.array(sorted(self._index()))

    def at_z(self, z: float) -> np.ndarray:
        """Indices of the segments extruded at height `z`, in print order."""
        return self._index().get(round(float(z), _Z_DECIMALS), np.zeros(0, dtype=np.int64))


def _arc_points(
    x0: float, y0: float, x1: float, y1: float, words: dict[str, float], clockwise: bool
) -> list[tuple[float, float, float]]:
    """Points (x, y, fraction of the arc) along a G2/G3 arc, the end point included."""
    if "R" in words and "I" not in words and "J" not in words:
        r = words["R"]
        dx, dy = x1 - x0, y1 - y0
        d = math.hypot(dx, dy)
        if d == 0 or abs(r) < d / 2:
            return [(x1, y1, 1.0)]
        h = math.sqrt(max(r * r - d * d / 4, 0.0))
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        # The centre lies to the right of the chord for a clockwise arc with R > 0 (the short
        # arc); a negative R asks for the long one.
        sign = (1 if clockwise else -1) * (1 if r > 0 else -1)
        cx, cy = mx + sign * h * dy / d, my - sign * h * dx / d
    else:
        cx, cy = x0 + words.get("I", 0.0), y0 + words.get("J", 0.0)
    r = math.hypot(x0 - cx, y0 - cy)
    a0 = math.atan2(y0 - cy, x0 - cx)
    a1 = math.atan2(y1 - cy, x1 - cx)
    sweep = a1 - a0
    if clockwise:
        if sweep >= 0:
            sweep -= 2 * math.pi
    elif sweep <= 0:
        sweep += 2 * math.pi
    n = max(1, math.ceil(abs(sweep) * r / ARC_STEP))
    pts = []
    for k in range(1, n + 1):
        f = k / n
        a = a0 + sweep * f
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a), f))
    pts[-1] = (x1, y1, 1.0)
    return pts


def read_gcode(path: str | Path) -> Toolpaths:
    """Read a G-code file into its extruding segments, with dry extrusion accounted."""
    pos = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
    rel_xyz = False
    e_rel_mode = False  # M83
    feed = 0.0  # mm/min
    fan = 0.0
    retracted = 0.0
    fw_retracted = False
    path_id = 0
    extruding_prev = False
    kind = ""
    kinds: list[str] = [""]
    kind_index = {"": 0}
    rows: list[tuple[float, ...]] = []
    dry_total = 0.0
    dry_filament = 0.0
    temps: list[tuple[str, float]] = []
    retractions: list[float] = []
    fan_changes: list[tuple[float, float]] = []
    fan_pending = False
    scale = 1.0  # G20 inches

    def emit(xa: float, ya: float, xb: float, yb: float, zz: float, de: float) -> None:
        nonlocal retracted, dry_total, dry_filament, fan_pending
        seg = math.hypot(xb - xa, yb - ya)
        dry = 0.0
        if fw_retracted:
            dry = seg
            dry_filament += de
        elif retracted > 1e-9:
            refill = min(retracted, de)
            retracted -= refill
            dry = seg * refill / de
            dry_filament += refill
        dry_total += dry
        if fan_pending:
            fan_changes.append((zz, fan))
            fan_pending = False
        rows.append(
            (xa, ya, xb, yb, zz, de, feed / 60.0, fan, path_id, dry, kind_index.get(kind, 0))
        )

    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            if line[0] == ";":
                if line.startswith(";TYPE:"):
                    kind = line[6:].strip()
                    if kind not in kind_index:
                        kind_index[kind] = len(kinds)
                        kinds.append(kind)
                continue
            code = line.split(";", 1)[0].split("*", 1)[0].strip().upper()
            if not code:
                continue
            if code[0] == "N":
                code = re.sub(r"^N\s*\d+\s*", "", code)
            if not code:
                continue
            head = re.match(r"([GM])\s*(\d+)(?:\.\d+)?", code)
            if head is None:
                continue  # Klipper macros, T0 and the like move nothing we measure
            cmd = head.group(1) + str(int(head.group(2)))
            words = {k: float(v) for k, v in _WORD.findall(code[head.end() :])}
            if cmd in ("G0", "G1", "G2", "G3"):
                if "F" in words:
                    feed = words["F"] * scale
                target = dict(pos)
                for axis in "XYZ":
                    if axis in words:
                        v = words[axis] * scale
                        target[axis] = pos[axis] + v if rel_xyz else v
                de = 0.0
                if "E" in words:
                    v = words["E"] * scale
                    de = v if (e_rel_mode or rel_xyz) else v - pos["E"]
                    target["E"] = pos["E"] + de
                moved_xy = target["X"] != pos["X"] or target["Y"] != pos["Y"]
                if cmd in ("G2", "G3") and ("I" in words or "J" in words):
                    moved_xy = True  # a full circle ends where it starts
                if de > 0 and moved_xy:
                    if not extruding_prev:
                        path_id += 1
                    if cmd in ("G2", "G3"):
                        ijr = {k: words[k] * scale for k in ("I", "J", "R") if k in words}
                        pts = _arc_points(
                            pos["X"], pos["Y"], target["X"], target["Y"], ijr, cmd == "G2"
                        )
                        xa, ya, fa = pos["X"], pos["Y"], 0.0
                        for xb, yb, fb in pts:
                            zz = pos["Z"] + (target["Z"] - pos["Z"]) * fb
                            emit(xa, ya, xb, yb, zz, de * (fb - fa))
                            xa, ya, fa = xb, yb, fb
                    else:
                        emit(pos["X"], pos["Y"], target["X"], target["Y"], target["Z"], de)
                    extruding_prev = True
                else:
                    if de < 0:
                        retracted += -de
                        retractions.append(-de)
                    elif de > 0:
                        retracted = max(0.0, retracted - de)
                    if moved_xy or target["Z"] != pos["Z"] or de != 0:
                        extruding_prev = False
                pos = target
            elif cmd == "G90":
                rel_xyz = False
            elif cmd == "G91":
                rel_xyz = True
            elif cmd == "M82":
                e_rel_mode = False
            elif cmd == "M83":
                e_rel_mode = True
            elif cmd == "G92":
                if not words:
                    words = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
                for axis in "XYZE":
                    if axis in words:
                        pos[axis] = words[axis] * scale
            elif cmd == "G28":
                axes = [a for a in "XYZ" if a in words] or ["X", "Y", "Z"]
                for axis in axes:
                    pos[axis] = 0.0
                extruding_prev = False
            elif cmd == "G20":
                scale = 25.4
            elif cmd == "G21":
                scale = 1.0
            elif cmd == "G10":
                fw_retracted = True
                extruding_prev = False
            elif cmd == "G11":
                fw_retracted = False
            elif cmd == "M106":
                if int(words.get("P", 0)) == 0:
                    fan = min(max(words.get("S", 255.0), 0.0), 255.0) / 255.0
                    fan_pending = True
            elif cmd == "M107":
                if int(words.get("P", 0)) == 0:
                    fan = 0.0
                    fan_pending = True
            elif cmd in ("M104", "M109", "M140", "M190") and "S" in words:
                temps.append((cmd, words["S"]))

    arr = np.array(rows, dtype=np.float64).reshape(-1, 11)
    return Toolpaths(
        x0=arr[:, 0],
        y0=arr[:, 1],
        x1=arr[:, 2],
        y1=arr[:, 3],
        z=arr[:, 4],
        filament=arr[:, 5],
        speed=arr[:, 6],
        fan=arr[:, 7],
        path=arr[:, 8].astype(np.int64),
        dry=arr[:, 9],
        kind=arr[:, 10].astype(np.int64),
        kinds=kinds,
        dry_total_mm=dry_total,
        dry_filament_mm=dry_filament,
        fan_changes=fan_changes,
        temperatures=temps,
        retractions=retractions,
    )
