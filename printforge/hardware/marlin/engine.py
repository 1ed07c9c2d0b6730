"""Send-ahead line streaming for Marlin: the window, resend recovery and the lost-`ok` watchdog.

The engine is driven by callbacks (messages in, `write` out), so one event loop serves many
printers with no polling. Every line is numbered and checksummed, which makes the firmware
itself refuse gaps; the engine only has to keep the wire full and recover fast.

What an `ok` means (Marlin `GcodeSuite::process_parsed_command` -> `GCodeQueue::ok_to_send`):
one command has *run* (a move: it entered the planner; G28, M400, M109: the wait is over), and
they come in the order the commands were sent. So counting `ok`s acknowledges lines in order,
and a line is done only when its own `ok` (or a later one) has come: nothing else (a `Resend:`,
a keepalive, silence) says a line has run.

Window. Marlin holds `BUFSIZE` parsed commands (the oldest unacknowledged lines, the running
one included) plus an RX ring; bytes that reach a full ring are lost. So while fewer lines than
slots are unacknowledged anything may be sent, otherwise the bytes of the lines beyond the
slots must fit the ring.

Resend. On a bad line Marlin answers `Error`, `Resend: N`, `ok`, and every line already on its
way behind the bad one is refused again with the same `Resend: N` (or silently drained). The
engine rewinds once to N, swallows the `ok` that follows each `Resend:` (it acknowledges no
command), ignores as many repeated requests as lines were in flight ("ghosts", whose bytes stay
counted until they are accounted for), and falls back to one line at a time while the resend
rate is high.

ADVANCED_OK (`ok N<n> P<p> B<b>`, queue.cpp `ok_to_send`): N is the `N` of the command being
acknowledged, so every line up to n is done and a lost `ok` costs nothing; B is
`BUFSIZE - length` counted while that command still holds its slot. The engine notices the
option from the form of the first `ok` (M115 reports no `Cap:` for it), acknowledges by N, and
stops counting plain `ok`s: on such a board they only follow `Resend:`. B gives the firmware's
real `BUFSIZE` at the handshake (one line in flight: B + 1) and, later, any slots taken by
commands the host did not send (a runout script's `M600`), which the window then leaves alone.
P (planner moves free) is kept for the status; the planner's back-pressure already shows in
when the `ok`s come.

M105's own `ok T:…` (it prints its own `ok`, never with ADVANCED_OK fields) acknowledges the
oldest unacknowledged M105 and everything before it, and nothing if no M105 is in flight: a
stray `ok` counted earlier (a handshake `M110` answered twice) is absorbed there instead of
shifting every later acknowledgement by one.

Watchdog. Keepalives (`echo:busy: …`, every 2 s during a long command) and the `W:` lines of a
heating wait restart it. After `ok_timeout_s` of silence with lines in flight, something was
lost: an `ok`, or a line. The engine does *not* send the oldest line again: since Marlin PR
#24972 (2022) a line numbered `last_N` or `last_N - 1` is dropped without any answer, older
builds answer it with `Error` and `Resend: last_N + 1`, which says how far the firmware has
*read*, not how far it has *run*. Instead it sends a probe, a fresh numbered `M105` past the
window. Marlin takes it only in sequence and answers it only after every command before it has
run, so:
- a lost `ok`: the probe runs, its `ok T:` acknowledges everything up to it;
- a lost line: the probe is out of sequence, Marlin asks `Resend:` for the lost line (a gap,
  which every Marlin answers the same way) and the usual rewind follows;
- a lost probe: the next probe leaves a gap, and the same `Resend:` recovers both;
- a command that is merely slow without keepalives (`M113 S0`, a build without
  HOST_KEEPALIVE_FEATURE): the probe waits its turn behind it and is answered in order.
At most `MAX_PROBES` probes are in flight, so a board that stays silent for a long time does
not collect them. The handshake's `M110` is the exception: a board that resets when the port
opens misses it, and a numbered `M110` skips Marlin's sequence check, so it is simply sent again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from printforge.hardware.marlin.protocol import Ok, frame

__all__ = ["HEATING_WAITS", "PROBE_COMMAND", "EngineStats", "LineEngine", "is_heating_wait"]

log = logging.getLogger(__name__)

HISTORY_LINES = 256  # acknowledged lines kept for late resend requests
# Commands that sit in a wait loop Marlin leaves early on M108 (`wait_for_heatup`).
HEATING_WAITS = frozenset({"M109", "M190", "M191", "M303"})
FALLBACK_WINDOW = 200  # lines over which the resend rate is measured
FALLBACK_RATE = 0.05  # above this share of rewinds, stream one line at a time ...
FALLBACK_LINES = 400  # ... for this many lines, then try sending ahead again
PROBE_COMMAND = "M105"  # the watchdog's probe: answered in order, with an `ok` of its own form
MAX_PROBES = 2  # probes in flight at once; a second one recovers a lost first one
# A line of ours whose leading N a bit flip turned into another character: `O12 G1 X5`.
_CORRUPTED_N = re.compile(r"^[^N\d\s](\d+) (.+)$")


def is_heating_wait(command: str) -> bool:
    """Whether `command` blocks the firmware until a heater is at temperature."""
    return command[:4].upper() in HEATING_WAITS and not command[4:5].isdigit()


def _is_code(command: str, code: str) -> bool:
    """`command` is `code` (`M105`, not `M1050`)."""
    n = len(code)
    return command[:n].upper() == code and not command[n : n + 1].isdigit()


@dataclass(slots=True)
class _Line:
    number: int
    data: bytes
    job_index: int | None = None
    size: int = 0  # the command's own bytes plus newline, for progress
    sent_at: float = 0.0
    future: asyncio.Future[None] | None = None
    done: bool = False
    command: str = ""


@dataclass
class EngineStats:
    lines_sent: int = 0
    bytes_sent: int = 0
    resends: int = 0
    rewinds: int = 0
    duplicate_resends: int = 0
    watchdog_probes: int = 0
    keepalives: int = 0
    stray_oks: int = 0  # `ok`s of our lines run unnumbered after their N was corrupted
    fallbacks: int = 0
    resend_marks: deque[int] = field(default_factory=deque)


class LineEngine:
    """Numbers, windows and recovers lines for one printer connection."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        *,
        slots: int = 4,
        rx_bytes: int = 128,
        ping_pong: bool = False,
        ok_timeout_s: float = 10.0,
        resend_sends_ok: bool = True,
        byte_rate: float | None = None,
    ) -> None:
        self._write = write
        self.slots = slots
        self.ring_cap = rx_bytes - 1  # a ring buffer keeps one cell free
        self.ping_pong = ping_pong
        self.ok_timeout_s = ok_timeout_s
        self.resend_sends_ok = resend_sends_ok
        # Bytes per second of the wire; with it the window is sized to the round trip.
        self.byte_rate = byte_rate
        self.min_rtt: float | None = None
        self.loop = asyncio.get_running_loop()
        self.stats = EngineStats()
        self.advanced = False  # the board answers with ADVANCED_OK's `ok N P B`
        self.planner_free: int | None = None  # ADVANCED_OK's P of the latest `ok`
        self.planner_blocks: int | None = None  # learned at the handshake: P + 1 when idle
        self._foreign_slots = 0  # slots B says are taken by commands the host did not send
        self.lines: dict[int, _Line] = {}
        self.acked = 0  # every line up to this number is done
        self.tx = 1  # the next line number to transmit
        self.next_n = 1  # the next number to assign
        self._control: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._job: Sequence[str] | None = None
        self._job_pos = 0
        self.job_hold = False
        self.job_acked = 0
        self.job_bytes_acked = 0
        self._swallow = 0
        self._rewind_to: int | None = None
        self._ghosts: deque[int] = deque()
        self._dup_budget = 0
        self._probes: set[int] = set()  # line numbers of the watchdog's probes in flight
        self._silent_periods = 0  # watchdog periods in a row without a sign of life
        self._peeked: tuple[tuple[int, str], bytes] | None = None
        self._hold_for_resend = False
        self._fallback_until = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self.failed: BaseException | None = None
        self.changed = asyncio.Event()  # set on every acknowledgement or failure
        # Told each command the firmware has done, in order (the thermal watch reads targets).
        self.on_done: Callable[[str], None] | None = None
        # Asked before each new job line: where the job goes on from and what to send first
        # (a cancelled object's lines are left out). None: nothing is skipped.
        self.job_skip: Callable[[int], tuple[int, list[str]] | None] | None = None
        self.job_skipped = 0  # job lines left out, counted as done

    # feeding ------------------------------------------------------------------------------
    def reset(self, next_number: int) -> None:
        """After `M110 N<next_number - 1>`: start numbering afresh."""
        self.lines.clear()
        self.acked = next_number - 1
        self.tx = self.next_n = next_number
        self._ghosts.clear()
        self._rewind_to = None
        self._swallow = 0
        self._probes.clear()
        self._foreign_slots = 0

    def submit(self, command: str) -> asyncio.Future[None]:
        """Queue a command ahead of the job's lines; the future completes with its `ok`."""
        future: asyncio.Future[None] = self.loop.create_future()
        if self.failed is not None:
            future.set_exception(self.failed)
            return future
        self._control.append((command, future))
        self.pump()
        return future

    def start_job(self, commands: Sequence[str]) -> None:
        self._job = commands
        self._job_pos = 0
        self.job_acked = 0
        self.job_bytes_acked = 0
        self.job_skipped = 0
        self.job_hold = False
        self.pump()

    def drop_job(self) -> None:
        """Send no more job lines (those already sent still complete)."""
        self._job = None

    def send_now(self, command: str) -> asyncio.Future[None]:
        """Number `command` next and write it at once, past the window; completes with its `ok`.

        For M108: EMERGENCY_PARSER acts on its bytes as they arrive, so it must not wait for
        the window, which a blocking wait keeps full. It is numbered all the same because the
        firmware also queues it (as a no-op) and answers `ok`: an unnumbered line would add an
        `ok` the count cannot place, or none if a full RX ring dropped it. Numbered, a dropped
        copy is simply asked for again with `Resend:`. Lines already numbered and waiting to go
        again after a rewind go out first, so the numbering on the wire stays gapless.
        """
        future: asyncio.Future[None] = self.loop.create_future()
        if self.failed is not None:
            future.set_exception(self.failed)
            return future
        self._send_now(
            _Line(self.next_n, frame(self.next_n, command), future=future, command=command)
        )
        return future

    def _send_now(self, line: _Line) -> None:
        self.lines[line.number] = line
        self.next_n += 1
        out = bytearray()
        now = self.loop.time()
        while self.tx < self.next_n:
            pending = self.lines[self.tx]
            out += pending.data
            pending.sent_at = now
            self.tx += 1
            self.stats.lines_sent += 1
        self.stats.bytes_sent += len(out)
        self._write(bytes(out))
        self._arm_watchdog()

    def oldest_in_flight(self) -> tuple[int, str] | None:
        """Number and command of the oldest unacknowledged line: what the firmware is busy with.

        Every line before it is done, so this is the command running now (or one whose `ok`
        is still on the wire).
        """
        if self.in_flight == 0:
            return None
        line = self.lines.get(self.acked + 1)
        return None if line is None else (line.number, line.command)

    def heating_wait_in_flight(self) -> tuple[int, str] | None:
        """The oldest heating wait (M109, M190, M191, M303) sent and not yet acknowledged."""
        for number in range(self.acked + 1, self.tx):
            line = self.lines.get(number)
            if line is not None and is_heating_wait(line.command):
                return number, line.command
        return None

    def job_line(self, number: int) -> int | None:
        """The 1-based job command a protocol line number carries, if it is a job line."""
        line = self.lines.get(number)
        if line is None or line.job_index is None:
            return None
        return line.job_index + 1

    @property
    def job_done(self) -> bool:
        return self._job is not None and self.job_acked >= len(self._job)

    @property
    def in_flight(self) -> int:
        return self.tx - 1 - self.acked

    def fail(self, error: BaseException) -> None:
        """The connection is gone or the firmware halted: every waiter gets the error."""
        if self.failed is None:
            self.failed = error
        self._cancel_watchdog()
        for line in self.lines.values():
            if line.future is not None and not line.future.done():
                line.future.set_exception(error)
        while self._control:
            _cmd, future = self._control.popleft()
            if not future.done():
                future.set_exception(error)
        self.changed.set()

    # transmitting ------------------------------------------------------------------------
    def _window_allows(self, size: int) -> bool:
        if self._hold_for_resend:
            return False
        in_flight = self.in_flight
        if self.ping_pong or self.stats.lines_sent < self._fallback_until:
            return in_flight == 0  # free slots parse stale bytes as they come
        if in_flight and not self._rtt_allows(size):
            return False
        slots = max(1, self.slots - self._foreign_slots)
        if in_flight < slots:
            return True  # free slots: the firmware parses bytes as they arrive
        queued = sum(self._ghosts)
        for number in range(self.acked + 1 + slots, self.tx):
            queued += len(self.lines[number].data)
        return queued + size <= self.ring_cap

    def _rx_room(self) -> int:
        """Bytes the firmware's RX ring still has room for, as the window counts it."""
        slots = max(1, self.slots - self._foreign_slots)
        if self.in_flight < slots:
            return self.ring_cap
        queued = sum(self._ghosts)
        for number in range(self.acked + 1 + slots, self.tx):
            queued += len(self.lines[number].data)
        return self.ring_cap - queued

    def _rtt_allows(self, size: int) -> bool:
        """Keep three lines plus two turnarounds' worth of bytes in flight, not more.

        More would not go faster (the wire is already full) but every line in flight behind
        a corrupted one has to be sent again, so a deep window makes noise expensive.
        """
        if self.byte_rate is None or self.min_rtt is None:
            return True
        budget = 3 * size + 2 * self.min_rtt * self.byte_rate
        # Ghosts are left out here: refused lines cost the printer no slot and no ring space
        # once parsed, and waiting for their error reports would leave the wire idle.
        total = size
        for number in range(self.acked + 1, self.tx):
            total += len(self.lines[number].data)
        return total <= budget

    def _peek_new(self) -> bytes | None:
        """The next new line, framed with the next number, without taking it yet.

        A line gets its number only when it goes out: a line numbered and then held back by
        the window would have to go first when something is written past the window (M108, a
        probe), pushing its bytes into an RX ring the window said was full.
        """
        if not self._control and self.job_skip is not None:
            self._skip_job_lines()
        if self._control:
            command = self._control[0][0]
        elif self._job is not None and not self.job_hold and self._job_pos < len(self._job):
            command = self._job[self._job_pos]
        else:
            return None
        key = (self.next_n, command)
        if self._peeked is None or self._peeked[0] != key:
            self._peeked = (key, frame(self.next_n, command))
        return self._peeked[1]

    def _skip_job_lines(self) -> None:
        """Leave out the job lines `job_skip` says to, counting them as done, and queue the
        commands that keep the machine where the file believes it is."""
        job = self._job
        if job is None or self.job_hold or self._job_pos >= len(job) or self.job_skip is None:
            return
        verdict = self.job_skip(self._job_pos)
        if verdict is None:
            return
        resume_at, commands = verdict
        resume_at = min(resume_at, len(job))
        for index in range(self._job_pos, resume_at):
            self.job_acked += 1
            self.job_bytes_acked += len(job[index].encode()) + 1
        self.job_skipped += resume_at - self._job_pos
        self._job_pos = resume_at
        for command in commands:
            future: asyncio.Future[None] = self.loop.create_future()
            future.add_done_callback(_retrieve)
            self._control.append((command, future))
        self.changed.set()

    def _next_new(self, data: bytes) -> _Line:
        """Take the line `_peek_new` framed as `data`."""
        if self._control:
            command, future = self._control.popleft()
            line = _Line(self.next_n, data, future=future, command=command)
        else:
            assert self._job is not None
            command = self._job[self._job_pos]
            line = _Line(
                self.next_n,
                data,
                job_index=self._job_pos,
                size=len(command.encode()) + 1,
                command=command,
            )
            self._job_pos += 1
        self._peeked = None
        self.lines[line.number] = line
        self.next_n += 1
        return line

    def pump(self) -> None:
        """Transmit whatever the window allows, in one write."""
        if self.failed is not None:
            return
        out = bytearray()
        while True:
            if self.tx < self.next_n:
                line = self.lines[self.tx]  # sent before, going again after a rewind
                if not self._window_allows(len(line.data)):
                    break
            else:
                data = self._peek_new()
                if data is None or not self._window_allows(len(data)):
                    break
                line = self._next_new(data)
            out += line.data
            line.sent_at = self.loop.time()
            self.tx += 1
            self.stats.lines_sent += 1
        if out:
            self.stats.bytes_sent += len(out)
            self._write(bytes(out))
            self._arm_watchdog()

    # receiving ---------------------------------------------------------------------------
    def on_ok(self, ok: Ok) -> None:
        self._arm_watchdog(restart=True)
        self._hold_for_resend = False  # an error report without `Resend:` must not stall us
        if ok.temperatures is not None:
            # M105's own `ok T:…`: never the error report's `ok`, never with N.
            self._on_m105_ok()
        elif self._swallow > 0:
            # The `ok` right after `Resend:` answers the refused line and acknowledges no
            # command. 2.1.x prints it plain; some 2.0.x builds printed the running command's
            # ADVANCED_OK fields there, which must not acknowledge it either.
            self._swallow -= 1
        elif ok.advanced:
            self._on_advanced_ok(ok)
        elif self.advanced:
            pass  # on an ADVANCED_OK board a plain `ok` only follows `Resend:` (or is stray)
        elif self.acked < self.tx - 1:
            self._ack_through(self.acked + 1)
        self.pump()

    def _on_m105_ok(self) -> None:
        for number in range(self.acked + 1, self.tx):
            line = self.lines.get(number)
            if line is not None and _is_code(line.command, "M105"):
                self._ack_through(number)
                return
        # No M105 in flight: an `ok` counted earlier was not ours and took its place. Nothing
        # more to acknowledge, and the count is right again from here on.

    def _on_advanced_ok(self, ok: Ok) -> None:
        assert ok.planner_free is not None and ok.buffer_free is not None
        self.advanced = True
        self.planner_free = ok.planner_free
        if ok.line is None:
            return  # an unnumbered command's `ok` (the host sends none it counts)
        if ok.line == self.acked + 1 and self.in_flight == 1 and self.stats.lines_sent <= 2:
            # The handshake's first line, alone in the ring: B = BUFSIZE - 1, and the planner
            # is empty (P = BLOCK_BUFFER_SIZE - 1). The firmware's own figures beat a profile.
            if ok.buffer_free + 1 != self.slots:
                log.info(
                    "the firmware has %d command slots (BUFSIZE), not %d",
                    ok.buffer_free + 1,
                    self.slots,
                )
            self.slots = ok.buffer_free + 1
            self.planner_blocks = ok.planner_free + 1
        if ok.line > self.acked:
            if ok.line >= self.tx:
                log.warning(
                    "ok N%d acknowledges a line not sent since the last rewind (next: %d)",
                    ok.line,
                    self.tx,
                )
            self._ack_through(min(ok.line, self.tx - 1))
        # Commands left in the ring once the acknowledged one leaves, less the lines sent after
        # it (some may still be on the wire): what remains is the firmware's own, at least.
        occupied = self.slots - ok.buffer_free - 1
        self._foreign_slots = max(0, occupied - max(0, self.tx - 1 - ok.line))

    def on_unknown_command(self, text: str) -> None:
        """`echo:Unknown command: "<text>"`. When `text` is one of our numbered lines whose
        leading `N` was corrupted on the wire (`O12 G1 X5`), Marlin took it for an unnumbered
        line, which 2.1.x queues unchecked: it runs as an unknown command and its `ok`
        follows, acknowledging none of ours (the real line 12 is asked for with `Resend:`).
        With ADVANCED_OK that `ok` carries no N and acknowledges nothing anyway."""
        match = _CORRUPTED_N.match(text)
        if match is None or self.advanced:
            return
        line = self.lines.get(int(match.group(1)))
        if line is not None and line.command == match.group(2):
            self.stats.stray_oks += 1
            self._swallow += 1

    def on_busy(self) -> None:
        """A keepalive (`echo:busy: …`) or a heating wait's report: the firmware is alive and
        inside a command, so silence is no sign of a lost `ok`."""
        self.stats.keepalives += 1
        self._arm_watchdog(restart=True)

    def on_line_error(self, number: int) -> None:
        """`Error:… Last Line: N-1` comes just before `Resend: N`: hold new lines until then.

        Transmitting is only paused (not rewound) so that the `Resend:` decides, as usual.
        """
        if self._rewind_to != number:
            self._hold_for_resend = True

    def on_resend(self, number: int) -> None:
        self._hold_for_resend = False
        self._arm_watchdog(restart=True)
        self.stats.resends += 1
        if self.resend_sends_ok:
            self._swallow += 1
        # `Resend: N` says the firmware has *read* every line before N, not that it has run
        # them: their own `ok`s (or a probe's) acknowledge them.
        if self._rewind_to == number and self._dup_budget > 0:
            # A line that was already on the wire behind the bad one, refused in turn.
            self._dup_budget -= 1
            self.stats.duplicate_resends += 1
            if self._ghosts:
                self._ghosts.popleft()
            return
        if number >= self.tx:
            return  # asks for the next line not sent yet: it goes out in order anyway
        if number not in self.lines:
            from printforge.runtime.errors import PrinterFault

            self.fail(PrinterFault(f"printer asked to resend line {number}, no longer held"))
            return
        if number <= self.acked:
            # Acknowledged by an `ok` that was not this line's (one the count took for it):
            # the firmware never ran it, so it goes again.
            log.warning("printer asked again for line %d, counted as done", number)
            self.acked = number - 1
        self.stats.rewinds += 1
        self.stats.resend_marks.append(self.stats.lines_sent)
        self._ghosts = deque(len(self.lines[n].data) for n in range(number, self.tx))
        # Each stale line can be refused once more, plus a cut-off tail of the drained ring.
        self._dup_budget = len(self._ghosts) + 1
        self._rewind_to = number
        self.tx = number
        self._check_fallback()
        self.pump()

    def _check_fallback(self) -> None:
        marks = self.stats.resend_marks
        horizon = self.stats.lines_sent - FALLBACK_WINDOW
        while marks and marks[0] < horizon:
            marks.popleft()
        if len(marks) > FALLBACK_RATE * FALLBACK_WINDOW and not self.ping_pong:
            if self.stats.lines_sent >= self._fallback_until:
                self.stats.fallbacks += 1
            self._fallback_until = self.stats.lines_sent + FALLBACK_LINES

    def _ack_through(self, number: int) -> None:
        newest = self.lines.get(number) if number > self.acked else None
        if newest is not None and newest.sent_at and self.byte_rate:
            # The turnaround: the round trip less the line's own time on the wire.
            rtt = self.loop.time() - newest.sent_at - len(newest.data) / self.byte_rate
            rtt = max(0.0, rtt)
            self.min_rtt = rtt if self.min_rtt is None else min(self.min_rtt, rtt)
        while self.acked < number:
            self.acked += 1
            line = self.lines.get(self.acked)
            if line is None or line.done:
                continue
            line.done = True
            if self.on_done is not None:
                self.on_done(line.command)
            if line.job_index is not None:
                self.job_acked += 1
                self.job_bytes_acked += line.size
            if line.future is not None and not line.future.done():
                line.future.set_result(None)
        self._probes = {n for n in self._probes if n > self.acked}
        if self._rewind_to is not None and self.acked >= self._rewind_to:
            self._rewind_to = None
            self._ghosts.clear()
            self._dup_budget = 0
        stale = self.acked - HISTORY_LINES
        while self.lines and (first := next(iter(self.lines))) <= stale:
            del self.lines[first]
        self.changed.set()
        if self.in_flight == 0:
            self._cancel_watchdog()

    # watchdog ----------------------------------------------------------------------------
    def _arm_watchdog(self, restart: bool = False) -> None:
        if self.in_flight == 0:
            self._cancel_watchdog()
            return
        if self._watchdog is not None and not restart:
            return
        if restart:
            self._silent_periods = 0
        self._cancel_watchdog()
        self._watchdog = self.loop.call_later(self.ok_timeout_s, self._on_watchdog)

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _on_watchdog(self) -> None:
        """Silence with lines in flight: an `ok` or a line was lost. Ask with a probe.

        See the module's docstring for why this is a fresh numbered `M105` and not the oldest
        line again.
        """
        self._watchdog = None
        if self.failed is not None or self.in_flight == 0:
            return
        oldest = self.lines.get(self.acked + 1)
        if oldest is not None and _is_code(oldest.command, "M110"):
            # The handshake: a board that resets when the port opens lost it. A numbered M110
            # skips the sequence check, so a copy is taken, never dropped as a duplicate.
            self.stats.watchdog_probes += 1
            self._write(oldest.data)
            self._arm_watchdog()
            return
        self._silent_periods += 1
        data = frame(self.next_n, PROBE_COMMAND)
        if len(self._probes) >= MAX_PROBES:
            log.info("no answer to %d probes; waiting on", len(self._probes))
            self._arm_watchdog()
            return
        if self._rx_room() < len(data) and self._silent_periods < 2:
            # The window counts the RX ring full: a command may simply run long without
            # keepalives, and the probe's bytes would be dropped. One more silent period
            # first; after that a lost `ok` is likelier (and a dropped probe only costs a
            # `Resend:`).
            self._arm_watchdog()
            return
        self.stats.watchdog_probes += 1
        future: asyncio.Future[None] = self.loop.create_future()
        future.add_done_callback(_retrieve)
        probe = _Line(self.next_n, data, future=future, command=PROBE_COMMAND)
        self._probes.add(probe.number)
        self._send_now(probe)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Nobody awaits a probe: a failure must not be logged as never retrieved."""
    if not future.cancelled():
        future.exception()
