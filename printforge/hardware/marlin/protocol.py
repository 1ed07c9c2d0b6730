"""Marlin's serial protocol as pure functions: framing a line, reading what the printer says.

Sources: Marlin `GCodeQueue::get_serial_commands` (numbering, checksum, resend), `M115`
(capabilities), `print_heater_states` (temperature lines), `host_actions.cpp` (`//action:`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "Action",
    "Busy",
    "Capability",
    "Echo",
    "FirmwareError",
    "FirmwareInfo",
    "Message",
    "Ok",
    "Other",
    "Position",
    "Resend",
    "Start",
    "Temperatures",
    "checksum",
    "frame",
    "parse_line",
    "parse_temperatures",
    "strip_comment",
    "unframe",
]


def checksum(data: bytes) -> int:
    """XOR of every byte, as Marlin computes it over everything before `*`."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame(number: int, command: str) -> bytes:
    """`N<number> <command>*<xor>\\n`, ready for the wire."""
    body = f"N{number} {command}".encode()
    return body + b"*" + str(checksum(body)).encode() + b"\n"


def unframe(line: bytes) -> tuple[int | None, str, bool]:
    """The firmware's side: (line number or None, command, checksum ok) of one received line."""
    text = line.rstrip(b"\r\n")
    star = text.rfind(b"*")
    valid = True
    if star >= 0:
        body, tail = text[:star], text[star + 1 :]
        valid = tail.strip().isdigit() and int(tail) == checksum(body)
        text = body
    decoded = text.decode("ascii", "replace").strip()
    match = re.match(r"N(\d+)\s*", decoded)
    if match is None:
        return None, decoded, valid and star < 0
    return int(match.group(1)), decoded[match.end() :], valid and star >= 0


def strip_comment(raw: str) -> str:
    """A G-code line without its `;` comment and surrounding whitespace."""
    cut = raw.find(";")
    return (raw if cut < 0 else raw[:cut]).strip()


# What the printer says ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ok:
    """`ok`, optionally with ADVANCED_OK figures and a trailing temperature report."""

    line: int | None = None
    planner_free: int | None = None
    buffer_free: int | None = None
    temperatures: Temperatures | None = None


@dataclass(frozen=True, slots=True)
class Resend:
    line: int


@dataclass(frozen=True, slots=True)
class Busy:
    reason: str


@dataclass(frozen=True, slots=True)
class Echo:
    text: str


@dataclass(frozen=True, slots=True)
class FirmwareError:
    """`Error:…`; `fatal` when the firmware halted itself (kill, thermal runaway, MINTEMP)."""

    text: str
    fatal: bool
    last_line: int | None = None


@dataclass(frozen=True, slots=True)
class Temperatures:
    """Heater name ("T", "T0", "T1", "B", "C"...) -> (actual, target)."""

    values: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def as_status(self) -> dict[str, tuple[float, float]]:
        """Status keys: "hotend" (or "hotend0"...), "bed", "chamber"."""
        out: dict[str, tuple[float, float]] = {}
        numbered = any(k[1:].isdigit() for k in self.values if k.startswith("T"))
        for name, (actual, target) in self.values.items():
            tgt = target or 0.0
            if name == "B":
                out["bed"] = (actual, tgt)
            elif name == "C":
                out["chamber"] = (actual, tgt)
            elif name == "T" and not numbered:
                out["hotend"] = (actual, tgt)
            elif name.startswith("T") and name[1:].isdigit():
                out[f"hotend{name[1:]}"] = (actual, tgt)
        return out


@dataclass(frozen=True, slots=True)
class FirmwareInfo:
    name: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Capability:
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Action:
    """`//action:NAME ARGS` — the firmware asks the host to pause, resume, cancel..."""

    name: str
    args: str = ""


@dataclass(frozen=True, slots=True)
class Position:
    """An M114 answer: axis -> mm."""

    axes: dict[str, float]


@dataclass(frozen=True, slots=True)
class Start:
    """`start`: the board has just reset (DTR on connect, or a watchdog reset)."""


@dataclass(frozen=True, slots=True)
class Other:
    text: str


Message = (
    Ok
    | Resend
    | Busy
    | Echo
    | FirmwareError
    | Temperatures
    | FirmwareInfo
    | Capability
    | Action
    | Position
    | Start
    | Other
)

_TEMP = re.compile(r"\b([TBC]\d*|P|L):\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(-?\d+(?:\.\d+)?))?")
_OK_FIELD = re.compile(r"\b([NPB])(\d+)")
_RESEND = re.compile(r"^(?:Resend|rs)\s*:?\s*N?(\d+)", re.IGNORECASE)
_LAST_LINE = re.compile(r"Last Line:\s*(\d+)", re.IGNORECASE)
_FATAL = ("kill()", "halted", "thermal runaway", "mintemp", "maxtemp", "heating failed", "stopped")
_FW_KEYS = re.compile(r"([A-Z_]+):")


def parse_temperatures(text: str) -> Temperatures | None:
    values: dict[str, tuple[float, float | None]] = {}
    for name, actual, target in _TEMP.findall(text):
        if name in ("P", "L"):
            continue  # probe and "L" readings are not heaters
        values.setdefault(name, (float(actual), float(target) if target else None))
    return Temperatures(values) if values else None


def _parse_firmware_info(text: str) -> FirmwareInfo:
    keys = list(_FW_KEYS.finditer(text))
    fields: dict[str, str] = {}
    for i, match in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        fields[match.group(1)] = text[match.end() : end].strip()
    return FirmwareInfo(fields.get("FIRMWARE_NAME", ""), fields)


def parse_line(raw: str) -> Message:
    """Classify one line the printer sent."""
    text = raw.strip()
    low = text.lower()
    if low == "ok" or low.startswith("ok "):
        rest = text[2:]
        nums = {k: int(v) for k, v in _OK_FIELD.findall(rest.split("T:")[0])}
        return Ok(nums.get("N"), nums.get("P"), nums.get("B"), parse_temperatures(rest))
    match = _RESEND.match(text)
    if match:
        return Resend(int(match.group(1)))
    if low.startswith("busy:"):
        return Busy(text[5:].strip())
    if low.startswith(("error:", "!!")):
        body = text.split(":", 1)[1].strip() if ":" in text else text[2:].strip()
        last = _LAST_LINE.search(body)
        fatal = any(word in body.lower() for word in _FATAL)
        return FirmwareError(body, fatal, int(last.group(1)) if last else None)
    if low.startswith("//action:"):
        name, _, args = text[len("//action:") :].strip().partition(" ")
        return Action(name.lower(), args.strip())
    if text.startswith("Cap:"):
        name, _, flag = text[4:].rpartition(":")
        return Capability(name.strip().upper(), flag.strip() == "1")
    if text.startswith("FIRMWARE_NAME:"):
        return _parse_firmware_info(text)
    if text.startswith("X:") and " Y:" in text:
        head = text.split(" Count ")[0]
        axes = {k: float(v) for k, v in re.findall(r"([XYZE]):\s*(-?\d+(?:\.\d+)?)", head)}
        return Position(axes)
    if low == "start":
        return Start()
    temps = parse_temperatures(text) if ("T:" in text or "B:" in text or "T0:" in text) else None
    if temps is not None and not low.startswith("echo:"):
        return temps
    if low.startswith("echo:"):
        return Echo(text[5:].strip())
    return Other(text)
