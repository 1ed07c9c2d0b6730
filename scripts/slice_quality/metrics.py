"""Per-layer print-quality metrics of a G-code file against the model it was sliced from.

Every layer's extrusion paths are drawn at their own widths onto a pixel grid and compared with
the model's cross-section at the layer's mid-height. The rules, in the units of the settings:

- **Width of a stroke** from the filament it was given: the cross-section A = A_filament·dE/len.
  Where the stroke lies on the layer below it is a rounded rectangle of the layer's height h
  (PrusaSlicer's flow model): w = A/h + h·(1 − π/4). Where its centre line is more than half a
  nominal line width beyond the layer below's section it hangs in air and is a round strand:
  w = √(4A/π). Dry parts of a path (see `gcode`) lay nothing.
- **covered %**: share of the section's pixels inside at least one stroke.
- **laid twice %**: share of the section's pixels inside the *cores* of two passes. A core is the
  stroke narrowed by `core_tol` (0.025 mm) on each side, so strokes count as doubled only where
  they overlap by more than 0.05 mm: neighbouring lines at the flow model's spacing overlap by
  h·(1 − π/4) ≈ 0.043 mm and are not doubled.
  Two passes are two different paths, or the same path when the two covering points are more than
  `pass_gap` mm apart along it (the joint between consecutive segments is one pass).
- **wall void**: an uncovered connected region (8-connected pixels) of the section that lies
  wholly within 2 line widths of the boundary (the perimeters' band), or lies in a part of the
  section thinner on average than `thin_wall_widths` line widths (5 × 0.45 = 2.25 mm: no room for
  sparse infill between two perimeters a side; issue 13's hollow walls are 1.3–2.2 mm). Other
  uncovered regions are sparse-infill cells. Only voids in walls at least 2 line widths thick
  count. Thickness at a point is twice the largest distance to the boundary within 2 line widths
  of it, averaged over the region (so the thicker corners of a thin wall do not decide). A sliver
  along the outer surface that never reaches a quarter line width (0.11 mm) inside is the rounded
  edge of a strand, a dimensional error rather than a void (a round-cornered loop's corners, an
  overhanging outer loop drawn as a round strand), and is not counted. Only the part of the
  section over the layer below's section counts: strands in air (a bridge's, an overhang's) are
  round and leave gaps between them in every slicer; the overhang metric looks at those.
- **overhang perimeter**: chunks of path whose midpoint is inside the section within
  0.75·line_width of its boundary (the outermost loop), with more than half of the stroke's pixels
  outside the layer below's section.
- **top-surface pinhole**: an uncovered connected region of at least `pinhole_min_mm2` inside the
  top region (this layer's section minus the next layer's), that reaches more than half a line
  width from the section's boundary (the corner left by a round-cornered outer loop is not one).
  The size floor, 0.015 mm² (a speck about 0.14 mm across), is above the 0.005–0.01 mm² notches
  the stroke model itself leaves where skin lines turn against a perimeter (PrusaSlicer's cube
  top has about 50 of those); a real bead spreads into them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy import ndimage

from .gcode import Toolpaths
from .raster import (
    Chunks,
    Grid,
    StrokeRaster,
    chunk_segments,
    fill_even_odd,
    prefix_rows,
    rasterise,
)

__all__ = [
    "LayerContext",
    "LayerResult",
    "MeasureSettings",
    "SectionStack",
    "analyse",
    "layer_list",
    "measure_layer",
]

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class MeasureSettings:
    line_width: float = 0.45  # nominal, mm
    filament_diameter: float = 1.75
    px: float = 0.05  # pixel size, mm
    core_tol: float = 0.025  # mm each side; see the module's docstring
    pass_gap_widths: float = 2.0  # × line_width
    thin_wall_widths: float = 5.0  # × line_width: thinner parts of a section are all wall
    pinhole_min_mm2: float = 0.015
    chunk_len: float = 0.5  # mm
    margin: float = 1.0  # mm of window around a layer's sections

    @property
    def pass_gap(self) -> float:
        return self.pass_gap_widths * self.line_width

    @property
    def filament_area(self) -> float:
        return math.pi * self.filament_diameter**2 / 4


class SectionStack:
    """Cut segments of a mesh at any set of heights, cached by height."""

    def __init__(self, mesh: trimesh.Trimesh) -> None:
        self.mesh = mesh
        self._cache: dict[float, np.ndarray] = {}

    def prepare(self, heights: list[float]) -> None:
        todo = sorted({round(h, 5) for h in heights} - self._cache.keys())
        if not todo:
            return
        lines, to_3d, _ = trimesh.intersections.mesh_multiplane(
            self.mesh, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], todo
        )
        for h, seg2d, tf in zip(todo, lines, to_3d, strict=True):
            seg2d = np.asarray(seg2d, dtype=np.float64).reshape(-1, 2, 2)
            if len(seg2d):
                pts = np.column_stack([seg2d.reshape(-1, 2), np.zeros(len(seg2d) * 2)])
                pts = trimesh.transform_points(pts, tf)[:, :2]
                seg2d = pts.reshape(-1, 2, 2)
            self._cache[h] = seg2d

    def segments(self, height: float) -> np.ndarray:
        key = round(height, 5)
        if key not in self._cache:
            self.prepare([key])
        return self._cache[key]

    def bounds(self, height: float) -> tuple[float, float, float, float] | None:
        seg = self.segments(height)
        if len(seg) == 0:
            return None
        pts = seg.reshape(-1, 2)
        return (*pts.min(axis=0), *pts.max(axis=0))


@dataclass
class LayerResult:
    z: float
    h: float
    section_mm2: float
    covered_pct: float
    doubled_pct: float
    wall_void_mm2: float  # largest, in walls at least two line widths thick
    wall_voids_over: int  # count of those over 0.05 mm²
    pinholes: int
    top_mm2: float
    overhang_mm: float
    overhang_speed: float  # length-weighted mm/s, nan without overhang
    overhang_fan: float  # length-weighted 0..1
    dry_mm: float
    extruded_mm: float


@dataclass
class LayerContext:
    """Everything about one layer that depends on the model only (shared by both slicers)."""

    grid: Grid
    section: np.ndarray
    below: np.ndarray  # all True on the first layer (the bed)
    above: np.ndarray  # all False on the last layer
    dist_in: np.ndarray  # mm to the section's boundary, inside it
    thickness: np.ndarray  # local wall thickness, mm
    first: bool
    below_prefix: np.ndarray  # per-row prefix sums of `below` (see raster.prefix_rows)


@dataclass
class LayerRaster:
    result: LayerResult
    strokes: StrokeRaster
    wall_voids: np.ndarray  # bool mask of counted wall voids
    pinholes: np.ndarray  # bool mask of counted pinholes


def layer_list(paths: Toolpaths) -> list[tuple[float, float]]:
    """(z, layer height) of every height the file extrudes at."""
    zs = paths.layer_zs()
    out = []
    prev = 0.0
    for z in zs:
        out.append((float(z), float(z - prev)))
        prev = float(z)
    return out


def make_context(
    stack: SectionStack,
    mid: float,
    mid_below: float | None,
    mid_above: float | None,
    lattice: tuple[float, float],
    ms: MeasureSettings,
) -> LayerContext | None:
    bboxes = [b for m in (mid, mid_below, mid_above) if m is not None for b in [stack.bounds(m)]]
    bboxes = [b for b in bboxes if b is not None]
    if stack.bounds(mid) is None:
        return None
    arr = np.array(bboxes)
    bounds = (
        arr[:, 0].min() - ms.margin,
        arr[:, 1].min() - ms.margin,
        arr[:, 2].max() + ms.margin,
        arr[:, 3].max() + ms.margin,
    )
    grid = Grid.window(lattice[0], lattice[1], ms.px, bounds)
    section = fill_even_odd(grid, stack.segments(mid))
    if mid_below is None:
        below = np.ones_like(section)
    else:
        below = fill_even_odd(grid, stack.segments(mid_below))
    if mid_above is None:
        above = np.zeros_like(section)
    else:
        above = fill_even_odd(grid, stack.segments(mid_above))
    dist_in = (ndimage.distance_transform_edt(section) * ms.px).astype(np.float32)
    reach = max(1, round(2 * ms.line_width / ms.px))
    thickness = 2 * ndimage.maximum_filter(dist_in, size=2 * reach + 1)
    return LayerContext(
        grid, section, below, above, dist_in, thickness, mid_below is None, prefix_rows(below)
    )


def _layer_chunks(
    paths: Toolpaths, idx: np.ndarray, ms: MeasureSettings
) -> tuple[Chunks, np.ndarray]:
    """Chunks of the non-dry parts of segments `idx`, and the cross-section (mm²) of each chunk's
    source segment."""
    x0, y0, x1, y1 = paths.x0[idx], paths.y0[idx], paths.x1[idx], paths.y1[idx]
    length = np.hypot(x1 - x0, y1 - y0)
    with np.errstate(invalid="ignore", divide="ignore"):
        area = np.where(length > 0, ms.filament_area * paths.filament[idx] / length, 0.0)
        # Refilling happens at the start of a move: its first `dry` mm lay nothing.
        f = np.where(length > 0, np.clip(paths.dry[idx] / length, 0, 1), 1.0)
    x0 = x0 + (x1 - x0) * f
    y0 = y0 + (y1 - y0) * f
    live = f < 1 - 1e-9
    sel = np.flatnonzero(live)
    chunks = chunk_segments(
        x0[sel], y0[sel], x1[sel], y1[sel], paths.path[idx][sel], ms.chunk_len, 2 * ms.pass_gap + 1
    )
    chunks.seg = sel[chunks.seg]
    return chunks, area


def remap(mask: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """A mask drawn on window `src` of the lattice, seen through window `dst` (False outside)."""
    out = np.zeros((dst.ny, dst.nx), dtype=bool)
    dj = round((src.x0 - dst.x0) / dst.px)
    di = round((src.y0 - dst.y0) / dst.px)
    i0, j0 = max(di, 0), max(dj, 0)
    i1, j1 = min(di + src.ny, dst.ny), min(dj + src.nx, dst.nx)
    if i1 > i0 and j1 > j0:
        out[i0:i1, j0:j1] = mask[i0 - di : i1 - di, j0 - dj : j1 - dj]
    return out


def _near(mask: np.ndarray, grid: Grid, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Whether `mask` has a pixel within about `r` of each point (13 samples over the disk)."""
    found = np.zeros(len(x), dtype=bool)
    for rr, n in ((0.0, 1), (r / 2, 4), (r, 8)):
        for k in range(n):
            a = 2 * math.pi * k / n + (math.pi / 4 if n == 4 else 0.0)
            ii, jj, ok = grid.index(x + rr * math.cos(a), y + rr * math.sin(a))
            found |= ok & mask[ii, jj]
    return found


def measure_layer(
    ctx: LayerContext,
    paths: Toolpaths,
    z: float,
    h: float,
    ms: MeasureSettings,
    printed_below: np.ndarray | None = None,
) -> LayerRaster:
    """Measure one layer of one file.

    Args:
        printed_below: what the same file covered on the layer below, on `ctx.grid` (None on the
            first layer: the bed supports everything). Decides which strokes hang in air.
    """
    idx = paths.at_z(z)
    chunks, area = _layer_chunks(paths, idx, ms)
    grid = ctx.grid
    mx, my = chunks.mid
    ii, jj, inside = grid.index(mx, my)
    a = area[chunks.seg]
    flat_w = a / h + h * (1 - math.pi / 4)
    round_w = np.sqrt(4 * a / math.pi)
    if printed_below is None:
        width = flat_w
    else:
        air = ~_near(printed_below, grid, mx, my, ms.line_width / 2)
        width = np.where(air, round_w, flat_w)
    strokes = rasterise(
        grid, chunks, width / 2, ms.core_tol, ms.pass_gap, support_prefix=ctx.below_prefix
    )
    sec = ctx.section
    n_sec = int(sec.sum())
    pa = grid.pixel_area
    covered = int((strokes.covered & sec).sum())
    doubled = int((strokes.doubled & sec).sum())

    # Wall voids: uncovered regions wholly in the perimeter band, or in a part too thin for
    # sparse infill; only walls at least two lines thick count, and only where the layer below
    # holds them up (gaps between strands in air are the overhang metric's business).
    lw = ms.line_width
    unc = sec & ctx.below & ~strokes.covered
    labels, n = ndimage.label(unc, structure=_EIGHT)
    lab = labels[unc]
    npx = np.bincount(lab, minlength=n + 1)
    size = npx * pa
    with np.errstate(invalid="ignore", divide="ignore"):
        thick = np.bincount(lab, weights=ctx.thickness[unc], minlength=n + 1) / npx
    deep = np.zeros(n + 1, dtype=bool)
    deep[labels[unc & (ctx.dist_in > 2 * lw)]] = True
    reaches_in = np.zeros(n + 1, dtype=bool)
    reaches_in[labels[unc & (ctx.dist_in > lw / 4)]] = True
    wall = reaches_in & (~deep | (thick <= ms.thin_wall_widths * lw)) & (thick >= 2 * lw)
    wall[0] = False
    largest = float(size[wall].max()) if wall.any() else 0.0
    over = int((size[wall] > 0.05).sum())
    void_mask = wall[labels] & unc

    # Top-surface pinholes.
    top = sec & ~ctx.above
    unc_top = top & ~strokes.covered
    labels, n = ndimage.label(unc_top, structure=_EIGHT)
    size = np.bincount(labels[unc_top], minlength=n + 1) * pa
    deep = np.zeros(n + 1, dtype=bool)
    deep[labels[unc_top & (ctx.dist_in > ms.line_width / 2)]] = True
    pin = deep & (size >= ms.pinhole_min_mm2)
    pin[0] = False
    pinholes = int(pin.sum())
    pin_mask = pin[labels]

    # Overhang perimeters: the outermost loop with most of its width over the layer below's
    # section (the model's, not what was printed: this is about the part's shape).
    ov_len = 0.0
    ov_speed = math.nan
    ov_fan = math.nan
    if not ctx.first and len(chunks.ax):
        outer = inside & sec[ii, jj] & (ctx.dist_in[ii, jj] <= 0.75 * ms.line_width)
        with np.errstate(invalid="ignore", divide="ignore"):
            air_share = 1 - strokes.chunk_pixels_on / strokes.chunk_pixels
        sel = outer & (strokes.chunk_pixels > 0) & (air_share > 0.5)
        if sel.any():
            ln = chunks.length[sel]
            ov_len = float(ln.sum())
            src = idx[chunks.seg[sel]]
            ov_speed = float((paths.speed[src] * ln).sum() / ov_len)
            ov_fan = float((paths.fan[src] * ln).sum() / ov_len)

    result = LayerResult(
        z=z,
        h=h,
        section_mm2=n_sec * pa,
        covered_pct=100 * covered / n_sec if n_sec else math.nan,
        doubled_pct=100 * doubled / n_sec if n_sec else math.nan,
        wall_void_mm2=largest,
        wall_voids_over=over,
        pinholes=pinholes,
        top_mm2=float(top.sum()) * pa,
        overhang_mm=ov_len,
        overhang_speed=ov_speed,
        overhang_fan=ov_fan,
        dry_mm=float(paths.dry[idx].sum()),
        extruded_mm=float(paths.length[idx].sum()),
    )
    return LayerRaster(result, strokes, void_mask, pin_mask)


@dataclass
class Analysis:
    """Per-layer results of several G-code files against one model."""

    layers: dict[str, list[LayerResult]] = field(default_factory=dict)
    missing: dict[str, list[float]] = field(default_factory=dict)  # heights with no section


def iter_contexts(
    stack: SectionStack,
    layer_sets: dict[str, list[tuple[float, float]]],
    lattice: tuple[float, float],
    ms: MeasureSettings,
) -> Iterator[tuple[LayerContext | None, dict[str, int]]]:
    """Yield each distinct (below, mid, above) layer context once, lowest first, with the layer
    index of each file that has that layer: files with the same layers share one context."""
    keys: dict[tuple[float | None, float, float | None], dict[str, int]] = {}
    for name, layers in layer_sets.items():
        mids = [round(z - h / 2, 5) for z, h in layers]
        for k, mid in enumerate(mids):
            below = mids[k - 1] if k > 0 else None
            above = mids[k + 1] if k + 1 < len(mids) else None
            keys.setdefault((below, mid, above), {})[name] = k
    stack.prepare([m for key in keys for m in key if m is not None])
    for key in sorted(keys, key=lambda t: (t[1], t[0] or -1.0)):
        below, mid, above = key
        yield make_context(stack, mid, below, above, lattice, ms), keys[key]


def analyse(
    stack: SectionStack,
    files: dict[str, Toolpaths],
    lattice: tuple[float, float],
    ms: MeasureSettings,
    on_layer: Callable[[str, LayerContext, LayerRaster], None] | None = None,
) -> Analysis:
    """Measure every layer of every file; `on_layer` sees each layer's rasters as they pass."""
    layer_sets = {name: layer_list(p) for name, p in files.items()}
    out = Analysis({name: [] for name in files}, {name: [] for name in files})
    printed: dict[str, tuple[Grid, np.ndarray]] = {}
    for ctx, members in iter_contexts(stack, layer_sets, lattice, ms):
        for name, k in members.items():
            z, h = layer_sets[name][k]
            if ctx is None:
                out.missing[name].append(z)
                printed.pop(name, None)
                continue
            below = None
            if k > 0:
                prev = printed.get(name)
                below = (
                    remap(prev[1], prev[0], ctx.grid)
                    if prev is not None
                    else np.zeros_like(ctx.section)
                )
            lr = measure_layer(ctx, files[name], z, h, ms, below)
            printed[name] = (ctx.grid, lr.strokes.covered)
            out.layers[name].append(lr.result)
            if on_layer is not None:
                on_layer(name, ctx, lr)
    for name in files:
        out.layers[name].sort(key=lambda r: r.z)
    return out
