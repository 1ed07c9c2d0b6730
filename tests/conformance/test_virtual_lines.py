"""printforge's own virtual Marlin prints every line the way Marlin's source does.

Mock mode (farms, CI) runs the real driver against ``hardware/virtual``; where the virtual board
prints a line Marlin never prints, the driver is tested against a fiction. Here sessions that
touch every kind of line the virtual board can print (handshake, moves, long commands with
keepalives, heating waits, M600, M0, bad lines, duplicates, M112, thermal runaway, ADVANCED_OK)
are run, and each line it wrote must be one of Marlin's own (``marlin_lines.classify``), written
from Marlin's source by someone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from printforge.hardware.marlin.protocol import frame
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.firmware import VirtualMarlin
from printforge.hardware.virtual.machine import VirtualMachine
from printforge.models.printer import PrinterProfile
from tests.conformance.marlin_lines import LineClass, classify

pytestmark = pytest.mark.conformance

PROFILE = PrinterProfile(name="generic-220")


class Board:
    def __init__(self, **options: object) -> None:
        options.setdefault("baud", 2_000_000)
        options.setdefault("sim_speed", 50.0)
        options.setdefault("busy_interval_s", 0.02)
        self.cfg = VirtualConfig.model_validate(options)
        self.out = bytearray()
        self.machine = VirtualMachine(
            PROFILE,
            sim_speed=self.cfg.sim_speed or 1.0,
            extruders=self.cfg.extruders,
            move_time_s=self.cfg.move_time_s,
        )
        self.fw = VirtualMarlin(self.machine, self.cfg, self.out.extend)
        self.n = 0

    @property
    def lines(self) -> list[str]:
        return self.out.decode().splitlines()

    def send(self, *commands: str) -> None:
        data = b""
        for command in commands:
            self.n += 1
            data += frame(self.n, command)
        self.fw.feed(data)

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            # The board's output has no event to wait on; a short poll is enough here.
            while not check():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def oks(self, count: int) -> None:
        await self.until(lambda: sum(ln.startswith("ok") for ln in self.lines) >= count)


def assert_all_marlin(lines: list[str], free_text: set[str]) -> None:
    """Each line is in Marlin's table; the text a G-code supplies (M0's) only where given."""
    strange = []
    for line in lines:
        entry = classify(line)
        if entry is None and line not in free_text:
            strange.append(line)
    assert not strange, f"lines Marlin never prints: {strange}"


@pytest.mark.asyncio
@pytest.mark.parametrize("advanced_ok", [False, True], ids=["ok", "advanced-ok"])
async def test_a_session_prints_only_marlin_lines(advanced_ok: bool) -> None:
    board = Board(advanced_ok=advanced_ok, extruders=2, user_wait_s=2.0)
    board.fw.start()
    try:
        board.fw.feed(frame(0, "M110 N0"))
        await board.oks(1)
        board.send("M115", "M105", "M155 S1", "M113")
        await board.oks(5)
        board.send("G28", "G90", "G1 X10 Y10 F3000", "M114", "M104 T1 S60", "M109 T1 S60")
        await board.oks(11)
        board.send("M600", "G1 X20", "M0 Remove the part", "G4 S2", "M999", "T5", "M110")
        await board.oks(18)
        # A bad checksum, a missing one, a gap, and a copy of the last line.
        board.fw.feed(b"N19 G1 X1*0\n")
        await board.until(lambda: any(ln.startswith("Resend:") for ln in board.lines))
        board.fw.feed(b"N19 G1 X1\n" + frame(21, "G1 X2") + frame(18, "M110"))
        await board.until(lambda: sum(ln.startswith("Resend:") for ln in board.lines) == 3)
        board.fw.feed(b"M112\n")
        await board.until(lambda: "//action:poweroff" in board.lines)
    finally:
        await board.fw.stop()
    lines = board.lines
    assert_all_marlin(lines, free_text={"echo:Remove the part"})
    kinds = {entry.cls for line in lines if (entry := classify(line)) is not None}
    assert kinds >= {
        LineClass.OK_ADVANCED if advanced_ok else LineClass.OK,
        LineClass.BUSY,
        LineClass.RESEND,
        LineClass.ERROR_RECOVERABLE,
        LineClass.ERROR_FATAL,
        LineClass.TEMPERATURE,
        LineClass.POSITION,
        LineClass.ACTION_NOTICE,
        LineClass.ACTION_COMMAND,
        LineClass.CAPABILITY,
        LineClass.ECHO,
        LineClass.START,
    }
    assert "echo:busy: processing" in lines and "echo:busy: paused for user" in lines
    assert "Line: 18" in lines


@pytest.mark.asyncio
async def test_thermal_runaway_prints_marlins_lines() -> None:
    board = Board(thermal_runaway_at_line=2, failing_heater="bed")
    board.fw.start()
    try:
        board.send("G1 X1", "G1 X2")
        await board.until(lambda: "//action:poweroff" in board.lines)
    finally:
        await board.fw.stop()
    assert board.lines[-4:] == [
        "Error:Thermal Runaway, system stopped! Heater_ID: bed",
        "echo:THERMAL RUNAWAY",
        "Error:Printer halted. kill() called!",
        "//action:poweroff",
    ]
    assert_all_marlin(board.lines, free_text=set())
