"""Rasterising sections and extrusion strokes onto a pixel grid (numpy only).

A pixel belongs to a shape when its centre does: sections are filled by an even-odd scanline over
the mesh's cut segments, strokes row by row from the exact interval where a pixel row crosses each
round-capped stroke. Exact
centre tests matter: half a pixel of error on every boundary is several points of coverage on a
2 mm wall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Chunks",
    "Grid",
    "StrokeRaster",
    "chunk_segments",
    "fill_even_odd",
    "prefix_rows",
    "rasterise",
]


@dataclass(frozen=True)
class Grid:
    """A window of the global pixel lattice: pixel (i, j) has its centre at
    (x0 + (j + 0.5)·px, y0 + (i + 0.5)·px)."""

    x0: float
    y0: float
    px: float
    nx: int
    ny: int

    @classmethod
    def window(
        cls, lattice_x: float, lattice_y: float, px: float, bounds: tuple[float, ...]
    ) -> Grid:
        """The smallest window of the lattice anchored at (lattice_x, lattice_y) covering bounds."""
        xmin, ymin, xmax, ymax = bounds
        j0 = math.floor((xmin - lattice_x) / px)
        i0 = math.floor((ymin - lattice_y) / px)
        j1 = math.ceil((xmax - lattice_x) / px)
        i1 = math.ceil((ymax - lattice_y) / px)
        return cls(lattice_x + j0 * px, lattice_y + i0 * px, px, max(j1 - j0, 1), max(i1 - i0, 1))

    @property
    def pixel_area(self) -> float:
        return self.px * self.px

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row, column and an inside-the-window flag of the pixels holding points (x, y)."""
        j = np.floor((x - self.x0) / self.px).astype(np.int64)
        i = np.floor((y - self.y0) / self.px).astype(np.int64)
        ok = (i >= 0) & (i < self.ny) & (j >= 0) & (j < self.nx)
        return np.clip(i, 0, self.ny - 1), np.clip(j, 0, self.nx - 1), ok


def fill_even_odd(grid: Grid, segments: np.ndarray) -> np.ndarray:
    """Pixels inside a closed set of segments (n, 2, 2), by the even-odd rule.

    The cut of a closed mesh is a set of closed loops, so every scan row crosses it an even number
    of times (a crossing counts when the row's centre is in [y_low, y_high) of the segment). Holes
    and islands inside holes come out right without building polygons.
    """
    mask = np.zeros((grid.ny, grid.nx), dtype=bool)
    if len(segments) == 0:
        return mask
    ax, ay = segments[:, 0, 0], segments[:, 0, 1]
    bx, by = segments[:, 1, 0], segments[:, 1, 1]
    keep = ay != by
    ax, ay, bx, by = ax[keep], ay[keep], bx[keep], by[keep]
    ylo, yhi = np.minimum(ay, by), np.maximum(ay, by)
    r0 = np.clip(np.ceil((ylo - grid.y0) / grid.px - 0.5).astype(np.int64), 0, grid.ny)
    r1 = np.clip(np.ceil((yhi - grid.y0) / grid.px - 0.5).astype(np.int64), 0, grid.ny)
    counts = np.maximum(r1 - r0, 0)
    total = int(counts.sum())
    if total == 0:
        return mask
    seg = np.repeat(np.arange(len(ax)), counts)
    starts = np.cumsum(counts) - counts
    rows = r0[seg] + (np.arange(total) - np.repeat(starts, counts))
    yc = grid.y0 + (rows + 0.5) * grid.px
    x = ax[seg] + (yc - ay[seg]) * (bx[seg] - ax[seg]) / (by[seg] - ay[seg])
    order = np.lexsort((x, rows))
    rows, x = rows[order], x[order]
    # A row with an odd number of crossings (an open cut, from a mesh that is not closed) would
    # pair across rows; such rows are left empty rather than filled wrongly.
    per_row = np.bincount(rows, minlength=grid.ny)
    odd = per_row % 2 == 1
    if odd.any():
        ok = ~odd[rows]
        rows, x = rows[ok], x[ok]
    ra, xa, xb = rows[0::2], x[0::2], x[1::2]
    ja = np.clip(np.ceil((xa - grid.x0) / grid.px - 0.5).astype(np.int64), 0, grid.nx)
    jb = np.clip(np.ceil((xb - grid.x0) / grid.px - 0.5).astype(np.int64), 0, grid.nx)
    return _paint(grid, ra, ja, jb)


@dataclass
class Chunks:
    """Extrusion segments cut into pieces no longer than `chunk_len`, with their position along
    the layer's continuous paths (`s0`: mm from the layer's start; paths are kept apart by gaps
    larger than any pass threshold)."""

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    s0: np.ndarray
    seg: np.ndarray  # index of the source segment (in the caller's selection)

    @property
    def length(self) -> np.ndarray:
        return np.hypot(self.bx - self.ax, self.by - self.ay)

    @property
    def mid(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.ax + self.bx) / 2, (self.ay + self.by) / 2


def chunk_segments(
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
    path: np.ndarray,
    chunk_len: float,
    path_gap: float,
) -> Chunks:
    """Cut segments (in print order) into chunks and give each its arc position."""
    length = np.hypot(x1 - x0, y1 - y0)
    breaks = np.concatenate([[0], (path[1:] != path[:-1]).astype(np.int64)])
    s_start = np.cumsum(length) - length + np.cumsum(breaks) * path_gap
    n = np.maximum(1, np.ceil(length / chunk_len).astype(np.int64))
    seg = np.repeat(np.arange(len(x0)), n)
    starts = np.cumsum(n) - n
    k = np.arange(int(n.sum())) - np.repeat(starts, n)
    f0 = k / n[seg]
    f1 = (k + 1) / n[seg]
    dx, dy = x1 - x0, y1 - y0
    return Chunks(
        ax=x0[seg] + dx[seg] * f0,
        ay=y0[seg] + dy[seg] * f0,
        bx=x0[seg] + dx[seg] * f1,
        by=y0[seg] + dy[seg] * f1,
        s0=s_start[seg] + length[seg] * f0,
        seg=seg,
    )


@dataclass
class StrokeRaster:
    covered: np.ndarray  # bool (ny, nx): inside at least one stroke
    doubled: np.ndarray  # bool (ny, nx): inside the cores of two passes
    chunk_pixels: np.ndarray  # per chunk: pixels of its stroke inside the window
    chunk_pixels_on: np.ndarray  # per chunk: of those, pixels on the `support` mask


@dataclass
class _Spans:
    row: np.ndarray
    j0: np.ndarray  # first pixel column
    j1: np.ndarray  # one past the last
    chunk: np.ndarray


def _spans(grid: Grid, chunks: Chunks, radius: np.ndarray) -> _Spans:
    """Runs of pixels, one per (chunk, pixel row), whose centres lie within `radius` of the chunk.

    A round-capped stroke is convex, so a row meets it in one interval: the union of where the
    row crosses the two end disks and the band along the segment.
    """
    px = grid.px
    r = radius
    ylo = np.minimum(chunks.ay, chunks.by) - r
    yhi = np.maximum(chunks.ay, chunks.by) + r
    i0 = np.clip(np.ceil((ylo - grid.y0) / px - 0.5).astype(np.int64), 0, grid.ny)
    i1 = np.clip(np.floor((yhi - grid.y0) / px - 0.5).astype(np.int64) + 1, 0, grid.ny)
    n = np.maximum(i1 - i0, 0)
    total = int(n.sum())
    c = np.repeat(np.arange(len(n)), n)
    row = i0[c] + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))
    yc = grid.y0 + (row + 0.5) * px
    ax, ay, bx, by, rr = chunks.ax[c], chunks.ay[c], chunks.bx[c], chunks.by[c], r[c]
    big = 1e9
    lo = np.full(total, big)
    hi = np.full(total, -big)
    for cx, cy in ((ax, ay), (bx, by)):
        dy = yc - cy
        h2 = rr * rr - dy * dy
        ok = h2 >= 0
        half = np.sqrt(np.where(ok, h2, 0.0))
        lo = np.where(ok, np.minimum(lo, cx - half), lo)
        hi = np.where(ok, np.maximum(hi, cx + half), hi)
    # The band: perpendicular distance <= r and projection within the segment, as x ranges
    # (x measured from a).
    ddx, ddy = bx - ax, by - ay
    ll = np.hypot(ddx, ddy)
    u = yc - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        p_lo = np.where(ddy != 0, (u * ddx - rr * ll) / ddy, -big)
        p_hi = np.where(ddy != 0, (u * ddx + rr * ll) / ddy, big)
        p_ok = (ddy != 0) | (np.abs(u) <= rr)
        q_lo = np.where(ddx != 0, -u * ddy / ddx, -big)
        q_hi = np.where(ddx != 0, (ll * ll - u * ddy) / ddx, big)
        q_ok = (ddx != 0) | ((u * ddy >= 0) & (u * ddy <= ll * ll))
    b_lo = np.maximum(np.minimum(p_lo, p_hi), np.minimum(q_lo, q_hi)) + ax
    b_hi = np.minimum(np.maximum(p_lo, p_hi), np.maximum(q_lo, q_hi)) + ax
    band = p_ok & q_ok & (b_lo <= b_hi) & (ll > 0)
    lo = np.where(band, np.minimum(lo, b_lo), lo)
    hi = np.where(band, np.maximum(hi, b_hi), hi)
    j0 = np.clip(np.ceil((lo - grid.x0) / px - 0.5), 0, grid.nx).astype(np.int64)
    j1 = np.clip(np.floor((hi - grid.x0) / px - 0.5) + 1, 0, grid.nx).astype(np.int64)
    keep = j1 > j0
    return _Spans(row[keep], j0[keep], j1[keep], c[keep])


def prefix_rows(mask: np.ndarray) -> np.ndarray:
    """Per-row prefix sums of a mask, one column wider: pixels j0..j1-1 of row i hold
    out[i, j1] - out[i, j0] of its set pixels."""
    out = np.zeros((mask.shape[0], mask.shape[1] + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, dtype=np.int32, out=out[:, 1:])
    return out


def _paint(grid: Grid, row: np.ndarray, j0: np.ndarray, j1: np.ndarray) -> np.ndarray:
    """Pixels inside at least one run [j0, j1) of its row."""
    w = grid.nx + 1
    size = grid.ny * w
    diff = np.bincount(row * w + j0, minlength=size) - np.bincount(row * w + j1, minlength=size)
    return np.cumsum(diff.reshape(grid.ny, w)[:, : grid.nx], axis=1, dtype=np.int32) > 0


def rasterise(
    grid: Grid,
    chunks: Chunks,
    radius: np.ndarray,
    core_tol: float,
    pass_gap: float,
    support: np.ndarray | None = None,
    support_prefix: np.ndarray | None = None,
) -> StrokeRaster:
    """Draw strokes (round-capped, `radius` per chunk) and find the pixels laid twice.

    A pixel is laid twice when it lies within `radius - core_tol` of two passes: two chunks whose
    stretches of path are more than `pass_gap` mm apart (different paths always are; within one
    path a zigzag leg lying on the previous leg is, a joint between consecutive segments is not).
    """
    n_chunks = len(chunks.ax)
    empty = np.zeros((grid.ny, grid.nx), dtype=bool)
    if n_chunks == 0:
        z = np.zeros(0, dtype=np.int64)
        return StrokeRaster(empty, empty.copy(), z, z)
    full = _spans(grid, chunks, radius)
    covered = _paint(grid, full.row, full.j0, full.j1)
    chunk_pixels = np.bincount(full.chunk, weights=full.j1 - full.j0, minlength=n_chunks)
    if support is not None or support_prefix is not None:
        cs = support_prefix if support_prefix is not None else prefix_rows(support)
        on = cs[full.row, full.j1] - cs[full.row, full.j0]
        chunk_on = np.bincount(full.chunk, weights=on, minlength=n_chunks)
    else:
        chunk_on = np.zeros(n_chunks)

    core = _spans(grid, chunks, np.maximum(radius - core_tol, 0.0))
    s0 = chunks.s0[core.chunk]
    s1 = s0 + chunks.length[core.chunk]
    order = np.lexsort((core.j0, core.row))
    row, j0, j1, s0, s1 = core.row[order], core.j0[order], core.j1[order], s0[order], s1[order]
    # Compare each run with the next k runs of its row (sorted by start): any run overlapping it
    # starts before it ends. k grows until no row has more overlaps than that.
    drow: list[np.ndarray] = []
    da: list[np.ndarray] = []
    db: list[np.ndarray] = []
    m = len(row)
    k = 1
    while k < m:
        a, b = slice(0, m - k), slice(k, m)
        over = (row[b] == row[a]) & (j0[b] < j1[a])
        if not over.any():
            break
        apart = np.maximum(s0[b] - s1[a], s0[a] - s1[b]) > pass_gap
        hit = over & apart
        drow.append(row[b][hit])
        da.append(j0[b][hit])
        db.append(np.minimum(j1[a], j1[b])[hit])
        k += 1
    if drow:
        doubled = _paint(grid, np.concatenate(drow), np.concatenate(da), np.concatenate(db))
    else:
        doubled = empty.copy()
    return StrokeRaster(covered, doubled, chunk_pixels, chunk_on)
