"""The G-code safety gate: nothing reaches a printer that would leave its volume, overheat it,
rewrite its stored configuration, halt it, or that is not G-code at all.

One implementation, two ways in, both on the reader:

- `check_gcode(path, profile, material)` judges a whole file (a job) from the state a board is
  in at power-on (`MachineState.power_on`): relative moves accumulate, G92 shifts the origin,
  arcs are followed along their swept extent. Every door runs it: `printforge print`,
  `gcode-info`, the pipeline's slicer and printer stages, and the farm node before it streams.
- `SessionGate` judges lines sent one at a time to one printer (`send` on the farm bus). It
  keeps the reader's state across the lines, so `G91` then three `G1 X150` or `G92 X-500` then
  `G1 X200` are judged by where the head ends up. It starts knowing nothing
  (`MachineState.unknown`) and forgets again after a reconnect, a job or a stop: an earlier
  job, another host or the printer's screen may have moved the head or set offsets. Until an
  axis is homed (G28) no move of it is accepted, absolute ones included, because an absolute
  target means a place only relative to offsets nobody here has seen set; until G90 or G91 is
  sent no move is accepted either. Heater and configuration commands need no position and are
  judged at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from printforge.gcode.analysis import GcodeAnalysis, analyse_gcode
from printforge.gcode.commands import HALTING, describe, heater_target, protected_reason
from printforge.gcode.reader import AXES, MachineState, Reader, Step
from printforge.gcode.syntax import Line, parse_line
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import BadArtifact, UnsafeGcode

__all__ = [
    "TOLERANCE_MM",
    "GcodeAnalysis",
    "Limits",
    "SessionGate",
    "check_analysis",
    "check_gcode",
    "file_problems",
    "inspect_gcode",
    "volume_limits",
]

# Rounding in a slicer's output (3 decimals) and float noise; anything beyond is a real excess.
TOLERANCE_MM = 0.05
INCHES = (
    "switches to inches, which firmware read differently (Marlin builds without"
    " INCH_MODE_SUPPORT ignore G20, Klipper refuses it): the numbers after it cannot be judged"
    " in one unit"
)


def volume_limits(
    profile: PrinterProfile,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The machine volume in its own coordinates: from the origin, or centred on it."""
    if profile.origin_center:
        return (
            (-profile.bed_x / 2, -profile.bed_y / 2, 0.0),
            (profile.bed_x / 2, profile.bed_y / 2, profile.max_z),
        )
    return (0.0, 0.0, 0.0), (profile.bed_x, profile.bed_y, profile.max_z)


@dataclass(frozen=True)
class Limits:
    """A printer's limits with its loaded material, and the words for breaking each."""

    profile: PrinterProfile
    hot_limit: float
    hot_owner: str
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    allowed: frozenset[str]

    @classmethod
    def of(cls, profile: PrinterProfile, material: MaterialProfile | None = None) -> Limits:
        hot_limit, hot_owner = profile.max_hotend_temp, f"printer {profile.name!r}"
        if material is not None and material.max_hotend_temp < hot_limit:
            hot_limit, hot_owner = material.max_hotend_temp, f"material {material.name!r}"
        lo, hi = volume_limits(profile)
        allowed = frozenset(c.strip().upper() for c in profile.allowed_config_commands)
        return cls(profile, hot_limit, hot_owner, lo, hi, allowed)

    def too_hot(self, heater: str, value: float) -> str | None:
        if heater == "hotend" and value > self.hot_limit:
            return (
                f"sets the hotend to {value:g} °C, above the {self.hot_owner} limit of"
                f" {self.hot_limit:g} °C"
            )
        if heater == "bed" and value > self.profile.max_bed_temp:
            return (
                f"sets the bed to {value:g} °C, above the printer {self.profile.name!r} limit of"
                f" {self.profile.max_bed_temp:g} °C"
            )
        return None

    def forbidden(self, code: str, what: str) -> str | None:
        if code in self.allowed:
            return None
        return (
            f"{what}; printer profile {self.profile.name!r} does not allow {code}"
            " (add it to allowed_config_commands to permit it)"
        )

    def outside(self, k: int, value: float) -> str | None:
        if self.lo[k] - TOLERANCE_MM <= value <= self.hi[k] + TOLERANCE_MM:
            return None
        axis = AXES[k]
        return (
            f"moves {axis} to {value:.3f} mm, outside the printer {self.profile.name!r} volume"
            f" ({axis} from {self.lo[k]:g} to {self.hi[k]:g} mm)"
        )


# -- files -------------------------------------------------------------------------------------
def inspect_gcode(
    path: Path, profile: PrinterProfile, material: MaterialProfile | None = None
) -> tuple[GcodeAnalysis, list[str]]:
    """The file's figures and every limit it breaks (empty: the gate passes it)."""
    analysis = analyse_gcode(path, profile, material.density_g_cm3 if material else None)
    return analysis, file_problems(analysis, Limits.of(profile, material), path.name)


def check_gcode(
    path: Path, profile: PrinterProfile, material: MaterialProfile | None = None
) -> GcodeAnalysis:
    """The file's figures, or UnsafeGcode naming every limit the file breaks (the first line
    that breaks each), so one fix-and-retry round sees them all."""
    analysis = analyse_gcode(path, profile, material.density_g_cm3 if material else None)
    return check_analysis(analysis, path.name, profile, material)


def check_analysis(
    analysis: GcodeAnalysis,
    name: str,
    profile: PrinterProfile,
    material: MaterialProfile | None = None,
) -> GcodeAnalysis:
    """`check_gcode` on a file already analysed with `profile` (`name` names it)."""
    if analysis.lines == 0:
        raise BadArtifact(f"{name} contains no G-code commands")
    problems = file_problems(analysis, Limits.of(profile, material), name)
    if problems:
        raise UnsafeGcode(join_problems(problems, name))
    return analysis


def join_problems(problems: list[str], name: str) -> str:
    """One message: the first problem in full, then `; also` each other without the name."""
    first, rest = problems[0], [p.removeprefix(f"{name} ") for p in problems[1:]]
    return "; also ".join([first, *rest])


def file_problems(analysis: GcodeAnalysis, limits: Limits, name: str) -> list[str]:
    """What the gate refuses in an analysed file, in a fixed order, one entry per rule."""
    return [
        *_not_gcode(analysis, name),
        *_unknown_moves(analysis, name),
        *_inches(analysis, name),
        *_protected(analysis, limits, name),
        *_temperatures(analysis, limits, name),
        *_volume(analysis, limits, name),
    ]


def _not_gcode(analysis: GcodeAnalysis, name: str) -> list[str]:
    if not analysis.not_gcode:
        return []
    f = analysis.not_gcode[0]
    more = analysis.not_gcode_lines - 1
    also = f" (and {more} more such line{'s' if more > 1 else ''})" if more else ""
    return [f"{name} is not G-code: line {f.line} `{f.command}`: {f.code}{also}"]


def _unknown_moves(analysis: GcodeAnalysis, name: str) -> list[str]:
    if not analysis.unknown_moves:
        return []
    f = analysis.unknown_moves[0]
    return [
        f"{name} line {f.line}: `{f.command}` moves {_axes(f.code)} from a position nobody can"
        " know (after a probing command, or a G92 on an axis never homed); home it (G28) or"
        " move it to an absolute position first"
    ]


def _inches(analysis: GcodeAnalysis, name: str) -> list[str]:
    f = analysis.units_inch
    return [f"{name} line {f.line}: `{f.command}` {INCHES}"] if f is not None else []


def _protected(analysis: GcodeAnalysis, limits: Limits, name: str) -> list[str]:
    problems = []
    for f in analysis.config_commands:
        code = f.code or f.command.split()[0].upper()
        why = limits.forbidden(code, describe(code))
        if why is not None:
            problems.append(f"{name} line {f.line}: `{f.command}` {why}")
    return problems


def _temperatures(analysis: GcodeAnalysis, limits: Limits, name: str) -> list[str]:
    problems = [
        f"{name} line {f.line}: `{f.command}` sets a temperature from {f.code}, which the gate"
        " cannot know"
        for f in analysis.unknown_temps[:1]
    ]
    for heater, hottest in (("hotend", analysis.hottest_hotend), ("bed", analysis.hottest_bed)):
        if hottest is not None and hottest.value is not None:
            why = limits.too_hot(heater, hottest.value)
            if why is not None:
                problems.append(f"{name} line {hottest.line}: `{hottest.command}` {why}")
    return problems


def _volume(analysis: GcodeAnalysis, limits: Limits, name: str) -> list[str]:
    problems = []
    for k, axis in enumerate("XYZ"):
        for end in ("min", "max"):
            far = analysis.farthest.get(f"{axis}{end}")
            if far is not None and far.value is not None:
                why = limits.outside(k, far.value)
                if why is not None:
                    problems.append(f"{name} line {far.line}: {why}")
    return problems


def _axes(axes: str | None) -> str:
    letters = list(axes or "")
    return " and ".join(letters) if len(letters) < 3 else ", ".join(letters)


# -- lines sent by hand ------------------------------------------------------------------------
class SessionGate:
    """The gate for the lines sent one at a time to one printer; see the module docstring.

    While G90/G91 is not known the gate follows both readings side by side and passes a line
    only if it is safe under each; the first G90 or G91 makes them one again.
    """

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.states = _unknown_states()
        self.sent = 0

    def forget(self) -> None:
        """The printer may have moved or changed modes unseen: a reconnect, a job, a stop."""
        self.states = _unknown_states()

    @property
    def homed(self) -> bool:
        return all(all(state.known) for state in self.states)

    def check(self, text: str, material: MaterialProfile | None = None) -> None:
        """Judge one line; UnsafeGcode when its effect breaks a limit. The state moves on only
        for a line that passes, since a refused line never reaches the printer."""
        if "\n" in text or "\r" in text:
            raise UnsafeGcode("one line at a time: a line break would send a second command")
        self.sent += 1
        line = parse_line(text, self.sent)
        if line is None:
            return  # a comment or a blank: the driver sends nothing either
        limits = Limits.of(self.profile, material)
        problems: list[str] = []
        after: list[MachineState] = []
        for state in self.states:
            reader = Reader(self.profile, state.copy())
            step = reader.step(line)
            reading = None
            if len(self.states) > 1:
                reading = "relative (G91)" if state.relative else "absolute (G90)"
            for problem in _line_problems(line, step, limits, reading):
                if problem not in problems:
                    problems.append(problem)
            if reader.state not in after:
                after.append(reader.state)
        if problems:
            raise UnsafeGcode("; also ".join(problems))
        self.states = after


def _unknown_states() -> list[MachineState]:
    absolute, relative = MachineState.unknown(), MachineState.unknown()
    absolute.relative, relative.relative = False, True
    return [absolute, relative]


def _line_problems(line: Line, step: Step, limits: Limits, reading: str | None) -> list[str]:
    cmd = f"`{line.raw.strip()}`"
    if line.error is not None:
        return [f"not G-code: {cmd}: {line.error}"]
    problems = [f"{cmd} {why}" for why in _command_problems(line, limits)]
    if step.unknown:
        problems.append(
            f"{cmd} moves {_axes(step.unknown)}, whose position on printer"
            f" {limits.profile.name!r} is not known: home first (G28). After a connection, a"
            " job or a stop nobody here knows where the head is or which offsets are set"
        )
        return problems
    seen: set[int] = set()
    for point in step.points:
        for k in range(3):
            why = limits.outside(k, point[k]) if k not in seen else None
            if why is not None:
                seen.add(k)
                if reading is not None:
                    why += (
                        f" if the printer is in {reading} mode; nobody here knows which: send G90"
                        " or G91 first"
                    )
                problems.append(f"{cmd} {why}")
    return problems


def _command_problems(line: Line, limits: Limits) -> list[str]:
    """What a line breaks whatever the position: protected commands, inches, temperatures."""
    problems = []
    protected = protected_reason(line)
    if protected is not None and protected[0] not in HALTING:
        why = limits.forbidden(*protected)
        if why is not None:
            problems.append(why)
    if line.code == "G20":
        problems.append(INCHES)
    target = heater_target(line)
    if target is not None and target.value is None:
        problems.append(f"sets a temperature from {target.why}, which is unknown here")
    elif target is not None and target.value is not None:
        why = limits.too_hot(target.heater, target.value)
        if why is not None:
            problems.append(why)
    return problems
