"""The in-process virtual driver: it runs G-code on the simulated machine and reports progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from printforge.hardware.base import load_driver
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus
from printforge.runtime.errors import InputError, PrinterDisconnected, PrinterFault
from tests.fakes.vmarlin import (
    cube_gcode,
    heated_print_gcode,
    numbered_moves_gcode,
    write_gcode,
)

PROFILE = PrinterProfile(name="generic-220")


def _driver(**options: object) -> VirtualDriver:
    options.setdefault("sim_speed", 5000.0)
    return VirtualDriver("v1", VirtualConfig.model_validate(options), PROFILE)


async def _status_until(drv: VirtualDriver, check: Callable[[PrinterStatus], bool]) -> None:
    """Wait, listening to the driver, until its status passes `check`."""
    changed = asyncio.Event()
    remove = drv.add_listener(lambda _s: changed.set())
    try:
        async with asyncio.timeout(10):
            while not check(drv.status()):
                changed.clear()
                await changed.wait()
    finally:
        remove()


def _moves_in(text: str) -> list[str]:
    lines = [ln.split(";")[0].strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln.startswith(("G0 ", "G1 "))]


def test_registry_resolves_virtual() -> None:
    assert load_driver("virtual") is VirtualDriver


def test_config_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError, match="colour"):
        VirtualConfig.model_validate({"colour": "red"})


@pytest.mark.asyncio
async def test_cube_prints_every_move_once_in_order(tmp_path: Path) -> None:
    text = cube_gcode(size=4.0, layer=0.4)
    path = write_gcode(tmp_path, text)
    states: list[PrinterState] = []
    async with _driver() as drv:
        drv.add_listener(lambda s: states.append(s.state))
        events = [p async for p in drv.stream(path, job_id="j1")]
        assert drv.machine is not None
        executed = [m.command for m in drv.machine.moves]
        status = drv.status()
    assert executed == _moves_in(text)
    last = events[-1]
    assert last.lines_acked == last.lines_total > 0
    assert last.bytes_acked == last.bytes_total
    assert last.eta_s == 0
    assert last.layer == last.layers_total == 10
    assert PrinterState.PRINTING in states
    assert status.temperatures["hotend"].target == 0  # the file's own end G-code
    assert status.state is PrinterState.IDLE


@pytest.mark.asyncio
async def test_disconnect_reports_last_acked_line(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, numbered_moves_gcode(50))
    async with _driver(disconnect_at_line=20) as drv:
        with pytest.raises(PrinterDisconnected) as info:
            async for _ in drv.stream(path):
                pass
        assert info.value.last_acked_line == 19
        assert drv.status().state is PrinterState.OFFLINE
        # The file's first two commands are not moves: line 19 is the 17th move.
        assert [m.command for m in drv.moves] == _moves_in(numbered_moves_gcode(17))


@pytest.mark.asyncio
async def test_a_board_that_comes_back_prints_again(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, numbered_moves_gcode(50))
    async with _driver(disconnect_at_line=20, reconnect_after_s=0.5) as drv:
        with pytest.raises(PrinterDisconnected):
            async for _ in drv.stream(path):
                pass
        await asyncio.wait_for(drv.connected.wait(), 10)
        assert drv.status().state is PrinterState.IDLE
        before = len(drv.moves)
        events = [p async for p in drv.stream(path)]
        assert events[-1].lines_acked == events[-1].lines_total
        assert [m.command for m in drv.moves[before:]] == _moves_in(numbered_moves_gcode(50))


@pytest.mark.asyncio
async def test_thermal_runaway_faults_the_printer(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, numbered_moves_gcode(50))
    async with _driver(thermal_runaway_at_line=10) as drv:
        with pytest.raises(PrinterFault, match="Thermal Runaway"):
            async for _ in drv.stream(path):
                pass
        assert drv.status().state is PrinterState.FAULTED
        with pytest.raises(PrinterFault):
            async for _ in drv.stream(path):
                pass


@pytest.mark.asyncio
async def test_mock_mode_catches_a_dead_heater_on_the_host(tmp_path: Path) -> None:
    # At the mock mode's default speed, with the watchdog's printer-second periods scaled to it.
    text = heated_print_gcode(layers=20, moves_per_layer=50, raise_to_c=None)
    path = write_gcode(tmp_path, text)
    async with _driver(sim_speed=200.0, move_time_s=2.0, heater_fails_at_line=100) as drv:
        assert drv.cfg.thermal.runaway_period_s == pytest.approx(40.0 / 200)
        with pytest.raises(PrinterFault, match="hotend thermal runaway") as info:
            async for _ in drv.stream(path):
                pass
        assert "emergency stop (M112) sent" in str(info.value)
        assert drv.status().state is PrinterState.FAULTED
        board = drv.board
        assert board is not None
        for _ in range(1000):  # the M112 crosses the modelled wire first
            if board.stats.emergency_stops:
                break
            await asyncio.sleep(0.01)
        assert board.stats.emergency_stops == 1
    assert 100 <= len(drv.moves) < len(_moves_in(text))


@pytest.mark.asyncio
async def test_mock_mode_prints_a_heated_job_without_a_trip(tmp_path: Path) -> None:
    text = heated_print_gcode(layers=4, moves_per_layer=30)
    path = write_gcode(tmp_path, text)
    async with _driver(sim_speed=200.0) as drv:
        async for _ in drv.stream(path):
            pass
        assert drv.status().state is PrinterState.IDLE
        assert drv.thermal is not None and drv.thermal.tripped is None
    assert [m.command for m in drv.moves] == _moves_in(text)


@pytest.mark.asyncio
async def test_cancelling_the_stream_runs_the_safe_stop(tmp_path: Path) -> None:
    text = "M104 S200\nM140 S60\nM106 S255\nG1 Z1 F600\n" + numbered_moves_gcode(2000)
    path = write_gcode(tmp_path, text)
    async with _driver(sim_speed=1.0) as drv:
        started = asyncio.Event()

        async def consume() -> None:
            async for p in drv.stream(path):
                if p.lines_acked > 10:
                    started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        machine = drv.machine
        assert machine is not None
        assert machine.hotends[0].target_c == 0 and machine.bed.target_c == 0
        assert machine.fan == 0
        assert machine.pos["Z"] == pytest.approx(11.0)
        assert machine.pos["Y"] == PROFILE.bed_y
        assert drv.status().state is PrinterState.IDLE


@pytest.mark.asyncio
async def test_pause_and_resume_restore_position(tmp_path: Path) -> None:
    text = "G1 Z0.3 F600\n" + numbered_moves_gcode(600)
    path = write_gcode(tmp_path, text)
    async with _driver(sim_speed=100.0) as drv:
        paused = asyncio.Event()

        async def consume() -> None:
            async for p in drv.stream(path):
                if p.lines_acked > 20 and not paused.is_set():
                    paused.set()
                    await drv.pause()
                    machine = drv.machine
                    assert machine is not None
                    saved = drv._saved
                    assert saved is not None and machine.pos["Z"] > saved.z
                    assert drv.status().state is PrinterState.PAUSED
                    await drv.resume()
                    assert machine.pos["Z"] == pytest.approx(0.3)
                    assert (machine.pos["X"], machine.pos["Y"]) == (saved.x, saved.y)

        await asyncio.wait_for(consume(), 60)
        assert paused.is_set()
        assert drv.status().state is PrinterState.IDLE


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\x01\x02binary", "not a text"), (b"G1 X1 " + b"Y1 " * 60 + b"\n", "at most")],
)
async def test_bad_files_are_input_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gcode"
    path.write_bytes(content)
    async with _driver() as drv:
        with pytest.raises(InputError, match=message):
            async for _ in drv.stream(path):
                pass
        assert drv.status().state is PrinterState.IDLE


@pytest.mark.asyncio
async def test_without_autoreport_the_host_polls_temperatures() -> None:
    async with _driver(sim_speed=50.0, autoreport_temp=False) as drv:
        assert drv.capabilities["AUTOREPORT_TEMP"] is False
        await drv.send("M104 S100")
        await _status_until(drv, lambda s: s.temperatures["hotend"].actual >= 40)
        assert drv.status().temperatures["hotend"].target == 100


@pytest.mark.asyncio
async def test_host_action_commands_pause_and_resume(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, "G1 Z0.3 F600\n" + numbered_moves_gcode(600))
    async with _driver(sim_speed=100.0) as drv:
        states: list[PrinterState] = []
        drv.add_listener(lambda s: states.append(s.state))
        asked = False
        async for progress in drv.stream(path):
            if progress.lines_acked > 20 and not asked:
                asked = True
                drv._on_line("//action:pause")  # as if the button on the printer was pressed
                await _status_until(drv, lambda s: s.state is PrinterState.PAUSED)
                drv._on_line("//action:resume")
        assert PrinterState.PAUSED in states
        assert drv.status().state is PrinterState.IDLE


@pytest.mark.asyncio
async def test_poweroff_faults_the_printer() -> None:
    async with _driver() as drv:
        drv._on_line("//action:poweroff")  # ACTION_ON_KILL, after kill()
        assert drv.status().state is PrinterState.FAULTED
        assert "poweroff" in (drv.status().message or "")


@pytest.mark.asyncio
async def test_m600_in_mock_mode_is_the_firmwares_own_pause(tmp_path: Path) -> None:
    """The virtual board pauses itself for a filament change, as Marlin's M600 does; the host
    shows it and waits, and parks nothing of its own."""
    job = "G28\nG90\nG1 X10 Y10 F3000\nM600\nG1 X20 Y10\nG1 X30 Y10\n"
    path = write_gcode(tmp_path, job)
    async with _driver(sim_speed=50.0, user_wait_s=5.0) as drv:
        seen: list[tuple[PrinterState, str | None]] = []
        drv.add_listener(lambda s: seen.append((s.state, s.message)))
        events = [p async for p in drv.stream(path)]
        assert drv.engine is not None
        assert drv.engine.stats.watchdog_probes == 0 and events[-1].resends == 0
        assert drv.board is not None and drv.board.stats.user_waits == 1
        assert drv.machine is not None
        ran = [c.command for c in drv.machine.history]
        assert drv.status().state is PrinterState.IDLE
    assert (PrinterState.PAUSED, "paused by firmware") in seen
    assert (PrinterState.PRINTING, None) in seen[
        seen.index((PrinterState.PAUSED, "paused by firmware")) :
    ]
    assert (PrinterState.PAUSED, "busy: paused for user") not in seen  # the pause says more
    # The board ran the file's lines and nothing of the host's: no M400, no park.
    assert ran == [line for line in job.splitlines() if line != "M600"]


@pytest.mark.asyncio
async def test_a_mock_mode_job_fails_with_the_watchdogs_message(tmp_path: Path) -> None:
    # The whole pipeline (offline research, CAD, built-in slicer) onto a virtual printer whose
    # hotend dies mid-print: the job fails with the host's verdict, the printer is faulted.
    from printforge.models.job import JobState
    from printforge.models.request import PrintRequest
    from printforge.orchestrator.service import Orchestrator
    from printforge.settings import load_settings

    printer = {"driver": "virtual", "move_time_s": 5.0, "heater_fails_at_line": 400}
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "sim_speed": 1000.0,
            "printers": {"v": printer},
        }
    )
    async with Orchestrator(settings) as orch:
        job = await orch.submit(PrintRequest(text="a 20 mm calibration cube"))
        job = await orch.wait(job.id, timeout=120)
        state = orch.printers.get("v").status().state
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "printer_fault"
    assert "host thermal watchdog: hotend thermal runaway" in job.error.message
    assert "emergency stop (M112) sent" in job.error.message
    assert state is PrinterState.FAULTED


@pytest.mark.asyncio
@pytest.mark.parametrize("parser", [True, False], ids=["emergency-parser", "no-parser"])
async def test_cancel_during_m109_in_mock_mode(
    tmp_path: Path, parser: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The hotend alone: M109 to 210 °C takes 105 simulated seconds: 21 s at 5x (it would pass
    # 200 °C after 12 s), 10.5 s at 10x, where the safe stop gives up after 5 s.
    text = "M104 S210\nM109 S210\nG28\n" + numbered_moves_gcode(200)
    path = write_gcode(tmp_path, text)
    caplog.set_level(logging.INFO, logger="printforge.hardware.marlin")
    async with _driver(sim_speed=5.0 if parser else 10.0, emergency_parser=parser) as drv:
        task = asyncio.create_task(_drain(drv.stream(path)))

        def waiting() -> bool:
            running = drv.engine.oldest_in_flight() if drv.engine else None
            return running is not None and running[1] == "M109 S210"

        await _status_until(drv, lambda s: s.temperatures.get("hotend", None) is not None)
        while not waiting():
            assert not task.done()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert drv.status().state is PrinterState.IDLE
        machine, board = drv.machine, drv.board
        assert machine is not None and board is not None
        await _status_until(
            drv, lambda s: s.temperatures["hotend"].target == s.temperatures["bed"].target == 0
        )
        history = [c.command for c in machine.history]
    assert machine.hotends[0].target_c == 0
    if parser:
        assert board.stats.waits_broken == 1 and "M108" in history
        assert history[-10:-5] == ["M104 S0", "M140 S0", "M107", "M400", "M114"]
        assert history[-5:-1] == ["G91", "G1 Z10.00 F600", "G90", "G1 X0.00 Y220.00 F6000"]
        assert machine.hotends[0].start_c < 200  # off before it got there
        assert "safe stop incomplete" not in caplog.text
    else:
        assert board.stats.waits_broken == 0 and "M108" not in history
        # The safe stop's 5 s ran out while M109 still heated, and the warnings say why; the
        # heaters-off it had queued still ran once the wait was over.
        assert "the stop commands wait until `M109 S210` reaches its temperature" in caplog.text
        assert (
            "safe stop incomplete: timed out after 5 s waiting for the heating wait `M109 S210`"
            in caplog.text
        )
        assert machine.hotends[0].start_c >= 209
        after_wait = history[history.index("M109 S210") :]
        assert after_wait.index("M104 S0") < after_wait.index("M140 S0")


async def _drain(progress: AsyncIterator[object]) -> None:
    async for _ in progress:
        pass
