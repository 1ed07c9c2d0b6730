"""Pure pieces of Marlin's serial side, written from its source (``marlin_lines.MARLIN_SOURCE``).

Nothing here does I/O; ``marlin_reference`` drives these from its threads. Each function names
the Marlin function whose behaviour it reproduces, including the odd corners hosts trip on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "EmergencyParser",
    "Heater",
    "LineAssembler",
    "checksum",
    "frame",
    "heater_states",
    "strtol",
]


def checksum(data: bytes) -> int:
    """XOR of every byte before the '*' (queue.cpp: ``checksum ^= command[--count]``)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame(number: int, command: str) -> bytes:
    """``N<number> <command>*<checksum>\\n`` as a host sends it (used by the self-tests)."""
    body = f"N{number} {command}".encode()
    return body + f"*{checksum(body)}\n".encode()


def strtol(text: str) -> int:
    """C ``strtol(text, nullptr, 10)``: leading spaces, a sign, digits; 0 when there are none."""
    i = 0
    while i < len(text) and text[i] in " \t\n\r\f\v":
        i += 1
    sign = 1
    if i < len(text) and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    start = i
    while i < len(text) and text[i].isdigit():
        i += 1
    return sign * int(text[start:i]) if i > start else 0


class _State(Enum):
    NORMAL = 0
    EOL = 1  # after ';' or an overflow: skip to the end of the line


@dataclass
class LineAssembler:
    """``process_stream_char`` / ``process_line_done`` of queue.cpp, with Marlin's defaults
    (PAREN_COMMENTS and GCODE_QUOTED_STRINGS off): ';' starts a comment, a backslash keeps the next
    character, backspace erases one, and characters past MAX_CMD_SIZE - 1 are skipped."""

    max_cmd_size: int = 96
    buffer: bytearray = field(default_factory=bytearray)
    state: _State = _State.NORMAL
    escaped: bool = False

    def feed(self, byte: int) -> None:
        if self.state is _State.EOL:
            return
        if self.escaped:
            self.escaped = False
        elif byte == 0x5C:  # '\\': keep the next character, drop this one
            self.escaped = True
            return
        elif byte == 0x3B:  # ';'
            self.state = _State.EOL
            return
        if byte == 0x08:
            if self.buffer:
                self.buffer.pop()
            return
        self.buffer.append(byte)
        if len(self.buffer) >= self.max_cmd_size - 1:
            self.state = _State.EOL

    def done(self) -> bytes | None:
        """End of line: the line, or None for an empty one (which Marlin skips)."""
        self.state = _State.NORMAL
        self.escaped = False
        if not self.buffer:
            return None
        line = bytes(self.buffer)
        self.buffer.clear()
        return line

    def clear(self) -> None:
        """``serial_state[...].count = 0`` after a line error."""
        self.buffer.clear()


class EmergencyParser:
    """feature/e_parser.cpp ``EmergencyParser::update`` for M108, M112 and M410: it sees every
    byte as it arrives (before the RX buffer, so even bytes a full buffer then drops), skips an
    ``N<digits>`` prefix, and acts at the end of the line - so ``N7 M108*33`` counts too."""

    def __init__(self) -> None:
        self._state = "RESET"
        self.m108 = False
        self.m112 = False
        self.m410 = False

    def update(self, byte: int) -> str | None:
        """Feed one byte; returns "M108", "M112" or "M410" when one completes."""
        c = chr(byte)
        eol = c in "\r\n"
        s = self._state
        if s == "RESET":
            self._state = {" ": "RESET", "\n": "RESET", "\r": "RESET", "N": "N", "M": "M"}.get(
                c, "IGNORE"
            )
        elif s == "N":
            if c.isdigit() or c in "- ":
                pass
            elif c == "M":
                self._state = "M"
            else:
                self._state = "IGNORE"
        elif s == "M":
            self._state = {" ": "M", "1": "M1", "4": "M4"}.get(c, "IGNORE")
        elif s == "M1":
            self._state = {"0": "M10", "1": "M11"}.get(c, "IGNORE")
        elif s == "M10":
            self._state = "M108" if c == "8" else "IGNORE"
        elif s == "M11":
            self._state = "M112" if c == "2" else "IGNORE"
        elif s == "M4":
            self._state = "M41" if c == "1" else "IGNORE"
        elif s == "M41":
            self._state = "M410" if c == "0" else "IGNORE"
        elif s == "IGNORE":
            if eol:
                self._state = "RESET"
        elif eol:  # a complete command state: it acts on the end of the line
            self._state = "RESET"
            if s in ("M108", "M112", "M410"):
                return s
        return None


@dataclass
class Heater:
    """A heater that moves linearly towards its target (the model is the reference's, not
    Marlin's; only the printed form is Marlin's)."""

    temp: float = 25.0
    target: float = 0.0
    rate_c_s: float = 10.0
    ambient: float = 25.0
    stamp: float = 0.0

    def advance(self, now: float) -> None:
        dt = max(0.0, now - self.stamp)
        self.stamp = now
        goal = self.target if self.target > 0 else self.ambient
        step = self.rate_c_s * dt
        if self.temp < goal:
            self.temp = min(goal, self.temp + step)
        else:
            self.temp = max(goal, self.temp - step)

    @property
    def power(self) -> int:
        """``getHeaterPower``: soft PWM 0..127."""
        if self.target <= 0:
            return 0
        return 127 if self.temp < self.target - 1 else 64


def heater_states(hotends: list[Heater], bed: Heater | None, active: int) -> str:
    """``Temperature::print_heater_states``: every field starts with a space, two decimals."""

    def pair(h: Heater) -> str:
        return f"{h.temp:.2f} /{h.target:.2f}"

    out = f" T:{pair(hotends[active])}"
    if bed is not None:
        out += f" B:{pair(bed)}"
    multi = len(hotends) > 1
    if multi:
        out += "".join(f" T{e}:{pair(h)}" for e, h in enumerate(hotends))
    out += f" @:{hotends[active].power}"
    if bed is not None:
        out += f" B@:{bed.power}"
    if multi:
        out += "".join(f" @{e}:{h.power}" for e, h in enumerate(hotends))
    return out
