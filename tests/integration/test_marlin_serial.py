"""The Marlin driver against the virtual Marlin on a real pty, through real pyserial.

Every streaming test checks the virtual printer's own log: each move ran exactly once, in
order. Printers run at high baud and simulation speed where the property allows, to stay fast.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pty
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from printforge.hardware.base import load_driver
from printforge.hardware.marlin.config import MarlinConfig, ThermalConfig
from printforge.hardware.marlin.driver import MarlinDriver
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.machine import words
from printforge.hardware.virtual.pty_server import VirtualPrinterServer
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime.errors import (
    ConnectionLost,
    InputError,
    OperationTimeout,
    PrinterDisconnected,
    PrinterFault,
)
from tests.fakes.vmarlin import (
    assert_moves_once_in_order,
    cube_gcode,
    heated_print_gcode,
    numbered_moves_gcode,
    write_gcode,
)

PROFILE = PrinterProfile(name="generic-220")
FAST = {"baud": 1_000_000, "sim_speed": 1e6}


async def _serve(**options: Any) -> VirtualPrinterServer:
    server = VirtualPrinterServer(PROFILE, VirtualConfig.model_validate({**FAST, **options}))
    await server.start()
    return server


def _driver(server: VirtualPrinterServer, **options: Any) -> MarlinDriver:
    cfg = {"port": server.path, "baud": 1_000_000, "ok_timeout_s": 0.3, **options}
    return MarlinDriver("mk", MarlinConfig.model_validate(cfg), PROFILE)


async def _stream_all(driver: MarlinDriver, path: Path) -> list[Any]:
    return [p async for p in driver.stream(path)]


@pytest_asyncio.fixture
async def served() -> AsyncIterator[list[VirtualPrinterServer]]:
    servers: list[VirtualPrinterServer] = []
    yield servers
    for server in servers:
        await server.stop()


def test_registry_resolves_marlin() -> None:
    assert load_driver("marlin") is MarlinDriver
    with pytest.raises(ValueError, match="speed"):
        MarlinConfig.model_validate({"port": "/dev/x", "speed": 1})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "faults",
    [
        {},
        {"noise_rate": 0.03, "seed": 3},
        {"noise_rate": 0.03, "seed": 4, "advanced_ok": True},
        {"drop_ok_rate": 0.02, "seed": 5},
        {"drop_ok_rate": 0.05, "seed": 6, "advanced_ok": True},
        {"noise_rate": 0.02, "drop_ok_rate": 0.02, "latency_s": 0.001, "seed": 7},
    ],
    ids=["clean", "noise", "noise-advanced-ok", "dropped-oks", "dropped-advanced", "all"],
)
async def test_every_move_runs_once_in_order(
    tmp_path: Path, served: list[VirtualPrinterServer], faults: dict[str, Any]
) -> None:
    text = numbered_moves_gcode(600)
    path = write_gcode(tmp_path, text)
    server = await _serve(**faults)
    served.append(server)
    async with _driver(server) as driver:
        events = await _stream_all(driver, path)
        assert driver.status().state is PrinterState.IDLE
    last = events[-1]
    assert last.lines_acked == last.lines_total == len(text.splitlines())
    assert last.bytes_acked == last.bytes_total
    assert_moves_once_in_order(server.moves, text)
    if "noise_rate" in faults:
        assert server.firmware is not None and server.firmware.stats.errors > 0
        assert last.resends > 0


@pytest.mark.asyncio
async def test_ping_pong_strategy_and_cube(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    text = cube_gcode(size=3.0, layer=0.5)
    path = write_gcode(tmp_path, text)
    server = await _serve(noise_rate=0.02, seed=11)
    served.append(server)
    async with _driver(server, strategy="ping_pong") as driver:
        await _stream_all(driver, path)
        temps = driver.status().temperatures
    assert_moves_once_in_order(server.moves, text)
    assert server.machine is not None and server.machine.bed.target_c == 0
    assert set(temps) >= {"hotend", "bed"}


@pytest.mark.asyncio
async def test_handshake_reads_capabilities(served: list[VirtualPrinterServer]) -> None:
    server = await _serve(advanced_ok=True, extruders=2)
    served.append(server)
    async with _driver(server) as driver:
        assert driver.firmware is not None and "Marlin" in driver.firmware.name
        assert driver.capabilities["AUTOREPORT_TEMP"] is True
        # Marlin's M115 has no Cap: line for ADVANCED_OK; the host sees it in the `ok`s.
        assert "ADVANCED_OK" not in driver.capabilities
        assert driver.engine is not None and driver.engine.advanced
        assert driver.engine.slots == 4 and driver.engine.planner_blocks == 16
        await driver.send("M104 T1 S150 ; comment goes")
        await driver.send("M105")
        for _ in range(50):
            if driver.status().temperatures.get("hotend1", None) is not None:
                break
            await asyncio.sleep(0.05)
        temps = driver.status().temperatures
        assert temps["hotend1"].target == 150
        assert "hotend0" in temps and "bed" in temps


@pytest.mark.asyncio
async def test_busy_keeps_long_moves_alive(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    # A two-block planner and 0.4 s moves: the firmware stays silent longer than the ok
    # watchdog allows, but it says `busy:` in between, so no probe is sent.
    profile = PrinterProfile(name="slow", planner_blocks=2)
    options = {**FAST, "sim_speed": 1.0, "move_time_s": 0.4, "busy_interval_s": 0.1}
    server = VirtualPrinterServer(profile, VirtualConfig.model_validate(options))
    await server.start()
    served.append(server)
    text = numbered_moves_gcode(6)
    path = write_gcode(tmp_path, text)
    cfg = MarlinConfig(port=server.path, baud=1_000_000, ok_timeout_s=0.3)
    async with MarlinDriver("slow", cfg, profile) as driver:
        await _stream_all(driver, path)
        assert driver.engine is not None
        assert driver.engine.stats.watchdog_probes == 0
    assert_moves_once_in_order(server.moves, text)


@pytest.mark.asyncio
async def test_m600_on_the_virtual_board_is_the_firmwares_own_pause(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    # A filament change that lasts three times the host's lost-ok watchdog: the board says
    # `echo:busy: …` every 0.1 s, announces `//action:paused` and `//action:resumed`, and the
    # host neither re-sends nor probes nor parks.
    server = await _serve(sim_speed=10.0, busy_interval_s=0.1, user_wait_s=5.0)
    served.append(server)
    text = "G28\nG90\nG1 X10 Y10 F3000\nM600\n" + numbered_moves_gcode(20)
    path = write_gcode(tmp_path, text)
    async with _driver(server, ok_timeout_s=0.3) as driver:
        states: list[PrinterState] = []
        messages: list[str | None] = []
        driver.add_listener(lambda s: (states.append(s.state), messages.append(s.message)))
        events = await _stream_all(driver, path)
        assert driver.engine is not None and driver.engine.stats.watchdog_probes == 0
        assert driver.engine.stats.keepalives >= 3
    assert events[-1].resends == 0
    assert PrinterState.PAUSED in states and "paused by firmware" in messages
    assert server.machine is not None
    ran = [c.command for c in server.machine.history]
    assert "M400" not in ran and "M600" not in ran  # M600 is the board's own, no host park
    assert_moves_once_in_order(server.moves, text)


@pytest.mark.asyncio
async def test_disconnect_interrupts_then_reconnects(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    server = VirtualPrinterServer(
        PROFILE,
        VirtualConfig.model_validate({**FAST, "disconnect_at_line": 300}),
        link=tmp_path / "printer0",
        reconnect_after_s=0.2,
    )
    await server.start()
    served.append(server)
    text = numbered_moves_gcode(500)
    path = write_gcode(tmp_path, text)
    driver = _driver(server, reconnect_max_s=0.5)
    async with driver:
        with pytest.raises(PrinterDisconnected) as info:
            await _stream_all(driver, path)
        last = info.value.last_acked_line
        assert last is not None and 0 < last < 300
        assert driver.status().state in (PrinterState.OFFLINE, PrinterState.CONNECTING)
        # Lines run before the cable was pulled ran once, in order, and nothing after it.
        numbers = [m.line for m in server.moves]
        assert numbers == sorted(set(numbers)) and max(numbers) < 300
        await asyncio.wait_for(driver.connected.wait(), 10)
        assert driver.status().state is PrinterState.IDLE
        short = numbered_moves_gcode(20)
        await _stream_all(driver, write_gcode(tmp_path, short, "again.gcode"))
    assert [m.command for m in server.moves[len(numbers) :]] == [
        ln for ln in short.splitlines() if ln.startswith("G1")
    ]


@pytest.mark.asyncio
async def test_thermal_runaway_faults_the_printer(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    server = await _serve(thermal_runaway_at_line=100)
    served.append(server)
    path = write_gcode(tmp_path, numbered_moves_gcode(400))
    async with _driver(server) as driver:
        with pytest.raises(PrinterFault, match="Thermal Runaway"):
            await _stream_all(driver, path)
        assert driver.status().state is PrinterState.FAULTED
        with pytest.raises(PrinterFault):
            await _stream_all(driver, path)
    assert max(m.line or 0 for m in server.moves) < 100


@pytest.mark.asyncio
async def test_cancel_runs_the_safe_stop(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    server = await _serve(sim_speed=50.0)
    served.append(server)
    text = "M104 S200\nM140 S60\nM106 S255\nG1 Z2 F600\n" + numbered_moves_gcode(3000)
    path = write_gcode(tmp_path, text)
    async with _driver(server) as driver:
        going = asyncio.Event()

        async def consume() -> None:
            async for progress in driver.stream(path):
                if progress.lines_acked > 50:
                    going.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(going.wait(), 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert driver.status().state is PrinterState.IDLE
    machine = server.machine
    assert machine is not None
    assert machine.hotends[0].target_c == 0 and machine.bed.target_c == 0
    assert machine.fan == 0
    assert machine.pos["Z"] == pytest.approx(12.0)
    assert machine.pos["Y"] == PROFILE.bed_y
    assert len(server.moves) < 3000


@pytest.mark.asyncio
async def test_pause_and_resume_over_serial(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    server = await _serve(sim_speed=100.0)
    served.append(server)
    text = "G1 Z0.4 F600\n" + numbered_moves_gcode(400)
    path = write_gcode(tmp_path, text)
    async with _driver(server) as driver:
        did_pause = False
        async for progress in driver.stream(path):
            if progress.lines_acked > 30 and not did_pause:
                did_pause = True
                await driver.pause()
                machine = server.machine
                assert machine is not None
                assert driver.status().state is PrinterState.PAUSED
                assert machine.pos["Z"] == pytest.approx(10.4)
                await driver.resume()
                assert machine.pos["Z"] == pytest.approx(0.4)
        assert did_pause
    job_moves = [m for m in server.moves if m.command in text]
    assert [m.command for m in job_moves if m.line is not None][-1] == text.splitlines()[-1]


@pytest.mark.asyncio
async def test_emergency_stop_halts(tmp_path: Path, served: list[VirtualPrinterServer]) -> None:
    server = await _serve(sim_speed=20.0)
    served.append(server)
    path = write_gcode(tmp_path, numbered_moves_gcode(2000))
    async with _driver(server) as driver:
        going = asyncio.Event()

        async def consume() -> None:
            async for progress in driver.stream(path):
                if progress.lines_acked > 20:
                    going.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(going.wait(), 20)
        await driver.emergency_stop()
        with pytest.raises(PrinterFault):
            await task
        assert driver.status().state is PrinterState.FAULTED
        for _ in range(100):
            if server.machine is not None and server.machine.halted:
                break
            await asyncio.sleep(0.01)
    assert server.machine is not None and server.machine.halted


@pytest.mark.asyncio
async def test_ten_printers_on_one_loop(tmp_path: Path, served: list[VirtualPrinterServer]) -> None:
    text = numbered_moves_gcode(300)
    path = write_gcode(tmp_path, text)
    servers = [await _serve(noise_rate=0.01, seed=i) for i in range(10)]
    served.extend(servers)
    drivers = [_driver(s) for s in servers]
    for d in drivers:
        await d.start()
    try:
        await asyncio.gather(*(_stream_all(d, path) for d in drivers))
    finally:
        for d in drivers:
            await d.stop()
    for server in servers:
        assert_moves_once_in_order(server.moves, text)


@pytest.mark.asyncio
async def test_port_that_does_not_exist(tmp_path: Path) -> None:
    driver = MarlinDriver("x", MarlinConfig(port=str(tmp_path / "ttyNOPE")), PROFILE)
    with pytest.raises(InputError, match="does not exist"):
        await driver.start()


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["devnull", "file"])
async def test_port_that_is_not_a_serial_device(tmp_path: Path, kind: str) -> None:
    # A maker mistypes the port: /dev/null, or the G-code file itself.
    port = os.devnull if kind == "devnull" else str(write_gcode(tmp_path, "G28\n"))
    driver = MarlinDriver("x", MarlinConfig(port=port, reconnect=False), PROFILE)
    with pytest.raises(InputError, match="is not a serial device") as info:
        await driver.start()
    assert "ioctl" not in str(info.value)


@pytest.mark.asyncio
async def test_port_that_is_busy(served: list[VirtualPrinterServer]) -> None:
    server = await _serve()
    served.append(server)
    async with _driver(server):
        with pytest.raises(ConnectionLost, match="busy"):
            await _driver(server).start()


@pytest.mark.asyncio
async def test_printer_that_never_answers() -> None:
    master, slave = pty.openpty()
    try:
        cfg = MarlinConfig(port=os.ttyname(slave), handshake_timeout_s=0.5)
        driver = MarlinDriver("mute", cfg, PROFILE)
        with pytest.raises(OperationTimeout, match="did not answer the handshake") as info:
            await driver.start()
        assert driver.status().state is PrinterState.OFFLINE
        # The likeliest mute Marlin is one that halted: say what brings it back.
        assert "reset or power-cycled" in str(info.value)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00", "not a text"), (b"G1 X1 " + b"Y1 " * 40 + b"\n", "at most")],
)
async def test_bad_files(
    tmp_path: Path, served: list[VirtualPrinterServer], content: bytes, message: str
) -> None:
    server = await _serve()
    served.append(server)
    path = tmp_path / "bad.gcode"
    path.write_bytes(content)
    async with _driver(server) as driver:
        with pytest.raises(InputError, match=message):
            await _stream_all(driver, path)
        assert driver.status().state is PrinterState.IDLE
    assert server.moves == []


@pytest.mark.asyncio
async def test_a_board_that_resets_mid_print_interrupts_it(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    server = await _serve(sim_speed=50.0)
    served.append(server)
    path = write_gcode(tmp_path, numbered_moves_gcode(2000))
    async with _driver(server, reconnect_max_s=0.3) as driver:
        with pytest.raises(PrinterDisconnected, match="reset itself"):
            async for progress in driver.stream(path):
                if progress.lines_acked > 20:
                    driver._on_line("start")  # what a watchdog-reset board prints first
        await asyncio.wait_for(driver.connected.wait(), 10)
        assert driver.status().state is PrinterState.IDLE


# host-side thermal protection -------------------------------------------------------------
# These boards are built without THERMAL_PROTECTION: a heater that stops heating goes unnoticed
# by the firmware, so whatever stops the print here is the host's watchdog. The watchdog's
# periods are printer seconds, so they are scaled by the same sim_speed as the heaters.


def _thermal_driver(server: VirtualPrinterServer, speed: float, **options: Any) -> MarlinDriver:
    thermal = ThermalConfig.model_validate(options.pop("thermal", {})).scaled(speed)
    options.setdefault("temp_interval_s", 1.0)  # M155 S1: a report every second
    return _driver(server, thermal=thermal.model_dump(), **options)


async def _until(check: Any, timeout: float = 20.0) -> None:
    """Poll the simulated board (it has no event to wait on) until `check` holds."""
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the printer never got there")


@pytest.mark.asyncio
async def test_host_catches_a_heater_the_firmware_ignores(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    speed = 100.0
    text = heated_print_gcode(layers=20, moves_per_layer=50, raise_to_c=None)
    path = write_gcode(tmp_path, text)
    # N4 is the job's first command: the heater cartridge slips out at the job's 150th line,
    # in the second layer, long after both heaters reached their targets.
    server = await _serve(sim_speed=speed, move_time_s=2.0, heater_fails_at_line=153)
    served.append(server)
    async with _thermal_driver(server, speed) as driver:
        with pytest.raises(PrinterFault) as info:
            await _stream_all(driver, path)
        message = str(info.value)
        assert "host thermal watchdog" in message
        assert "hotend thermal runaway" in message
        assert "below its target 205.0 °C" in message
        assert "runaway_hysteresis_c 4 °C" in message
        assert "emergency stop (M112) sent" in message
        status = driver.status()
        assert status.state is PrinterState.FAULTED
        assert status.message is not None and "thermal runaway" in status.message
        assert driver.last_error is not None and "thermal runaway" in driver.last_error
        firmware = server.firmware
        assert firmware is not None
        await _until(lambda: firmware.stats.emergency_stops == 1)
    machine = server.machine
    assert machine is not None
    # The board halted on the host's M112, not on a protection of its own.
    assert machine.halted == "Printer halted. kill() called!"
    assert machine.hotends[0].failed
    lines = [m.line or 0 for m in server.moves]
    assert 153 < max(lines) < len(text.splitlines()) + 3


@pytest.mark.asyncio
async def test_host_catches_heating_that_never_starts(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    speed = 100.0
    path = write_gcode(tmp_path, heated_print_gcode())
    # The bed's heater is dead from the first command: M190 would wait for ever.
    server = await _serve(sim_speed=speed, heater_fails_at_line=4, failing_heater="bed")
    served.append(server)
    async with _thermal_driver(server, speed) as driver:
        with pytest.raises(PrinterFault, match="bed heating failed") as info:
            await _stream_all(driver, path)
        assert "22.0 °C then 22.0 °C" in str(info.value)
        assert "bed_heating_gain_c 2 °C" in str(info.value)
        assert driver.status().state is PrinterState.FAULTED
        firmware = server.firmware
        assert firmware is not None
        await _until(lambda: firmware.stats.emergency_stops == 1)
    assert server.moves == []


@pytest.mark.asyncio
async def test_host_catches_over_temperature(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    # The file asks for more than this machine may reach; the firmware, built with a higher
    # MAXTEMP than the host's profile allows (it clamps only to its own limit), heats to it.
    profile = PrinterProfile(name="low", max_hotend_temp=200.0)
    board = PrinterProfile(name="board", max_hotend_temp=275.0)
    speed = 100.0
    options = VirtualConfig(baud=1_000_000, sim_speed=speed, move_time_s=10.0)
    server = VirtualPrinterServer(board, options)
    await server.start()
    served.append(server)
    path = write_gcode(tmp_path, "M109 S240\nG28\n" + numbered_moves_gcode(50))
    thermal = ThermalConfig().scaled(speed).model_dump()
    cfg = MarlinConfig(port=server.path, baud=1_000_000, temp_interval_s=1.0, thermal=thermal)
    async with MarlinDriver("low", cfg, profile) as driver:
        with pytest.raises(PrinterFault, match="hotend over temperature") as info:
            await _stream_all(driver, path)
        assert "max_hotend_temp 200 + over_temp_margin_c 15" in str(info.value)
    assert server.moves == []


@pytest.mark.asyncio
async def test_a_whole_healthy_print_never_trips(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    # Slow enough that reports arrive while both heaters climb, through the first-layer change
    # and a waited-for raise, and while holding temperature.
    speed = 40.0
    text = heated_print_gcode(layers=8, moves_per_layer=50)
    path = write_gcode(tmp_path, text)
    server = await _serve(sim_speed=speed, move_time_s=0.4)
    served.append(server)
    reports = while_heating = 0
    async with _thermal_driver(server, speed) as driver:
        assert driver.thermal is not None
        original = driver.thermal.on_report

        def counting(temps: Any, now: float) -> Any:
            nonlocal reports, while_heating
            reports += 1
            bed, target = temps.values["B"]
            while_heating += bool(target and bed < target - 1)
            return original(temps, now)

        driver.thermal.on_report = counting  # type: ignore[method-assign]
        await _stream_all(driver, path)
        assert driver.status().state is PrinterState.IDLE
        assert driver.thermal.tripped is None
        assert driver.thermal.heating == []
    assert_moves_once_in_order(server.moves, text)
    # About 3 while the bed heats (3.6 s at this speed), about 8 in all.
    assert while_heating >= 2 and reports >= 5


@pytest.mark.asyncio
async def test_with_the_watchdog_off_nothing_stops_a_dead_heater(
    tmp_path: Path, served: list[VirtualPrinterServer]
) -> None:
    # The switch works, and it shows what the watchdog is for: nobody notices.
    speed = 100.0
    text = heated_print_gcode(layers=4, moves_per_layer=50, raise_to_c=None)
    path = write_gcode(tmp_path, text)
    server = await _serve(sim_speed=speed, move_time_s=1.0, heater_fails_at_line=40)
    served.append(server)
    async with _thermal_driver(server, speed, thermal={"enabled": False}) as driver:
        assert driver.thermal is None
        await _stream_all(driver, path)
        assert driver.status().state is PrinterState.IDLE
    assert_moves_once_in_order(server.moves, text)
    assert server.machine is not None and server.machine.hotends[0].failed


@pytest.mark.asyncio
async def test_an_idle_printer_gets_its_heaters_turned_off(
    served: list[VirtualPrinterServer],
) -> None:
    speed = 100.0
    # N4 is the first command after the handshake: the manual preheat below.
    server = await _serve(sim_speed=speed, heater_fails_at_line=4)
    served.append(server)
    async with _thermal_driver(server, speed) as driver:
        await driver.send("M104 S200")
        machine = server.machine
        assert machine is not None
        await _until(lambda: driver.status().state is PrinterState.FAULTED)
        message = driver.status().message or ""
        assert "hotend heating failed" in message and "heaters turned off" in message
        await _until(lambda: machine.hotends[0].target_c == 0)
        assert machine.halted is None  # no M112 for an idle printer
        with pytest.raises(PrinterFault):
            await driver.send("M104 S200")


# cancelling during a heating wait ---------------------------------------------------------
# The stop commands queue behind a running M109/M190. With EMERGENCY_PARSER the host ends the
# wait with M108 (on arrival, ahead of the queue); without it they wait for the temperature.

# Heaters and fan off are queued at once; the lift needs the position (M400, M114) first.
STOP = [
    *("M104 S0", "M140 S0", "M107", "M400", "M114"),
    *("G91", "G1 Z10.00 F600", "G90", "G1 X0.00 Y220.00 F6000", "M84"),
]


def _after_last_m108(server: VirtualPrinterServer) -> list[str]:
    assert server.machine is not None
    history = [c.command for c in server.machine.history]
    last = max((i for i, c in enumerate(history) if c == "M108"), default=-1)
    return history[last + 1 :]


async def _cancel_while_waiting(driver: MarlinDriver, path: Path, wait: str) -> None:
    """Stream `path`, cancel the print while the firmware runs `wait`, return when stopped."""
    task = asyncio.create_task(_stream_all(driver, path))

    def waiting() -> bool:
        assert not task.done(), task
        running = driver.engine.oldest_in_flight() if driver.engine else None
        return running is not None and running[1] == wait

    await _until(waiting)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_cancel_during_heating_ends_the_waits_with_m108(
    tmp_path: Path, served: list[VirtualPrinterServer], caplog: pytest.LogCaptureFixture
) -> None:
    # At this speed the bed needs some 30 s to reach 60 °C; the hotend, heating meanwhile,
    # would pass 200 °C after 12 s.
    server = await _serve(sim_speed=5.0)
    served.append(server)
    path = write_gcode(tmp_path, cube_gcode(size=3.0, layer=0.5))
    caplog.set_level(logging.INFO, logger="printforge.hardware.marlin")
    async with _driver(server) as driver:
        assert driver.capabilities["EMERGENCY_PARSER"] is True
        await _cancel_while_waiting(driver, path, "M190 S60")
        assert driver.status().state is PrinterState.IDLE
    machine, firmware = server.machine, server.firmware
    assert machine is not None and firmware is not None
    # M190, then the M109 queued behind it: each ended by its own M108.
    assert firmware.stats.waits_broken == 2
    assert "M108 to end `M190 S60` now" in caplog.text
    assert "M108 to end `M109 S210` now" in caplog.text
    assert "safe stop incomplete" not in caplog.text
    # Heaters off first, then the lift and the bed presented, from the printer's own log.
    # Before them, the job lines already sent (homing, the first layer's Z) still ran.
    history = [c.command for c in machine.history]
    stop = len(history) - len(STOP)
    assert history[stop:] == STOP
    assert _after_last_m108(server)[-len(STOP) :] == STOP
    z_job = [words(c)["Z"] for c in history[:stop] if c.startswith("G1 Z")]
    assert machine.pos["Z"] == pytest.approx((z_job[-1] if z_job else 0.0) + 10.0)
    assert machine.pos["Y"] == PROFILE.bed_y
    assert machine.hotends[0].target_c == 0 and machine.bed.target_c == 0
    # Turned off on the way up: neither wait ran to its temperature.
    assert machine.bed.start_c < 55 and machine.hotends[0].start_c < 200


@pytest.mark.asyncio
async def test_without_emergency_parser_the_stop_waits_for_the_temperature(
    tmp_path: Path, served: list[VirtualPrinterServer], caplog: pytest.LogCaptureFixture
) -> None:
    # Fast enough that both waits end well within the safe stop's 30 s.
    server = await _serve(sim_speed=200.0, emergency_parser=False)
    served.append(server)
    path = write_gcode(tmp_path, cube_gcode(size=3.0, layer=0.5))
    caplog.set_level(logging.INFO, logger="printforge.hardware.marlin")
    async with _driver(server) as driver:
        assert driver.capabilities["EMERGENCY_PARSER"] is False
        await _cancel_while_waiting(driver, path, "M190 S60")
        assert driver.status().state is PrinterState.IDLE
    machine, firmware = server.machine, server.firmware
    assert machine is not None and firmware is not None
    assert firmware.stats.waits_broken == 0
    assert "M108" not in [c.command for c in machine.history]  # it could not help
    assert "the stop commands wait until `M190 S60` reaches its temperature" in caplog.text
    assert "no EMERGENCY_PARSER" in caplog.text
    assert "safe stop incomplete" not in caplog.text
    assert [c.command for c in machine.history][-len(STOP) :] == STOP
    # Both waits ran to their temperatures before the heaters went off.
    assert machine.bed.start_c >= 59 and machine.hotends[0].start_c >= 209
    assert machine.hotends[0].target_c == 0 and machine.bed.target_c == 0


@pytest.mark.asyncio
async def test_a_safe_stop_that_times_out_says_what_it_waited_for(
    tmp_path: Path, served: list[VirtualPrinterServer], caplog: pytest.LogCaptureFixture
) -> None:
    # Real time: the bed would need minutes; the host gives up after a second.
    server = await _serve(sim_speed=1.0, emergency_parser=False)
    served.append(server)
    path = write_gcode(tmp_path, cube_gcode(size=3.0, layer=0.5))
    async with _driver(server, safe_stop_timeout_s=1.0) as driver:
        await _cancel_while_waiting(driver, path, "M190 S60")
        assert driver.status().state is PrinterState.IDLE
    assert (
        "safe stop incomplete: timed out after 1 s waiting for the heating wait `M190 S60` to"
        " reach its temperature (the firmware has no EMERGENCY_PARSER, so M108 cannot end it)"
    ) in caplog.text
