"""The light simulated printer used by mock farms and the farm benchmark."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from printforge.gcode.analysis import analyse_text
from printforge.hardware.mqtt.sim.printer import SimPrinter, SimPrinterConfig, move_durations
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime.errors import InvalidTransition, PrinterFault

PROFILE = PrinterProfile(name="sim")


def test_move_durations_are_the_estimators() -> None:
    # The one print-time estimator, split by line: at 10 mm/s the 50 mm and 40 mm moves take
    # their length over the feed (acceleration to 10 mm/s costs almost nothing), G28 travels
    # home from (30, 0), the G0 is then no move at all, and the whole is what gcode-info says.
    lines = ["G90", "G1 X30 Y40 F600", "G1 X30 Y0", "; comment", "G28", "G0 X0 F6000", "G4 P500"]
    durations = move_durations(lines, PROFILE)
    assert durations[:4] == pytest.approx([0, 5.0, 4.0, 0], abs=0.01)
    assert durations[4] > 0 and durations[5] == 0 and durations[6] == 0.5
    whole = analyse_text("\n".join(lines), Path("x.gcode"), PROFILE, size_bytes=0)
    assert sum(durations) == pytest.approx(whole.estimated_time_s, abs=0.01)


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


def test_a_bambu_print_plan_scales_with_the_speed_up_and_reads_the_file() -> None:
    from printforge.hardware.mqtt.sim.bambu import MIN_PRINT_S, plan_print

    lines = ["M140 S65", "M104 S245", "G28", "G90", "M83"]
    for n in range(1, 31):
        lines.append(f"G1 Z{0.2 * n:.2f} F600")
        lines += [f"G1 X{x} Y{y} E1 F600" for x, y in ((0, 0), (100, 0), (100, 100), (0, 100))]
    data = ("\n".join(lines) + "\n").encode()
    slow, fast = plan_print(data, 1.0), plan_print(data, 10.0)
    assert slow.layers == fast.layers == 30
    assert (slow.nozzle_c, slow.bed_c) == (245.0, 65.0)
    assert slow.seconds > 10 * MIN_PRINT_S
    assert fast.seconds == pytest.approx(slow.seconds / 10, rel=1e-6)


def test_a_bambu_print_plan_refuses_a_binary_file() -> None:
    from printforge.hardware.mqtt.sim.bambu import plan_print
    from printforge.runtime.errors import BadArtifact

    with pytest.raises(BadArtifact):
        plan_print(bytes(range(256)), 100.0)
