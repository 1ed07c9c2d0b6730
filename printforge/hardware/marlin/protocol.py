"""Marlin's serial protocol as pure functions: framing a line, reading what the printer says.

Sources (Marlin bugfix-2.1.x): `gcode/queue.cpp` (`get_serial_commands`: numbering, checksum,
resend; `ok_to_send`: the `ok` and its ADVANCED_OK fields), `gcode/gcode.cpp`
(`host_keepalive`: `echo:busy: …`), `gcode/host/M115.cpp` (capabilities),
`module/temperature.cpp` (`print_heater_states`, `_temp_error`), `feature/host_actions.cpp`
and `feature/pause.cpp` (`//action:`), `MarlinCore.cpp` (`kill`, `stop`).
tests/conformance/marlin_lines.py holds every line as Marlin prints it, with its class; the
parser is checked against that whole table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "ACTION_NOTICES",
    "Action",
    "ActionNotice",
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
    """`ok`: one command has run (a move: it entered the planner). Marlin sends it after the
    command, never on arrival (`GcodeSuite::process_parsed_command` -> `ok_to_send`).

    ADVANCED_OK adds `N<line> P<planner free> B<slots free>` (`ok_to_send`): N is the `N` word
    of the command being acknowledged (absent for an unnumbered one), P is
    `planner.moves_free()`, B is `BUFSIZE - length` counted while the acknowledged command
    still sits in the ring. M105 prints its own `ok T:…` (temperatures, never the fields), and
    the `ok` that follows `Resend:` is plain too (`flush_and_request_resend`).
    """

    line: int | None = None
    planner_free: int | None = None
    buffer_free: int | None = None
    temperatures: Temperatures | None = None

    @property
    def advanced(self) -> bool:
        """ADVANCED_OK's form (`ok [N<n>] P<p> B<b>`): how a board shows it has the option (M115
        has no `Cap:` line for it)."""
        return self.planner_free is not None and self.buffer_free is not None


@dataclass(frozen=True, slots=True)
class Resend:
    line: int


@dataclass(frozen=True, slots=True)
class Busy:
    """`echo:busy: processing|paused for user|paused for input`, every `M113` interval (2 s)
    while a command runs long (`GcodeSuite::host_keepalive`): the board is alive and inside a
    command; not an `ok`."""

    reason: str

    @property
    def waits_for_user(self) -> bool:
        """M0/M1 or M600 waiting for the printer's button (or M108)."""
        return self.reason.startswith("paused")


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
    """Heater name ("T", "T0", "T1", "B", "C"...) -> (actual, target).

    `wait` is the `W:` field (`?` or the residency seconds left) that only the lines M109 and
    M190 print while they wait (`Temperature::wait_for_hotend/bed`): such a line says a heating
    wait is running.
    """

    values: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    wait: str | None = None

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
    """`//action:NAME ARGS`: the firmware asks the host to act (pause, resume, cancel, start,
    a prompt...), `feature/host_actions.cpp`."""

    name: str
    args: str = ""


# What Marlin prints when it pauses or resumes *by itself* (pause.cpp: M600, M125, a runout
# script): `//action:paused` and `//action:resumed`. They ask nothing of the host.
ACTION_NOTICES = frozenset({"paused", "resumed"})


@dataclass(frozen=True, slots=True)
class ActionNotice:
    """`//action:paused` / `//action:resumed`: the firmware is pausing (parking, waiting for
    filament) or has resumed on its own. A host must not park or restore: its commands would
    queue behind the firmware's own."""

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
    | ActionNotice
    | Position
    | Start
    | Other
)

_TEMP = re.compile(r"\b([TBC]\d*|P|L):\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(-?\d+(?:\.\d+)?))?")
_WAIT = re.compile(r"\bW:(\?|-?\d+)")
_BUSY = re.compile(r"^(?:echo:)?busy:\s*(.*)$", re.IGNORECASE)
_ACTION = re.compile(r"^//\s*action:\s*(\S*)\s*(.*)$", re.IGNORECASE)
# MarlinCore.cpp stop(), and queue.cpp for a move arriving while stopped (without "Error:").
_STOPPED = "printer stopped due to errors"
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
    if not values:
        return None
    wait = _WAIT.search(text)
    return Temperatures(values, wait.group(1) if wait else None)


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
    busy = _BUSY.match(text)
    if busy:
        # Marlin prints it with SERIAL_ECHO_MSG, so `echo:` comes first; bare `busy:` is older.
        return Busy(busy.group(1).strip())
    if low.startswith(_STOPPED):
        return FirmwareError(text, True)
    if low.startswith(("error:", "!!")):
        body = text.split(":", 1)[1].strip() if ":" in text else text[2:].strip()
        last = _LAST_LINE.search(body)
        fatal = any(word in body.lower() for word in _FATAL)
        return FirmwareError(body, fatal, int(last.group(1)) if last else None)
    action = _ACTION.match(text)
    if action:
        name, args = action.group(1).lower(), action.group(2).strip()
        return ActionNotice(name, args) if name in ACTION_NOTICES else Action(name, args)
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
