"""Variable-width gap fill: one line along the middle of each thin strip, as wide as the strip.

A strip too thin for another perimeter (between the loops of a 1.2–2 mm wall, or a fin thinner
than a line) gets a single line along its medial axis whose width follows the strip, so it fills
the strip once: a zigzag at normal flow there either left the strip empty (narrower than a line)
or crossed the perimeters and laid them twice.

The medial axis is the chordal axis of a constrained Delaunay triangulation (GEOS, through
shapely): in a strip every triangle spans it, so the midpoints of its chords lie on the middle.
Triangles with two chords continue the line, triangles with three are junctions, triangles with
one end it. shapely offers no medial axis of its own, and a raster skeleton would need
vectorising back into lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

__all__ = ["GapLine", "centre_lines"]

# Boundary points are this far apart (mm) at most: chords then span the strip rather than run
# along it, and bends keep their shape.
DENSIFY_MM = 0.25
# A branch this short (in strip widths at its junction) is a corner's spur, not a strip.
SPUR_WIDTHS = 1.5


@dataclass(slots=True)
class GapLine:
    """A centre-line and the width of the line at each of its points."""

    points: np.ndarray  # (n, 2)
    widths: np.ndarray  # (n,)


def centre_lines(
    area: MultiPolygon, extra: float, min_width: float, max_width: float
) -> list[GapLine]:
    """Lines along the middle of `area`'s strips, `extra` wider than the strip.

    Args:
        area: thin strips to fill.
        extra: added to the strip's local width: h(1 − π/4) between two lines' bands, so the
            line overlaps its neighbours as neighbouring lines do; 0 against the part's surface.
        min_width: parts of a line narrower than this are left out (too little flow to lay).
        max_width: the widest line the nozzle may lay; wider strips get lines this wide.
    """
    out: list[GapLine] = []
    for poly in shapely.get_parts(area):
        if poly.is_empty or poly.area < 1e-6:
            continue
        out += _axis(poly, extra, min_width, max_width)
    return out


def _axis(poly: shapely.Polygon, extra: float, min_width: float, max_width: float) -> list[GapLine]:
    dense = shapely.segmentize(poly, DENSIFY_MM)
    tris = shapely.get_parts(shapely.constrained_delaunay_triangles(dense))
    if len(tris) == 0:
        return []
    corners = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3]
    t = len(corners)
    # Vertices by exact coordinate: the triangulation reuses the input points unchanged.
    _, vid = np.unique(corners.reshape(-1, 2), axis=0, return_inverse=True)
    vid = vid.reshape(t, 3)
    a = vid[:, [0, 1, 2]]
    b = vid[:, [1, 2, 0]]
    keys = np.minimum(a, b) * (int(vid.max()) + 1) + np.maximum(a, b)
    uniq, edge_of, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
    edge_of = edge_of.reshape(t, 3)
    chord = counts[edge_of] == 2  # shared by two triangles: inside the strip
    # One node per chord, at its midpoint.
    mids_all = (corners + np.roll(corners, -1, axis=1)) / 2
    node_of_edge = np.full(len(uniq), -1)
    chords = np.flatnonzero(counts == 2)
    node_of_edge[chords] = np.arange(len(chords))
    pts = np.zeros((len(chords), 2))
    pts[node_of_edge[edge_of[chord]]] = mids_all[chord]
    n_chords = chord.sum(axis=1)
    links: list[tuple[int, int]] = []
    sleeve = np.flatnonzero(n_chords == 2)
    if len(sleeve):
        ends = node_of_edge[edge_of[sleeve]][chord[sleeve]].reshape(-1, 2)
        links += list(map(tuple, ends.tolist()))
    junction = np.flatnonzero(n_chords == 3)
    extra_pts = []
    for k, tri in enumerate(junction.tolist()):
        centre = len(pts) + k
        extra_pts.append(corners[tri].mean(axis=0))
        links += [(centre, int(node_of_edge[e])) for e in edge_of[tri]]
    if extra_pts:
        pts = np.vstack([pts, np.array(extra_pts)])
    if not links:
        return []
    widths = 2 * shapely.distance(shapely.points(pts), poly.boundary) + extra
    chains = _chains(len(pts), links)
    chains = _prune_spurs(chains, pts, widths)
    out: list[GapLine] = []
    for chain in chains:
        idx = np.asarray(chain)
        w = widths[idx]
        # Split where the strip is too thin to lay anything.
        ok = w >= min_width
        for run in _runs(ok):
            if len(run) < 2:
                continue
            sel = idx[run]
            line = GapLine(pts[sel].copy(), np.minimum(widths[sel], max_width))
            if float(np.sum(np.hypot(*np.diff(line.points, axis=0).T))) > min_width:
                out.append(line)
    return out


def _chains(n: int, links: list[tuple[int, int]]) -> list[list[int]]:
    """Walk the graph into polylines between nodes that are not plain links (ends, junctions);
    closed loops come out closed (first point repeated)."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for u, v in links:
        adj[u].append(v)
        adj[v].append(u)
    used: set[tuple[int, int]] = set()
    chains: list[list[int]] = []

    def walk(start: int, nxt: int) -> list[int]:
        chain = [start]
        prev, cur = start, nxt
        used.add((min(prev, cur), max(prev, cur)))
        while True:
            chain.append(cur)
            if len(adj[cur]) != 2:
                return chain
            step = adj[cur][0] if adj[cur][1] == prev else adj[cur][1]
            key = (min(cur, step), max(cur, step))
            if key in used:
                return chain
            used.add(key)
            prev, cur = cur, step

    for u in range(n):
        if len(adj[u]) != 2:
            for v in adj[u]:
                if (min(u, v), max(u, v)) not in used:
                    chains.append(walk(u, v))
    for u in range(n):  # what is left is closed loops
        for v in adj[u]:
            if (min(u, v), max(u, v)) not in used:
                chains.append(walk(u, v))
    return chains


def _prune_spurs(chains: list[list[int]], pts: np.ndarray, widths: np.ndarray) -> list[list[int]]:
    """Drop short branches from a junction to a free end: the triangulation's answer to a
    corner, not a strip of their own."""
    degree: dict[int, int] = {}
    for c in chains:
        if c[0] != c[-1]:
            for end in (c[0], c[-1]):
                degree[end] = degree.get(end, 0) + 1
    kept = []
    for c in chains:
        a, b = c[0], c[-1]
        spur = a != b and (
            (degree[a] == 1 and degree[b] >= 3) or (degree[b] == 1 and degree[a] >= 3)
        )
        if spur:
            junction = a if degree[a] >= 3 else b
            length = float(np.sum(np.hypot(*np.diff(pts[c], axis=0).T)))
            if length < SPUR_WIDTHS * widths[junction]:
                continue
        kept.append(c)
    return kept


def _runs(ok: np.ndarray) -> list[np.ndarray]:
    """Index runs where `ok` holds."""
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1) + 1
    return np.split(idx, breaks)
