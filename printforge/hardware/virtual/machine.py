"""The simulated machine behind every virtual printer: planner, heaters and an executed-move log.

One model serves the in-process virtual driver and the pty virtual Marlin, so mock mode and the
serial tests exercise the same physics. Time is the event loop's clock divided by `sim_speed`.

The planner is modelled lazily: each block gets a finish time when it is queued (after the
previous block, or now if the planner ran dry), and `queue_move` only sleeps while all
`planner_blocks` are still pending. That is exact for a FIFO planner and needs no runner task.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from printforge.gcode.reader import Reader
from printforge.gcode.syntax import Line, parse_line
from printforge.gcode.timing import OnlinePlanner
from printforge.models.printer import PrinterProfile

__all__ = ["ExecutedMove", "Heater", "MachineHalted", "VirtualMachine", "words"]

# First-order heater time constants (s) and ambient, chosen so that heating a hotend to 210 °C
# takes about two minutes and a bed to 60 °C about two and a half, like a stock bed-slinger.
HOTEND_TAU_S = 20.0
BED_TAU_S = 40.0
AMBIENT_C = 22.0
TEMP_WINDOW_C = 1.0  # M109/M190 return once within this of the target
HOMING_S = 4.0
HISTORY_COMMANDS = 1000  # the most recent commands kept in `history`


class MachineHalted(Exception):
    """The firmware stopped itself; the message is the `Error:` line it prints."""


@dataclass(slots=True)
class ExecutedMove:
    """One G0/G1 as the planner took it (or, in `history`, any command the queue ran)."""

    line: int | None
    command: str


@dataclass(slots=True)
class Heater:
    """First-order lag towards the target: T(t) = target + (T0 - target) * exp(-t / tau)."""

    tau_s: float
    start_c: float = AMBIENT_C
    target_c: float = 0.0
    since: float = 0.0  # simulated seconds
    failed: bool = False  # no heat reaches the sensor any more: it drifts to room temperature

    def actual(self, now: float) -> float:
        goal = self.target_c if self.target_c > 0 and not self.failed else AMBIENT_C
        return goal + (self.start_c - goal) * math.exp(-(now - self.since) / self.tau_s)

    def fail(self, now: float) -> None:
        """The cartridge slipped out or the thermistor fell off; the target stays as it was."""
        self.start_c = self.actual(now)
        self.since = now
        self.failed = True

    max_target_c: float = math.inf  # Marlin's HEATER_n_MAXTEMP - HOTEND_OVERSHOOT (bed: BED_)

    def set_target(self, target: float, now: float) -> None:
        self.start_c = self.actual(now)
        self.since = now
        # Marlin's setTargetHotend/setTargetBed clamp silently to the highest allowed target.
        self.target_c = min(max(0.0, target), self.max_target_c)

    def power(self, now: float) -> int:
        """`getHeaterPower` as soft PWM 0..127: full while heating, half to hold the target."""
        if self.target_c <= 0:
            return 0
        return 127 if self.actual(now) < self.target_c - TEMP_WINDOW_C else 64

    def time_to_reach(self, now: float) -> float:
        """Simulated seconds until within TEMP_WINDOW_C of the target (0 when already there)."""
        goal = self.target_c if self.target_c > 0 else AMBIENT_C
        gap = abs(self.actual(now) - goal)
        if gap <= TEMP_WINDOW_C:
            return 0.0
        if self.failed:
            return math.inf  # M109 on a dead heater waits for ever, as Marlin would
        return self.tau_s * math.log(gap / TEMP_WINDOW_C)


def words(command: str) -> dict[str, float]:
    """The numeric parameters of a command (`G1 X10 F600` -> {"X": 10.0, "F": 600.0})."""
    line = parse_line(command)
    if line is None:
        return {}
    return {k: v for k, v in line.words.items() if v is not None}


@dataclass
class _Planner:
    capacity: int
    finish: deque[float] = field(default_factory=deque)  # loop times of pending blocks
    last_finish: float = 0.0
    idle_gap_s: float = 0.0  # loop seconds the planner stood empty between moves
    moves: int = 0


class VirtualMachine:
    """Executes G-code commands with simulated timing. One instance is one printer's mechanics."""

    def __init__(
        self,
        profile: PrinterProfile,
        *,
        sim_speed: float = 1.0,
        extruders: int = 1,
        move_time_s: float | None = None,
        true_limits: PrinterProfile | None = None,
        speed_factor: float = 1.0,
    ) -> None:
        """Args:
        true_limits: the limits the motion really has, when not the profile's (see
            `VirtualConfig.true_machine`); the reader's modal state still uses `profile`.
        speed_factor: every requested feedrate times this (M220).
        """
        self.profile = profile
        self.sim_speed = sim_speed
        # A fixed time per move (planner-bound benchmarks) instead of the kinematic estimate.
        self.move_time_s = move_time_s
        self.loop = asyncio.get_running_loop()
        self._t0 = self.loop.time()
        # The profile's limits stand for the firmware's highest target (MAXTEMP - OVERSHOOT).
        self.hotends = [
            Heater(HOTEND_TAU_S, max_target_c=profile.max_hotend_temp) for _ in range(extruders)
        ]
        self.bed = Heater(BED_TAU_S, max_target_c=profile.max_bed_temp)
        self.active_tool = 0
        # The firmware's own view of the G-code: modes, offsets, position. The board boots
        # at the origin, absolute, in millimetres, as `MachineState.power_on` says.
        self.reader = Reader(profile)
        self.timing = OnlinePlanner(true_limits or profile)
        self.speed_factor = speed_factor
        self.fan = 0
        self.planner = _Planner(profile.planner_blocks)
        self.moves: list[ExecutedMove] = []  # the executed-move log the tests read
        # None: keep every move. A long-lived owner (a server's mock printers) sets a bound:
        # kept for ever, the log grew ~50 KB per finished job (300 MiB after 4,000 jobs).
        self.moves_limit: int | None = None
        # Every command the queue ran (moves too), newest last: the order of a safe stop.
        self.history: deque[ExecutedMove] = deque(maxlen=HISTORY_COMMANDS)
        self.commands = 0
        self.halted: str | None = None
        # Plastic laid: moves that extruded while the nozzle travelled in X or Y, counted, and
        # the machine Z of the latest. A retract's undo or a purge in place lays nothing on
        # the part, and a Z-hop or a park extrudes nothing, so this Z is the part's top layer
        # (a camera reads it: hardware/camera/follow.py).
        self.laid_moves = 0
        self.laid_z: float | None = None

    # time ----------------------------------------------------------------------------------
    def now(self) -> float:
        """Simulated seconds since power-on."""
        return (self.loop.time() - self._t0) * self.sim_speed

    # planner -------------------------------------------------------------------------------
    def planner_free(self) -> int:
        self._prune()
        return self.planner.capacity - len(self.planner.finish)

    def _prune(self) -> None:
        now = self.loop.time()
        fin = self.planner.finish
        while fin and fin[0] <= now:
            fin.popleft()

    def _queue_block_at(self, sim_seconds: float, at: float) -> float:
        """Queue one block at loop time `at`; returns when the planner accepted it."""
        p = self.planner
        fin = p.finish
        while fin and fin[0] <= at:
            fin.popleft()
        if len(fin) >= p.capacity:
            at = fin[0]  # the firmware waits in buffer_line until the oldest block is done
            while fin and fin[0] <= at:
                fin.popleft()
        start = max(at, p.last_finish)
        if not fin and p.moves:
            p.idle_gap_s += max(0.0, at - p.last_finish)
        p.last_finish = start + sim_seconds / self.sim_speed
        fin.append(p.last_finish)
        p.moves += 1
        return at

    def planner_free_at(self, at: float) -> int:
        return self.planner.capacity - sum(1 for f in self.planner.finish if f > at)

    def drained_at(self, at: float) -> float:
        """When every queued block is done, seen from loop time `at`."""
        return max(at, self.planner.last_finish)

    async def synchronize(self) -> None:
        """Wait until the planner has finished every queued block (Marlin's planner.synchronize)."""
        delay = self.planner.last_finish - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._prune()

    @property
    def planner_idle_s(self) -> float:
        """Loop seconds the planner stood empty between moves: the 'ran dry' measure."""
        return self.planner.idle_gap_s

    # temperatures --------------------------------------------------------------------------
    def temperatures(self, at: float | None = None) -> dict[str, tuple[float, float]]:
        now = self.now() if at is None else (at - self._t0) * self.sim_speed
        out: dict[str, tuple[float, float]] = {}
        for i, h in enumerate(self.hotends):
            key = "hotend" if len(self.hotends) == 1 else f"hotend{i}"
            out[key] = (h.actual(now), h.target_c)
        out["bed"] = (self.bed.actual(now), self.bed.target_c)
        return out

    def temperature_report(self, at: float | None = None) -> str:
        """Marlin's `print_heater_states` (module/temperature.cpp), leading space included:
        ` T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0`; with several hotends T is the active
        one, then every hotend as Tn, then the powers `@:`, `B@:`, `@n:`."""
        now = self.now() if at is None else (at - self._t0) * self.sim_speed
        tool = self.hotends[self.active_tool]
        multi = len(self.hotends) > 1
        parts = [f" T:{tool.actual(now):.2f} /{tool.target_c:.2f}"]
        parts.append(f" B:{self.bed.actual(now):.2f} /{self.bed.target_c:.2f}")
        if multi:
            parts += [
                f" T{i}:{h.actual(now):.2f} /{h.target_c:.2f}" for i, h in enumerate(self.hotends)
            ]
        parts.append(f" @:{tool.power(now)} B@:{self.bed.power(now)}")
        if multi:
            parts += [f" @{i}:{h.power(now)}" for i, h in enumerate(self.hotends)]
        return "".join(parts)

    @property
    def pos(self) -> dict[str, float]:
        """The logical position as M114 reports it (G92 offsets applied)."""
        return dict(zip("XYZE", self.reader.state.pos, strict=True))

    def position_report(self) -> str:
        p = self.pos
        return f"X:{p['X']:.2f} Y:{p['Y']:.2f} Z:{p['Z']:.2f} E:{p['E']:.2f} Count X:0 Y:0 Z:0"

    def fail_heater(self, name: str, at: float | None = None) -> None:
        """`name` ("hotend", "hotend1", "bed") stops heating from loop time `at` (default now)."""
        heater = self.bed if name == "bed" else self.hotends[int(name[6:] or 0)]
        heater.fail(self.now() if at is None else (at - self._t0) * self.sim_speed)

    def _heater(self, w: dict[str, float]) -> Heater:
        index = int(w.get("T", self.active_tool))
        if not 0 <= index < len(self.hotends):
            raise ValueError(f"Invalid extruder {index}")
        return self.hotends[index]

    # execution -----------------------------------------------------------------------------
    def halt(self, message: str) -> MachineHalted:
        """Stop everything as Marlin's kill() does: heaters off, planner dropped."""
        self.halted = message
        now = self.now()
        for h in [*self.hotends, self.bed]:
            h.set_target(0, now)
        self.planner.finish.clear()
        self.planner.last_finish = self.loop.time()
        return MachineHalted(message)

    async def execute(self, command: str, line: int | None = None) -> list[str]:
        """Run one command now and wait as long as the firmware would before its `ok`."""
        done_at, replies = self.execute_at(command, line, self.loop.time())
        delay = done_at - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return replies

    def execute_at(self, command: str, line: int | None, at: float) -> tuple[float, list[str]]:
        """Run one command (without line number and checksum) starting at loop time `at`.

        Returns when Marlin would send its `ok` and the lines it prints before it. Moves are
        done once the planner took them; waits (M109, M190, G4, M400, G28) once finished.
        """
        if self.halted:
            raise MachineHalted(self.halted)
        self.commands += 1
        cmd = command.strip()
        self.history.append(ExecutedMove(line, cmd))
        parsed = parse_line(cmd)
        code = parsed.code if parsed is not None else ""
        w = {k: v for k, v in parsed.words.items() if v is not None} if parsed is not None else {}
        sim_at = (at - self._t0) * self.sim_speed
        if parsed is not None and code in _MOVES:
            return self._move(parsed, line, at), []
        if code == "G4":
            self.timing.reset()  # the planner empties before a dwell
            dwell = w.get("S", 0.0) + w.get("P", 0.0) / 1000.0
            return self.drained_at(at) + dwell / self.sim_speed, []
        if parsed is not None and code in _STATE:
            self.reader.step(parsed)
            if code == "G28":
                self.timing.reset()
                return self.drained_at(at) + HOMING_S / self.sim_speed, []
            return at, []
        replies: list[str] = []
        done = at
        if code in ("M104", "M109"):
            heater = self._heater(w)
            if "S" in w or "R" in w:
                heater.set_target(w.get("S", w.get("R", 0.0)), sim_at)
            if code == "M109":
                done = at + heater.time_to_reach(sim_at) / self.sim_speed
        elif code in ("M140", "M190"):
            if "S" in w or "R" in w:
                self.bed.set_target(w.get("S", w.get("R", 0.0)), sim_at)
            if code == "M190":
                done = at + self.bed.time_to_reach(sim_at) / self.sim_speed
        elif code == "M105":
            replies.append(self.temperature_report(at))
        elif code == "M114":
            replies.append(self.position_report())
        elif code == "M106":
            self.fan = int(w.get("S", 255))
        elif code == "M107":
            self.fan = 0
        elif code == "M400":
            done = self.drained_at(at)
        elif code.startswith("T") and code[1:].isdigit():
            index = int(code[1:])
            if index >= len(self.hotends):
                replies.append(f"echo:T{index} Invalid extruder")
            else:
                self.active_tool = index
        elif code == "M112":
            raise self.halt("Printer halted. kill() called!")
        elif parsed is not None and (parsed.extended or code[:1] not in ("G", "M", "T")):
            # Marlin reads the command word and skips what it does not know after it, so only
            # a line without one (or a Klipper command) is unknown; `M112 is fun` is M112.
            replies.append(f'echo:Unknown command: "{cmd}"')
        return done, replies

    def _move(self, parsed: Line, line: int | None, at: float) -> float:
        start = self.reader.state.machine()
        step = self.reader.step(parsed)
        seconds = 0.0
        for point in step.points:
            d = (point[0] - start[0], point[1] - start[1], point[2] - start[2], point[3] - start[3])
            start = point
            if d[3] > 0 and (d[0] or d[1]):
                self.laid_moves += 1
                self.laid_z = point[2]
            move_s, saved = self.timing.add(d, step.feed * self.speed_factor, step.accel)
            seconds += move_s
            self._shorten_last_block(saved)
        if self.move_time_s is not None:
            seconds = self.move_time_s
        if parsed.code in ("G0", "G1"):
            self.moves.append(ExecutedMove(line, parsed.command))
            if self.moves_limit is not None and len(self.moves) > 2 * self.moves_limit:
                # In place (the driver shares this list) and in halves, so trimming costs
                # O(1) per move on average.
                del self.moves[: len(self.moves) - self.moves_limit]
        return self._queue_block_at(seconds, at)

    def _shorten_last_block(self, saved_s: float) -> None:
        """The planner found a faster junction after the last block: it ends sooner, if it is
        still running (a finished one did stop: the planner had run dry)."""
        fin = self.planner.finish
        if saved_s <= 0 or not fin or self.move_time_s is not None:
            return
        now = self.loop.time()
        if fin[-1] > now:
            fin[-1] = max(now, fin[-1] - saved_s / self.sim_speed)
            self.planner.last_finish = fin[-1]


# Commands that move, and those whose only effect is on the reader's modal state.
_MOVES = frozenset({"G0", "G1", "G2", "G3", "G5"})
_STATE = frozenset(
    {"G17", "G18", "G19", "G20", "G21", "G28", "G90", "G91", "G92", "M82", "M83", "M204"}
)
