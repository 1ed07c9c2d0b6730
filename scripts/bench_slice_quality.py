#!/usr/bin/env python3
"""Print quality of the built-in slicer against PrusaSlicer, layer by layer (issue 13).

Builds a set of test parts (scripts/slice_quality/models.py), adds 3DBenchy and the XYZ cube from
`../shared/models` when they are there, slices each with `printforge slice` (the built-in engine,
as a user runs it) and with `prusa-slicer` on matched settings (scripts/slice_quality/settings.py),
then reads both G-code files with its own reader and rasterises every layer's paths at their own
widths against the model's cross-section at the layer's mid-height
(scripts/slice_quality/metrics.py has the rules). Prints a table per model, the worst layer of
each metric and one PASS/FAIL line per target of issue 13.

    python3 scripts/bench_slice_quality.py [--quick] [--models wall-2.0,benchy] [--out DIR]

Wall time and peak RSS are the whole process of each slicer under `/usr/bin/time -v`, as ratios to
PrusaSlicer's in the same run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slice_quality.gcode import Toolpaths, read_gcode
from slice_quality.metrics import (
    LayerContext,
    LayerRaster,
    LayerResult,
    MeasureSettings,
    SectionStack,
    analyse,
)
from slice_quality.models import BUILT, SHARED, build, find_shared_models, load_model
from slice_quality.render import render_layer
from slice_quality.selfcheck import run_selfcheck
from slice_quality.settings import Matched, load_matched, prusaslicer_ini

REPO = Path(__file__).resolve().parent.parent
ENGINES = ("builtin", "prusaslicer")
TIME = "/usr/bin/time"
MIN_TARGET_AREA = 1.0  # mm²: smaller sections are a handful of pixels; per-layer targets skip them


@dataclass
class Run:
    wall_s: float
    peak_mb: float
    gcode: Path


@dataclass
class ModelResult:
    name: str
    runs: dict[str, Run]
    paths: dict[str, Toolpaths]
    layers: dict[str, list[LayerResult]]
    missing: dict[str, list[float]]
    offset: dict[str, tuple[float, float]] = field(default_factory=dict)


def run_timed(cmd: list[str], env: dict[str, str] | None, log: Path) -> tuple[float, float]:
    """Run `cmd` under /usr/bin/time -v; (wall seconds, peak RSS MB) of the whole process."""
    tfile = log.with_suffix(".time")
    with open(log, "w") as out:
        proc = subprocess.run(
            [TIME, "-v", "-o", str(tfile), *cmd], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}); see {log}")
    text = tfile.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if wall is None or rss is None:
        raise RuntimeError(f"cannot read {tfile}")
    secs = 0.0
    for part in wall.group(1).split(":"):
        secs = secs * 60 + float(part)
    return secs, int(rss.group(1)) / 1024


def slice_model(
    stl: Path, work: Path, name: str, m: Matched, ini: Path, repeat: int, reuse: bool = False
) -> dict[str, Run]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cx, cy = m.bed_centre
    cmds = {
        "builtin": [
            sys.executable,
            "-m",
            "printforge",
            "slice",
            str(stl),
            "--out",
            str(work / f"{name}.builtin.gcode"),
            "--data-dir",
            str(work / "data"),
            *m.builtin_args(),
        ],
        "prusaslicer": [
            "prusa-slicer",
            "--loglevel",
            "1",
            "--export-gcode",
            "--load",
            str(ini),
            "--center",
            f"{cx:g},{cy:g}",
            "--output",
            str(work / f"{name}.prusaslicer.gcode"),
            str(stl),
        ],
    }
    timing = work / f"{name}.timing.json"
    best: dict[str, tuple[float, float]] = {}
    if reuse:
        best = {e: tuple(v) for e, v in json.loads(timing.read_text()).items()}  # type: ignore[misc]
    else:
        for _ in range(repeat):
            for eng in ENGINES:  # alternate, so a burst of load hits both
                wall, rss = run_timed(cmds[eng], env, work / f"{name}.{eng}.log")
                old = best.get(eng)
                best[eng] = (min(wall, old[0]), min(rss, old[1])) if old else (wall, rss)
        timing.write_text(json.dumps(best))
    return {e: Run(best[e][0], best[e][1], work / f"{name}.{e}.gcode") for e in ENGINES}


def place(mesh, m: Matched):  # type: ignore[no-untyped-def]
    """Where both slicers put the part: its box centred on the bed, resting on it."""
    lo, hi = mesh.bounds
    cx, cy = m.bed_centre
    mesh = mesh.copy()
    mesh.apply_translation([cx - (lo[0] + hi[0]) / 2, cy - (lo[1] + hi[1]) / 2, -lo[2]])
    return mesh


def extrusion_offset(paths: Toolpaths, mesh) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Centre of the extrusion above the first layer (no skirt) minus the placed model's centre."""
    zs = paths.layer_zs()
    if len(zs) < 2:
        return (math.nan, math.nan)
    sel = paths.z >= zs[1] - 1e-6
    xs = np.concatenate([paths.x0[sel], paths.x1[sel]])
    ys = np.concatenate([paths.y0[sel], paths.y1[sel]])
    lo, hi = mesh.bounds
    return (
        float((xs.min() + xs.max()) / 2 - (lo[0] + hi[0]) / 2),
        float((ys.min() + ys.max()) / 2 - (lo[1] + hi[1]) / 2),
    )


def write_csv(res: ModelResult, path: Path) -> None:
    """Every layer's figures for both engines, one row per engine and layer."""
    cols = [f.name for f in dataclasses.fields(LayerResult)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["engine", *cols])
        for eng, layers in res.layers.items():
            for r in layers:
                w.writerow([eng, *(round(getattr(r, c), 4) for c in cols)])


def weighted(layers: list[LayerResult], attr: str) -> float:
    area = sum(r.section_mm2 for r in layers)
    if area == 0:
        return math.nan
    vals = [(getattr(r, attr), r.section_mm2) for r in layers]
    return sum(v * a for v, a in vals if not math.isnan(v)) / area


def overhang_stats(layers: list[LayerResult]) -> tuple[float, float, float]:
    total = sum(r.overhang_mm for r in layers)
    if total == 0:
        return 0.0, math.nan, math.nan
    speed = sum(r.overhang_speed * r.overhang_mm for r in layers if r.overhang_mm) / total
    fan = sum(r.overhang_fan * r.overhang_mm for r in layers if r.overhang_mm) / total
    return total, speed, fan


def fmt(v: float, spec: str = ".1f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def settings_check(paths: dict[str, Toolpaths], m: Matched) -> list[str]:
    """What each file shows of the settings that should match."""
    out = []
    for eng, p in paths.items():
        zs = p.layer_zs()
        first_on = next((z for z, f in p.fan_changes if f > 0), math.nan)
        layer_of = int(np.searchsorted(zs, first_on - 1e-6)) + 1 if not math.isnan(first_on) else 0
        hot = [t for c, t in p.temperatures if c in ("M104", "M109") and t > 0]
        bed = [t for c, t in p.temperatures if c in ("M140", "M190") and t > 0]
        retr = np.round(np.array(p.retractions), 3)
        retr_mode = (
            float(np.bincount((retr * 1000).astype(int)).argmax()) / 1000 if len(retr) else 0.0
        )
        area = m.filament_diameter**2 * math.pi / 4
        h = np.diff(np.concatenate([[0.0], zs]))
        hz = dict(zip(np.round(zs, 4), h, strict=True))
        lh = np.array([hz[round(z, 4)] for z in p.z])
        with np.errstate(invalid="ignore", divide="ignore"):
            w = area * p.filament / p.length / lh + lh * (1 - math.pi / 4)
        w = w[np.isfinite(w)]
        out.append(
            f"  {eng:<11} layers {len(zs)} (first {zs[0]:.2f}, then {zs[1] - zs[0]:.2f} mm)  "
            f"median width {np.median(w):.3f}  hotend {sorted(set(hot))}  bed {sorted(set(bed))}  "
            f"fan from layer {layer_of}  retract {retr_mode} mm ×{len(retr)}"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated subset (" + ",".join([*BUILT, *SHARED]) + ")")
    ap.add_argument("--quick", action="store_true", help="skip 3DBenchy and the XYZ cube")
    ap.add_argument("--out", type=Path, help="keep G-code here and draw each model's worst layer")
    ap.add_argument("--printer", default="generic-220")
    ap.add_argument("--material", default="PLA")
    ap.add_argument("--px", type=float, default=0.05, help="pixel size, mm (default 0.05)")
    ap.add_argument("--repeat", type=int, default=1, help="slice each N times; best time counts")
    ap.add_argument("--models-dir", type=Path, help="where 3DBenchy.stl and XYZ-Cube.stl are")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --out, measure the G-code and timings an earlier run left there again",
    )
    ap.add_argument("--draw-z", default="", help="with --out, also draw these layers (z, mm)")
    ap.add_argument(
        "--self-check",
        action="store_true",
        help="check the measuring on a hand-written G-code file with known answers, then exit",
    )
    args = ap.parse_args()

    if args.self_check:
        print("self-check: a hand-written file with a known gap, dry move, double line, pinhole")
        failures = run_selfcheck(args.px)
        print("self-check", "FAILED" if failures else "passed")
        return 1 if failures else 0

    if not Path(TIME).exists():
        print(f"{TIME} is missing: install Debian's `time` package (scripts/setup does)")
        return 2
    if shutil.which("prusa-slicer") is None:
        print("prusa-slicer is missing (scripts/setup installs it)")
        return 2

    m = load_matched(REPO, args.printer, args.material)
    ms = MeasureSettings(line_width=m.line_width, filament_diameter=m.filament_diameter, px=args.px)
    names = [*BUILT, *SHARED]
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in BUILT and n not in SHARED]
        if unknown:
            print(f"unknown model(s): {', '.join(unknown)}")
            return 2
    if args.quick:
        names = [n for n in names if n not in SHARED]
    shared_dir = args.models_dir or find_shared_models(REPO)
    draw_z = [float(z) for z in args.draw_z.split(",") if z.strip()]
    notes: list[str] = []

    work = args.out or Path(tempfile.mkdtemp(prefix="slicebench-"))
    work.mkdir(parents=True, exist_ok=True)
    ini = work / "prusaslicer.ini"
    ini.write_text(prusaslicer_ini(m))

    meshes = {}
    for name in names:
        if name in SHARED:
            path = shared_dir / SHARED[name] if shared_dir else None
            if path is None or not path.exists():
                notes.append(f"{name}: skipped, {SHARED[name]} not found (../shared/models)")
                continue
            meshes[name] = load_model(path)
        else:
            meshes[name] = build(name)

    t_start = time.perf_counter()
    results: list[ModelResult] = []
    for name, mesh in meshes.items():
        stl = work / f"{name}.stl"
        mesh.export(stl)
        reuse = (
            args.reuse
            and all((work / f"{name}.{e}.gcode").exists() for e in ENGINES)
            and (work / f"{name}.timing.json").exists()
        )
        if args.reuse and not reuse:
            notes.append(f"{name}: sliced afresh (nothing to reuse in {work})")
        try:
            runs = slice_model(stl, work, name, m, ini, args.repeat, reuse)
        except RuntimeError as err:
            # A slicer that fails on a part is a finding, not a reason to lose the others.
            notes.append(f"{name}: not measured: {err}")
            continue
        paths = {e: read_gcode(r.gcode) for e, r in runs.items()}
        placed = place(mesh, m)
        stack = SectionStack(placed)
        lattice = (float(placed.bounds[0][0]) - 5.0, float(placed.bounds[0][1]) - 5.0)
        worst_pick: dict[str, tuple[float, LayerContext, dict[str, LayerRaster]]] = {}
        pending: dict[float, dict[str, LayerRaster]] = {}

        def keep_worst(
            eng: str,
            ctx: LayerContext,
            lr: LayerRaster,
            pending: dict[float, dict[str, LayerRaster]] = pending,
            worst_pick: dict = worst_pick,  # type: ignore[type-arg]
            name: str = name,
        ) -> None:
            # Hold each layer until both engines have drawn it; keep the one where the built-in
            # slicer covers least compared with PrusaSlicer (then doubles most).
            if args.out is None:
                return
            got = pending.setdefault(lr.result.z, {})
            got[eng] = lr
            if len(got) < len(ENGINES):
                return
            del pending[lr.result.z]
            if any(abs(lr.result.z - z) < 1e-3 for z in draw_z):
                render_layer(ctx, got, args.out / f"{name}.z{lr.result.z:.2f}.png", name)
            b, p = got["builtin"].result, got["prusaslicer"].result
            if b.section_mm2 < MIN_TARGET_AREA:
                return
            score = (p.covered_pct - b.covered_pct) + max(b.doubled_pct - p.doubled_pct, 0) / 2
            if "best" not in worst_pick or score > worst_pick["best"][0]:
                worst_pick["best"] = (score, ctx, got)

        an = analyse(stack, paths, lattice, ms, keep_worst)
        res = ModelResult(name, runs, paths, an.layers, an.missing)
        for e, p in paths.items():
            res.offset[e] = extrusion_offset(p, placed)
        results.append(res)
        if args.out is not None:
            write_csv(res, args.out / f"{name}.layers.csv")
        if args.out is not None and "best" in worst_pick:
            _score, ctx, got = worst_pick["best"]
            render_layer(ctx, got, args.out / f"{name}.worst-layer.png", name)
        print(f"measured {name} ({time.perf_counter() - t_start:.0f} s so far)", file=sys.stderr)

    report(results, m, ms, notes)
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(results: list[ModelResult], m: Matched, ms: MeasureSettings, notes: list[str]) -> None:
    print(
        f"slice quality: built-in vs PrusaSlicer, {m.printer_name} + {m.material_name}, "
        f"{m.get('layer_height')} mm layers (first {m.get('first_layer_height')}), "
        f"{int(m.get('perimeters'))} perimeters, {m.infill:g} % {m.pattern}, "
        f"{m.line_width} mm lines, pixels {ms.px} mm"
    )
    for n in notes:
        print("note:", n)
    print()
    if results:
        print("matched settings, as the files show them (first model):")
        for line in settings_check(results[0].paths, m):
            print(line)
        print()
    head = (
        f"{'model':<12} {'engine':<11} {'layers':>6} {'cover%':>7} {'twice%':>7} "
        f"{'void mm²':>8} {'dry mm':>7} {'ovh mm':>7} {'ovh mm/s':>8} {'ovh fan':>7} "
        f"{'pinholes':>8} {'wall s':>7} {'× PS':>5} {'RSS MB':>7} {'× PS':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ps_run = r.runs["prusaslicer"]
        for e in ENGINES:
            ly = r.layers[e]
            run = r.runs[e]
            ov, ov_speed, ov_fan = overhang_stats(ly)
            print(
                f"{r.name:<12} {e:<11} {len(ly):>6} {fmt(weighted(ly, 'covered_pct')):>7} "
                f"{fmt(weighted(ly, 'doubled_pct')):>7} "
                f"{fmt(max((x.wall_void_mm2 for x in ly), default=0.0), '.3f'):>8} "
                f"{fmt(r.paths[e].dry_total_mm):>7} {fmt(ov):>7} {fmt(ov_speed, '.0f'):>8} "
                f"{fmt(ov_fan * 100 if not math.isnan(ov_fan) else math.nan, '.0f'):>7} "
                f"{sum(x.pinholes for x in ly):>8} {run.wall_s:>7.2f} "
                f"{run.wall_s / ps_run.wall_s:>5.2f} {run.peak_mb:>7.0f} "
                f"{run.peak_mb / ps_run.peak_mb:>5.2f}"
            )
    print()
    print("worst layer per metric (z mm: built-in | PrusaSlicer at that z):")
    for r in results:
        b = {round(x.z, 4): x for x in r.layers["builtin"]}
        p = {round(x.z, 4): x for x in r.layers["prusaslicer"]}
        common = [z for z in b if z in p and b[z].section_mm2 >= MIN_TARGET_AREA]
        lines = []
        if common:
            z = max(common, key=lambda z: p[z].covered_pct - b[z].covered_pct)
            lines.append(f"covered {b[z].covered_pct:.1f} | {p[z].covered_pct:.1f} % at z {z:.2f}")
            z = max(common, key=lambda z: b[z].doubled_pct - p[z].doubled_pct)
            lines.append(f"twice {b[z].doubled_pct:.1f} | {p[z].doubled_pct:.1f} % at z {z:.2f}")
            z = max(common, key=lambda z: b[z].wall_void_mm2)
            lines.append(
                f"void {b[z].wall_void_mm2:.3f} | {p[z].wall_void_mm2:.3f} mm² at z {z:.2f}"
            )
            z = max(common, key=lambda z: b[z].pinholes - p[z].pinholes)
            lines.append(f"pinholes {b[z].pinholes} | {p[z].pinholes} at z {z:.2f}")
            z = max(common, key=lambda z: b[z].overhang_mm)
            if b[z].overhang_mm > 0:
                lines.append(
                    f"overhang {b[z].overhang_mm:.0f} mm at {fmt(b[z].overhang_speed, '.0f')} mm/s"
                    f" | {p[z].overhang_mm:.0f} mm at {fmt(p[z].overhang_speed, '.0f')} mm/s"
                    f" at z {z:.2f}"
                )
            z = max(common, key=lambda z: b[z].dry_mm)
            if b[z].dry_mm > 0:
                lines.append(f"dry {b[z].dry_mm:.1f} | {p[z].dry_mm:.1f} mm at z {z:.2f}")
        only = sorted(set(b) ^ set(p))
        if only:
            lines.append(f"layers in one file only: {', '.join(f'{z:.2f}' for z in only[:6])}")
        for e in ENGINES:
            if r.missing[e]:
                lines.append(f"{e} extrudes where the model has no section: z {r.missing[e][:4]}")
            dx, dy = r.offset[e]
            if not math.isnan(dx) and math.hypot(dx, dy) > 0.2:
                lines.append(f"{e} part off centre by ({dx:.2f}, {dy:.2f}) mm: check placement")
        print(f"  {r.name}: " + "; ".join(lines))
    print()
    targets(results)


def targets(results: list[ModelResult]) -> None:
    def line(ok: bool, text: str, bad: list[str]) -> None:
        print(f"{'PASS' if ok else 'FAIL'}  {text}" + (f"  — {'; '.join(bad)}" if bad else ""))

    bad = [
        f"{r.name} {r.paths['builtin'].dry_total_mm:.1f} mm"
        for r in results
        if r.paths["builtin"].dry_total_mm > 1e-6
    ]
    line(not bad, "dry extrusion 0 mm on every model", bad)

    bad_cov, bad_twice = [], []
    for r in results:
        b = {round(x.z, 4): x for x in r.layers["builtin"]}
        p = {round(x.z, 4): x for x in r.layers["prusaslicer"]}
        common = [z for z in b if z in p and p[z].section_mm2 >= MIN_TARGET_AREA]
        n_cov = [z for z in common if b[z].covered_pct < p[z].covered_pct - 1]
        n_tw = [z for z in common if b[z].doubled_pct > p[z].doubled_pct + 2]
        if n_cov:
            z = max(n_cov, key=lambda z: p[z].covered_pct - b[z].covered_pct)
            bad_cov.append(
                f"{r.name} {len(n_cov)}/{len(common)} layers (worst z {z:.2f}: "
                f"{b[z].covered_pct:.1f} vs {p[z].covered_pct:.1f})"
            )
        if n_tw:
            z = max(n_tw, key=lambda z: b[z].doubled_pct - p[z].doubled_pct)
            bad_twice.append(
                f"{r.name} {len(n_tw)}/{len(common)} layers (worst z {z:.2f}: "
                f"{b[z].doubled_pct:.1f} vs {p[z].doubled_pct:.1f})"
            )
        missing = set(p) - set(b)
        if missing:
            bad_cov.append(f"{r.name}: {len(missing)} layers missing")
    line(not bad_cov, "covered within 1 point of PrusaSlicer on every layer", bad_cov)
    line(not bad_twice, "laid twice ≤ PrusaSlicer + 2 points on every layer", bad_twice)

    bad = []
    for r in results:
        worst = max(r.layers["builtin"], key=lambda x: x.wall_void_mm2, default=None)
        if worst is not None and worst.wall_void_mm2 > 0.05:
            n = sum(x.wall_voids_over for x in r.layers["builtin"])
            bad.append(f"{r.name} {worst.wall_void_mm2:.2f} mm² at z {worst.z:.2f} ({n} voids)")
    line(not bad, "no void over 0.05 mm² in walls of ≥ 2 line widths", bad)

    bad = []
    for r in results:
        nb = sum(x.pinholes for x in r.layers["builtin"])
        npp = sum(x.pinholes for x in r.layers["prusaslicer"])
        if nb > npp:
            bad.append(f"{r.name} {nb} vs {npp}")
    line(not bad, "top-surface pinholes ≤ PrusaSlicer's", bad)

    benchy = next((r for r in results if r.name == "benchy"), None)
    if benchy is None:
        print("SKIP  Benchy wall time ≤ 1.0× and peak RSS ≤ 2× PrusaSlicer's (no Benchy in run)")
    else:
        b, p = benchy.runs["builtin"], benchy.runs["prusaslicer"]
        tr, mr = b.wall_s / p.wall_s, b.peak_mb / p.peak_mb
        line(tr <= 1.0, f"Benchy wall time ≤ 1.0× PrusaSlicer's ({tr:.2f}×)", [])
        line(mr <= 2.0, f"Benchy peak RSS ≤ 2× PrusaSlicer's ({mr:.2f}×)", [])


if __name__ == "__main__":
    sys.exit(main())
