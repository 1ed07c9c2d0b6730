"""The light simulated printer used by mock farms and the farm benchmark."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from printforge.hardware.mqtt.sim.printer import SimPrinter, SimPrinterConfig, move_durations
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime.errors import InvalidTransition, PrinterFault


def test_move_durations_follow_length_and_feed() -> None:
    lines = ["G90", "G1 X30 Y40 F600", "G1 X30 Y0", "; comment", "G28", "G0 X0 F6000", "G10"]
    assert move_durations(lines) == pytest.approx([0, 5.0, 4.0, 0, 0, 0.3, 0])


@pytest.mark.asyncio
async def test_prints_pauses_and_faults(tmp_path: Path) -> None:
    gcode = tmp_path / "p.gcode"
    await asyncio.to_thread(gcode.write_text, "G1 X100 F6000\n" * 20)  # 20 s of moves
    printer = SimPrinter("s", SimPrinterConfig(sim_speed=100), PrinterProfile(name="g"))
    await printer.start()
    seen = []
    async for progress in printer.stream(gcode, job_id="j"):
        seen.append(progress)
        if len(seen) == 1:
            await printer.pause()
            assert printer.status().state is PrinterState.PAUSED
            with pytest.raises(InvalidTransition):
                await printer.pause()
            await printer.resume()
    assert seen[-1].lines_acked == 20 and seen[-1].fraction == 1.0
    assert printer.status().state is PrinterState.IDLE and printer.status().job_id is None
    await printer.emergency_stop()
    with pytest.raises(PrinterFault):
        async for _ in printer.stream(gcode):
            pass
