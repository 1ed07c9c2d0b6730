"""An independent Marlin serial responder on a real pseudo-terminal, for conformance tests.

Written from Marlin's source (``marlin_lines.MARLIN_SOURCE``), not from printforge's virtual
firmware. It runs Marlin's structure in real time on two threads:

- a reader thread plays the UART: every byte goes through the emergency parser first
  (M108/M112/M410 act on arrival), then into the RX buffer (bytes past ``rx_buffer_bytes`` are
  dropped, as a full ring does; the default, unbounded, is a USB-native board whose USB stack
  holds the host back instead of dropping);
- a firmware thread runs ``loop()``: ``idle()`` (read complete lines into the BUFSIZE command
  ring while it has room - also *during* a long command, since Marlin's ``idle()`` calls
  ``manage_inactivity() -> get_available_commands()`` - then the keepalive and the
  auto-report), then ``queue.advance()``: execute the oldest command, ``ok_to_send()`` while
  that command still counts in the ring, and only then free its slot.

So an ``ok`` is sent when its command has *executed* (a move: when it entered the planner, at
once while the planner has room; G28: when homing ends), never on arrival.

Line rules (``GCodeQueue::get_serial_commands``): a line starting with N must be last_N + 1
(M110 sets it) and carry a correct ``*checksum``, else ``Error:...Last Line: n``, the RX buffer is
drained, then ``Resend: n+1`` and a plain ``ok``. A line numbered last_N - 1 or last_N is
dropped without any answer (bugfix-2.1.x; ``drop_duplicate_lines=False`` gives the older
error-and-resend). A line without N is queued unchecked.

Faults by constructor argument: ``corrupt_checksum_every`` (every Nth numbered line arrives with
a bad checksum), ``drop_ok_every`` (every Nth command ``ok`` is lost), ``unsolicited`` (lines to
print when the command with that line number starts) and ``emit()`` at any time.

``executed`` logs every command run (line number, text), so a test can check "every line once,
in order"; ``sent`` holds every line written to the host.
"""

from __future__ import annotations

import os
import pty
import select
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

from tests.conformance.marlin_commands import Busy, Command, Executed, GcodeSuite, Killed
from tests.conformance.marlin_wire import (
    EmergencyParser,
    Heater,
    LineAssembler,
    checksum,
    heater_states,
    strtol,
)

__all__ = ["Busy", "Executed", "MarlinReference"]


class _Stopping(Exception):
    pass


class MarlinReference(GcodeSuite):
    def __init__(
        self,
        *,
        bufsize: int = 4,
        block_buffer_size: int = 16,
        max_cmd_size: int = 96,
        rx_buffer_bytes: int | None = None,
        advanced_ok: bool = False,
        emergency_parser: bool = True,
        host_action_commands: bool = True,
        autoreport_temp: bool = True,
        advanced_pause: bool = True,
        extruders: int = 1,
        keepalive_interval_s: float = 2.0,
        busy_while_heating: bool = True,
        move_time_s: float = 0.0,
        command_time_s: Mapping[str, float] | None = None,
        heat_rate_c_s: float = 10.0,
        temp_residency_s: float = 10.0,
        bed_residency_s: float = 10.0,
        extrude_min_temp: float = 170.0,
        pause_park_s: float = 0.5,
        pause_load_s: float = 0.5,
        user_wait_s: float | None = None,
        user_wait_state: Busy = Busy.PAUSED_FOR_USER,
        drop_duplicate_lines: bool = True,
        corrupt_checksum_every: int = 0,
        drop_ok_every: int = 0,
        unsolicited: Mapping[int, Iterable[str]] | None = None,
    ) -> None:
        self.bufsize = bufsize
        self.block_buffer_size = block_buffer_size
        self.rx_buffer_bytes = rx_buffer_bytes
        self.advanced_ok = advanced_ok
        self.emergency_parser = emergency_parser
        self.host_action_commands = host_action_commands
        self.autoreport_temp = autoreport_temp
        self.advanced_pause = advanced_pause
        self.keepalive_interval_s = keepalive_interval_s
        self.busy_while_heating = busy_while_heating
        self.move_time_s = move_time_s
        self.command_time_s = {"G28": 2.0, "G29": 5.0, **(command_time_s or {})}
        self.temp_residency_s = temp_residency_s
        self.bed_residency_s = bed_residency_s
        self.extrude_min_temp = extrude_min_temp
        self.pause_park_s = pause_park_s
        self.pause_load_s = pause_load_s
        self.user_wait_s = user_wait_s
        self.user_wait_state = user_wait_state
        self.drop_duplicate_lines = drop_duplicate_lines
        self.corrupt_checksum_every = corrupt_checksum_every
        self.drop_ok_every = drop_ok_every
        self.unsolicited = {n: list(v) for n, v in (unsolicited or {}).items()}

        self._cond = threading.Condition(threading.RLock())
        self._assembler = LineAssembler(max_cmd_size)
        self._eparser = EmergencyParser()
        self._rx: deque[int] = deque()
        self._ring: deque[Command] = deque()
        self._blocks: deque[float] = deque()  # planner: each block's completion time
        self._last_n = 0
        self._busy = Busy.NOT_BUSY
        self._next_busy = 0.0
        self._report_interval = 0
        self._next_report = 0.0
        self._wait_for_heatup = False
        self._wait_for_user = False
        self._m112 = False
        self._m410 = False
        self._now = time.monotonic()
        self.hotends = [Heater(rate_c_s=heat_rate_c_s, stamp=self._now) for _ in range(extruders)]
        self.bed: Heater | None = Heater(rate_c_s=heat_rate_c_s, stamp=self._now)
        self._active = 0
        self._pos = [0.0, 0.0, 0.0, 0.0]
        self._relative = False
        self._relative_e = False
        self._numbered_seen = 0
        self._oks = 0

        self.executed: list[Executed] = []
        self.received: list[str] = []
        self.sent: list[str] = []
        self.resend_requests: list[int] = []
        self.ignored_duplicates: list[int] = []
        self.dropped_oks: list[str] = []
        self.rx_dropped = 0
        self.bytes_in = 0
        self.halted = False
        self.errors: list[BaseException] = []

        self._master = -1
        self._slave = -1
        self._wake_r = -1
        self._wake_w = -1
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.port = ""

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> MarlinReference:
        if self._threads:
            return self
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave, termios.TCSANOW)  # no echo of our own output before a host opens
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        self.port = os.ttyname(self._slave)
        self._next_busy = self._now + self.keepalive_interval_s
        for target, name in ((self._read_loop, "reader"), (self._firmware_loop, "firmware")):
            thread = threading.Thread(target=target, name=f"marlin-ref-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads (bounded) and close every descriptor; safe to call twice."""
        self._stopping = (
            True  # read without the lock by a writer stuck on a host that stopped reading
        )
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1
        self._threads.clear()

    def __enter__(self) -> MarlinReference:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- what tests use --------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[MarlinReference], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (checked on every line written and command run)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def confirm(self) -> None:
        """The user presses the printer's button (clears ``wait_for_user``, as a click does)."""
        with self._cond:
            self._wait_for_user = False
            self._cond.notify_all()

    def emit(self, line: str) -> None:
        """Print an unsolicited line now."""
        with self._cond:
            self._emit(line)

    @property
    def queued(self) -> int:
        """Commands in the BUFSIZE ring, the one executing included."""
        with self._cond:
            return len(self._ring)

    @property
    def idle(self) -> bool:
        """Nothing left to do: no command queued or running, no byte waiting."""
        with self._cond:
            return not self._ring and not self._rx and self._busy is Busy.NOT_BUSY

    def snapshot(self) -> tuple[list[Executed], list[str]]:
        with self._cond:
            return list(self.executed), list(self.sent)

    # ---- the UART --------------------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            while not self._stopping:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], 0.5)
                if self._wake_r in ready or self._master not in ready:
                    continue
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # the far side is gone
                    return
                with self._cond:
                    self.bytes_in += len(data)
                    for byte in data:
                        self._uart_byte(byte)
                    self._cond.notify_all()
        except Exception as err:  # a bug here must fail the test, not vanish with the thread
            self.errors.append(err)

    def _uart_byte(self, byte: int) -> None:
        if self.emergency_parser and not self.halted:
            hit = self._eparser.update(byte)
            if hit == "M108":
                self._wait_for_user = self._wait_for_heatup = False
            elif hit == "M112":
                self._m112 = True
            elif hit == "M410":
                self._m410 = True
        if self.rx_buffer_bytes is not None and len(self._rx) >= self.rx_buffer_bytes - 1:
            self.rx_dropped += 1
            return
        self._rx.append(byte)

    def _emit(self, line: str) -> None:
        data = (line + "\n").encode()
        self.sent.append(line)
        while data and not self._stopping and self._master >= 0:
            try:
                written = os.write(self._master, data)
                data = data[written:]
            except BlockingIOError:  # the host is not reading: wait, but stay stoppable
                select.select([], [self._master], [], 0.05)
        self._cond.notify_all()

    # ---- loop() and idle() -----------------------------------------------------------------

    def _firmware_loop(self) -> None:
        with self._cond:
            try:
                while True:
                    self._idle()
                    if self._ring:
                        self._advance()
                    else:
                        self._cond.wait(0.02)
            except Killed:
                while not self._stopping:
                    self._cond.wait(0.1)
            except _Stopping:
                pass
            except Exception as err:  # surfaced through self.errors by the tests
                self.errors.append(err)

    def _idle(self) -> None:
        if self._stopping:
            raise _Stopping
        self._now = time.monotonic()
        if self._m112:  # Temperature::task: emergency_parser.killed_by_M112
            self._kill("M112 Shutdown")
        if self._m410:
            self._m410 = False
            self._blocks.clear()
        self._get_serial_commands()
        for heater in self._heaters():
            heater.advance(self._now)
        self._host_keepalive()
        if self._report_interval and self._now >= self._next_report:
            self._next_report = self._now + self._report_interval
            if not self._wait_for_heatup:  # AutoReportTemp::report
                self._emit(heater_states(self.hotends, self.bed, self._active))

    def _host_keepalive(self) -> None:
        interval = self.keepalive_interval_s
        if interval and self._busy is not Busy.NOT_BUSY:
            if self._now < self._next_busy:
                return
            self._emit(self._busy.value)
        self._next_busy = self._now + interval

    def _block(self, done: Callable[[], bool], deadline: float | None = None) -> None:
        """A handler's wait: ``while (!done) idle();`` with an optional end time. The test comes
        first, as in Marlin: a move the planner has room for never calls idle(), so no line is
        read into the ring between its execution and its ok."""

        def over() -> bool:
            return done() or (deadline is not None and time.monotonic() >= deadline)

        while not over():
            self._idle()
            if over():
                return
            nap = 0.02 if deadline is None else min(0.02, max(0.001, deadline - self._now))
            self._cond.wait(nap)

    def _heaters(self) -> list[Heater]:
        return [*self.hotends, *([self.bed] if self.bed else [])]

    # ---- GCodeQueue::get_serial_commands ---------------------------------------------------

    def _get_serial_commands(self) -> None:
        while len(self._ring) < self.bufsize and self._rx:
            byte = self._rx.popleft()
            if byte not in (0x0A, 0x0D):
                self._assembler.feed(byte)
                continue
            line = self._assembler.done()
            if line is not None:
                text = line.decode("latin-1")
                self.received.append(text)
                self._take_line(text)

    def _take_line(self, buffer: str) -> None:
        command = buffer.lstrip(" ")
        if command.startswith("N"):
            m110 = "M110" in command
            npos = 0
            if m110:
                n2 = command.find("N", 4)
                if n2 != -1:
                    npos = n2
            number = strtol(command[npos + 1 :])
            self._numbered_seen += 1
            corrupt = bool(self.corrupt_checksum_every) and (
                self._numbered_seen % self.corrupt_checksum_every == 0
            )
            if number != self._last_n + 1 and not m110:
                if self.drop_duplicate_lines and self._last_n - 1 <= number <= self._last_n:
                    self.ignored_duplicates.append(number)  # "we got two - oops!": no answer
                    return
                return self._line_error("Line Number is not Last Line Number+1, Last Line: ")
            star = command.rfind("*")
            if star == -1:
                return self._line_error("No Checksum with line number, Last Line: ")
            expected = checksum(command[:star].encode("latin-1"))
            if corrupt or strtol(command[star + 1 :]) != expected:
                return self._line_error("checksum mismatch, Last Line: ")
            self._last_n = number
        if not self.emergency_parser and command[:1] == "M":
            # "Process critical commands early" - only an unnumbered line gets here as M...
            if command[1:4] == "108":
                self._wait_for_heatup = False
            elif command[1:4] == "112":
                self._kill("M112 Shutdown")
            elif command[1:4] == "410":
                self._blocks.clear()
        self._ring.append(Command(buffer))

    def _line_error(self, message: str) -> None:
        """``gcode_line_error`` then ``flush_and_request_resend``."""
        self._emit(f"Error:{message}{self._last_n}")
        self._rx.clear()  # while (read_serial(...) != -1) {}
        self.resend_requests.append(self._last_n + 1)
        self._emit(f"Resend: {self._last_n + 1}")
        self._emit("ok")
        self._assembler.clear()

    # ---- queue.advance() and ok_to_send ------------------------------------------------------

    def _advance(self) -> None:
        command = self._ring[0]
        previous, self._busy = self._busy, Busy.IN_HANDLER  # KEEPALIVE_STATE(IN_HANDLER)
        try:
            no_ok = self._process(command)
            if not no_ok:
                self._ok_to_send(command)
        finally:
            self._busy = previous
        self._ring.popleft()  # advance_r(): only after the ok

    def _ok_to_send(self, command: Command) -> None:
        if command.skip_ok:
            return
        line = "ok"
        if self.advanced_ok:
            raw = command.raw
            if raw.startswith("N"):
                i = 1
                while i < len(raw) and (raw[i].isdigit() or raw[i] in "+-"):
                    i += 1
                line += " " + raw[:i]
            line += f" P{self._moves_free()} B{self.bufsize - len(self._ring)}"
        self._oks += 1
        if self.drop_ok_every and self._oks % self.drop_ok_every == 0:
            self.dropped_oks.append(line)
            return
        self._emit(line)

    def _moves_free(self) -> int:
        while self._blocks and self._blocks[0] <= self._now:
            self._blocks.popleft()
        return self.block_buffer_size - 1 - len(self._blocks)

    def _synchronize(self) -> None:
        self._block(lambda: self._moves_free() == self.block_buffer_size - 1)

    def _buffer_move(self) -> None:
        self._block(lambda: self._moves_free() > 0)  # Planner::get_next_free_block
        if self.move_time_s > 0:
            start = max(self._now, self._blocks[-1] if self._blocks else self._now)
            self._blocks.append(start + self.move_time_s)

    # ---- commands --------------------------------------------------------------------------
