#!/usr/bin/env python3
"""How well a print's live ETA holds: its error at 10, 25, 50 and 75 % of the print.

A part is designed and sliced for the `generic-220` profile (by default the 40 x 30 x 25 mm box
with a lid: mixed layer times, the box and its lid side by side, then the box's walls alone),
then printed on virtual printers (`sim_speed` times real time) that heat up at the start as a
real one does and whose motion is *not* the profile's: each has its own acceleration, jerk and
speed (`VirtualConfig.true_machine`), 10-30 % off, as real printers are. So the figure measures
how the ETA corrects itself by the observed pace, not one model agreeing with itself.

For each machine the driver's `eta_s` is sampled at every progress report. Once the print has
ended its true length is known; the error at p % is the ETA reported when p % of the true
length had passed, against the true remaining time:
    error = (eta - true_remaining) / true_remaining
(+ too late, - too early). Beside it, the linear guess from the bytes sent (what the drivers
reported before the slicer's times travelled with the file), from the same samples.

`--record DIR` keeps each run as a trace (wall seconds, planned seconds done, waits done and
started, share of the file, commands done) for `tests/unit/test_eta.py`, which replays them
through the correction.

Usage: python scripts/bench_eta.py [--gcode FILE] [--sim 20] [--json] [--record DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from printforge.gcode.timeplan import TimePlan, plan_file  # noqa: E402
from printforge.hardware.virtual.config import TrueMachine, VirtualConfig  # noqa: E402
from printforge.hardware.virtual.driver import VirtualDriver  # noqa: E402
from printforge.settings import load_settings  # noqa: E402

REQUEST = "a 40 x 30 x 25 mm box with a lid"
POINTS = (0.10, 0.25, 0.50, 0.75)
# Each machine's motion against the profile the file was estimated with.
MACHINES: dict[str, TrueMachine] = {
    "slower": TrueMachine(acceleration=0.75, jerk=0.8, speed=0.95),
    "faster": TrueMachine(acceleration=1.3, jerk=1.2, speed=1.0),
}


def slice_part(out: Path) -> Path:
    """The request designed and sliced by the built-in slicer through the command line."""
    stl, gcode = out / "part.stl", out / "part.gcode"
    for args in (["design", REQUEST, "--out", str(stl)], ["slice", str(stl), "--out", str(gcode)]):
        subprocess.run(
            [sys.executable, "-m", "printforge", *args],
            check=True,
            cwd=ROOT,
            capture_output=True,
            timeout=600,
        )
    return gcode


async def print_on(name: str, machine: TrueMachine, gcode: Path, sim: float) -> dict[str, Any]:
    settings = load_settings()
    profile = settings.printer_profiles["generic-220"]
    material = settings.materials.get("PLA")
    cfg = VirtualConfig(sim_speed=sim, true_machine=machine)
    driver = VirtualDriver(name, cfg, profile, material)
    samples: list[tuple[float, float | None, float, int]] = []  # elapsed, eta, fraction, acked
    await driver.start()
    try:
        started = time.monotonic()
        async for progress in driver.stream(gcode, job_id=name):
            samples.append(
                (progress.elapsed_s, progress.eta_s, progress.fraction, progress.lines_acked)
            )
        total = time.monotonic() - started
        idle = driver.machine.planner_idle_s if driver.machine is not None else 0.0
    finally:
        await driver.stop()
    return {
        "machine": name,
        "true_machine": machine.model_dump(),
        "total_s": total,
        "planner_idle_s": idle,
        "samples": samples,
    }


def record(run: dict[str, Any], plan: TimePlan, sim: float, folder: Path) -> Path:
    """The run as a trace the unit tests replay: each sample where it stood on the plan."""
    rows = []
    for elapsed, _eta, fraction, acked in run["samples"]:
        at = plan.at_command(acked)
        rows.append(
            [
                round(elapsed, 3),
                round(at.planned_s, 2),
                at.waits_done,
                at.waits_started,
                round(fraction, 5),
                at.commands,
            ]
        )
    rows = thin(rows)
    out = folder / f"box-lid-x{sim:g}-{run['machine']}.json"
    out.write_text(
        json.dumps(
            {
                "gcode": REQUEST,
                "true_machine": run["true_machine"],
                "sim_speed": sim,
                "prior_pace": 1 / sim,
                "planned_total_s": round(plan.total_s, 2),
                "commands_total": len(plan),
                "total_s": round(run["total_s"], 3),
                "samples": rows,
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    return out


def thin(rows: list[list[Any]], keep: int = 2000) -> list[list[Any]]:
    """About `keep` rows, evenly spaced, and every row where the waits change (a trace a
    repository can hold; the ETA's chunks span many reports anyway)."""
    step = max(1, len(rows) // keep)
    return [
        r
        for i, r in enumerate(rows)
        if i % step == 0 or i == len(rows) - 1 or (i and r[2:4] != rows[i - 1][2:4])
    ]


def errors(run: dict[str, Any]) -> dict[str, Any]:
    """The ETA's and the linear guess' errors at each point, by progress and by time."""
    total = run["total_s"]
    samples = [s for s in run["samples"] if s[2] > 0]
    out: dict[str, Any] = {
        "machine": run["machine"],
        "wall_s": round(total, 1),
        "planner_idle_s": round(run["planner_idle_s"], 1),
    }
    for kind in ("progress", "time"):
        points: dict[str, Any] = {}
        for point in POINTS:
            if kind == "progress":  # the first report at or past p % of the file
                chosen = next((s for s in samples if s[2] >= point), None)
            else:  # the last report before p % of the print's true length
                chosen = next((s for s in reversed(samples) if s[0] <= point * total), None)
            if chosen is None:
                points[f"{point:.0%}"] = None
                continue
            elapsed, eta, fraction, _acked = chosen
            remaining = total - elapsed
            linear = elapsed * (1 - fraction) / fraction
            points[f"{point:.0%}"] = {
                "eta": None if eta is None else round((eta - remaining) / remaining, 4),
                "linear": round((linear - remaining) / remaining, 4),
            }
        out[kind] = points
    return out


def _pct(value: float | None) -> str:
    return f"{'-':>8}" if value is None else f"{value * 100:+7.1f}%"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gcode", type=Path, help="print this file instead of slicing the box")
    ap.add_argument("--sim", type=float, default=20.0, help="times faster than real time")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--record", type=Path, help="keep each run's trace in this folder")
    ap.add_argument("--machines", default=",".join(MACHINES), help="which true machines")
    ap.add_argument("--serial", action="store_true", help="one machine after the other")
    args = ap.parse_args()
    chosen = {name: MACHINES[name] for name in args.machines.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        gcode = args.gcode or slice_part(Path(tmp))
        if args.serial:
            runs = [await print_on(name, m, gcode, args.sim) for name, m in chosen.items()]
        else:
            runs = list(
                await asyncio.gather(
                    *(print_on(name, m, gcode, args.sim) for name, m in chosen.items())
                )
            )
        if args.record:
            args.record.mkdir(parents=True, exist_ok=True)
            settings = load_settings()
            plan = plan_file(gcode, settings.printer_profiles["generic-220"])
            for r in runs:
                print(f"recorded {record(r, plan, args.sim, args.record)}", file=sys.stderr)
    results = [errors(r) for r in runs]
    if args.json:
        print(json.dumps({"sim_speed": args.sim, "results": results}, indent=2))
        return
    print(f"ETA error = (eta - true remaining) / true remaining, sim x{args.sim:g};")
    print("eta: the driver's; linear: elapsed x (1 - f) / f, the drivers' guess before")
    for kind, title in (
        ("progress", "at p % progress (the share of the file the driver reports)"),
        ("time", "at p % of the print's true length"),
    ):
        print(f"\n{title}")
        print(f"{'machine':<8} {'wall s':>7}  " + "  ".join(f"{f'{p:.0%}':>17}" for p in POINTS))
        print(f"{'':<8} {'':>7}  " + "  ".join(f"{'eta':>8} {'linear':>8}" for _ in POINTS))
        for r in results:
            cells = []
            for p in POINTS:
                e = r[kind][f"{p:.0%}"]
                cells.append(
                    f"{'-':>8} {'-':>8}" if e is None else f"{_pct(e['eta'])} {_pct(e['linear'])}"
                )
            print(f"{r['machine']:<8} {r['wall_s']:>7}  " + "  ".join(cells))
    print(
        "\nplanner idle (the host did not keep up), wall s: "
        + ", ".join(f"{r['machine']} {r['planner_idle_s']}" for r in results)
    )


if __name__ == "__main__":
    asyncio.run(main())
