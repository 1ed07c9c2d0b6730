"""The live ETA on the virtual printer whose machine is not its profile: present, from the
file's time plan, and going down as the print goes on (figures: scripts/bench_eta.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import PrinterProfile, PrintProgress
from tests.fakes.vmarlin import write_gcode

PROFILE = PrinterProfile(name="generic-220", max_acceleration=1000, max_jerk=8)


def _layers(count: int) -> str:
    """A bed heat-up (the plan is worked out meanwhile), then square layers of growing size."""
    out = ["M190 S50", "G28", "G92 E0", "G1 F2400"]
    e = 0.0
    for n in range(count):
        side = 10 + 3 * n
        out += [f"G1 Z{0.2 * (n + 1):.2f} F600", "G1 F2400"]
        for _ in range(3):
            for x, y in ((side, 0), (side, side), (0, side), (0, 0)):
                e += side * 0.04
                out.append(f"G1 X{x} Y{y} E{e:.4f}")
    return "\n".join([*out, "M140 S0"]) + "\n"


@pytest.mark.asyncio
async def test_the_eta_comes_from_the_plan_and_goes_down(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, _layers(30))
    cfg = VirtualConfig(
        sim_speed=40.0, true_machine={"acceleration": 0.8, "jerk": 0.75, "speed": 0.9}
    )
    reports: list[PrintProgress] = []
    async with VirtualDriver("v1", cfg, PROFILE) as drv:
        async for progress in drv.stream(path):
            reports.append(progress)
    planned = [p for p in reports if p.eta_source == "estimate"]
    assert len(planned) >= 5, [p.eta_source for p in reports]
    for p in planned:
        assert p.eta_s is not None and p.eta_s >= 0
        assert p.finish_at is not None
        assert p.planned_s is not None and p.planned_s > 0
        assert p.pace is not None and p.pace > 0
    etas = [p.eta_s for p in planned if p.eta_s is not None]
    half = len(etas) // 2
    # Down overall (the pace it learns may nudge a single figure up), and none at the end.
    assert max(etas[half:]) < max(etas[:half])
    assert sorted(etas[half:])[len(etas[half:]) // 2] < sorted(etas[:half])[half // 2]
    assert etas[-1] == 0.0
    assert reports[-1].lines_acked == reports[-1].lines_total
