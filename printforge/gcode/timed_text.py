"""A file's M73 time plan put in as it is written, without reading back what the writer knows.

`timeplan.with_m73` reads a finished text: every line parsed, every move stepped through the
`Reader`. A slicer's writer already holds the numbers of nearly all its lines - the extrusion
runs, `G1 X Y E` by the hundred thousand - so it hands those over as `Run`s (their text and
the values the text states) and only its other lines (travel, retraction, fan, labels, the
start and end G-code) are read. The moves, the estimator (`timing.estimate_time`) and the
arithmetic are the same as `with_m73`'s, so the result is the same text; anything a `Run`
cannot stand for (relative XYZ, inches, a file without layer comments or with its own M73)
falls back to `with_m73` itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from printforge.gcode.reader import Reader
from printforge.gcode.source import split_lines
from printforge.gcode.syntax import parse_line, strip_comment
from printforge.gcode.timeplan import is_layer_change, m73_mark, with_m73
from printforge.gcode.timing import estimate_time
from printforge.models.printer import PrinterProfile

__all__ = ["PartsPlan", "Run", "plan_parts", "with_m73_parts"]


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive `G1 X Y E` lines (the first may carry `F`), absolute XY and relative E.

    `x`, `y` and `e` are the values as the text states them (a reader parsing the text gets
    exactly these floats: round them as the text does, e.g. `round(v, 3)` for `:.3f`), and
    `feed_mm_min` the `F` the first line sets (or the one in force).
    """

    text: str
    x: np.ndarray
    y: np.ndarray
    e: np.ndarray
    feed_mm_min: float


def _run_rows(reader: Reader, run: Run, first_unit: int) -> np.ndarray | None:
    """The rows (x, y, z, e, feed, accel, unit) `plan_text` would get from the run's lines,
    computed as `Reader._linear` computes them; None when the reader's modes differ from the
    ones a Run stands for."""
    st = reader.state
    if st.relative is not False or st.relative_e is not True or st.inches:
        return None
    n = len(run.x)
    if n == 0 or not (len(run.y) == len(run.e) == n):
        return None
    if run.feed_mm_min > 0:
        st.feed = run.feed_mm_min * 1.0 / 60
    o = st.off
    rows = np.empty((n, 7))
    rows[:, 0] = run.x + o[0]
    rows[:, 1] = run.y + o[1]
    rows[:, 2] = st.pos[2] + o[2]
    # E accumulates one addition at a time, as the reader's `pos + v` does.
    e_log = np.cumsum(np.concatenate([[st.pos[3]], run.e]))[1:]
    rows[:, 3] = e_log + o[3]
    rows[:, 4] = st.feed
    rows[:, 5] = st.accel
    rows[:, 6] = np.arange(first_unit, first_unit + n)
    st.pos = [float(run.x[-1]), float(run.y[-1]), st.pos[2], float(e_log[-1])]
    st.known[0], st.known[1] = st.off_known[0], st.off_known[1]
    return rows


# What a piece of the file is, for where the marks go.
_OTHER, _COMMAND, _LAYER, _RUN = 0, 1, 2, 3


@dataclass(slots=True)
class PartsPlan:
    """The file as pieces - (text, commands before it, kind) - and the planned seconds at the
    end of each command, as `timeplan.plan_text(text).done_s` has them."""

    pieces: list[tuple[str, int, int]]
    done_s: np.ndarray


def plan_parts(parts: Iterable[str | Run], profile: PrinterProfile) -> PartsPlan | None:
    """The plan of the parts' text, reading only the parts that are text; None when `with_m73`
    would plan it another way (its own M73 marks, no layer comments) or a Run cannot stand for
    its lines (the modes in force, a text part not ending its line)."""
    reader = Reader(profile)
    x, y, z, e = reader.state.machine()
    pending: list[tuple[float, ...]] = [(x, y, z, e, reader.state.feed, reader.state.accel, -1)]
    blocks: list[np.ndarray] = []
    dwell: list[float] = []  # per command
    pieces: list[tuple[str, int, int]] = []

    def read_text(text: str) -> bool:
        for raw in split_lines(text):
            cmd = strip_comment(raw)
            if not cmd:
                pieces.append((raw, len(dwell), _LAYER if is_layer_change(raw) else _OTHER))
                continue
            line = parse_line(cmd)
            if line is not None and line.code == "M73":
                return False  # the file's own marks: `with_m73` anchors to them
            pieces.append((raw, len(dwell), _COMMAND))
            step = reader.step(line) if line is not None else None
            if step is not None and step.points:
                extra = (step.feed, step.accel, len(dwell))
                pending.extend(p + extra for p in step.points)
            dwell.append(step.dwell_s if step is not None else 0.0)
        return True

    buffer = ""
    for part in parts:
        if isinstance(part, str):
            buffer += part
            continue
        if (buffer and not buffer.endswith("\n")) or not read_text(buffer):
            return None
        buffer = ""
        first = len(dwell)
        rows = _run_rows(reader, part, first)
        if rows is None:
            return None
        blocks.append(np.asarray(pending, dtype=float).reshape(-1, 7))
        pending.clear()
        blocks.append(rows)
        dwell.extend([0.0] * len(rows))
        pieces.append((part.text, first, _RUN))
    if not read_text(buffer) or not dwell:
        return None
    if not any(kind == _LAYER for _, _, kind in pieces):
        return None  # marks wherever the percent changes: `with_m73`'s other way
    blocks.append(np.asarray(pending, dtype=float).reshape(-1, 7))
    a = np.concatenate(blocks)
    move_s = estimate_time(np.diff(a[:, :4], axis=0), a[1:, 4], a[1:, 5], profile)
    n = len(dwell)
    per_command = np.asarray(dwell, dtype=float)
    if len(move_s):
        per_command += np.bincount(a[1:, 6].astype(int), weights=move_s, minlength=n)[:n]
    return PartsPlan(pieces, np.cumsum(per_command))


def with_m73_parts(parts: Iterable[str | Run], profile: PrinterProfile) -> str:
    """`with_m73("".join(text of parts), profile)`, reading only the parts that are text."""
    parts = list(parts)
    plan = plan_parts(parts, profile)
    if plan is None:
        return with_m73("".join(p if isinstance(p, str) else p.text for p in parts), profile)
    done = plan.done_s
    total = float(done[-1])
    out: list[str] = []
    last = ""
    for text, before, kind in plan.pieces:
        mark = None
        if kind in (_COMMAND, _RUN) and before == 0:
            mark = m73_mark(0.0, total)
        elif kind == _LAYER and before > 0:
            mark = m73_mark(float(done[before - 1]), total)
        if mark is not None and mark != last:
            out.append(mark + "\n")
            last = mark
        out.append(text if kind == _RUN else text + "\n")
    out.append("M73 P100 R0\n")
    return "".join(out)
