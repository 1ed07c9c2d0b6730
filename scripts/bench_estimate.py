#!/usr/bin/env python3
"""Print-time estimates against PrusaSlicer's own, measured in the same run.

Slices a model with PrusaSlicer through printforge's adapter (the printer's limits passed as
PrusaSlicer's machine limits), reads PrusaSlicer's `; estimated printing time (normal mode)`
from its file, and compares:
  - `analysis`: printforge's estimator over the whole file (`gcode.timing.estimate_time`), the
    figure `gcode-info`, the slicer stage and the gate report;
  - `online`: the same model fed one move at a time with a one-move look-ahead
    (`gcode.timing.OnlinePlanner`), as the virtual printer and the simulators run it.
Also the CPU time of the analysis (the gate's work) on the file and on four copies of it.

Usage: python scripts/bench_estimate.py [MODEL.stl] [--printer NAME] [--json]
       e.g. python scripts/bench_estimate.py ../shared/models/3DBenchy.stl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from printforge.gcode.analysis import analyse_gcode, parse_duration  # noqa: E402
from printforge.gcode.reader import Reader  # noqa: E402
from printforge.gcode.source import split_lines  # noqa: E402
from printforge.gcode.syntax import parse_line  # noqa: E402
from printforge.gcode.timing import OnlinePlanner  # noqa: E402
from printforge.models.printer import PrinterProfile  # noqa: E402
from printforge.models.request import SliceOverrides  # noqa: E402
from printforge.settings import load_settings  # noqa: E402
from printforge.slicing.engine import make_engine  # noqa: E402
from printforge.slicing.params import resolve_params  # noqa: E402


def online_estimate(text: str, profile: PrinterProfile) -> float:
    """Seconds as a machine fed one move at a time plans them (dwells included)."""
    reader = Reader(profile)
    planner = OnlinePlanner(profile)
    prev = reader.state.machine()
    total = 0.0
    for number, raw in enumerate(split_lines(text), 1):
        line = parse_line(raw, number)
        if line is None:
            continue
        step = reader.step(line)
        if step.dwell_s:
            planner.reset()
            total += step.dwell_s
        for point in step.points:
            d = (point[0] - prev[0], point[1] - prev[1], point[2] - prev[2], point[3] - prev[3])
            seconds, saved = planner.add(d, step.feed, step.accel)
            total += seconds - saved
            prev = point
    return total


def _default_model() -> Path:
    """3DBenchy from the shared models next to the checkout (or next to its worktree folder)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared/models/3DBenchy.stl").is_file():
            return base / "shared/models/3DBenchy.stl"
    return ROOT.parent / "shared/models/3DBenchy.stl"


def cpu_seconds(path: Path, profile: PrinterProfile, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        analyse_gcode(path, profile)
        best = min(best, time.process_time() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default=str(_default_model()))
    parser.add_argument(
        "--printer", default=None, help="printer profile (default: default_printer)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("prusa-slicer") is None:
        print("bench_estimate: needs the prusa-slicer command line", file=sys.stderr)
        return 2
    settings = load_settings()
    profile = settings.printer_profile(args.printer or settings.default_printer)
    material = settings.material("PLA")
    params = resolve_params(
        settings.slicer,
        profile,
        material,
        SliceOverrides(layer_height=0.2, perimeters=2, infill_percent=20),
    )
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        out = Path(tmp) / "model.gcode"
        engine = make_engine("prusaslicer", settings.slicer)
        asyncio.run(engine.slice(Path(args.model), out, params, profile, material))
        text = out.read_text()
        found = re.search(r"^; estimated printing time \(normal mode\) = (.+)$", text, re.M)
        if found is None:
            print("bench_estimate: PrusaSlicer wrote no estimate", file=sys.stderr)
            return 1
        reference = parse_duration(found.group(1))
        analysis = analyse_gcode(out, profile)
        online = online_estimate(text, profile)
        big = Path(tmp) / "four.gcode"
        big.write_text(text * 4)
        result = {
            "model": Path(args.model).name,
            "printer": profile.name,
            "prusaslicer_s": reference,
            "analysis_s": analysis.estimated_time_s,
            "analysis_ratio": round(analysis.estimated_time_s / reference, 4),
            "online_s": round(online, 1),
            "online_ratio": round(online / reference, 4),
            "file_mb": round(out.stat().st_size / 1e6, 2),
            "analysis_cpu_s": round(cpu_seconds(out, profile), 3),
            "four_copies_mb": round(big.stat().st_size / 1e6, 2),
            "four_copies_cpu_s": round(cpu_seconds(big, profile, repeat=1), 3),
        }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['model']} on {result['printer']} ({result['file_mb']} MB of G-code)")
    print(f"  PrusaSlicer's own estimate  {reference:9.1f} s")
    ratio = result["analysis_ratio"]
    print(f"  analysis (whole file)       {analysis.estimated_time_s:9.1f} s  ratio {ratio:.4f}")
    print(f"  online (one move at a time) {online:9.1f} s  ratio {result['online_ratio']:.4f}")
    print(
        f"  analysis CPU: {result['analysis_cpu_s']} s; {result['four_copies_mb']} MB:"
        f" {result['four_copies_cpu_s']} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
