"""Checks of the measuring itself, on a hand-written G-code file whose answers are known.

The part is a strip 10 mm long and exactly four lines wide (w + 3 × spacing, with the flow
model's spacing w − h·(1 − π/4)), three layers of 0.2 mm. Its lines run past both ends of the
strip, so a full layer covers it completely.

- layer 1 (absolute E, G92 resets): the four lines and a full-circle G2 skirt of radius 8 around
  the strip: everything covered, nothing twice, the arc as long as the circle;
- layer 2 (relative E): the second line left out: a gap of 2 × spacing − w along the whole strip,
  a wall void of that width × 10 mm;
- layer 3 (top): retracts 0.2 mm of filament before the first line and never restores it: the
  first 0.2 / (E per mm) mm of that line are dry; the second line printed twice (two paths); the
  third line broken for 1 mm. Two top-surface pinholes: the speck in the break, and the bare edge
  the dry stretch leaves (it reaches a whole spacing, 0.41 mm, into the strip).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import manifold3d as m3d
import numpy as np

from .gcode import read_gcode
from .metrics import MeasureSettings, SectionStack, analyse
from .models import _mesh

__all__ = ["run_selfcheck"]

W, H, FIL = 0.45, 0.2, 1.75
SPACING = W - H * (1 - math.pi / 4)
WIDTH = W + 3 * SPACING
LENGTH = 10.0
X0, Y0 = 50.0, 50.0
E_PER_MM = SPACING * H / (math.pi * FIL**2 / 4)
RETRACT = 0.2


def _write(path: Path) -> None:
    ys = [Y0 + W / 2 + k * SPACING for k in range(4)]
    xa, xb = X0 - 1.0, X0 + LENGTH + 1.0
    out = ["G21", "G90", "M82", "G92 E0", "M107"]
    e = 0.0

    def line_abs(y: float) -> None:
        nonlocal e
        out.append(f"G0 X{xa:.4f} Y{y:.4f} F9000")
        e += (xb - xa) * E_PER_MM
        out.append(f"G1 X{xb:.4f} Y{y:.4f} E{e:.5f} F1800")

    # layer 1: absolute E
    out.append(f"G1 Z{H:.3f} F600")
    cx, cy, r = X0 + LENGTH / 2, Y0 + WIDTH / 2, 8.0
    out.append(f"G0 X{cx + r:.4f} Y{cy:.4f}")
    e += 2 * math.pi * r * E_PER_MM
    out.append(f"G2 X{cx + r:.4f} Y{cy:.4f} I{-r:.4f} J0 E{e:.5f} F1800")
    for y in ys:
        line_abs(y)
    out.append("G92 E0")
    # layer 2: relative E, second line left out
    out.append("M83")
    out.append(f"G1 Z{2 * H:.3f} F600")
    for k in (0, 2, 3):
        out.append(f"G0 X{xa:.4f} Y{ys[k]:.4f} F9000")
        out.append(f"G1 X{xb:.4f} Y{ys[k]:.4f} E{(xb - xa) * E_PER_MM:.5f} F1800")
    # layer 3: a retraction never restored, a line twice, a broken line
    out.append(f"G1 E-{RETRACT:.3f} F2100")
    out.append(f"G1 Z{3 * H:.3f} F600")
    for k in (0, 1, 1, 3):
        out.append(f"G0 X{xa:.4f} Y{ys[k]:.4f} F9000")
        out.append(f"G1 X{xb:.4f} Y{ys[k]:.4f} E{(xb - xa) * E_PER_MM:.5f} F1800")
    mid = X0 + LENGTH / 2
    out.append(f"G0 X{xa:.4f} Y{ys[2]:.4f} F9000")
    out.append(f"G1 X{mid - 0.5:.4f} Y{ys[2]:.4f} E{(mid - 0.5 - xa) * E_PER_MM:.5f} F1800")
    out.append(f"G0 X{mid + 0.5:.4f} Y{ys[2]:.4f} F9000")
    out.append(f"G1 X{xb:.4f} Y{ys[2]:.4f} E{(xb - mid - 0.5) * E_PER_MM:.5f} F1800")
    path.write_text("\n".join(out) + "\n")


def run_selfcheck(px: float = 0.05) -> list[str]:
    """Run the checks; returns the failures (empty when all pass) after printing each result."""
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    mesh = _mesh(m3d.Manifold.cube([LENGTH, WIDTH, 3 * H]).translate([X0, Y0, 0]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "known.gcode"
        _write(path)
        tp = read_gcode(path)
    ms = MeasureSettings(line_width=W, filament_diameter=FIL, px=px)
    an = analyse(SectionStack(mesh), {"known": tp}, (X0 - 10, Y0 - 10), ms)
    l1, l2, l3 = an.layers["known"]
    gap = 2 * SPACING - W
    dry = RETRACT / E_PER_MM
    tol_area = 2 * px * LENGTH  # one pixel row along each edge of a 10 mm strip

    check(
        abs(l1.extruded_mm - (2 * math.pi * 8 + 4 * (LENGTH + 2))) < 0.05,
        f"layer 1: arc and lines {l1.extruded_mm:.2f} mm of path "
        f"(expected {2 * math.pi * 8 + 4 * (LENGTH + 2):.2f})",
    )
    check(
        l1.covered_pct > 99.9 and l1.doubled_pct < 0.1 and l1.wall_void_mm2 == 0,
        f"layer 1: covered {l1.covered_pct:.2f} %, twice {l1.doubled_pct:.2f} %, "
        f"void {l1.wall_void_mm2:.3f} mm²",
    )
    exp_cov = 100 * (1 - gap / WIDTH)
    check(
        abs(l2.covered_pct - exp_cov) < 100 * px / WIDTH,
        f"layer 2: covered {l2.covered_pct:.2f} % (expected {exp_cov:.2f})",
    )
    check(
        abs(l2.wall_void_mm2 - gap * LENGTH) < tol_area,
        f"layer 2: wall void {l2.wall_void_mm2:.3f} mm² (expected {gap * LENGTH:.3f})",
    )
    check(
        abs(tp.dry_total_mm - dry) < 1e-3 and abs(l3.dry_mm - dry) < 1e-3,
        f"layer 3: dry {l3.dry_mm:.3f} mm, file {tp.dry_total_mm:.3f} mm (expected {dry:.3f})",
    )
    exp_twice = 100 * (W - 2 * ms.core_tol) / WIDTH
    check(
        abs(l3.doubled_pct - exp_twice) < 100 * 2 * px / WIDTH,
        f"layer 3: twice {l3.doubled_pct:.2f} % (expected {exp_twice:.2f})",
    )
    check(l3.pinholes == 2, f"layer 3: {l3.pinholes} top-surface pinholes (expected 2)")
    check(l2.pinholes == 0 and l1.pinholes == 0, "layers 1-2: no pinholes (not top surfaces)")
    # The dry stretch lays nothing: the strip's edge is bare below the second line for the
    # dry length inside the strip (dry - 1 mm), plus the speck of the break (~0.2 mm²).
    bare = (100 - l3.covered_pct) / 100 * WIDTH * LENGTH
    exp_bare = SPACING * (dry - 1.0) + 0.2
    check(
        abs(bare - exp_bare) < 0.25,
        f"layer 3: {bare:.2f} mm² bare (about {exp_bare:.2f}: the dry stretch and the break)",
    )
    check(np.isclose(l1.h, H) and np.isclose(l3.z, 3 * H), "layer heights read from Z moves")
    return failures
