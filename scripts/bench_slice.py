#!/usr/bin/env python3
"""Benchmark the built-in slicer against PrusaSlicer (and CuraEngine when installed), measured
in the same run on the same models and settings (0.2 mm layers, 2 perimeters, 20 % infill).

Each engine runs in its own child process so peak memory is that engine's alone:
  - built-in: the child's own peak RSS, and the wall time of the slicing call (imports and
    interpreter start-up are reported separately as `startup`);
  - external engines: the engine process's peak RSS and wall time (our adapter's model check
    and ini writing are excluded, they are printforge's cost, not the engine's).
Estimated time and filament: the built-in figures come from printforge's G-code analysis of its
own file; PrusaSlicer's from the comments PrusaSlicer writes, its own estimate. `gate_s` is the
time printforge's G-code analysis (the safety gate's work) takes on each engine's file.

Usage: python scripts/bench_slice.py [MODEL.stl ...] [--repeat N] [--json]
       e.g. python scripts/bench_slice.py ../shared/models/3DBenchy.stl \
                ../shared/models/XYZ-Cube.stl
A 20 mm cube built here is always included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, json, resource, sys, time
t0 = time.perf_counter()
from pathlib import Path
from printforge.models.request import SliceOverrides
from printforge.settings import load_settings
from printforge.slicing.engine import make_engine
from printforge.slicing.params import resolve_params
startup = time.perf_counter() - t0
engine_name, model, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
settings = load_settings()
profile = settings.printer_profile(settings.default_printer)
material = settings.material("PLA")
params = resolve_params(settings.slicer, profile, material,
                        SliceOverrides(layer_height=0.2, perimeters=2, infill_percent=20))
engine = make_engine(engine_name, settings.slicer)
result = asyncio.run(engine.slice(model, out, params, profile, material))
print(json.dumps({
    "startup_s": startup,
    "wall_s": result.process_s if result.process_s is not None else result.wall_s,
    "adapter_wall_s": result.wall_s,
    "engine_estimate_s": result.engine_estimate_s,
    "engine_filament_mm": result.engine_filament_mm,
    # This process's own high-water mark. ru_maxrss would not do: Linux carries the parent's
    # resident size at fork through exec into it, and this benchmark's parent has analysed
    # 3DBenchy's G-code by the time it starts the XYZ cube (237 MB reported for a 78 MB run).
    "self_rss_kb": int(next(ln.split()[1] for ln in open("/proc/self/status")
                            if ln.startswith("VmHWM:"))),
    "child_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


def run_engine(engine: str, model: Path, out: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, engine, str(model), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed on {model.name}:\n{proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["process_total_s"] = total
    data["peak_rss_mb"] = (
        data["self_rss_kb"] if engine == "builtin" else data["child_rss_kb"]
    ) / 1024
    return data


def analyse(path: Path) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from printforge.gcode.analysis import analyse_gcode
    from printforge.settings import load_settings

    settings = load_settings()
    t0 = time.perf_counter()
    a = analyse_gcode(path, settings.printer_profile(settings.default_printer))
    return {
        "layers": a.layers,
        "estimate_s": a.estimated_time_s,
        "filament_mm": a.filament_mm,
        "size_mb": a.size_bytes / 1e6,
        "gate_s": time.perf_counter() - t0,
    }


def available() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from printforge.settings import load_settings
    from printforge.slicing.engine import make_engine

    settings = load_settings()
    return [
        n
        for n in ("builtin", "prusaslicer", "curaengine")
        if make_engine(n, settings.slicer).available()
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="runs per engine; the best is kept")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    engines = available()
    if "prusaslicer" not in engines:
        print("prusa-slicer is not installed: no reference to compare with", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-slice-") as tmp:
        import trimesh

        cube = Path(tmp) / "cube20.stl"
        trimesh.creation.box((20, 20, 20)).export(cube)
        rows = []
        for model in [cube, *args.models]:
            results = {}
            for engine in engines:
                best = None
                for _ in range(max(1, args.repeat)):
                    out = Path(tmp) / f"{model.stem}.{engine}.gcode"
                    r = run_engine(engine, model, out)
                    if best is None or r["wall_s"] < best["wall_s"]:
                        best = r
                assert best is not None
                best.update(analyse(out))
                results[engine] = best
            rows.append((model.name, results))
    report = []
    for name, results in rows:
        ref = results["prusaslicer"]
        ref_est = ref["engine_estimate_s"] or ref["estimate_s"]
        ref_fil = ref["engine_filament_mm"] or ref["filament_mm"]
        for engine, r in results.items():
            report.append(
                {
                    "model": name,
                    "engine": engine,
                    "wall_s": round(r["wall_s"], 3),
                    "wall_ratio": round(r["wall_s"] / ref["wall_s"], 3),
                    "with_startup_ratio": round(
                        (r["wall_s"] + (r["startup_s"] if engine == "builtin" else 0))
                        / ref["wall_s"],
                        3,
                    ),
                    "peak_rss_mb": round(r["peak_rss_mb"], 1),
                    "rss_ratio": round(r["peak_rss_mb"] / ref["peak_rss_mb"], 3),
                    "gcode_mb": round(r["size_mb"], 2),
                    "layers": r["layers"],
                    "ref_layers": ref["layers"],
                    "estimate_s": r["estimate_s"]
                    if engine == "builtin"
                    else (r["engine_estimate_s"] or r["estimate_s"]),
                    "estimate_ratio": round(
                        (
                            r["estimate_s"]
                            if engine == "builtin"
                            else (r["engine_estimate_s"] or r["estimate_s"])
                        )
                        / ref_est,
                        3,
                    ),
                    "filament_mm": r["filament_mm"],
                    "filament_ratio": round(r["filament_mm"] / ref_fil, 3),
                    "startup_s": round(r["startup_s"], 2),
                    "gate_s": round(r["gate_s"], 3),
                }
            )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    cols = [
        "model",
        "engine",
        "wall_s",
        "wall_ratio",
        "with_startup_ratio",
        "peak_rss_mb",
        "rss_ratio",
        "gcode_mb",
        "gate_s",
        "layers",
        "ref_layers",
        "estimate_ratio",
        "filament_ratio",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in report:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    print(
        "\nratios are to PrusaSlicer in this run (wall, peak memory, its own estimate and"
        " filament figures); cpu count",
        os.cpu_count(),
        "load",
        ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
