"""Infill line patterns, generated over a region's bounding box and clipped to it by shapely."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

__all__ = ["fill_lines"]

# A link may run this far (in line distances) and stray this far (mm) outside the region,
# which covers float noise on a boundary it follows.
LINK_MAX_SPACINGS = 3.0
LINK_TOLERANCE_MM = 0.02
GYROID_LENGTH_FACTOR = 1.35
# A line end reaching into a wall goes on at most this many times the reach along itself: a
# line meeting the wall at a slant needs a little more than the reach, one running beside it
# should not run on along it.
REACH_MAX_FACTOR = 2.0


def fill_lines(
    region: MultiPolygon,
    spacing: float,
    pattern: str,
    angle_deg: float,
    z: float,
    start: np.ndarray | None = None,
    hug_boundary: bool = True,
    reach: float = 0.0,
) -> list[np.ndarray]:
    """Centre-lines filling `region` at line distance `spacing`, in a printing order.

    Args:
        region: where the lines' centres may go (already shrunk by half a line width).
        spacing: distance between neighbouring lines of one direction.
        pattern: rectilinear, grid (both directions each layer) or gyroid.
        angle_deg: direction of rectilinear/grid lines; the caller alternates it by layer.
        z: layer height, which shifts the gyroid's wave.
        start: where the nozzle is; the first line is the one nearest to it.
        hug_boundary: link lines only along the region's edge (False for thin strips, where
            any link inside the strip is fine).
        reach: how far (mm, across the edge) the ends of lines that are not linked go on
            past `region` into the walls around it. Links stay on `region`'s edge: there they
            lie beside the walls as neighbouring lines do; moved out with the ends they would
            lay a strip of each link over the wall.
    """
    if region.is_empty or spacing <= 0:
        return []
    edge = (region.buffer(LINK_TOLERANCE_MM), region.boundary if hug_boundary else None)
    shapely.prepare(edge[0])
    if pattern == "gyroid":
        out = _link(_order(_clip(region, _gyroid(region.bounds, spacing, z)), start), edge, spacing)
    else:
        out = _link(_order(_scan(region, spacing, angle_deg), start), edge, spacing)
    if pattern == "grid":
        after = out[-1][-1] if out else start
        out += _link(_order(_scan(region, spacing, angle_deg + 90), after), edge, spacing)
    if reach > 0 and out:
        _extend_ends(out, region.buffer(reach, join_style="mitre"), reach)
    return out


def _extend_ends(lines: list[np.ndarray], grown: shapely.Geometry, reach: float) -> None:
    """Prolong each path's first and last segment, in their own direction, up to the edge of
    `grown` (at most REACH_MAX_FACTOR × reach along the line), in place.

    A line end stopped on the fill area's edge leaves a triangle uncovered between its round
    cap, its neighbour's and the wall (a row of pinholes along every wall of a top surface).
    """
    tips, dirs = [], []
    for ln in lines:
        for a, b in ((ln[0], ln[1]), (ln[-1], ln[-2])):
            tips.append(a)
            dirs.append(a - b)
    p = np.array(tips)
    d = np.array(dirs)
    norm = np.hypot(d[:, 0], d[:, 1])
    ok = norm > 1e-9
    d[ok] /= norm[ok, None]
    top = REACH_MAX_FACTOR * reach
    rays = shapely.linestrings(np.stack([p, p + d * top], axis=1))
    # Along the ray, the distance from the tip to the first part outside `grown` is how far
    # the line may go on; a ray wholly inside goes the whole way.
    outside = shapely.difference(rays, grown)
    far = shapely.distance(shapely.points(p), outside)
    far = np.where(np.isnan(far) | shapely.is_empty(outside), top, far)
    far = np.where(ok, np.minimum(far, top), 0.0)
    new = p + d * far[:, None]
    for k, ln in enumerate(lines):
        ln[0] = new[2 * k]
        ln[-1] = new[2 * k + 1]


def _link(
    lines: list[np.ndarray], edge: tuple[shapely.Geometry, shapely.Geometry | None], spacing: float
) -> list[np.ndarray]:
    """Join consecutive lines whose connecting stretch stays inside the region (it runs along
    the boundary, like a zigzag), so the nozzle keeps extruding instead of travelling and
    retracting between every pair of lines."""
    if len(lines) < 2:
        return lines
    ends = np.array([ln[-1] for ln in lines[:-1]])
    starts = np.array([ln[0] for ln in lines[1:]])
    gap = np.hypot(*(starts - ends).T)
    ok = gap <= LINK_MAX_SPACINGS * spacing
    if ok.any():
        links = shapely.linestrings(np.stack([ends[ok], starts[ok]], axis=1))
        mids = shapely.points((ends[ok] + starts[ok]) / 2)
        # Inside the region and hugging its boundary: a chord across the middle is not a link.
        inside = shapely.covered_by(links, edge[0])
        if edge[1] is not None:
            inside &= shapely.distance(mids, edge[1]) < 0.25 * spacing
        ok[ok] = inside
    out = []
    cur = [lines[0]]
    for linked, line in zip(ok.tolist(), lines[1:], strict=True):
        if linked:
            cur.append(line)
        else:
            out.append(cur[0] if len(cur) == 1 else np.vstack(cur))
            cur = [line]
    out.append(cur[0] if len(cur) == 1 else np.vstack(cur))
    return out


def _parallel(bounds: tuple[float, float, float, float], spacing: float, angle: float) -> list:
    x0, y0, x1, y1 = bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = math.hypot(x1 - x0, y1 - y0) / 2 + spacing
    a = math.radians(angle)
    d = np.array([math.cos(a), math.sin(a)])
    n = np.array([-d[1], d[0]])
    # Lines sit on a global grid (offset multiples of spacing from the origin) so that the
    # same direction lines up from layer to layer.
    c_off = float(np.dot([cx, cy], n))
    ks = np.arange(math.floor((c_off - r) / spacing), math.ceil((c_off + r) / spacing) + 1)
    offs = ks * spacing
    c_along = float(np.dot([cx, cy], d))
    starts = offs[:, None] * n + (c_along - r) * d
    ends = offs[:, None] * n + (c_along + r) * d
    return list(np.stack([starts, ends], axis=1))


def _scan(region: MultiPolygon, spacing: float, angle: float) -> list[np.ndarray]:
    """`_parallel`'s lines clipped to `region`, by scanlines: every ring edge crossing a line
    gives a crossing, and along each line the crossings pair up inside/outside (even-odd).

    The same pieces `_clip` finds with GEOS, without building a geometry per line and
    intersecting it (a fifth of a 3DBenchy slice went there). A crossing counts at an edge's
    lower end and not its upper one, so a vertex on a line is counted once.
    """
    rings = shapely.get_rings(shapely.get_parts(region))
    if len(rings) == 0:
        return []
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[1:] == ring_of[:-1]  # consecutive points of one ring form an edge
    a, b = coords[:-1][same], coords[1:][same]
    t = math.radians(angle)
    d = np.array([math.cos(t), math.sin(t)])
    n = np.array([-d[1], d[0]])
    ua, ub = a @ d, b @ d
    va, vb = a @ n, b @ n
    lo, hi = np.minimum(va, vb), np.maximum(va, vb)
    # Lines lie at v = k·spacing (the global grid of `_parallel`); edge covers [lo, hi).
    k0 = np.ceil(lo / spacing).astype(np.int64)
    k1 = np.ceil(hi / spacing).astype(np.int64)
    count = np.maximum(k1 - k0, 0)
    total = int(count.sum())
    if total == 0:
        return []
    edge = np.repeat(np.arange(len(a)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    k = np.repeat(k0, count) + (np.arange(total) - first)
    v = k * spacing
    # An edge lying along a line (1e-15 off it from the rotation's rounding) still crosses it
    # by the rule above; its crossing lies somewhere on the edge, not extrapolated beyond.
    f = np.clip((v - va[edge]) / (vb[edge] - va[edge]), 0.0, 1.0)
    u = ua[edge] + f * (ub[edge] - ua[edge])
    order = np.lexsort((u, k))
    k, u = k[order], u[order]
    # Along one line the crossings alternate in and out; pair them up in order.
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    pos = np.arange(total) - np.repeat(starts, np.diff(np.r_[starts, total]))
    enter = np.flatnonzero((pos % 2 == 0)[:-1] & (k[1:] == k[:-1]))
    u0, u1, kk = u[enter], u[enter + 1], k[enter]
    keep = u1 - u0 > 1e-3
    u0, u1, kk = u0[keep], u1[keep], kk[keep]
    base = (kk * spacing)[:, None] * n
    p0 = base + u0[:, None] * d
    p1 = base + u1[:, None] * d
    return list(np.stack([p0, p1], axis=1))


def _gyroid(bounds: tuple[float, float, float, float], spacing: float, z: float) -> list:
    # Zero set of sin x cos y + sin y cos z + sin z cos x at this z, solved for y along x:
    # a cos y + b sin y = c  =>  y = phi +- acos(c / R). Two curves per period, so the period is
    # twice the line distance; the curves wander, so about 1.35 times more length per area
    # than straight lines, which the period makes up for.
    x0, y0, x1, y1 = bounds
    period = 2 * spacing * GYROID_LENGTH_FACTOR
    k = 2 * math.pi / period
    zz = z * k
    xs = np.arange(x0 - period, x1 + period, period / 16)
    t = xs * k
    a, b = np.sin(t), np.full_like(t, math.cos(zz))
    c = -math.sin(zz) * np.cos(t)
    r = np.hypot(a, b)
    ratio = np.clip(np.divide(c, r, out=np.zeros_like(r), where=r > 1e-9), -1, 1)
    phi = np.arctan2(b, a)
    base = np.arccos(ratio)
    lines = []
    n0 = math.floor(y0 * k / (2 * math.pi)) - 1
    n1 = math.ceil(y1 * k / (2 * math.pi)) + 1
    for sign in (1.0, -1.0):
        ys_base = (phi + sign * base) / k
        for m in range(n0, n1 + 1):
            ys = ys_base + m * period
            lines.append(np.column_stack([xs, ys]))
    return lines


def _clip(region: MultiPolygon, lines: list) -> list[np.ndarray]:
    if not lines:
        return []
    # Each line against the prepared region, not one overlay of all lines at once: GEOS nodes a
    # multi-line's parts against each other too, and most lines miss most of a thin region.
    geoms = np.array([shapely.LineString(ln) for ln in lines], dtype=object)
    shapely.prepare(region)
    geoms = geoms[shapely.intersects(geoms, region)]
    parts = shapely.get_parts(shapely.intersection(geoms, region))
    parts = parts[shapely.get_type_id(parts) == 1]  # LineStrings only
    return [np.asarray(p.coords) for p in parts if p.length > 1e-3]


def _order(lines: list[np.ndarray], start: np.ndarray | None = None) -> list[np.ndarray]:
    """Greedy nearest-end order, flipping lines as needed, to keep travel short."""
    if not lines:
        return lines
    starts = np.array([ln[0] for ln in lines])
    ends = np.array([ln[-1] for ln in lines])
    n = len(lines)
    used = np.zeros(n, dtype=bool)
    out = []
    pos = starts[0] if start is None else np.asarray(start, dtype=float)
    for _ in range(n):
        ds = np.einsum("ij,ij->i", starts - pos, starts - pos)
        de = np.einsum("ij,ij->i", ends - pos, ends - pos)
        ds[used] = np.inf
        de[used] = np.inf
        i_s, i_e = int(np.argmin(ds)), int(np.argmin(de))
        if ds[i_s] <= de[i_e]:
            i, line = i_s, lines[i_s]
        else:
            i, line = i_e, lines[i_e][::-1]
        used[i] = True
        out.append(line)
        pos = line[-1]
    return out
