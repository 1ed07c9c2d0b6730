"""The virtual Marlin's serial side and machine model, fed bytes by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from printforge.gcode.timing import trapezoid_time
from printforge.hardware.marlin.protocol import frame
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.firmware import VirtualMarlin
from printforge.hardware.virtual.machine import Heater, VirtualMachine
from printforge.models.printer import PrinterProfile

PROFILE = PrinterProfile(name="test")


class Board:
    def __init__(self, **options: object) -> None:
        options.setdefault("baud", 2_000_000)
        options.setdefault("sim_speed", 1e6)
        self.cfg = VirtualConfig.model_validate(options)
        self.out = bytearray()
        self.machine = VirtualMachine(
            PROFILE, sim_speed=self.cfg.sim_speed or 1.0, move_time_s=self.cfg.move_time_s
        )
        self.fw = VirtualMarlin(self.machine, self.cfg, self.out.extend)

    @property
    def lines(self) -> list[str]:
        return self.out.decode().splitlines()

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            # The firmware's counters have no event to wait on; a short poll is enough here.
            while not check():  # noqa: ASYNC110
                await asyncio.sleep(0.005)


@pytest.mark.asyncio
async def test_numbered_lines_run_and_get_ok() -> None:
    board = Board(advanced_ok=True)
    board.fw.start()
    try:
        board.fw.feed(frame(0, "M110 N0") + frame(1, "G1 X5 F600") + frame(2, "M105"))
        await board.until(lambda: any(ln.startswith("ok T:") for ln in board.lines))
        # MarlinCore.cpp setup()'s banner, then one `ok` per command as it runs.
        assert board.lines == [
            "start",
            "Marlin 2.1.2.4",
            "echo: Last Updated: 2024-05-19 | Author: (printforge virtual)",
            "echo: Free Memory: 4096  PlannerBufferBytes: 704",
            "ok N0 P15 B3",  # P: BLOCK_BUFFER_SIZE - 1 moves free on an empty planner
            "ok N1 P14 B3",  # the move is in the planner
            "ok T:22.00 /0.00 B:22.00 /0.00 @:0 B@:0",  # M105's own: never the fields
        ]
        assert [(m.line, m.command) for m in board.machine.moves] == [(1, "G1 X5 F600")]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_advanced_ok_names_the_acknowledged_line_and_counts_it_in_b() -> None:
    """queue.cpp `ok_to_send`: N is the executed command's own number; B = BUFSIZE - length
    while it is still in the ring. The lines behind a dwell are read meanwhile."""
    board = Board(advanced_ok=True, sim_speed=1.0)
    board.fw.start()
    try:
        board.fw.feed(frame(1, "G4 P300") + frame(2, "G1 X1") + frame(3, "G1 X2"))
        await board.until(lambda: sum(ln.startswith("ok") for ln in board.lines) == 3)
        assert [ln for ln in board.lines if ln.startswith("ok")] == [
            "ok N1 P15 B1",  # the dwell's: lines 2 and 3 were already queued behind it
            "ok N2 P14 B2",
            "ok N3 P13 B3",
        ]
        board.fw.feed(b"G1 X3\n")
        await board.until(lambda: board.lines[-1].startswith("ok P"))
        assert board.lines[-1] == "ok P12 B3"  # an unnumbered command: no N
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("drop", [True, False], ids=["bugfix-2.1.x", "before-PR-24972"])
async def test_a_copy_of_the_last_line_is_dropped_without_an_answer(drop: bool) -> None:
    board = Board(drop_duplicate_lines=drop)
    board.fw.start()
    try:
        board.fw.feed(frame(1, "G1 X1") + frame(2, "G1 X2"))
        await board.until(lambda: board.lines.count("ok") == 2)
        board.fw.feed(frame(2, "G1 X2") + frame(1, "G1 X1") + frame(3, "G1 X3"))
        await board.until(lambda: len(board.machine.moves) == 3)
        await board.until(lambda: board.lines[-1] == "ok")
        assert [m.line for m in board.machine.moves] == [1, 2, 3]
        answers = [ln for ln in board.lines if ln.startswith(("ok", "Resend", "Error"))]
        if drop:
            # Marlin since 2022: "a request-for-resend line was already in transit so we got
            # two - oops!": N = last_N or last_N - 1 is ignored, with no answer at all.
            assert answers == ["ok", "ok", "ok"]
            assert board.fw.stats.duplicates_dropped == 2
        else:
            error = "Error:Line Number is not Last Line Number+1, Last Line: 2"
            assert answers == ["ok", "ok", error, "Resend: 3", "ok", error, "Resend: 3", "ok", "ok"]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_a_numbered_m110_sets_the_line_again_when_it_runs() -> None:
    board = Board()
    board.fw.start()
    try:
        board.fw.feed(frame(7, "M110 N41") + frame(42, "G1 X1") + b"M110\n")
        await board.until(lambda: "Line: 42" in board.lines)
        assert board.lines[-4:] == ["ok", "ok", "Line: 42", "ok"]
        assert [m.line for m in board.machine.moves] == [42]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("first", [b"n", b"O"])
async def test_a_line_whose_n_was_corrupted_runs_as_an_unknown_command(first: bytes) -> None:
    # Queued unchecked (no `N` first), then GCodeParser::parse of a stock build (no
    # GCODE_CASE_INSENSITIVE) finds no G, M or T: an unknown command with its `ok`, no move.
    board = Board()
    board.fw.start()
    try:
        board.fw.feed(first + frame(1, "G1 X5")[1:])
        await board.until(lambda: "ok" in board.lines)
        text = (first + b"1 G1 X5").decode()
        assert board.lines[-2:] == [f'echo:Unknown command: "{text}"', "ok"]
        assert board.machine.moves == []
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_an_unnumbered_line_runs_unchecked() -> None:
    # 2.1.x queues a line without N as it is, checksum or not (1.x refused it).
    board = Board()
    board.fw.start()
    try:
        board.fw.feed(b"G1 X5*12\n")
        await board.until(lambda: "ok" in board.lines)
        assert [m.command for m in board.machine.moves] == ["G1 X5"]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"N1 G1 X5*0\n", "Error:checksum mismatch, Last Line: 0"),
        (b"N1 G1 X5\n", "Error:No Checksum with line number, Last Line: 0"),
        (frame(2, "G1 X5"), "Error:Line Number is not Last Line Number+1, Last Line: 0"),
    ],
)
async def test_bad_lines_get_error_resend_ok(wire: bytes, error: str) -> None:
    board = Board()
    board.fw.start()
    try:
        board.fw.feed(wire)
        await board.until(lambda: "ok" in board.lines)
        assert board.lines[-3:] == [error, "Resend: 1", "ok"]
        assert board.machine.moves == []
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_a_full_ring_drops_bytes_and_the_line_is_asked_again() -> None:
    # Moves that take a while keep all four slots busy; a host that ignores the window
    # overruns the 128-byte ring.
    board = Board(sim_speed=1.0, move_time_s=0.05)
    board.fw.start()
    try:
        burst = b"".join(frame(n, f"G1 X{n}.000 Y{n}.000 F3000") for n in range(1, 40))
        board.fw.feed(burst)
        await board.until(lambda: board.fw.stats.bytes_dropped > 0, timeout=10)
        await board.until(lambda: not board.fw.slots, timeout=10)
        # The next line lands on the cut-off remains: the firmware asks for the lost line.
        board.fw.feed(frame(40, "G1 X40"))
        await board.until(lambda: any(ln.startswith("Resend:") for ln in board.lines), 10)
        wanted = int(next(ln for ln in board.lines if ln.startswith("Resend:")).split()[1])
        assert wanted == len(board.machine.moves) + 1
        numbers = [m.line for m in board.machine.moves]
        assert numbers == list(range(1, len(numbers) + 1))  # in order, nothing skipped
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_m112_acts_on_arrival() -> None:
    board = Board(sim_speed=1.0, move_time_s=10.0)
    board.fw.start()
    try:
        board.fw.feed(b"".join(frame(n, f"G1 X{n}") for n in range(1, 20)) + b"M112\n")
        await board.until(lambda: "//action:poweroff" in board.lines)
        assert board.machine.halted is not None
        assert board.lines[-3:] == [
            "echo:M112 Shutdown",
            "Error:Printer halted. kill() called!",
            "//action:poweroff",
        ]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_thermal_runaway_and_busy() -> None:
    board = Board(sim_speed=1.0, move_time_s=0.2, busy_interval_s=0.03, thermal_runaway_at_line=4)
    board.fw.start()
    try:
        # M400 waits for the 0.2 s move: a long command, so the firmware says it is busy.
        commands = ["G1 X1", "M400", "G1 X3", "G1 X4", "G1 X5"]
        board.fw.feed(b"".join(frame(n, c) for n, c in enumerate(commands, start=1)))
        await board.until(lambda: "//action:poweroff" in board.lines, timeout=10)
        assert "echo:busy: processing" in board.lines
        # Temperature::_temp_error, then loud_kill -> kill().
        assert board.lines[-4:] == [
            "Error:Thermal Runaway, system stopped! Heater_ID: E0",
            "echo:THERMAL RUNAWAY",
            "Error:Printer halted. kill() called!",
            "//action:poweroff",
        ]
        assert [m.line for m in board.machine.moves] == [1, 3]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_heating_waits_in_simulated_time() -> None:
    machine = VirtualMachine(PROFILE, sim_speed=1000.0)
    at = machine.loop.time()
    done, _ = machine.execute_at("M109 S210", None, at)
    # From 22 °C to within 1 °C of 210 °C with a 20 s time constant: 20 * ln(188) s.
    assert (done - at) * 1000.0 == pytest.approx(20 * 5.236, rel=0.01)
    report = machine.temperature_report(done)
    assert report.startswith(" T:209.") and "/210.00" in report


def test_heater_first_order() -> None:
    heater = Heater(tau_s=10.0)
    heater.set_target(200.0, 0.0)
    assert heater.actual(10.0) == pytest.approx(200 + (22 - 200) * 0.36788, rel=1e-3)
    heater.set_target(0.0, 10.0)
    assert heater.actual(1e6) == pytest.approx(22.0)


@pytest.mark.asyncio
async def test_a_move_takes_the_estimators_time() -> None:
    # One G1 from rest: the trapezoid of the one print-time estimator, entering and leaving at
    # the jerk-limited safe speed. A second move in the same direction makes the junction
    # full speed, so the first block ends sooner while it is still running.
    machine = VirtualMachine(PROFILE, sim_speed=1.0)
    at = machine.loop.time()
    machine.execute_at("G1 X100 F3000", 1, at)
    safe = min(50.0, PROFILE.max_jerk)
    alone = trapezoid_time(100.0, 50.0, PROFILE.max_acceleration, safe**2, safe**2)
    assert machine.planner.last_finish - at == pytest.approx(alone)
    machine.execute_at("G1 X200", 2, at)
    first = trapezoid_time(100.0, 50.0, PROFILE.max_acceleration, safe**2, 50.0**2)
    assert machine.planner.finish[0] - at == pytest.approx(first)
    assert first < alone


@pytest.mark.asyncio
async def test_planner_holds_sixteen_blocks() -> None:
    machine = VirtualMachine(PROFILE, sim_speed=1.0, move_time_s=1.0)
    at = machine.loop.time()
    accepted = [machine.execute_at(f"G1 X{i}", i, at)[0] for i in range(1, 19)]
    assert accepted[:16] == [at] * 16  # the planner takes 16 at once
    assert accepted[16] == pytest.approx(at + 1.0)  # the 17th waits for the first to finish
    assert accepted[17] == pytest.approx(at + 2.0)


def test_a_failed_heater_drifts_to_room_temperature_with_its_target_kept() -> None:
    heater = Heater(tau_s=20.0)
    heater.set_target(210.0, 0.0)
    at_target = heater.actual(300.0)
    heater.fail(300.0)
    assert heater.actual(300.0) == pytest.approx(at_target)
    assert heater.actual(320.0) == pytest.approx(22 + (at_target - 22) * 0.36788, rel=1e-3)
    assert heater.target_c == 210.0
    assert heater.time_to_reach(320.0) == float("inf")  # M109 would wait for ever
    heater.set_target(0.0, 400.0)
    assert heater.time_to_reach(1e6) == 0.0  # cooling to room temperature still ends


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"failing_heater": "chamber"}, "failing_heater"),
        ({"failing_heater": "hotend1"}, "needs extruders > 1"),
    ],
)
def test_failing_heater_must_exist(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VirtualConfig.model_validate(options)
    assert VirtualConfig(failing_heater="hotend1", extruders=2).failing_heater == "hotend1"


@pytest.mark.asyncio
async def test_a_dead_heater_waits_for_ever_printing_temperatures_until_m112() -> None:
    # No autoreport asked for: Marlin still prints the temperatures while M109 waits.
    board = Board(sim_speed=50.0, heater_fails_at_line=1)
    board.fw.start()
    try:
        moves = [frame(n, f"G1 X{n}") for n in range(3, 9)]  # beyond the four slots
        board.fw.feed(frame(1, "M104 S210") + frame(2, "M109 S210") + b"".join(moves))
        await board.until(lambda: sum(ln.startswith(" T:") for ln in board.lines) >= 2)
        assert all(ln.startswith(" T:22.00 /210.00") for ln in board.lines if ln.startswith(" T"))
        await board.until(lambda: len(board.fw.slots) == 4)
        assert board.machine.moves == []  # still waiting, every slot taken
        board.fw.feed(b"M112\n")
        await board.until(lambda: board.machine.halted is not None)
        assert board.fw.stats.emergency_stops == 1
        assert "Error:Printer halted. kill() called!" in board.lines
        assert not any("Thermal Runaway" in ln for ln in board.lines)  # no protection built in
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("numbered", [True, False], ids=["numbered", "bare"])
async def test_m108_ends_the_running_heating_wait_on_arrival(numbered: bool) -> None:
    # A real-time board: M109 from 22 to 210 °C would take about 105 s.
    board = Board(sim_speed=1.0)
    board.fw.start()
    try:
        moves = [frame(n, f"G1 X{n}") for n in range(3, 9)]  # beyond the four slots
        board.fw.feed(frame(1, "M104 S210") + frame(2, "M109 S210") + b"".join(moves))
        await board.until(lambda: len(board.fw.slots) == 4)
        assert board.machine.moves == []  # waiting, every slot taken, the ring filling
        # The emergency parser reads the line in pieces, as a serial port may deliver it.
        line = frame(9, "M108") if numbered else b"M108\n"
        board.fw.feed(line[:3])
        board.fw.feed(line[3:])
        await board.until(lambda: [m.line for m in board.machine.moves] == list(range(3, 9)))
        assert board.fw.stats.waits_broken == 1
        assert board.machine.halted is None  # the firmware goes on
        assert board.machine.hotends[0].target_c == 210  # M108 ends the wait, not the heating
        assert board.machine.hotends[0].actual(board.machine.now()) < 150
        # The line also reaches the queue, where it does nothing but earn its `ok`.
        await board.until(lambda: [c.command for c in board.machine.history][-1:] == ["M108"])
        assert [c.command for c in board.machine.history][:2] == ["M104 S210", "M109 S210"]
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_m108_with_no_wait_running_is_forgotten() -> None:
    board = Board(sim_speed=1.0)
    board.fw.start()
    try:
        board.fw.feed(b"M108\n")
        await board.until(lambda: [c.command for c in board.machine.history] == ["M108"])
        board.fw.feed(frame(1, "M104 S210") + frame(2, "M109 S210"))
        await board.until(lambda: len(board.machine.history) == 3)
        assert board.fw.stats.waits_broken == 0
        assert board.lines[-1] == "ok"  # M104's; M109 still waits
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_without_the_emergency_parser_m108_and_m112_wait_their_turn() -> None:
    board = Board(sim_speed=1.0, emergency_parser=False)
    board.fw.start()
    try:
        board.fw.feed(frame(1, "M115"))
        await board.until(lambda: "Cap:EMERGENCY_PARSER:0" in board.lines)
        board.fw.feed(frame(2, "M104 S210") + frame(3, "M109 S210") + b"M108\nM112\n")
        # M109 runs; M108 and M112 are queued behind it, read only when it is done.
        await board.until(lambda: [c for _n, c in board.fw.slots] == ["M109 S210", "M108", "M112"])
        assert board.fw.stats.waits_broken == 0 and board.machine.halted is None
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_m115_reports_the_emergency_parser() -> None:
    board = Board()
    board.fw.start()
    try:
        board.fw.feed(frame(1, "M115"))
        await board.until(lambda: "Cap:EMERGENCY_PARSER:1" in board.lines)
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("command", "report"),
    [
        ("M104 S999", "T:22.00 /280.00"),  # Marlin: min(S, HEATER_0_MAXTEMP - HOTEND_OVERSHOOT)
        ("M104 S215", "T:22.00 /215.00"),
        ("M140 S200", "B:22.00 /110.00"),  # and min(S, BED_MAXTEMP - BED_OVERSHOOT)
        ("M104 S-5", "T:22.00 /0.00"),
    ],
)
async def test_targets_are_clamped_to_the_firmware_maximum(command: str, report: str) -> None:
    # The profile's limits stand for the firmware's highest target: a real board clamps an
    # M104 S999 silently instead of heating to 999 °C.
    machine = VirtualMachine(PROFILE, sim_speed=1000.0)
    at = machine.loop.time()
    machine.execute_at(command, None, at)
    assert report in machine.temperature_report(at)


@pytest.mark.asyncio
async def test_m109_beyond_the_maximum_waits_for_the_clamped_target() -> None:
    machine = VirtualMachine(PROFILE, sim_speed=1000.0)
    at = machine.loop.time()
    done, _ = machine.execute_at("M109 S999", None, at)
    assert (done - at) * 1000.0 == pytest.approx(20 * 5.549, rel=0.01)  # 20 * ln(258)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["M108", "button", "user_wait_s"])
async def test_m600_pauses_by_itself_and_says_so(how: str) -> None:
    """feature/pause.cpp: `//action:paused`, park, wait for the user (`busy: paused for user`),
    load, `//action:resumed`, then M600's `ok`; the lines behind it wait."""
    board = Board(
        sim_speed=20.0,
        busy_interval_s=0.01,
        user_wait_s=4.0 if how == "user_wait_s" else None,
    )
    board.fw.start()
    try:
        board.fw.feed(frame(1, "G1 X1") + frame(2, "M600") + frame(3, "G1 X3"))
        await board.until(lambda: "echo:busy: paused for user" in board.lines)
        assert board.lines.count("ok") == 1 and [m.line for m in board.machine.moves] == [1]
        if how == "M108":
            board.fw.feed(b"M108\n")
        elif how == "button":
            board.fw.press_button()
        await board.until(lambda: [m.line for m in board.machine.moves] == [1, 3])
        await board.until(lambda: board.lines.count("ok") >= 3)
        said = [ln for ln in board.lines[4:] if not ln.startswith("echo:busy")]
        assert said[:5] == [
            "ok",
            "//action:paused",
            "echo:Insert filament and send M108",
            "//action:resumed",
            "ok",
        ]
        assert "echo:busy: processing" in board.lines  # parking and loading: in the handler
        assert board.fw.stats.user_waits == 1
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_m0_waits_for_the_user_with_its_message() -> None:
    board = Board(sim_speed=1.0, busy_interval_s=0.01, user_wait_s=None)
    board.fw.start()
    try:
        board.fw.feed(frame(1, "M0 Remove the part") + frame(2, "G1 X2"))
        await board.until(lambda: "echo:busy: paused for user" in board.lines)
        assert "echo:Remove the part" in board.lines and board.machine.moves == []
        board.fw.feed(frame(3, "M108"))  # the emergency parser ends the wait
        await board.until(lambda: [m.line for m in board.machine.moves] == [2])
        assert board.fw.stats.waits_broken == 0  # a wait for the user, not for a heater
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_m0_without_the_emergency_parser_is_not_built() -> None:
    # HAS_RESUME_CONTINUE needs EMERGENCY_PARSER or an LCD: without, M0 is unknown.
    board = Board(emergency_parser=False)
    board.fw.start()
    try:
        board.fw.feed(frame(1, "M0"))
        await board.until(lambda: "ok" in board.lines)
        assert 'echo:Unknown command: "M0"' in board.lines
    finally:
        await board.fw.stop()


@pytest.mark.asyncio
async def test_several_hotends_report_as_marlin_prints_them() -> None:
    machine = VirtualMachine(PROFILE, sim_speed=1000.0, extruders=2)
    at = machine.loop.time()
    machine.execute_at("M104 T1 S200", None, at)
    assert machine.temperature_report(at) == (
        " T:22.00 /0.00 B:22.00 /0.00 T0:22.00 /0.00 T1:22.00 /200.00 @:0 B@:0 @0:0 @1:127"
    )


@pytest.mark.asyncio
async def test_stop_ends_the_board_when_host_bytes_arrive_in_the_same_turn() -> None:
    """On a loaded machine the host's last bytes (after its M112 for an over-temperature
    fault) could wake the firmware's wait in the same loop turn as `stop()` cancelled it.
    Python 3.11's `asyncio.wait_for` then returned the wait's result and dropped the
    cancellation: the halted board waited on forever, and so did the teardown of the
    `served` fixture in tests/integration/test_marlin_serial.py."""
    board = Board(sim_speed=1.0)
    board.fw.start()
    run = board.fw._tasks[0]
    try:
        # Auto-report: the firmware waits for host bytes under a finite timeout.
        board.fw.feed(b"M155 S1\n")
        await board.until(lambda: "ok" in board.lines)
        board.fw.feed(b"M105\n")  # wakes the wait ...
        stopping = asyncio.ensure_future(board.fw.stop())  # ... in the turn stop() cancels
        done, _ = await asyncio.wait([stopping, run], timeout=10)
        assert run in done, "the firmware's task ran on after stop() cancelled it"
        assert stopping in done
    finally:
        board.fw.gone = True  # ends a task that survived, so a failure leaves nothing behind
        board.fw._data.set()
