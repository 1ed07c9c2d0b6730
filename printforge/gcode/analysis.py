"""Any G-code file as figures: layers, bounds, filament, time, temperatures, commands.

One pass of the reader over the lines: `_Notes` keeps what the gate and the summary need from
each command, `_Path` keeps every machine point reached; bounds, filament, layers and the time
estimate are then numpy over the path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from printforge.gcode.commands import heater_target, protected_reason
from printforge.gcode.layers import extruding, layers_of
from printforge.gcode.reader import Reader, Step
from printforge.gcode.source import read_gcode_text, split_lines
from printforge.gcode.syntax import Line, parse_line
from printforge.gcode.timing import estimate_time
from printforge.models.artifact import GcodeArtifact, file_sha256
from printforge.models.printer import PrinterProfile

__all__ = [
    "Analysed",
    "Finding",
    "GcodeAnalysis",
    "analyse_gcode",
    "analyse_text",
    "analyses_made",
    "gcode_artifact",
    "parse_duration",
]

Bounds = tuple[float, float, float]
MAX_LISTED = 20  # findings of one kind kept for the gate's message


class Finding(BaseModel):
    """A command worth a look: a temperature, a config change, a move; with its line."""

    line: int
    command: str
    value: float | None = None
    code: str | None = Field(default=None, description="the command word, e.g. M500")


class GcodeAnalysis(BaseModel):
    """What a G-code file does, as far as a printer is concerned."""

    path: Path
    size_bytes: int
    lines: int = Field(description="command lines, comments and blanks excluded")
    moves: int
    layers: int
    layer_heights: list[float] = Field(default_factory=list, description="distinct extrusion z")
    extrude_min: Bounds | None = None
    extrude_max: Bounds | None = None
    # The part alone, and the skirt/brim around it, told apart by the slicers' `;TYPE:`
    # comments: a 10 mm spacer's extruded box is 16 mm wide with its skirt. Without such
    # comments the part's box is the extruded box.
    part_min: Bounds | None = None
    part_max: Bounds | None = None
    adhesion_min: Bounds | None = Field(default=None, description="skirt and brim")
    adhesion_max: Bounds | None = None
    move_min: Bounds | None = None
    move_max: Bounds | None = None
    filament_mm: float
    filament_g: float | None = None
    estimated_time_s: float
    max_hotend_temp: float = 0.0
    max_bed_temp: float = 0.0
    hottest_hotend: Finding | None = None
    hottest_bed: Finding | None = None
    config_commands: list[Finding] = Field(default_factory=list)
    homed: bool = False
    relative_moves: bool = Field(False, description="G91 was used somewhere")
    units_inch: Finding | None = None
    farthest: dict[str, Finding] = Field(
        default_factory=dict, description="the line reaching each axis's min and max"
    )
    generator: str | None = None
    slicer_estimate_s: float | None = Field(
        default=None, description="what the file's comments claim"
    )
    slicer_filament_mm: float | None = None
    # For the gate only (never in a dump): what the file does that nobody can judge.
    not_gcode: list[Finding] = Field(default_factory=list, exclude=True)
    not_gcode_lines: int = Field(0, exclude=True)
    unknown_moves: list[Finding] = Field(default_factory=list, exclude=True)
    unknown_temps: list[Finding] = Field(default_factory=list, exclude=True)


@dataclass(frozen=True)
class Analysed:
    """One file's analysis and what it was made for: the file's sha256 and the printer profile
    the reader followed. A later step of the same job that needs the same file's figures (the
    job's artifact, the gate of the printer it is sent to) takes them from here instead of
    reading and modelling the file again, when the file and the profile are the same."""

    sha256: str
    profile: PrinterProfile
    analysis: GcodeAnalysis

    def fits(self, sha256: str, profile: PrinterProfile) -> bool:
        return sha256 == self.sha256 and profile == self.profile

    def with_density(self, density_g_cm3: float | None) -> GcodeAnalysis:
        """The analysis with its filament weight for this material (the only figure that
        depends on the material)."""
        grams = filament_grams(self.analysis.filament_mm, self.profile, density_g_cm3)
        return self.analysis.model_copy(update={"filament_g": grams})


def filament_grams(
    filament_mm: float, profile: PrinterProfile, density_g_cm3: float | None
) -> float | None:
    if density_g_cm3 is None:
        return None
    area = math.pi * (profile.filament_diameter / 2) ** 2
    return round(filament_mm * area * density_g_cm3 / 1000, 4)


@dataclass
class _Count:
    value: int = 0


_ANALYSES = _Count()


def analyses_made() -> int:
    """How many G-code texts this process has analysed: the measure of work done twice."""
    return _ANALYSES.value


def analyse_gcode(
    path: Path, profile: PrinterProfile, density_g_cm3: float | None = None
) -> GcodeAnalysis:
    """Every figure of the file; times use the profile's acceleration and jerk limits."""
    return analyse_text(read_gcode_text(path), path, profile, density_g_cm3)


def analyse_text(
    text: str,
    path: Path,
    profile: PrinterProfile,
    density_g_cm3: float | None = None,
    *,
    size_bytes: int | None = None,
) -> GcodeAnalysis:
    """The figures of a G-code text; `path` names it and, unless `size_bytes` is given, is
    where its size is read."""
    _ANALYSES.value += 1
    reader = Reader(profile)
    notes = _Notes()
    route = _Path(reader)
    step, see, follow = reader.step, notes.see, route.follow
    # Line numbers where a skirt/brim feature starts or ends, in order.
    toggles: list[int] = []
    for number, raw in enumerate(split_lines(text), 1):
        if raw.startswith(";TYPE:") and _is_adhesion(raw) != (len(toggles) % 2 == 1):
            toggles.append(number)
        line = parse_line(raw, number)
        if line is not None:
            done = step(line)
            see(done)
            follow(done)
    size = path.stat().st_size if size_bytes is None else size_bytes
    analysis = _figures(route, notes, path, size, profile, density_g_cm3, toggles)
    _read_slicer_comments(text, analysis)
    return analysis


class _Notes:
    """What the commands say, line by line: temperatures, protected commands, modes, oddities."""

    def __init__(self) -> None:
        self.lines = 0
        self.hot = self.bed = 0.0
        self.hottest_hotend: Finding | None = None
        self.hottest_bed: Finding | None = None
        self.config: list[Finding] = []
        self.homed = False
        self.relative_used = False
        self.inch: Finding | None = None
        self.not_gcode: list[Finding] = []
        self.not_gcode_lines = 0
        self.unknown_moves: list[Finding] = []
        self.unknown_temps: list[Finding] = []

    def see(self, step: Step) -> None:
        line = step.line
        self.lines += 1
        if line.code == "G1" or line.code == "G0":
            if step.unknown and len(self.unknown_moves) < MAX_LISTED:
                self._unknown(step)
            if line.error is None:
                return  # the hot path: nothing else to note on a move
        if line.error is not None:
            self._not_gcode(line)
            return
        if step.unknown and len(self.unknown_moves) < MAX_LISTED:
            self._unknown(step)
        self._mode(line, step)
        target = heater_target(line)
        if target is not None:
            self._temperature(line, target.heater, target.value, target.why)
        protected = protected_reason(line)
        if protected is not None:
            self.config.append(
                Finding(line=line.number, command=line.raw.strip(), code=protected[0])
            )

    def _mode(self, line: Line, step: Step) -> None:
        if step.home:
            self.homed = True
        elif line.code == "G91":
            self.relative_used = True
        elif line.code == "G20" and self.inch is None:
            self.inch = Finding(line=line.number, command=line.raw.strip())

    def _temperature(self, line: Line, heater: str, value: float | None, why: str) -> None:
        if value is None:
            if len(self.unknown_temps) < MAX_LISTED:
                finding = Finding(line=line.number, command=line.raw.strip(), code=why)
                self.unknown_temps.append(finding)
            return
        if heater == "hotend" and value > self.hot:
            self.hot = value
            self.hottest_hotend = Finding(line=line.number, command=line.raw.strip(), value=value)
        elif heater == "bed" and value > self.bed:
            self.bed = value
            self.hottest_bed = Finding(line=line.number, command=line.raw.strip(), value=value)

    def _not_gcode(self, line: Line) -> None:
        self.not_gcode_lines += 1
        if len(self.not_gcode) < MAX_LISTED:
            finding = Finding(line=line.number, command=line.raw.strip()[:80], code=line.error)
            self.not_gcode.append(finding)

    def _unknown(self, step: Step) -> None:
        line = step.line
        finding = Finding(line=line.number, command=line.raw.strip(), code=step.unknown)
        self.unknown_moves.append(finding)


class _Path:
    """Every machine point the file reaches, with the feed, acceleration and line of its move.

    It starts at the reader's position (the origin, for a file) so that moves before any G28
    still have a length.
    """

    def __init__(self, reader: Reader) -> None:
        x, y, z, e = reader.state.machine()
        # x, y, z, e, feed, accel, line of every point: one tuple each, one array at the end
        self.points: list[tuple[float, ...]] = [
            (x, y, z, e, reader.state.feed, reader.state.accel, 0)
        ]
        self.dwell_s = 0.0

    def follow(self, step: Step) -> None:
        points = step.points
        if not points:
            self.dwell_s += step.dwell_s
            return
        extra = (step.feed, step.accel, step.line.number)
        if len(points) == 1:
            self.points.append(points[0] + extra)
        else:
            self.points.extend(p + extra for p in points)

    def arrays(self) -> np.ndarray:
        return np.asarray(self.points, dtype=float)


def _figures(
    route: _Path,
    notes: _Notes,
    path: Path,
    size: int,
    profile: PrinterProfile,
    density: float | None,
    toggles: list[int],
) -> GcodeAnalysis:
    a = route.arrays()
    xs = a[:, 0]
    d = np.diff(a[:, :4], axis=0)
    pushing = extruding(d)
    times = estimate_time(d, a[1:, 4], a[1:, 5], profile)
    filament = float(np.sum(d[pushing, 3])) if len(d) else 0.0
    analysis = GcodeAnalysis(
        path=path,
        size_bytes=size,
        lines=notes.lines,
        moves=len(d),
        layers=0,
        filament_mm=round(filament, 3),
        estimated_time_s=round(float(np.sum(times)) + route.dwell_s, 2),
        max_hotend_temp=notes.hot,
        max_bed_temp=notes.bed,
        hottest_hotend=notes.hottest_hotend,
        hottest_bed=notes.hottest_bed,
        config_commands=notes.config,
        homed=notes.homed,
        relative_moves=notes.relative_used,
        units_inch=notes.inch,
        not_gcode=notes.not_gcode,
        not_gcode_lines=notes.not_gcode_lines,
        unknown_moves=notes.unknown_moves,
        unknown_temps=notes.unknown_temps,
    )
    analysis.filament_g = filament_grams(filament, profile, density)
    if len(xs) > 1:
        _bounds(analysis, a[:, :3], a[:, 6].astype(int), pushing, toggles)
    return analysis


def _bounds(
    analysis: GcodeAnalysis,
    allp: np.ndarray,
    lines: np.ndarray,
    pushing: np.ndarray,
    toggles: list[int],
) -> None:
    """Box of every point reached and of the extruded ones, the farthest line per axis, and
    the layers."""
    pts = allp[1:]
    analysis.move_min = _t(pts.min(axis=0))
    analysis.move_max = _t(pts.max(axis=0))
    for k, axis in enumerate("XYZ"):
        for name, idx in (
            (f"{axis}min", np.argmin(pts[:, k])),
            (f"{axis}max", np.argmax(pts[:, k])),
        ):
            analysis.farthest[name] = Finding(
                line=int(lines[idx + 1]), command=axis, value=float(pts[idx, k])
            )
    if pushing.any():
        ext = np.vstack([allp[:-1][pushing], allp[1:][pushing]])
        analysis.extrude_min = _t(ext.min(axis=0))
        analysis.extrude_max = _t(ext.max(axis=0))
        heights = layers_of(allp[1:][pushing][:, 2])
        analysis.layers = len(heights)
        analysis.layer_heights = heights.tolist() if len(heights) <= 20000 else []
        # A move belongs to the feature its line is in: an odd count of toggles before it.
        adhesion = np.searchsorted(np.asarray(toggles), lines[1:], side="right") % 2 == 1
        for mask, low, high in (
            (pushing & ~adhesion, "part_min", "part_max"),
            (pushing & adhesion, "adhesion_min", "adhesion_max"),
        ):
            if mask.any():
                box = np.vstack([allp[:-1][mask], allp[1:][mask]])
                setattr(analysis, low, _t(box.min(axis=0)))
                setattr(analysis, high, _t(box.max(axis=0)))


def _is_adhesion(type_comment: str) -> bool:
    """`;TYPE:skirt`, `;TYPE:brim` (built-in), `;TYPE:Skirt/Brim` (PrusaSlicer), `;TYPE:SKIRT`
    (CuraEngine, for its brim too)."""
    kind = type_comment.lower()
    return "skirt" in kind or "brim" in kind


def _t(a: np.ndarray) -> Bounds:
    return (round(float(a[0]), 4), round(float(a[1]), 4), round(float(a[2]), 4))


_EST = re.compile(r"^; estimated printing time \(normal mode\) = (.+)$", re.MULTILINE)
_FIL = re.compile(r"^; filament used \[mm\] = ([\d.]+)", re.MULTILINE)
_CURA_TIME = re.compile(r"^;TIME:(\d+)", re.MULTILINE)


def _read_slicer_comments(text: str, analysis: GcodeAnalysis) -> None:
    head = text[:4096]
    tail = text[-65536:]
    if "PrusaSlicer" in head:
        analysis.generator = "prusaslicer"
    elif ";Generated with Cura" in head or ";FLAVOR:" in head:
        analysis.generator = "curaengine"
    elif "printforge" in head:
        analysis.generator = "printforge"
    m = _EST.search(tail)
    if m:
        analysis.slicer_estimate_s = parse_duration(m.group(1))
    m = _FIL.search(tail)
    if m:
        analysis.slicer_filament_mm = float(m.group(1))
    m = _CURA_TIME.search(head)
    if m and analysis.slicer_estimate_s is None and int(m.group(1)) != 6666:
        analysis.slicer_estimate_s = float(m.group(1))


def parse_duration(text: str) -> float:
    """PrusaSlicer's `1d 2h 3m 4s` as seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)\s*([dhms])", text)))


def gcode_artifact(
    path: Path,
    analysis: GcodeAnalysis,
    engine: str,
    preview: Path | None = None,
    *,
    sha256: str | None = None,
) -> GcodeArtifact:
    """The typed artifact for a G-code file: its hash (`sha256` when already computed) and the
    analysis' figures, whoever sliced."""
    return GcodeArtifact(
        path=path,
        sha256=sha256 or file_sha256(path),
        size_bytes=analysis.size_bytes,
        engine=engine,
        lines=analysis.lines,
        layers=analysis.layers,
        estimated_time_s=analysis.estimated_time_s,
        filament_mm=analysis.filament_mm,
        filament_g=analysis.filament_g or 0.0,
        max_hotend_temp=analysis.max_hotend_temp,
        max_bed_temp=analysis.max_bed_temp,
        bounds_min=analysis.extrude_min,
        bounds_max=analysis.extrude_max,
        preview_png=preview,
    )
