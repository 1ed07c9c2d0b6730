"""The streaming G-code reader: what each line does to the machine, given what came before.

One `Reader` follows one stream of commands - a file, or the lines sent to one printer - and
keeps the modal state firmware keeps: absolute or relative moves (G90/G91) and extrusion
(M82/M83), millimetres or inches (G21/G20), the arc plane (G17/G18/G19), G92 offsets (E
included), Klipper's SET_GCODE_OFFSET, the feed rate and acceleration, and the position.
`Reader.step(line)` returns a `Step`: the machine positions the line reaches (arcs and Bézier
curves as short chords, so a bulge is seen), the feed rate and the dwell.

Positions are machine coordinates (logical + offset). An axis whose machine position cannot be
known - before it is homed in a stream that starts unknown, after a G92 on an unknown axis, after
a probing command - is named in `Step.unknown` whenever a line moves it; the gate refuses such
a move rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from printforge.gcode.syntax import Line, parse_line
from printforge.models.printer import PrinterProfile

__all__ = ["INCH_MM", "MachineState", "Reader", "Step", "read_lines"]

INCH_MM = 25.4
AXES = "XYZE"
_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2, "E": 3}
CHORD_MM = 0.5  # arcs and curves are followed in chords of about this length
MAX_CHORDS = 720
DEFAULT_FEED_MM_S = 1500.0 / 60
# Commands after which the firmware alone knows where the head is: bed probing and levelling,
# gantry and delta calibration. The next absolute move on each axis makes it known again.
PROBING = frozenset({"G29", "G30", "G33", "G34", "G35", "G76", "G80", "G81"})
_LENGTH_WORDS = "XYZEFIJKRPQ"  # words that are lengths in inch mode (G5's P and Q included)

Point = tuple[float, float, float, float]


@dataclass(slots=True)
class MachineState:
    """What the firmware knows after the lines read so far (see the module docstring)."""

    relative: bool | None = False  # G91; None: not known
    relative_e: bool | None = False  # M83
    inches: bool = False
    plane: int = 17  # G17 XY, G18 ZX, G19 YZ
    pos: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # logical XYZE
    off: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # machine - logical
    gofs: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # SET_GCODE_OFFSET
    known: list[bool] = field(default_factory=lambda: [True, True, True])  # machine XYZ known
    off_known: list[bool] = field(default_factory=lambda: [True, True, True])
    feed: float = DEFAULT_FEED_MM_S  # mm/s
    accel: float = 0.0  # mm/s^2 (M204), 0 until set: the profile's
    homed: bool = False

    @classmethod
    def power_on(cls) -> MachineState:
        """A board just reset: at the origin, absolute, millimetres, no offsets.

        Files are judged from here: it is where a slicer's start G-code begins before its G28,
        and opening a Marlin board's serial port resets it to exactly this.
        """
        return cls()

    @classmethod
    def unknown(cls) -> MachineState:
        """Nothing known: a printer met on a fresh connection, after a job or a halt.

        The position and offsets may be anything an earlier job, host or the printer's own
        screen left, and so may G90/G91 and M82/M83; a move is judged only once the axis is homed.
        """
        return cls(
            relative=None,
            relative_e=None,
            known=[False, False, False],
            off_known=[False, False, False],
        )

    def copy(self) -> MachineState:
        return MachineState(
            self.relative,
            self.relative_e,
            self.inches,
            self.plane,
            list(self.pos),
            list(self.off),
            list(self.gofs),
            list(self.known),
            list(self.off_known),
            self.feed,
            self.accel,
            self.homed,
        )

    def machine(self) -> Point:
        p, o = self.pos, self.off
        return (p[0] + o[0], p[1] + o[1], p[2] + o[2], p[3] + o[3])


@dataclass(slots=True)
class Step:
    """What one line did: the machine points it moved through (empty: no motion)."""

    line: Line
    points: list[Point] = field(default_factory=list)
    feed: float = DEFAULT_FEED_MM_S
    accel: float = 0.0
    dwell_s: float = 0.0
    unknown: str = ""  # axes this line moved to a position nobody can know
    home: bool = False


class Reader:
    """Follows one stream of G-code lines; `step` each parsed line in order."""

    def __init__(self, profile: PrinterProfile, state: MachineState | None = None) -> None:
        self.profile = profile
        self.state = state or MachineState.power_on()
        if not self.state.accel:
            self.state.accel = profile.max_acceleration

    # -- the dispatcher ---------------------------------------------------------------------
    def step(self, line: Line) -> Step:
        """Apply one command to the state and say what it did."""
        if line.error is not None:
            return Step(line)  # not G-code: the gate refuses it; it changes nothing here
        code = line.code
        if code == "G1" or code == "G0":
            return self._linear(line)
        if line.extended:
            return self._extended(line)
        handler = _HANDLERS.get(code)
        if handler is not None:
            return handler(self, line)
        if code in PROBING:
            self.state.known = [False, False, False]
        return Step(line)

    def steps(self, text: str | Iterable[str]) -> Iterator[Step]:
        """Every command of a text (or of its lines), in order."""
        for line in read_lines(text):
            yield self.step(line)

    # -- moves ------------------------------------------------------------------------------
    def _value(self, line: Line, letter: str) -> float | None:
        v = line.words.get(letter)
        if v is None:
            return None
        return v * INCH_MM if self.state.inches and letter in _LENGTH_WORDS else v

    def _feed(self, line: Line) -> None:
        f = self._value(line, "F")
        if f is not None and f > 0:
            self.state.feed = f / 60

    def _target(self, line: Line, relative: bool) -> tuple[list[float], str, str]:
        """The logical XYZE a move goes to, the XYZ axes it names, and those of them whose
        machine position it cannot know."""
        st = self.state
        new = list(st.pos)
        moved = unknown = ""
        for k, axis in enumerate(AXES):
            v = self._value(line, axis)
            if v is None:
                continue
            rel = st.relative_e if k == 3 else relative
            new[k] = st.pos[k] + v if rel else v
            if k < 3:
                moved += axis
                if not (st.known[k] if rel else st.off_known[k]):
                    unknown += axis
        return new, moved, unknown

    def _commit(self, new: list[float], moved: str, unknown: str) -> Point:
        st = self.state
        for axis in moved:
            st.known[AXES.index(axis)] = axis not in unknown
        st.pos = new
        return st.machine()

    def _linear(self, line: Line) -> Step:
        # The hot path (nearly every line of a sliced file): the same rules as `_target` and
        # `_commit`, unrolled.
        st = self.state
        inch = INCH_MM if st.inches else 1.0
        pos = st.pos
        new = pos[:]
        rel = st.relative
        moved = unknown = ""
        any_axis = False
        for letter, v in line.words.items():
            if v is None:
                continue
            if letter == "F":
                if v > 0:
                    st.feed = v * inch / 60
                continue
            k = _AXIS_INDEX.get(letter)
            if k is None:
                continue
            any_axis = True
            v *= inch
            if k == 3:
                new[3] = pos[3] + v if st.relative_e else v
                continue
            new[k] = pos[k] + v if rel else v
            moved += letter
            if not (st.known[k] if rel else st.off_known[k]):
                unknown += letter
        if not any_axis:
            return Step(line, feed=st.feed, accel=st.accel)
        if rel is None and moved:
            unknown = moved  # G90 or G91? Nobody knows where this move goes.
        for letter in moved:
            st.known[_AXIS_INDEX[letter]] = letter not in unknown
        st.pos = new
        o = st.off
        point = (new[0] + o[0], new[1] + o[1], new[2] + o[2], new[3] + o[3])
        return Step(line, [point], st.feed, st.accel, 0.0, unknown)

    def _curve(self, line: Line) -> Step:
        st = self.state
        self._feed(line)
        new, moved, unknown = self._target(line, bool(st.relative))
        if st.relative is None:
            unknown = "XYZ"
        p, q, _lin = _PLANES[st.plane]
        if line.code == "G5":
            if st.plane != 17:
                return Step(line, unknown="XYZ")  # Marlin refuses G5 outside the XY plane
            chords = _bezier(st.pos, new, self._offsets(line, "IJPQ"))
            unknown += "".join(a for a in "XY" if not st.known[AXES.index(a)] and a not in unknown)
            moved += "".join(a for a in "XY" if a not in moved)
        else:
            chords = _arc(
                st.pos,
                new,
                self._offsets(line, _PLANE_OFFSETS[st.plane]),
                self._value(line, "R"),
                clockwise=line.code == "G2",
                plane=(p, q, _lin),
                turns=int(line.words.get("P") or 0),
            )
            for k in (p, q):  # the centre is relative to the start: known only if it is
                if AXES[k] not in moved:
                    moved += AXES[k]
                if not st.known[k] and AXES[k] not in unknown:
                    unknown += AXES[k]
        o = st.off
        points = [(c[0] + o[0], c[1] + o[1], c[2] + o[2], c[3] + o[3]) for c in chords]
        self._commit(new, moved, unknown)
        return Step(line, points, st.feed, st.accel, unknown=unknown)

    def _offsets(self, line: Line, letters: str) -> list[float]:
        return [self._value(line, w) or 0.0 for w in letters]

    # -- modes and offsets ------------------------------------------------------------------
    def _g90(self, line: Line) -> Step:
        self.state.relative = self.state.relative_e = False
        return Step(line)

    def _g91(self, line: Line) -> Step:
        self.state.relative = self.state.relative_e = True
        return Step(line)

    def _m82(self, line: Line) -> Step:
        self.state.relative_e = False
        return Step(line)

    def _m83(self, line: Line) -> Step:
        self.state.relative_e = True
        return Step(line)

    def _units(self, line: Line) -> Step:
        self.state.inches = line.code == "G20"
        return Step(line)

    def _plane(self, line: Line) -> Step:
        self.state.plane = int(line.code[1:])
        return Step(line)

    def _g92(self, line: Line) -> Step:
        st = self.state
        given: dict[str, float] = {}
        for w in AXES:
            value = self._value(line, w)
            if value is not None:  # `G92 E` without a value does nothing in Marlin
                given[w] = value
        bare = not line.words
        if bare:
            # Klipper zeroes every axis on a bare G92, Marlin does nothing: the offsets that
            # follow are known to neither reading, so the axes count as unknown until homed.
            given = dict.fromkeys(AXES, 0.0)
        for axis, value in given.items():
            k = AXES.index(axis)
            machine = st.pos[k] + st.off[k]
            st.pos[k] = value
            st.off[k] = machine - value
            if k < 3:
                # The shift is relative to where the head is: unknown if that is.
                st.off_known[k] = st.known[k] and not bare
        return Step(line)

    def _g28(self, line: Line) -> Step:
        st = self.state
        named = [a for a in "XYZ" if a in line.words]
        for axis in named or "XYZ":
            k = AXES.index(axis)
            st.pos[k] = -st.gofs[k]  # the machine is at the origin; Klipper's offset stays
            st.off[k] = st.gofs[k]
            st.known[k] = st.off_known[k] = True
        st.homed = True
        return Step(line, [st.machine()], self.profile.max_feedrate_xy, st.accel, home=True)

    def _g4(self, line: Line) -> Step:
        s = line.words.get("S") or 0.0
        p = line.words.get("P") or 0.0
        return Step(line, dwell_s=s + p / 1000)

    def _m204(self, line: Line) -> Step:
        # Marlin: P printing, T travel, S both (legacy); the printing one drives the estimate.
        w = line.words
        value = w.get("P", w.get("S"))
        if value is not None:
            self.state.accel = value
        return Step(line)

    def _extended(self, line: Line) -> Step:
        if line.code == "SET_GCODE_OFFSET":
            st = self.state
            # Klipper adds this offset to every later move (and keeps it across G28).
            for k, axis in enumerate("XYZ"):
                new = _number(line.args.get(axis))
                adjust = _number(line.args.get(f"{axis}_ADJUST"))
                target = new if new is not None else st.gofs[k] + (adjust or 0.0)
                st.off[k] += target - st.gofs[k]
                st.gofs[k] = target
        return Step(line)


def read_lines(text: str | Iterable[str]) -> Iterator[Line]:
    """The command lines of a text, numbered from 1 as in the file; blanks and comments skipped."""
    lines = text.splitlines() if isinstance(text, str) else text
    for number, raw in enumerate(lines, 1):
        line = parse_line(raw, number)
        if line is not None:
            yield line


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# Arc planes: (first axis, second axis, linear axis) and the offset words of the centre.
_PLANES = {17: (0, 1, 2), 18: (2, 0, 1), 19: (1, 2, 0)}
_PLANE_OFFSETS = {17: "IJ", 18: "KI", 19: "JK"}


def _arc(
    start: list[float],
    end: list[float],
    centre_offset: list[float],
    radius: float | None,
    *,
    clockwise: bool,
    plane: tuple[int, int, int],
    turns: int = 0,
) -> list[list[float]]:
    """G2/G3 as chords of about CHORD_MM, in logical coordinates, E and the linear axis
    interpolated. The centre is given by the offsets (I/J in the XY plane) or by R, as Marlin's
    plan_arc reads them: a radius too short for the chord puts the centre on the chord's
    middle; P adds full turns."""
    p, q, lin = plane
    p0, q0, p1, q1 = start[p], start[q], end[p], end[q]
    if radius is not None:
        dp, dq = p1 - p0, q1 - q0
        d = math.hypot(dp, dq)
        if d == 0:
            return [list(end)]
        h = math.sqrt(max((radius - d / 2) * (radius + d / 2), 0.0))
        e = -1.0 if clockwise != (radius < 0) else 1.0
        cp = (p0 + p1) / 2 + e * h * (-dq / d)
        cq = (q0 + q1) / 2 + e * h * (dp / d)
    else:
        cp, cq = p0 + centre_offset[0], q0 + centre_offset[1]
    r = math.hypot(p0 - cp, q0 - cq)
    a0 = math.atan2(q0 - cq, p0 - cp)
    a1 = math.atan2(q1 - cq, p1 - cp)
    sweep = a1 - a0
    if clockwise and sweep >= 0:
        sweep -= 2 * math.pi
    elif not clockwise and sweep <= 0:
        sweep += 2 * math.pi
    sweep += math.copysign(2 * math.pi * max(turns, 0), sweep)
    n = max(1, min(MAX_CHORDS, math.ceil(abs(sweep) * r / CHORD_MM)))
    out = []
    for i in range(1, n + 1):
        t = i / n
        a = a0 + sweep * t
        point = list(end)
        point[p] = cp + r * math.cos(a)
        point[q] = cq + r * math.sin(a)
        point[lin] = start[lin] + (end[lin] - start[lin]) * t
        point[3] = start[3] + (end[3] - start[3]) * t
        out.append(point)
    out[-1][p], out[-1][q] = p1, q1
    return out


def _bezier(start: list[float], end: list[float], ijpq: list[float]) -> list[list[float]]:
    """Marlin's G5 cubic Bézier in XY as chords: I/J offset the first control point from the
    start, P/Q the second from the end. The curve can bulge past its end point."""
    x0, y0, z0, e0 = start
    x1, y1, z1, e1 = end
    c1 = (x0 + ijpq[0], y0 + ijpq[1])
    c2 = (x1 + ijpq[2], y1 + ijpq[3])
    hull = math.dist((x0, y0), c1) + math.dist(c1, c2) + math.dist(c2, (x1, y1))
    n = max(1, min(MAX_CHORDS, math.ceil(hull / CHORD_MM)))
    out = []
    for i in range(1, n + 1):
        t = i / n
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        out.append(
            [
                a * x0 + b * c1[0] + c * c2[0] + d * x1,
                a * y0 + b * c1[1] + c * c2[1] + d * y1,
                z0 + (z1 - z0) * t,
                e0 + (e1 - e0) * t,
            ]
        )
    return out


_HANDLERS = {
    "G2": Reader._curve,
    "G3": Reader._curve,
    "G5": Reader._curve,
    "G4": Reader._g4,
    "G17": Reader._plane,
    "G18": Reader._plane,
    "G19": Reader._plane,
    "G20": Reader._units,
    "G21": Reader._units,
    "G28": Reader._g28,
    "G90": Reader._g90,
    "G91": Reader._g91,
    "G92": Reader._g92,
    "M82": Reader._m82,
    "M83": Reader._m83,
    "M204": Reader._m204,
}
