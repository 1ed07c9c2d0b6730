"""A file's time plan: when, by the slicer's or our own estimate, each command should be done.

The plan is what a live ETA starts from (`gcode.eta` corrects it by the pace a print shows).
It is read from the file itself, so third-party G-code gets one too, in the field's order:

1. `M73 P<percent> R<minutes>` lines (PrusaSlicer, Bambu Studio, OrcaSlicer, our built-in
   slicer): the slicer's own times. Percent marks are only whole percent, so between marks the
   plan follows our estimator's shape and at the marks the slicer's times (`_anchor`).
2. Otherwise our estimator (`gcode.timing`) over the whole file, with the profile's limits.

Commands whose length nobody can know before the print - heating waits, homing, a wait for the
user - are marked: a pace measured across one of them is not the machine's pace.

A position in the print is what the driver knows of it: acknowledged commands (Marlin), the
byte the printer's file reader is at (Klipper's `virtual_sdcard.file_position`), or a percent
(Bambu's `mc_percent`, which is the file's M73 P).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from printforge.gcode.reader import Reader
from printforge.gcode.source import read_gcode_text, split_lines
from printforge.gcode.syntax import parse_line, strip_comment
from printforge.gcode.timing import estimate_time
from printforge.models.printer import PrinterProfile

__all__ = [
    "WAIT_CODES",
    "PlanPoint",
    "TimePlan",
    "is_layer_change",
    "m73_lines",
    "m73_mark",
    "plan_file",
    "plan_text",
    "with_m73",
]

# Commands that last as long as the machine or a person takes, not as the file says.
WAIT_CODES = frozenset(
    {"M109", "M190", "M191", "M116", "M0", "M1", "M600", "M226", "M303", "G28", "G29"}
)
# Anchors from M73 closer than this many percent are thinned out: a whole-percent mark is a
# plan time ± half a percent, and a fit between close marks would amplify that noise.
ANCHOR_STEP_PERCENT = 5


@dataclass(frozen=True, slots=True)
class PlanPoint:
    """Where a print stands on its plan.

    `waits_done` counts the waits of unknown length finished for sure; `waits_started` also
    those that may be running now (the command in progress). A stretch between two points holds
    no such wait only when the later one has started no wait the earlier had not finished.
    """

    planned_s: float
    waits_done: int
    waits_started: int
    commands: int = 0  # commands done


@dataclass(frozen=True, slots=True)
class TimePlan:
    """Per command (as `hardware.marlin.gcode_file.load_gcode` numbers them: comments and
    blank lines left out), the planned seconds at its end, its byte end in the file, and how
    many waits of unknown length there are up to and including it."""

    done_s: np.ndarray  # float, cumulative planned seconds at the end of each command
    byte_end: np.ndarray  # int, file offset just past each command's line
    waits: np.ndarray  # int, cumulative count of WAIT_CODES commands
    source: str  # "m73" or "estimate"

    @property
    def total_s(self) -> float:
        return float(self.done_s[-1]) if len(self.done_s) else 0.0

    def __len__(self) -> int:
        return len(self.done_s)

    def at_command(self, acked: int) -> PlanPoint:
        """Once `acked` commands are acknowledged; the next one may be running."""
        n = len(self.done_s)
        if n == 0:
            return PlanPoint(0.0, 0, 0)
        acked = min(max(acked, 0), n)
        planned = float(self.done_s[acked - 1]) if acked else 0.0
        done = int(self.waits[acked - 1]) if acked else 0
        return PlanPoint(planned, done, int(self.waits[min(acked, n - 1)]), acked)

    def at_byte(self, position: int) -> PlanPoint:
        """Once the printer's file reader is at byte `position`: the last command read may
        still be running (Klipper reads a command, then runs it)."""
        read = int(np.searchsorted(self.byte_end, position, side="right"))
        point = self.at_command(max(read - 1, 0))
        started = int(self.waits[read - 1]) if read else 0
        return PlanPoint(
            point.planned_s, point.waits_done, max(started, point.waits_started), point.commands
        )

    def at_percent(self, percent: float) -> PlanPoint:
        """At a percent of the planned time (a printer reporting the file's M73 P): every
        command ending at that time or just after it may be running."""
        n = len(self.done_s)
        if n == 0:
            return PlanPoint(0.0, 0, 0)
        planned = self.total_s * min(max(percent, 0.0), 100.0) / 100.0
        before = int(np.searchsorted(self.done_s, planned, side="left"))
        upto = int(np.searchsorted(self.done_s, planned, side="right"))
        done = int(self.waits[before - 1]) if before else 0
        return PlanPoint(planned, done, int(self.waits[min(upto, n - 1)]), before)


def plan_file(path: Path, profile: PrinterProfile) -> TimePlan:
    """The time plan of a G-code file (CPU-bound: run it off the event loop)."""
    return plan_text(read_gcode_text(path), profile)


def plan_text(text: str, profile: PrinterProfile) -> TimePlan:
    """The time plan of a G-code text, estimated with the profile's limits."""
    newline = 2 if "\r\n" in text else 1
    reader = Reader(profile)
    x, y, z, e = reader.state.machine()
    # One row per machine point: x, y, z, e, feed, accel, command index.
    points: list[tuple[float, ...]] = [(x, y, z, e, reader.state.feed, reader.state.accel, -1)]
    dwell: list[float] = []
    byte_end: list[int] = []
    waits: list[int] = []
    marks: list[tuple[int, float, float | None]] = []  # command index, M73 P, M73 R
    offset = 0
    count = 0
    for raw in split_lines(text):
        offset += len(raw.encode("utf-8", "surrogateescape")) + newline
        cmd = strip_comment(raw)
        if not cmd:
            continue
        index = len(byte_end)
        byte_end.append(offset)
        line = parse_line(cmd)
        step = reader.step(line) if line is not None else None
        dwell.append(step.dwell_s if step is not None else 0.0)
        code = line.code if line is not None else ""
        if code in WAIT_CODES:
            count += 1
        waits.append(count)
        if step is not None and step.points:
            extra = (step.feed, step.accel, index)
            points.extend(p + extra for p in step.points)
        if code == "M73" and line is not None:
            percent, minutes = line.words.get("P"), line.words.get("R")
            if percent is not None:
                marks.append((index, float(percent), None if minutes is None else float(minutes)))
    n = len(byte_end)
    a = np.asarray(points, dtype=float)
    d = np.diff(a[:, :4], axis=0)
    move_s = estimate_time(d, a[1:, 4], a[1:, 5], profile)
    per_command = np.asarray(dwell, dtype=float)
    if len(move_s):
        per_command += np.bincount(a[1:, 6].astype(int), weights=move_s, minlength=n)[:n]
    done = np.cumsum(per_command)
    source = "estimate"
    anchored = _anchor(done, marks)
    if anchored is not None:
        done, source = anchored, "m73"
    return TimePlan(
        done_s=done,
        byte_end=np.asarray(byte_end, dtype=np.int64),
        waits=np.asarray(waits, dtype=np.int64),
        source=source,
    )


def _anchor(done: np.ndarray, marks: list[tuple[int, float, float | None]]) -> np.ndarray | None:
    """Our estimate bent through the slicer's M73 marks, or None without usable marks.

    A mark `M73 P<p>` first seen at command i says the slicer plans p % of its total done
    there; the total is the first mark's `R` (minutes to go at 0 %), or ours when it has none.
    Between marks our estimate's shape is kept: the plan is piecewise linear in our time.
    """
    if len(marks) < 2 or not len(done) or done[-1] <= 0:
        return None
    first_r = marks[0][2]
    total = first_r * 60.0 if first_r and marks[0][1] <= 1 else float(done[-1])
    ours: list[float] = [0.0]
    theirs: list[float] = [0.0]
    last_p = -1.0
    for index, percent, _minutes in marks:
        if percent <= last_p or (percent < 100 and percent - last_p < ANCHOR_STEP_PERCENT):
            continue
        before = float(done[index - 1]) if index > 0 else 0.0
        if before <= ours[-1]:
            continue
        last_p = percent
        ours.append(before)
        theirs.append(total * percent / 100.0)
    if len(ours) < 3:
        return None
    if ours[-1] < done[-1]:  # after the last mark (the end G-code): ours, at the slicer's rate
        theirs.append(theirs[-1] + (float(done[-1]) - ours[-1]) * theirs[-1] / ours[-1])
        ours.append(float(done[-1]))
    bent: np.ndarray = np.interp(done, np.asarray(ours), np.asarray(theirs))
    return bent


def m73_lines(done: np.ndarray) -> list[tuple[int, str]]:
    """The `M73 P R` lines to put before commands so that a file carries its time plan.

    Returns (command index, line) for the first command and each command where the whole
    percent or the whole minutes to go change; P rounds down, R rounds up, as printers show.
    """
    total = float(done[-1]) if len(done) else 0.0
    if total <= 0:
        return []
    start = np.concatenate([[0.0], done[:-1]])  # planned seconds when each command begins
    percent = np.floor(start * 100.0 / total).astype(int)
    minutes = np.ceil((total - start) / 60.0).astype(int)
    change = np.ones(len(done), dtype=bool)
    change[1:] = (percent[1:] != percent[:-1]) | (minutes[1:] != minutes[:-1])
    return [(int(i), f"M73 P{percent[i]} R{minutes[i]}") for i in np.flatnonzero(change)]


def m73_mark(planned: float, total: float) -> str:
    """The `M73 P R` line for a point `planned` seconds into a plan of `total` seconds."""
    percent = int(planned * 100.0 // total) if total > 0 else 100
    return f"M73 P{min(percent, 100)} R{max(int(-(-(total - planned) // 60)), 0)}"


def with_m73(text: str, profile: PrinterProfile) -> str:
    """The text with its time plan in it as `M73 P R` lines, the field's way: printers show
    them (Marlin's LCD, Prusa, Klipper's display, Bambu) and every driver reads them back.

    One line before the first command, one at each layer change (before the slicer's
    `;LAYER:` / `;LAYER_CHANGE` comment, so no sequence of commands is split) and `M73 P100
    R0` at the end; a file without layer comments gets one wherever the percent or the
    minutes change.
    """
    plan = plan_text(text, profile)
    total = plan.total_s
    lines = split_lines(text)
    layered = any(is_layer_change(raw) for raw in lines)
    marks = {} if layered else dict(m73_lines(plan.done_s))
    out: list[str] = []
    index = 0  # commands before this line
    last = ""
    for raw in lines:
        mark = None
        if index == 0 and strip_comment(raw):
            mark = m73_mark(0.0, total)
        elif is_layer_change(raw) and index > 0:
            mark = m73_mark(float(plan.done_s[index - 1]), total)
        elif strip_comment(raw):
            mark = marks.get(index)
        if mark is not None and mark != last:
            out.append(mark)
            last = mark
        if strip_comment(raw):
            index += 1
        out.append(raw)
    out.append("M73 P100 R0")
    return "\n".join(out) + "\n"


def is_layer_change(raw: str) -> bool:
    """Whether a line is a slicer's layer-change comment."""
    return raw.startswith((";LAYER:", ";LAYER_CHANGE"))
