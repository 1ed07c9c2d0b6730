"""The G-code side of the reference Marlin: ``GcodeSuite::process_parsed_command`` and the
handlers a host meets, written from Marlin's source (``marlin_lines.MARLIN_SOURCE``).

A mixin of ``MarlinReference``, which owns the queue, the planner, the UART and the clock; the
handlers block the way Marlin's do, by calling ``idle()`` in a loop (``_block``), so the queue
keeps filling and the keepalive keeps running while they wait.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from tests.conformance.marlin_lines import CAP_ORDER
from tests.conformance.marlin_wire import Heater, heater_states, strtol

__all__ = ["Busy", "Command", "Executed", "GcodeSuite", "Killed"]

TEMP_WINDOW = 1.0  # Configuration.h TEMP_WINDOW / TEMP_BED_WINDOW
TEMP_HYSTERESIS = 3.0  # TEMP_HYSTERESIS / TEMP_BED_HYSTERESIS
STEPS_PER_MM = (80.0, 80.0, 400.0)  # DEFAULT_AXIS_STEPS_PER_UNIT X, Y, Z


class Busy(Enum):
    """gcode.h ``MarlinBusyState`` and the line ``host_keepalive`` prints for it."""

    NOT_BUSY = ""
    IN_HANDLER = "echo:busy: processing"
    PAUSED_FOR_USER = "echo:busy: paused for user"
    PAUSED_FOR_INPUT = "echo:busy: paused for input"


@dataclass(frozen=True)
class Executed:
    line: int | None
    command: str


@dataclass
class Command:
    raw: str  # the ring's buffer: the line as received, comments already dropped
    skip_ok: bool = False


class Killed(Exception):
    pass


_PARAM = re.compile(r"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))?")


class GcodeSuite:
    """Handlers take the parsed parameters and the text after the code; a true return is
    ``no_ok`` (the handler printed its own ok, as M105 does)."""

    _cond: threading.Condition
    _now: float
    _busy: Busy
    _last_n: int
    _wait_for_heatup: bool
    _wait_for_user: bool
    _active: int
    _pos: list[float]
    _relative: bool
    _relative_e: bool
    _report_interval: int
    _next_report: float
    _blocks: deque[float]
    hotends: list[Heater]
    bed: Heater | None
    executed: list[Executed]
    unsolicited: dict[int, list[str]]
    emergency_parser: bool
    advanced_pause: bool
    autoreport_temp: bool
    host_action_commands: bool
    busy_while_heating: bool
    keepalive_interval_s: float
    command_time_s: dict[str, float]
    temp_residency_s: float
    bed_residency_s: float
    extrude_min_temp: float
    pause_park_s: float
    pause_load_s: float
    user_wait_s: float | None
    user_wait_state: Busy
    halted: bool

    # provided by MarlinReference
    def _emit(self, line: str) -> None:
        raise NotImplementedError

    def _idle(self) -> None:
        raise NotImplementedError

    def _block(self, done: Callable[[], bool], deadline: float | None = None) -> None:
        raise NotImplementedError

    def _synchronize(self) -> None:
        raise NotImplementedError

    def _buffer_move(self) -> None:
        raise NotImplementedError

    def _heaters(self) -> list[Heater]:
        raise NotImplementedError

    @staticmethod
    def _command_text(raw: str) -> str:
        """``GCodeParser::parse``'s command_ptr: N<n> skipped, '*' and trailing spaces cut."""
        text = raw.lstrip(" ")
        if text[:1] == "N" and text[1:2] and (text[1].isdigit() or text[1] in "+-"):
            i = 2
            while i < len(text) and text[i].isdigit():
                i += 1
            text = text[i:].lstrip(" ")
        star = text.find("*")
        if star != -1:
            text = text[:star]
        return text.rstrip(" ")

    def _line_number(self, raw: str) -> int | None:
        text = raw.lstrip(" ")
        return strtol(text[1:]) if text.startswith("N") else None

    def _process(self, command: Command) -> bool:
        """``GcodeSuite::process_parsed_command``; returns no_ok."""
        text = self._command_text(command.raw)
        number = self._line_number(command.raw)
        self.executed.append(Executed(number, text))
        self._cond.notify_all()
        for line in self.unsolicited.pop(number, []) if number is not None else []:
            self._emit(line)
        match = re.match(r"([GMT])\s*(\d+)(.*)", text)
        if not match:
            self._emit(f'echo:Unknown command: "{text}"')
            return False
        letter, code, rest = match.group(1), int(match.group(2)), match.group(3)
        params = {k: (float(v) if v else None) for k, v in _PARAM.findall(rest.upper())}
        handler = _HANDLERS.get(f"{letter}{code}")
        if letter == "T":
            if code < len(self.hotends):
                self._active = code
            return False
        unbuilt = (handler is GcodeSuite._m0 and not self.emergency_parser) or (
            handler is GcodeSuite._m600 and not self.advanced_pause
        )
        if handler is None or unbuilt:
            self._emit(f'echo:Unknown command: "{text}"')  # not built in this configuration
            return False
        return bool(handler(self, params, rest.strip()))

    def _move(self, p: dict[str, float | None], _: str) -> None:
        for i, axis in enumerate("XYZE"):
            value = p.get(axis)
            if value is not None:
                relative = self._relative_e if axis == "E" else self._relative
                self._pos[i] = self._pos[i] + value if relative else value
        self._buffer_move()

    def _g4(self, p: dict[str, float | None], _: str) -> None:
        self._synchronize()
        seconds = (p.get("P") or 0.0) / 1000.0 if p.get("S") is None else p["S"] or 0.0
        self._block(lambda: False, self._now + seconds)

    def _g28(self, p: dict[str, float | None], _: str) -> None:
        self._synchronize()
        self._block(lambda: False, self._now + self.command_time_s["G28"])
        for i, axis in enumerate("XYZ"):
            if not any(a in p for a in "XYZ") or axis in p:
                self._pos[i] = 0.0

    def _g29(self, _p: dict[str, float | None], _: str) -> None:
        self._synchronize()
        self._block(lambda: False, self._now + self.command_time_s["G29"])

    def _g90(self, *_: object) -> None:
        self._relative = self._relative_e = False

    def _g91(self, *_: object) -> None:
        self._relative = self._relative_e = True

    def _g92(self, p: dict[str, float | None], _: str) -> None:
        for i, axis in enumerate("XYZE"):
            if p.get(axis) is not None:
                self._pos[i] = p[axis] or 0.0

    def _m82(self, *_: object) -> None:
        self._relative_e = False

    def _m83(self, *_: object) -> None:
        self._relative_e = True

    def _noop(self, *_: object) -> None:
        return None

    def _m0(self, p: dict[str, float | None], rest: str) -> None:
        """M0/M1 (gcode/lcd/M0_M1.cpp) -> wait_for_user_response (MarlinCore.cpp)."""
        seconds = None
        if p.get("P") is not None:
            seconds = (p["P"] or 0.0) / 1000.0
        if p.get("S") is not None:
            seconds = p["S"] or 0.0
        self._synchronize()
        words = rest.split()
        text = [w for w in words if not re.fullmatch(r"[PS][-+\d.]*", w.upper())]
        if text:
            self._emit("echo:" + " ".join(text))
        self._wait_user(seconds)

    def _wait_user(self, seconds: float | None) -> None:
        previous, self._busy = self._busy, self.user_wait_state  # KEEPALIVE_STATE(PAUSED_FOR_USER)
        self._wait_for_user = True
        start = self._now
        ends = [t for t in (seconds, self.user_wait_s) if t is not None]
        try:
            self._block(lambda: not self._wait_for_user, start + min(ends) if ends else None)
        finally:
            self._wait_for_user = False
            self._busy = previous

    def _m104(self, p: dict[str, float | None], _: str) -> None:
        heater = self.hotends[int(p.get("T") or self._active)]
        if p.get("S") is not None:
            heater.target = p["S"] or 0.0

    def _m140(self, p: dict[str, float | None], _: str) -> None:
        if self.bed is not None and p.get("S") is not None:
            self.bed.target = p["S"] or 0.0

    def _m109(self, p: dict[str, float | None], _: str) -> None:
        index = int(p.get("T") or self._active)
        value = p.get("S") if p.get("S") is not None else p.get("R")
        if value is not None:
            self.hotends[index].target = value
        self._wait_heater(self.hotends[index], index, p.get("S") is not None, self.temp_residency_s)

    def _m190(self, p: dict[str, float | None], _: str) -> None:
        if self.bed is None:
            return
        value = p.get("S") if p.get("S") is not None else p.get("R")
        if value is not None:
            self.bed.target = value
        self._wait_heater(self.bed, self._active, p.get("S") is not None, self.bed_residency_s)

    def _wait_heater(
        self, heater: Heater, extruder: int, no_wait_cooling: bool, residency: float
    ) -> None:
        """Temperature::wait_for_hotend / wait_for_bed: a line every second, W: with residency."""
        previous = self._busy
        if not self.busy_while_heating:
            self._busy = Busy.NOT_BUSY
        residency_start: float | None = None
        first_loop = True
        target = -1.0
        wants_to_cool = False
        next_line = 0.0
        self._wait_for_heatup = True
        try:
            while True:
                if target != heater.target:
                    wants_to_cool = heater.temp > heater.target
                    target = heater.target
                    if no_wait_cooling and wants_to_cool:
                        break
                now = time.monotonic()
                if now >= next_line:
                    next_line = now + 1.0
                    line = heater_states(self.hotends, self.bed, extruder)
                    if residency > 0:
                        left = (
                            "?"
                            if residency_start is None
                            else str(int(residency - (now - residency_start)))
                        )
                        line += f" W:{left}"
                    self._emit(line)
                self._idle()
                temp = heater.temp
                if residency > 0:
                    diff = abs(target - temp)
                    if residency_start is None:
                        if diff < TEMP_WINDOW:
                            residency_start = self._now + (residency / 3 if first_loop else 0.0)
                    elif diff > TEMP_HYSTERESIS:
                        residency_start = self._now
                    first_loop = False
                    waiting = residency_start is None or self._now < residency_start + residency
                else:
                    waiting = temp > target if wants_to_cool else temp < target
                if not (self._wait_for_heatup and waiting):
                    break
                self._cond.wait(0.02)
        finally:
            self._wait_for_heatup = False
            self._busy = previous

    def _m105(self, _p: dict[str, float | None], _: str) -> bool:
        self._emit("ok" + heater_states(self.hotends, self.bed, self._active))
        return True  # no_ok: M105 printed its own

    def _m108(self, *_: object) -> None:
        self._wait_for_heatup = self._wait_for_user = False

    def _m110(self, p: dict[str, float | None], _: str) -> None:
        if p.get("N") is not None:  # queue.set_current_line_number, when it *executes*
            self._last_n = int(p["N"] or 0)
        else:
            self._emit(f"Line: {self._last_n}")

    def _m112(self, *_: object) -> None:
        self._kill("M112 Shutdown")

    def _m113(self, p: dict[str, float | None], _: str) -> None:
        if p.get("S") is not None:
            self.keepalive_interval_s = float(min(int(p["S"] or 0), 60))
        else:
            self._emit(f"echo:M113 S{int(self.keepalive_interval_s)}")

    def _m114(self, *_: object) -> None:
        x, y, z, e = self._pos
        counts = [round(v * s) for v, s in zip((x, y, z), STEPS_PER_MM, strict=True)]
        self._emit(
            f"X:{x:.2f} Y:{y:.2f} Z:{z:.2f} E:{e:.2f} "
            f"Count X:{counts[0]} Y:{counts[1]} Z:{counts[2]}"
        )

    def _m115(self, *_: object) -> None:
        self._emit(
            "FIRMWARE_NAME:Marlin bugfix-2.1.x (Oct  5 2025 12:00:00) "
            "SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 "
            f"MACHINE_TYPE:3D Printer KINEMATICS:Cartesian EXTRUDER_COUNT:{len(self.hotends)} "
            "UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff"
        )
        on = {
            "EMERGENCY_PARSER": self.emergency_parser,
            "AUTOREPORT_TEMP": self.autoreport_temp,
            "HOST_ACTION_COMMANDS": self.host_action_commands,
            "PRINT_JOB": True,
            "EEPROM": True,
            "VOLUMETRIC": True,
            "ARCS": True,
        }
        for name in CAP_ORDER:
            self._emit(f"Cap:{name}:{int(on.get(name, False))}")

    def _m155(self, p: dict[str, float | None], _: str) -> None:
        if self.autoreport_temp and p.get("S") is not None:
            seconds = min(int(p["S"] or 0), 60)  # value_byte(), AutoReporter::set_interval
            self._report_interval = seconds
            self._next_report = self._now + seconds

    def _m400(self, *_: object) -> None:
        self._synchronize()

    def _m410(self, *_: object) -> None:
        self._blocks.clear()

    def _m600(self, _p: dict[str, float | None], _: str) -> None:
        """M600 (gcode/feature/pause/M600.cpp) through pause.cpp, no LCD, no host prompts."""
        if self.host_action_commands:
            self._emit("//action:paused")  # pause_print: hostui.paused()
        self._synchronize()
        self._block(lambda: False, self._now + self.pause_park_s)  # retract, park
        self._safe_temperature()  # unload_filament -> ensure_safe_temperature(false)
        self._emit("echo:Insert filament and send M108")  # wait_for_confirmation(true)
        self._wait_user(None)
        self._safe_temperature()  # resume_print -> load_filament
        self._block(lambda: False, self._now + self.pause_load_s)  # load, purge, return
        if self.host_action_commands:
            self._emit("//action:resumed")

    def _safe_temperature(self) -> None:
        hotend = self.hotends[self._active]
        if hotend.target < self.extrude_min_temp:
            hotend.target = self.extrude_min_temp
        self._wait_for_heatup = True
        try:
            self._block(
                lambda: not self._wait_for_heatup or abs(hotend.temp - hotend.target) <= TEMP_WINDOW
            )
        finally:
            self._wait_for_heatup = False

    def _m118(self, _p: dict[str, float | None], rest: str) -> None:
        text = rest
        prefix = ""
        while True:
            flag = re.match(r"([EA])1\s+", text)
            if not flag:
                break
            prefix += "echo:" if flag.group(1) == "E" else "//"
            text = text[flag.end() :]
        self._emit(prefix + text)

    def _kill(self, message: str) -> None:
        """MarlinCore.cpp kill(): say why, halt, answer nothing more."""
        self._emit(f"echo:{message}")
        self._emit("Error:Printer halted. kill() called!")
        if self.host_action_commands:
            self._emit("//action:poweroff")
        for heater in self._heaters():
            heater.target = 0.0
        self.halted = True
        raise Killed


_Handler = Callable[[GcodeSuite, dict[str, float | None], str], bool | None]
_HANDLERS: dict[str, _Handler] = {
    **{f"G{n}": GcodeSuite._move for n in (0, 1, 2, 3)},
    "G4": GcodeSuite._g4,
    "G28": GcodeSuite._g28,
    "G29": GcodeSuite._g29,
    "G90": GcodeSuite._g90,
    "G91": GcodeSuite._g91,
    "G92": GcodeSuite._g92,
    "M0": GcodeSuite._m0,
    "M1": GcodeSuite._m0,
    "M82": GcodeSuite._m82,
    "M83": GcodeSuite._m83,
    "M104": GcodeSuite._m104,
    "M105": GcodeSuite._m105,
    "M108": GcodeSuite._m108,
    "M109": GcodeSuite._m109,
    "M110": GcodeSuite._m110,
    "M112": GcodeSuite._m112,
    "M113": GcodeSuite._m113,
    "M114": GcodeSuite._m114,
    "M115": GcodeSuite._m115,
    "M118": GcodeSuite._m118,
    "M140": GcodeSuite._m140,
    "M155": GcodeSuite._m155,
    "M190": GcodeSuite._m190,
    "M400": GcodeSuite._m400,
    "M410": GcodeSuite._m410,
    "M600": GcodeSuite._m600,
    **{
        code: GcodeSuite._noop
        for code in (
            "G21",
            "M17",
            "M18",
            "M84",
            "M106",
            "M107",
            "M117",
            "M201",
            "M203",
            "M204",
            "M205",
            "M220",
            "M221",
            "M75",
            "M76",
            "M77",
        )
    },
}
