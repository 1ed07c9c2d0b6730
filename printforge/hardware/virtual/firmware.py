"""A virtual Marlin: the serial side of the firmware as a discrete-event simulation.

Host bytes cross a modelled 8N1 wire (10 bits per byte at the configured baud, plus an optional
one-way latency), then Marlin's receive path: while a command slot is free the firmware moves
received bytes into its line buffer; while all `BUFSIZE` slots are taken they pile up in the
RX ring and bytes that find the ring full are lost. A completed line is checked as in
`GCodeQueue::get_serial_commands` (Marlin bugfix-2.1.x, `gcode/queue.cpp`): a numbered line must
be `last_N + 1` (a numbered `M110` is exempt and sets it), else it gets `Error:`, a drained
ring, `Resend: N` and a plain `ok` - except a copy of `last_N` or `last_N - 1`, which is dropped
without a word (Marlin PR #24972; `drop_duplicate_lines=False` models the builds before it);
then it must carry a correct `*checksum`. A line without `N` is queued unchecked. Commands run
on the shared `VirtualMachine`, and the `ok` leaves when the command has run (a move: when the
planner took it; G28, M400, M109: when the wait is over), with ADVANCED_OK's fields as
`ok_to_send` prints them: the acknowledged command's own `N`, `P` = planner moves free, `B` =
free slots counted while that command still holds its own. Replies cross the wire back the
same way.

Lines are printed as Marlin prints them: keepalives `echo:busy: processing` (or `paused for
user` while M0/M1/M600 wait for the button) every `busy_interval_s` during a long command;
temperature reports ` T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0` (auto-reports with the
leading space, M105's as `ok T:…`); `//action:paused` and `//action:resumed` around M600's
filament change; thermal errors ending `Heater_ID: E0` / `bed`, then `kill()`'s lines.

EMERGENCY_PARSER (on unless `emergency_parser=False`) reads every byte as it arrives, ahead of
the queue, whether or not the RX ring has room for it: `M112` halts the board, `M108` ends the
heating wait running now (its `ok` follows at once). Such a line also reaches the queue, where
it does nothing but take a slot and earn an `ok`, as in Marlin. Without the parser `M112` and
`M108` are ordinary queued commands, read only once the commands before them are done.

Every event carries its simulated time, derived from when the bytes were read plus the wire
delay, so ring drops and `ok` times do not depend on how promptly this task is scheduled. The
simulation never runs past `now + latency + one byte`, the earliest a byte not yet read could
arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from printforge.hardware.marlin.protocol import unframe
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.machine import MachineHalted, VirtualMachine

__all__ = ["FirmwareStats", "VirtualMarlin"]

log = logging.getLogger(__name__)

VERSION = "2.1.2.4"
# M115's DETAILED_BUILD_VERSION and build date, in Marlin's form; the suffix says what it is.
FIRMWARE_NAME = f"Marlin {VERSION}-printforge-virtual (May 19 2024 12:00:00)"
MAX_CMD_SIZE = 96
WAIT_REPORT_S = 1.0  # M109/M190 print the temperatures this often while they wait
_BREAKABLE = frozenset({"M109", "M190"})  # the waits of this board that watch wait_for_heatup
# How long stop() waits for its cancelled tasks: they end at once unless one is stuck.
STOP_TIMEOUT_S = 5.0
_INF = float("inf")
# M600 (feature/pause.cpp), in simulated seconds: retract and park before the wait for the
# user, then load, purge and return after it.
FILAMENT_PARK_S = 2.0
FILAMENT_LOAD_S = 3.0
# M115's `Cap:` lines in the order gcode/host/M115.cpp prints them, as this board is built.
# There is no `Cap:` for ADVANCED_OK: a host sees it in the form of the `ok`s.
_CAPS = (
    "SERIAL_XON_XOFF",
    "BINARY_FILE_TRANSFER",
    "EEPROM",
    "VOLUMETRIC",
    "AUTOREPORT_POS",
    "AUTOREPORT_TEMP",
    "PROGRESS",
    "PRINT_JOB",
    "AUTOLEVEL",
    "RUNOUT",
    "Z_PROBE",
    "LEVELING_DATA",
    "BUILD_PERCENT",
    "SOFTWARE_POWER",
    "TOGGLE_LIGHTS",
    "CASE_LIGHT_BRIGHTNESS",
    "EMERGENCY_PARSER",
    "HOST_ACTION_COMMANDS",
    "PROMPT_SUPPORT",
    "SDCARD",
    "REPEAT",
    "SD_WRITE",
    "AUTOREPORT_SD_STATUS",
    "LONG_FILENAME",
    "LFN_WRITE",
    "CUSTOM_FIRMWARE_UPLOAD",
    "EXTENDED_M20",
    "THERMAL_PROTECTION",
    "MOTION_MODES",
    "ARCS",
    "BABYSTEPPING",
    "EP_BABYSTEP",
    "CHAMBER_TEMPERATURE",
    "COOLER_TEMPERATURE",
    "MEATPACK",
    "CONFIG_EXPORT",
)


@dataclass
class FirmwareStats:
    lines_received: int = 0
    errors: int = 0
    bytes_dropped: int = 0
    oks_dropped: int = 0
    corrupted_lines: int = 0
    emergency_stops: int = 0  # M112s that reached the board
    waits_broken: int = 0  # heating waits ended early by M108
    duplicates_dropped: int = 0  # copies of last_N or last_N - 1, dropped without an answer
    user_waits: int = 0  # M0/M1/M600 waits for the printer's button


class _Wire:
    """Bytes in flight towards the firmware, each with the loop time it arrives."""

    def __init__(self, byte_time: float, latency: float) -> None:
        self.byte_time = byte_time
        self.latency = latency
        self.chunks: deque[list] = deque()  # [first_arrival, bytes, offset]
        self.last_arrival = 0.0

    def push(self, data: bytes, t_read: float) -> None:
        first = max(t_read + self.latency, self.last_arrival) + self.byte_time
        self.chunks.append([first, data, 0])
        self.last_arrival = first + (len(data) - 1) * self.byte_time

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def arrival(self, index: int) -> float:
        """Arrival time of the index-th pending byte."""
        for first, data, off in self.chunks:
            n = len(data) - off
            if index < n:
                return first + (off + index) * self.byte_time
            index -= n
        return _INF

    def find(self, needle: int) -> int:
        """Index of the first pending byte equal to needle, or -1."""
        base = 0
        for _first, data, off in self.chunks:
            pos = data.find(bytes((needle,)), off)
            if pos >= 0:
                return base + pos - off
            base += len(data) - off
        return -1

    def count_by(self, t: float) -> int:
        total = 0
        for first, data, off in self.chunks:
            n = len(data) - off
            if first + off * self.byte_time > t:
                break
            got = min(n, int((t - first) / self.byte_time + 1e-9) - off + 1)
            total += got
            if got < n:
                break
        return total

    def take(self, count: int) -> bytes:
        out = bytearray()
        while count > 0 and self.chunks:
            chunk = self.chunks[0]
            _first, data, off = chunk
            n = min(count, len(data) - off)
            out += data[off : off + n]
            chunk[2] = off + n
            count -= n
            if chunk[2] >= len(data):
                self.chunks.popleft()
        return bytes(out)


class VirtualMarlin:
    """One virtual Marlin board. Feed it host bytes; it calls `write` with what it answers."""

    def __init__(
        self,
        machine: VirtualMachine,
        config: VirtualConfig,
        write: Callable[[bytes], None],
        *,
        on_disconnect: Callable[[], None] | None = None,
        line_label: Callable[[int], int | None] | None = None,
    ) -> None:
        self.machine = machine
        self.cfg = config
        self._write = write
        self._on_disconnect = on_disconnect
        # Which line a fault option counts: the protocol number unless told otherwise.
        self._label = line_label or (lambda number: number)
        self.loop = asyncio.get_running_loop()
        self.byte_time = 10.0 / config.baud
        self.latency = config.latency_s
        self.wire = _Wire(self.byte_time, self.latency)
        self.rng = random.Random(config.seed)
        self.slots_max = machine.profile.command_slots
        self.ring_max = machine.profile.rx_buffer_bytes - 1  # a ring keeps one cell empty
        self.ring = bytearray()
        self.linebuf = bytearray()
        self.slots: deque[tuple[int | None, str]] = deque()
        self.exec_done: float | None = None
        self.exec_started = 0.0
        self.next_busy = _INF
        self.busy_interval = config.busy_interval_s
        self.last_n = 0
        self.vt = self.loop.time()
        self.tx_free = self.vt
        self.autoreport_s = 0.0
        self.next_report = _INF
        self.emergency_at = _INF
        self._ep_line = bytearray()  # the emergency parser's view of the line arriving now
        self._breaks: deque[float] = deque()  # arrival times of M108s the parser saw
        self._waiting = False  # the running command is a heating wait (M108 ends it)
        # A wait for the user (M0/M1, M600): from, until, and the time still to run after it.
        self._user_wait: tuple[float, float, float] | None = None
        self._scheduled: list[tuple[float, str]] = []  # lines a running command prints later
        self.stats = FirmwareStats()
        self.halted = False
        self.gone = False
        self._data = asyncio.Event()
        self._tx: deque[tuple[float, bytes]] = deque()
        self._tx_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # I/O ----------------------------------------------------------------------------------
    def start(self) -> None:
        # MarlinCore.cpp setup(): the banner, as Marlin prints it.
        self.emit("start")
        self.emit(f"Marlin {VERSION}")
        self.emit(" Last Updated: 2024-05-19 | Author: (printforge virtual)", echo=True)
        self.emit(
            f" Free Memory: 4096  PlannerBufferBytes: {44 * self.machine.planner.capacity}",
            echo=True,
        )
        self._tasks = [
            asyncio.create_task(self._run(), name="vmarlin-run"),
            asyncio.create_task(self._transmit(), name="vmarlin-tx"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        # asyncio.wait, not `await task` under `except CancelledError`: that would also swallow
        # a cancellation of the caller. Bounded, so that a stuck task cannot hang a teardown.
        _done, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
        for task in tasks:
            if task in stuck:
                log.error("virtual marlin task %s did not end when cancelled", task.get_name())
            elif not task.cancelled() and task.exception() is not None:
                log.error("virtual marlin task failed", exc_info=task.exception())

    def feed(self, data: bytes) -> None:
        """Host bytes read from the transport now."""
        if self.gone or not data:
            return
        if self.cfg.noise_rate > 0:
            data = self._corrupt(data)
        self.wire.push(data, self.loop.time())
        if self.cfg.emergency_parser:
            self._emergency_parse(data)
        self._data.set()

    def _emergency_parse(self, data: bytes) -> None:
        """Marlin's EmergencyParser, fed in the serial interrupt as the bytes arrive.

        It sees every byte, even while every command slot is taken by a long wait (M109 on a
        dead heater) and even bytes a full RX ring then drops. A line counts with or without
        its `N<number>` and checksum.
        """
        last = len(data) - 1
        for i, byte in enumerate(data):
            if byte not in (0x0A, 0x0D):
                if len(self._ep_line) < MAX_CMD_SIZE:
                    self._ep_line.append(byte)
                continue
            code = _emergency_code(bytes(self._ep_line))
            self._ep_line.clear()
            if code is None:
                continue
            arrival = self.wire.last_arrival - (last - i) * self.byte_time
            if code == "M112":
                self.emergency_at = min(self.emergency_at, arrival)
            else:
                self._breaks.append(arrival)

    def _corrupt(self, data: bytes) -> bytes:
        out = bytearray(data)
        start = 0
        while start < len(out):
            end = out.find(b"\n", start)
            end = len(out) if end < 0 else end
            if end > start and self.rng.random() < self.cfg.noise_rate:
                i = self.rng.randrange(start, end)
                flipped = out[i] ^ (1 << self.rng.randrange(7))
                if flipped != 0x0A:
                    out[i] = flipped
                    self.stats.corrupted_lines += 1
            start = end + 1
        return bytes(out)

    def emit(self, text: str, at: float | None = None, *, echo: bool = False) -> None:
        """Queue one line for the host at simulated time `at` (default: the current event).

        `echo` prefixes `echo:` as Marlin's SERIAL_ECHO_MSG does.
        """
        data = (("echo:" if echo else "") + text + "\n").encode()
        start = max(self.tx_free, self.vt if at is None else at)
        self.tx_free = start + len(data) * self.byte_time
        self._tx.append((self.tx_free + self.latency, data))
        self._tx_wake.set()

    async def _transmit(self) -> None:
        while True:
            if not self._tx:
                self._tx_wake.clear()
                await self._tx_wake.wait()
                continue
            due = self._tx[0][0]
            delay = due - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            out = bytearray()
            now = self.loop.time()
            while self._tx and self._tx[0][0] <= now + 1e-4:
                out += self._tx.popleft()[1]
            if out and not self.gone:
                self._write(bytes(out))

    # the event loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self.gone:
            t, kind = self._next_event()
            horizon = self.loop.time() + self.latency + self.byte_time
            if t > horizon:
                self._data.clear()
                timeout = None if t == _INF else t - horizon
                # Not asyncio.wait_for: on Python 3.11 it returns the wait's result when host
                # bytes wake it in the same loop turn as stop() cancels this task, and the
                # task ran on past stop(), waiting forever once the board had halted.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._data.wait()
                continue
            self.vt = max(self.vt, t)
            self._handle(kind)

    def _next_event(self) -> tuple[float, str]:
        if self.halted:
            return _INF, ""
        best = (_INF, "")
        if self.exec_done is not None:
            best = min(best, (self.exec_done, "done"))
            best = min(best, (self.next_busy, "busy"))
        elif self.slots:
            best = min(best, (self.vt, "exec"))
        if len(self.slots) < self.slots_max:
            nl = self.wire.find(0x0A)
            if nl >= 0:
                best = min(best, (self.wire.arrival(nl), "line"))
            elif len(self.linebuf) + self.wire.count_by(_INF) >= MAX_CMD_SIZE:
                best = min(best, (self.wire.arrival(0), "line"))
        best = min(best, (self.next_report, "report"))
        if self._scheduled:
            best = min(best, (self._scheduled[0][0], "say"))
        if self._breaks:
            best = min(best, (self._breaks[0], "break"))
        return min(best, (self.emergency_at, "emergency"))

    def _handle(self, kind: str) -> None:
        if kind == "line":
            nl = self.wire.find(0x0A)
            count = nl + 1 if nl >= 0 else 1
            for byte in self.wire.take(count):
                self._line_byte(byte)
        elif kind == "exec":
            self._execute()
        elif kind == "done":
            self._admit_ring(self.vt)
            self._finish()
        elif kind == "busy":
            # GcodeSuite::host_keepalive, with SERIAL_ECHO_MSG: `echo:` comes first.
            self.emit(f"busy: {self._busy_state()}", echo=True)
            self.next_busy += self.busy_interval or _INF
        elif kind == "say":
            self.emit(self._scheduled.pop(0)[1])
        elif kind == "emergency":
            self._emergency_stop()
        elif kind == "break":
            self._breaks.popleft()
            self._break_wait()
        elif kind == "report":
            self.emit(self.machine.temperature_report(self.vt))
            self.next_report = self.vt + (self.autoreport_s or WAIT_REPORT_S)

    def _admit_ring(self, until: float) -> None:
        """Bytes that arrived while every slot was taken go to the ring; overflow is lost."""
        n = self.wire.count_by(until)
        if not n:
            return
        room = max(0, self.ring_max - len(self.ring))
        kept = self.wire.take(min(n, room))
        self.ring += kept
        lost = n - len(kept)
        if lost:
            self.wire.take(lost)
            self.stats.bytes_dropped += lost

    def _drain_ring(self) -> None:
        while self.ring and len(self.slots) < self.slots_max:
            byte = self.ring.pop(0)
            self._line_byte(byte)

    def _line_byte(self, byte: int) -> None:
        if byte in (0x0A, 0x0D):
            if self.linebuf:
                raw = bytes(self.linebuf)
                self.linebuf.clear()
                self._line(raw)
        elif len(self.linebuf) < MAX_CMD_SIZE - 1:
            self.linebuf.append(byte)

    # line checks (GCodeQueue::get_serial_commands) -----------------------------------------
    def _line(self, raw: bytes) -> None:
        if self.halted:
            return
        self.stats.lines_received += 1
        number, command, valid = unframe(raw)
        if number is not None:
            m110 = "M110" in command.upper()
            if m110:
                # A numbered M110 skips the sequence check; its own N word sets last_N.
                word = _M110_N.search(command)
                number = int(word.group(1)) if word else number
            elif number != self.last_n + 1:
                if self.cfg.drop_duplicate_lines and self.last_n - 1 <= number <= self.last_n:
                    # "A request-for-resend line was already in transit so we got two - oops!"
                    self.stats.duplicates_dropped += 1
                    return
                return self._line_error("Line Number is not Last Line Number+1")
            if b"*" not in raw:
                return self._line_error("No Checksum with line number")
            if not valid:
                return self._line_error("checksum mismatch")
            self.last_n = number
        # A line without N is queued unchecked, a `*checksum` or not (2.1.x).
        if not command:
            return
        self.slots.append((number, command))

    def _line_error(self, what: str) -> None:
        self.stats.errors += 1
        self.emit(f"Error:{what}, Last Line: {self.last_n}")
        # flush_and_request_resend: drop what the ring holds, then ask for the next line.
        self.ring.clear()
        self.linebuf.clear()
        self.wire.take(self.wire.count_by(self.vt))
        self.emit(f"Resend: {self.last_n + 1}")
        self.emit("ok")  # flush_and_request_resend: plain, ADVANCED_OK or not

    # execution ---------------------------------------------------------------------------
    def _execute(self) -> None:
        number, command = self.slots[0]
        label = self._label(number) if number is not None else None
        if label is not None and label == self.cfg.thermal_runaway_at_line:
            self._thermal_error("Thermal Runaway", "THERMAL RUNAWAY")
            return
        if label is not None and label == self.cfg.heater_fails_at_line:
            # No THERMAL_PROTECTION in this build: the board keeps going as if all were well.
            self.machine.fail_heater(self.cfg.failing_heater, self.vt)
        if label is not None and label == self.cfg.disconnect_at_line:
            self.disconnect()
            return
        self.exec_started = self.vt
        self._replies: list[str] = []
        code = command.split(None, 1)[0].upper()
        self._user_wait = None
        try:
            if command[:1].upper() not in ("G", "M", "T"):
                # GCodeParser::parse skips only an upper-case `N<digits>` (no
                # GCODE_CASE_INSENSITIVE in the stock build), then wants G, M or T: a line of
                # ours whose `N` a bit flip changed (`n12 G1 X5`, `O12 G1 X5`), queued
                # unchecked as an unnumbered line, runs as an unknown command, not as a move.
                done, self._replies = self.vt, [f'echo:Unknown command: "{command}"']
            elif code == "M110":
                # Run, a numbered M110 sets last_N once more (queue.set_current_line_number).
                word = _M110_N.search(command)
                if word:
                    self.last_n = int(word.group(1))
                else:
                    self._replies = [f"Line: {self.last_n}"]
                done = self.vt
            elif code in ("M0", "M1"):
                # Built only with a way to continue (HAS_RESUME_CONTINUE: EMERGENCY_PARSER or
                # an LCD, which this board has not); without, the command is unknown.
                if self.cfg.emergency_parser:
                    done = self._m0(command)
                else:
                    done, self._replies = self.vt, [f'echo:Unknown command: "{command}"']
            elif code == "M600":
                done = self._m600()
            elif code == "M115":
                done = self.vt
                self._replies = self._m115()
            elif code == "M155" and self.cfg.autoreport_temp:
                seconds = float(command.split("S")[-1]) if "S" in command else 0.0
                self.autoreport_s = seconds
                self.next_report = self.vt + seconds if seconds > 0 else _INF
                done = self.vt
            elif code == "M113":
                # gcode/host/M113.cpp: S sets the interval (0 turns keepalives off, at most
                # 60 s); without S it reports it.
                word = _M113_S.search(command)
                if word:
                    self.busy_interval = min(60.0, float(word.group(1))) or None
                else:
                    self._replies = [f"echo:M113 S{round(self.busy_interval or 0)}"]
                done = self.vt
            elif code == "M105":
                done = self.vt
                # M105 prints its own `ok`, never with ADVANCED_OK's fields.
                self._replies = ["ok" + self.machine.temperature_report(self.vt)]
            else:
                done, self._replies = self.machine.execute_at(command, number, self.vt)
        except MachineHalted as err:
            self._halt(str(err), lcd="M112 Shutdown" if code == "M112" else None)
            return
        except ValueError as err:
            # GcodeSuite::get_target_extruder_from_command: `echo:M104 Invalid extruder 5`.
            done, self._replies = self.vt, [f"echo:{code} {err}"]
        self.exec_done = done
        self._waiting = code in _BREAKABLE and done > self.vt
        if self._waiting and not self.autoreport_s:
            # Marlin's wait_for_hotend/bed prints the temperatures while it waits, autoreport
            # or not, so a polling host still hears from a board stuck in a long wait.
            self.next_report = self.vt + WAIT_REPORT_S
        interval = self.busy_interval
        self.next_busy = self.vt + interval if interval and done - self.vt > interval else _INF

    def _user_wait_until(self, start: float, seconds: float | None) -> float:
        """A wait for the printer's button from loop time `start`: `seconds` of the command
        (M0 S/P), or until the virtual user presses it (`user_wait_s`), or M108."""
        ends = [t for t in (seconds, self.cfg.user_wait_s) if t]
        return start + min(ends) / self.machine.sim_speed if ends else _INF

    def _m0(self, command: str) -> float:
        """M0/M1 (gcode/lcd/M0_M1.cpp): finish the moves, print the text, wait for the user."""
        words = command.split()[1:]
        seconds = None
        text = []
        for word in words:
            letter, value = word[:1].upper(), word[1:]
            if letter in "PS" and _NUMBER.fullmatch(value):
                seconds = float(value) / (1000.0 if letter == "P" else 1.0)
            else:
                text.append(word)
        start = self.machine.drained_at(self.vt)
        if text:
            self._scheduled.append((start, "echo:" + " ".join(text)))
        end = self._user_wait_until(start, seconds)
        self._user_wait = (start, end, 0.0)
        self.stats.user_waits += 1
        return end

    def _m600(self) -> float:
        """M600 (feature/pause.cpp, no LCD, no host prompts): `//action:paused`, park, wait for
        the user (M108 or the button), load, return, `//action:resumed`, then the `ok`.

        The firmware does all of it itself; a host must not park or restore meanwhile.
        """
        speed = self.machine.sim_speed
        self._scheduled.append((self.vt, "//action:paused"))
        start = self.machine.drained_at(self.vt) + FILAMENT_PARK_S / speed
        self._scheduled.append((start, "echo:Insert filament and send M108"))
        end = self._user_wait_until(start, None)
        self._user_wait = (start, end, FILAMENT_LOAD_S / speed)
        self.stats.user_waits += 1
        self._replies = ["//action:resumed"]
        return end + FILAMENT_LOAD_S / speed

    def _busy_state(self) -> str:
        """What host_keepalive says now: `paused for user` inside a wait for the button."""
        wait = self._user_wait
        if wait is not None and wait[0] <= self.vt < wait[1]:
            return "paused for user"
        return "processing"

    def press_button(self) -> None:
        """The user presses the printer's button (clears wait_for_user, as M108 does)."""
        self._breaks.append(self.loop.time())
        self._data.set()

    def _break_wait(self) -> None:
        """M108 from the emergency parser (or the button): the running heating wait returns
        now, targets kept; a wait for the user (M0/M1, M600) ends and the command goes on.

        Anything else (a move, a dwell, no command at all) is not such a wait and goes on; a
        wait that starts later sets its flag again and waits in full.
        """
        if self.exec_done is None or self.exec_done <= self.vt:
            return
        wait = self._user_wait
        if wait is not None and wait[0] <= self.vt < wait[1]:
            self._user_wait = (wait[0], self.vt, wait[2])
            self.exec_done = self.vt + wait[2]
        elif self._waiting:
            self.stats.waits_broken += 1
            self.exec_done = self.vt

    def _finish(self) -> None:
        self._waiting = False
        self._user_wait = None
        if not self.autoreport_s:
            self.next_report = _INF  # the end of an M109/M190 wait
        self.exec_done = None
        self.next_busy = _INF
        number, _command = self.slots[0]
        ok = self._ok_line(number)  # before the command leaves its slot: B counts it
        self.slots.popleft()
        ok_sent = False
        for reply in self._replies:
            self.emit(reply)
            ok_sent = ok_sent or reply.startswith("ok")
        if not ok_sent:
            if self.cfg.drop_ok_rate and self.rng.random() < self.cfg.drop_ok_rate:
                self.stats.oks_dropped += 1
            else:
                self.emit(ok)
        self._drain_ring()

    def _ok_line(self, number: int | None) -> str:
        """GCodeQueue::ok_to_send: with ADVANCED_OK, the acknowledged command's own N (none for
        an unnumbered one), P = planner.moves_free() (BLOCK_BUFFER_SIZE - 1 - moves queued),
        B = BUFSIZE - length with this command still in the ring."""
        if not self.cfg.advanced_ok:
            return "ok"
        queued = self.machine.planner.capacity - self.machine.planner_free_at(self.vt)
        planner = max(0, self.machine.planner.capacity - 1 - queued)
        n = f" N{number}" if number is not None else ""
        return f"ok{n} P{planner} B{self.slots_max - len(self.slots)}"

    def _m115(self) -> list[str]:
        on = {
            "AUTOREPORT_TEMP": self.cfg.autoreport_temp,
            "EMERGENCY_PARSER": self.cfg.emergency_parser,
            "HOST_ACTION_COMMANDS": True,
            "PRINT_JOB": True,
            "ARCS": False,
            # No thermal protection in this build (see heater_fails_at_line): it says so.
            "THERMAL_PROTECTION": False,
        }
        extruders = len(self.machine.hotends)
        return [
            f"FIRMWARE_NAME:{FIRMWARE_NAME} SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
            f"PROTOCOL_VERSION:1.0 MACHINE_TYPE:{self.machine.profile.name} "
            f"KINEMATICS:Cartesian EXTRUDER_COUNT:{extruders} "
            "UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff",
            *(f"Cap:{name}:{int(on.get(name, False))}" for name in _CAPS),
        ]

    # faults ------------------------------------------------------------------------------
    def _emergency_stop(self) -> None:
        if not self.halted:
            self.stats.emergency_stops += 1
        self._halt("Printer halted. kill() called!", lcd="M112 Shutdown")

    def _thermal_error(self, what: str, lcd: str) -> None:
        """Temperature::_temp_error then loud_kill: the failing heater by Marlin's name."""
        name = self.cfg.failing_heater
        heater = "bed" if name == "bed" else f"E{name[6:] or 0}"
        self._halt(f"{what}, system stopped! Heater_ID: {heater}", lcd=lcd)

    def _halt(self, message: str, lcd: str | None = None) -> None:
        """`Error:<message>`, then MarlinCore.cpp kill(): the LCD message echoed, `Error:Printer
        halted. kill() called!`, and `//action:poweroff` (ACTION_ON_KILL)."""
        if self.halted:
            return
        self.halted = True
        self.machine.halt(message)
        if "kill()" not in message:
            self.emit(f"Error:{message}")
        if lcd:
            self.emit(lcd, echo=True)
        self.emit("Error:Printer halted. kill() called!")
        self.emit("//action:poweroff")
        self.slots.clear()
        self.exec_done = None
        self._scheduled.clear()

    def disconnect(self) -> None:
        """The board vanishes from the bus (cable pulled, power lost)."""
        if self.gone:
            return
        # What the board already said still reaches the host; nothing after.
        out = b"".join(data for _due, data in self._tx)
        self._tx.clear()
        if out:
            self._write(out)
        self.gone = True
        self._data.set()
        if self._on_disconnect is not None:
            self._on_disconnect()


_M110_N = re.compile(r"N\s*(-?\d+)")
_M113_S = re.compile(r"S\s*(\d+(?:\.\d*)?)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


def _emergency_code(line: bytes) -> str | None:
    """`M108` or `M112` if the emergency parser acts on this line (`N12 M108*34` counts too)."""
    text = line.strip().upper()
    if text.startswith(b"N"):
        text = text[1:].lstrip(b"0123456789- ")
    text = text.split(b"*", 1)[0].strip()
    for code in (b"M108", b"M112"):
        if text == code or text.startswith(code + b" "):
            return code.decode()
    return None
