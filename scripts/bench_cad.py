#!/usr/bin/env python3
"""CAD benchmark: build time and triangle count per part family.

Each family's example spec is built a few times; the table shows the median build time, its
ratio to building a plain 20 mm cube in the same run (the reference, so numbers compare across
machines), the triangles, the printability check and the preview time. Usage:
    python scripts/bench_cad.py [--repeat N] [--family NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from printforge.geometry import build_mesh
from printforge.geometry.examples import EXAMPLES, example_spec
from printforge.geometry.preview import render_preview
from printforge.geometry.printability import analyse
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--family", action="append", choices=sorted(EXAMPLES))
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    profile = PrinterProfile(name="bench-250", bed_x=250, bed_y=250, max_z=250)
    cube = DesignSpec.model_validate(
        {"name": "cube", "parts": [{"kind": "box", "size": [20, 20, 20]}]}
    )
    reference = _median_s(lambda: build_mesh(cube), max(args.repeat, 5))
    print(f"reference: 20 mm cube builds in {reference * 1000:.2f} ms\n")
    head = (
        f"{'family':15s} {'build ms':>9s} {'x cube':>8s} {'triangles':>10s} "
        f"{'bodies':>6s} {'check ms':>9s} {'preview ms':>10s}  watertight"
    )
    print(head)
    print("-" * len(head))
    total = 0.0
    failures = 0
    for kind in args.family or list(EXAMPLES):
        spec = example_spec(kind)
        built = _median_s(lambda spec=spec: build_mesh(spec, profile), args.repeat)
        mesh = build_mesh(spec, profile)
        check = _median_s(lambda mesh=mesh: analyse(mesh, profile), 1)
        preview = _median_s(lambda mesh=mesh: render_preview(mesh, (640, 480)), 1)
        total += built
        failures += not mesh.is_watertight
        print(
            f"{kind:15s} {built * 1000:9.1f} {built / reference:8.1f} {len(mesh.faces):10d} "
            f"{mesh.metadata['bodies']:6d} {check * 1000:9.1f} {preview * 1000:10.1f}  "
            f"{'yes' if mesh.is_watertight else 'NO'}"
        )
    print(f"\nall families: {total * 1000:.0f} ms of building, {total / reference:.0f} x cube")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
