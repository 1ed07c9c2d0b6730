"""The G-code of pause, resume and the safe stop, shared by every Marlin-speaking driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from printforge.gcode.syntax import parse_line
from printforge.models.printer import PrinterProfile

__all__ = [
    "BREAK_WAIT",
    "SavedState",
    "break_wait_attempts",
    "heaters_off_commands",
    "modes_and_feed",
    "park_commands",
    "pause_commands",
    "resume_commands",
    "safe_stop_commands",
]

# Marlin's "break and continue": with EMERGENCY_PARSER it clears `wait_for_heatup` (and
# `wait_for_user`) the moment its bytes arrive, so a running M109/M190/M191/M303 returns and the
# queue moves on. It only ends the wait running now: a wait that starts later waits again.
BREAK_WAIT = "M108"
RETRACT_MM = 2.0
PARK_LIFT_MM = 10.0


def modes_and_feed(done: Sequence[str]) -> tuple[bool, bool, float]:
    """G90/G91, M82/M83 and the feed rate in force after the commands `done` (G90, M82, 3000).

    Read backwards with the one G-code reader's line syntax, stopping at the last of each, so
    pausing a long job does not re-read it from the start on the event loop."""
    absolute = absolute_e = None
    feed = None
    for command in reversed(done):
        line = parse_line(command)
        if line is None or line.error is not None:
            continue
        code = line.code
        if absolute is None and code in ("G90", "G91"):
            absolute = code == "G90"
        if absolute_e is None and code in ("M82", "M83", "G90", "G91"):
            absolute_e = code in ("M82", "G90")
        if feed is None and code in ("G0", "G1", "G2", "G3", "G5"):
            feed = line.words.get("F")
        if absolute is not None and absolute_e is not None and feed is not None:
            break
    return absolute is not False, absolute_e is not False, feed or 3000.0


@dataclass(slots=True)
class SavedState:
    """What a pause remembers so that resume can put the nozzle back where it was."""

    x: float
    y: float
    z: float
    e: float
    feed_mm_min: float = 3000.0
    hotends: dict[int, float] = field(default_factory=dict)  # extruder -> target °C
    bed: float = 0.0
    absolute: bool = True  # G90 / G91 in force when paused
    absolute_e: bool = True  # M82 / M83 in force when paused

    def mode_commands(self) -> list[str]:
        return ["G90" if self.absolute else "G91", "M82" if self.absolute_e else "M83"]


def break_wait_attempts(capabilities: dict[str, bool]) -> int:
    """How many M108s one heating wait may get during a safe stop (0: it cannot be broken).

    `Cap:EMERGENCY_PARSER:1`: a few, since an M108 that lands just before the wait begins is
    forgotten when the wait sets its flag. `Cap:EMERGENCY_PARSER:0`: none, M108 would only be
    read after the wait ended. Not reported at all (no EXTENDED_CAPABILITIES_REPORT, an old
    build, another firmware): one, because it is harmless either way: a parser that exists
    ends the wait; without one the line is queued behind the wait and then does nothing (a
    later M109 sets the flag again when it starts), costing one `ok`. Only one, so that a
    board without the parser does not get its queue filled with M108s while it heats.
    """
    reported = capabilities.get("EMERGENCY_PARSER")
    if reported is None:
        return 1
    return 3 if reported else 0


def _park_xy(profile: PrinterProfile) -> tuple[float, float]:
    # Park at the front-left corner, out of the way, with the bed pushed forward to look at.
    if profile.origin_center:
        return -profile.bed_x / 2, profile.bed_y / 2
    return 0.0, profile.bed_y


def pause_commands(saved: SavedState, profile: PrinterProfile) -> list[str]:
    """Retract, lift and park; heaters stay on so the print can go on."""
    lift = min(PARK_LIFT_MM, max(0.0, profile.max_z - saved.z))
    x, y = _park_xy(profile)
    return [
        "M400",
        "M83",
        f"G1 E-{RETRACT_MM:.2f} F2400",
        "G91",
        f"G1 Z{lift:.2f} F600",
        "G90",
        f"G1 X{x:.2f} Y{y:.2f} F6000",
        *saved.mode_commands(),
    ]


def resume_commands(saved: SavedState) -> list[str]:
    """Heat back up (waiting), return above the part, lower onto it, prime, restore E."""
    out: list[str] = []
    for tool, target in saved.hotends.items():
        if target > 0:
            out.append(f"M109 T{tool} S{target:.0f}")
    if saved.bed > 0:
        out.append(f"M190 S{saved.bed:.0f}")
    out += [
        "G90",
        f"G1 X{saved.x:.3f} Y{saved.y:.3f} F6000",
        f"G1 Z{saved.z:.3f} F600",
        "M83",
        f"G1 E{RETRACT_MM:.2f} F2400",
        *([f"G92 E{saved.e:.5f}"] if saved.absolute_e else []),
        *saved.mode_commands(),
        f"G1 F{saved.feed_mm_min:.0f}",
    ]
    return out


def heaters_off_commands() -> list[str]:
    """The first half of a safe stop: it needs no position, so it can be queued at once."""
    return ["M104 S0", "M140 S0", "M107"]


def park_commands(profile: PrinterProfile, z: float | None) -> list[str]:
    """The second half: lift Z (clamped to the machine, from the position `z`), present the bed."""
    lift = PARK_LIFT_MM if z is None else min(PARK_LIFT_MM, max(0.0, profile.max_z - z))
    x, y = _park_xy(profile)
    return ["G91", f"G1 Z{lift:.2f} F600", "G90", f"G1 X{x:.2f} Y{y:.2f} F6000", "M84"]


def safe_stop_commands(profile: PrinterProfile, z: float | None) -> list[str]:
    """Heaters and fan off first (they matter most), then lift Z and present the bed."""
    return [*heaters_off_commands(), *park_commands(profile, z)]
