"""The virtual printers' executed-move log is bounded where it lives long: a server's mock farm
kept every move of every job, ~50 KB per finished job, for ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import MOVES_KEPT, VirtualDriver
from printforge.hardware.virtual.machine import VirtualMachine
from printforge.models.printer import PrinterProfile
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

PROFILE = PrinterProfile(name="t")


@pytest.mark.asyncio
async def test_a_bounded_log_keeps_the_newest_moves() -> None:
    machine = VirtualMachine(PROFILE, sim_speed=1e6)
    machine.moves_limit = 10
    at = machine.loop.time()
    for n in range(1, 101):
        at, _ = machine.execute_at(f"G1 X{n % 50 + 1} F6000", n, at)
    assert 10 <= len(machine.moves) <= 20
    assert machine.moves[-1].line == 100
    assert [m.line for m in machine.moves] == list(range(101 - len(machine.moves), 101))
    unbounded = VirtualMachine(PROFILE, sim_speed=1e6)
    assert unbounded.moves_limit is None


@pytest.mark.asyncio
async def test_the_drivers_log_is_bounded_across_prints(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, numbered_moves_gcode(60))
    drv = VirtualDriver("v1", VirtualConfig.model_validate({"sim_speed": 5000.0}), PROFILE)
    async with drv:
        assert drv.machine is not None and drv.machine.moves_limit == MOVES_KEPT
        drv.machine.moves_limit = 25  # a small bound, to see it work in a short test
        moves = drv.moves
        for _ in range(3):
            async for _ in drv.stream(path):
                pass
        assert drv.moves is moves  # trimmed in place: the machine and the driver share it
        assert 25 <= len(drv.moves) <= 50
        assert drv.moves[-1].command == numbered_moves_gcode(60).strip().splitlines()[-1]
