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

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiLineString

__all__ = ["GapLine", "centre_lines", "skin_gaps"]

log = logging.getLogger(__name__)

# Boundary points are this far apart (mm) at most: chords then span the strip rather than run
# along it, and bends keep their shape.
DENSIFY_MM = 0.4
# A branch this short (in strip widths at its junction) is a corner's spur, not a strip.
SPUR_WIDTHS = 1.5
# Uncovered bits of a skin smaller than this (mm²) are notches a bead spreads into, not holes;
# a line thinner than SKIN_GAP_MIN_WIDTH_MM would lay too little to fill one.
SKIN_GAP_MIN_AREA_MM2 = 0.01
SKIN_GAP_MIN_WIDTH_MM = 0.1


@dataclass(slots=True)
class GapLine:
    """A centre-line and the width of the line at each of its points."""

    points: np.ndarray  # (n, 2)
    widths: np.ndarray  # (n,)


def centre_lines(
    areas: np.ndarray, extra: np.ndarray, min_width: np.ndarray, max_width: np.ndarray
) -> list[list[GapLine]]:
    """Lines along the middle of each area's strips, `extra` wider than the strip.

    All areas (one per layer) go through the triangulation and the numpy passes together: per
    area, the calls' overhead cost more than the work.

    Args:
        areas: thin strips to fill, one geometry per layer.
        extra: per area, added to the strip's local width: h(1 − π/4) between two lines'
            bands, so the line overlaps its neighbours as neighbouring lines do; 0 against the
            part's surface.
        min_width: per area, parts of a line narrower than this are left out (too little flow).
        max_width: per area, the widest line the nozzle may lay; wider strips get lines this
            wide.
    """
    out: list[list[GapLine]] = [[] for _ in range(len(areas))]
    polys, owner = shapely.get_parts(np.asarray(areas, dtype=object), return_index=True)
    keep = shapely.area(polys) > 1e-6
    polys, owner = polys[keep], owner[keep]
    if len(polys) == 0:
        return out
    dense = shapely.segmentize(polys, DENSIFY_MM)
    tris, part = shapely.get_parts(shapely.constrained_delaunay_triangles(dense), return_index=True)
    if len(tris) == 0:
        return out
    corners = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3]
    t = len(corners)
    # Vertices by exact coordinate within one part (the triangulation reuses its input points
    # unchanged; two parts, or two layers, may share a point without sharing a vertex).
    flat = corners.reshape(-1, 2)
    owner3 = np.repeat(part, 3)
    order = np.lexsort((flat[:, 1], flat[:, 0], owner3))
    fs, os_ = flat[order], owner3[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (fs[1:, 0] != fs[:-1, 0]) | (fs[1:, 1] != fs[:-1, 1]) | (os_[1:] != os_[:-1])
    vid = np.empty(len(order), dtype=np.int64)
    vid[order] = np.cumsum(new) - 1
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
    node_part = np.zeros(len(chords), dtype=np.int64)
    tri_nodes = node_of_edge[edge_of]
    pts[tri_nodes[chord]] = mids_all[chord]
    node_part[tri_nodes[chord]] = np.repeat(part, 3).reshape(t, 3)[chord]
    n_chords = chord.sum(axis=1)
    sleeve = np.flatnonzero(n_chords == 2)
    links = tri_nodes[sleeve][chord[sleeve]].reshape(-1, 2)
    # A junction gets a node of its own at its centroid, linked to its three chords.
    junction = np.flatnonzero(n_chords == 3)
    centres = len(pts) + np.arange(len(junction))
    if len(junction):
        pts = np.vstack([pts, corners[junction].mean(axis=1)])
        node_part = np.concatenate([node_part, part[junction]])
    boundary = shapely.boundary(polys)
    widths = 2 * shapely.distance(shapely.points(pts), boundary[node_part])
    layer = owner[node_part]
    widths += np.asarray(extra, dtype=float)[layer]
    lo = np.asarray(min_width, dtype=float)[layer]
    hi = np.asarray(max_width, dtype=float)[layer]
    chains = _chains(len(chords), links, centres, tri_nodes[junction], pts, widths)
    if not chains:
        return out
    chains, pts, widths, node_part = _through_junctions(chains, len(chords), pts, widths, node_part)
    layer = owner[node_part]
    lo = np.asarray(min_width, dtype=float)[layer]
    hi = np.asarray(max_width, dtype=float)[layer]
    # All chains end to end, then cut where a chain ends or the strip is too thin to lay
    # anything; what is left longer than its minimum width is a line.
    sizes = np.array([len(c) for c in chains])
    idx = np.fromiter((n for c in chains for n in c), dtype=np.int64, count=int(sizes.sum()))
    chain_of = np.repeat(np.arange(len(chains)), sizes)
    ok = widths[idx] >= lo[idx]
    joined = ok[1:] & ok[:-1] & (chain_of[1:] == chain_of[:-1])
    seg = np.where(joined, np.hypot(*np.diff(pts[idx], axis=0).T), 0.0)
    starts = np.flatnonzero(np.r_[True, ~joined])
    ends = np.r_[starts[1:], len(idx)]
    cum = np.r_[0.0, np.cumsum(seg)]
    length = cum[ends - 1] - cum[starts]
    keep = (ends - starts >= 2) & (length > lo[idx[starts]])
    for a, b in zip(starts[keep].tolist(), ends[keep].tolist(), strict=True):
        sel = idx[a:b]
        line = GapLine(pts[sel], np.minimum(widths[sel], hi[sel]))
        out[int(layer[sel[0]])].append(line)
    return out


def _chains(
    n: int,
    links: np.ndarray,
    centres: np.ndarray,
    spokes: np.ndarray,
    pts: np.ndarray,
    widths: np.ndarray,
) -> list[list[int]]:
    """Node chains from chord to chord, with junction centres at their ends.

    A chord lies in two triangles and each links it to at most one other node, so without the
    junctions the graph has degree two at most: disjoint paths and loops. They are walked all
    at once, one numpy step per node of the longest, rather than node by node in Python.
    Closed loops come out closed (first node repeated). Short branches from a junction to a
    free end (the triangulation's answer to a corner, not a strip) are left out.
    """
    nb = np.full((n, 2), -1, dtype=np.int64)
    if len(links):
        src = np.concatenate([links[:, 0], links[:, 1]])
        dst = np.concatenate([links[:, 1], links[:, 0]])
        order = np.argsort(src, kind="stable")
        src, dst = src[order], dst[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        nb[src, np.where(first, 0, 1)] = dst
    deg = (nb >= 0).sum(axis=1)
    comp = _components(n, links)
    # Each path starts at an end; a loop anywhere.
    key = np.lexsort((np.arange(n), deg >= 2, comp))
    starts = key[np.r_[True, comp[key][1:] != comp[key][:-1]]]
    rank = np.full(n, -1, dtype=np.int64)
    cur, prev = starts.copy(), np.full(len(starts), -1, dtype=np.int64)
    closed = np.zeros(n, dtype=bool)  # by component
    alive = np.arange(len(starts))
    step = 0
    while len(alive):
        c = cur[alive]
        rank[c] = step
        a = nb[c]
        nxt = np.where(a[:, 0] != prev[alive], a[:, 0], a[:, 1])
        back = (nxt >= 0) & (rank[np.maximum(nxt, 0)] >= 0)
        closed[comp[c[back & (nxt == starts[alive])]]] = True
        go = (nxt >= 0) & ~back
        prev[alive] = c
        cur[alive] = nxt
        alive = alive[go]
        step += 1
    order = np.lexsort((rank, comp))
    cuts = np.flatnonzero(np.diff(comp[order])) + 1
    spoke_at: dict[int, list[int]] = {}
    for centre, chords in zip(centres.tolist(), spokes.tolist(), strict=True):
        for ch in chords:
            spoke_at.setdefault(ch, []).append(centre)
    seg = np.hypot(*np.diff(pts[order], axis=0).T)
    bounds = np.r_[0, cuts, len(order)]
    # Along-chain length of each path (segments that cross from one path to the next left out).
    cum = np.r_[0.0, np.cumsum(seg)]
    lengths = cum[bounds[1:] - 1] - cum[bounds[:-1]]
    chains = []
    flat = order.tolist()
    for k, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
        chain = flat[a:b]
        if closed[comp[chain[0]]] and len(chain) > 2:
            chains.append([*chain, chain[0]])
            continue
        head = spoke_at.get(chain[0], [])
        tail = spoke_at.get(chain[-1], [])
        if len(chain) == 1:  # a chord between two junctions, or a junction's stub
            head, tail = head[:1], head[1:2]
        # A branch from a junction to a free end: a spur when shorter than the strip is wide.
        if bool(head) != bool(tail) and lengths[k] < SPUR_WIDTHS * widths[(head or tail)[0]]:
            continue
        chains.append(head[:1] + chain + tail[:1])
    return chains


def _components(n: int, links: np.ndarray) -> np.ndarray:
    """A label per node, shared by the nodes a path of links joins: each node's label is
    hooked to its neighbours' smaller ones and pointers are jumped until nothing changes.
    (scipy's connected_components would do; importing scipy.sparse cost 25 MB.)"""
    label = np.arange(n)
    if len(links) == 0:
        return label
    u, v = links[:, 0], links[:, 1]
    while True:
        lu, lv = label[u], label[v]
        low = np.minimum(lu, lv)
        before = label.copy()
        np.minimum.at(label, lu, low)
        np.minimum.at(label, lv, low)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            return label


def _through_junctions(
    chains: list[list[int]],
    first_centre: int,
    pts: np.ndarray,
    widths: np.ndarray,
    part: np.ndarray,
) -> tuple[list[list[int]], np.ndarray, np.ndarray, np.ndarray]:
    """Join the branches meeting at each junction into lines that run through it.

    Three lines ending at one point each cover it with their full width (a round blob laid
    three times at every T of a letter). The two branches that continue each other best
    become one line; a third stops where it meets that line's edge. Two branches (a corner
    whose spur was dropped) become one line round the corner.
    """
    live: dict[int, list[int]] = dict(enumerate(chains))
    ends: dict[int, list[int]] = {}  # junction -> chains ending there
    for k, c in live.items():
        for node in {c[0], c[-1]}:
            if node >= first_centre:
                ends.setdefault(node, []).append(k)
    extra_pts: list[np.ndarray] = []
    extra_w: list[float] = []
    extra_part: list[int] = []
    next_id = len(pts)
    new_key = len(chains)

    base = len(pts)

    def at(n: int) -> np.ndarray:
        """A node's point, new end points (not yet in `pts`) included."""
        return pts[n] if n < base else extra_pts[n - base]

    def toward(c: list[int], j: int) -> list[int]:
        """`c` oriented to end at junction `j`."""
        return c if c[-1] == j else c[::-1]

    for j in list(ends):
        branches = ends[j]
        branches = [
            k for k in dict.fromkeys(branches) if k in live and j in (live[k][0], live[k][-1])
        ]
        if len(branches) < 2:
            continue
        into = [toward(live[k], j) for k in branches]
        # Direction of each branch leaving the junction.
        dirs = []
        for c in into:
            # Measured a few nodes out: the junction's point itself is off the middle.
            d = at(c[max(0, len(c) - 4)]) - at(c[-2] if len(c) > 2 else j)
            n = float(np.hypot(*d))
            dirs.append(d / n if n > 0 else d)
        best, pair = 2.0, (0, 1)
        for a in range(len(into)):
            for b in range(a + 1, len(into)):
                cos = float(np.dot(dirs[a], dirs[b]))  # -1: straight through
                if cos < best:
                    best, pair = cos, (a, b)
        a, b = pair
        if branches[a] == branches[b]:
            continue  # a loop through its own junction
        joined = into[a] + toward(live[branches[b]], j)[::-1][1:]
        # The junction's own point lies off the middle (a triangle's centroid) and measures
        # the junction, not the line: the line runs straight between its neighbours, at
        # their width.
        near = [c[-2] for c in (into[a], into[b]) if len(c) > 1 and c[-2] < base]
        if len(near) == 2 and best < -0.9:  # straight through (not round a corner)
            pts[j] = pts[near].mean(axis=0)
            widths[j] = float(np.mean(widths[near]))
        for k in (branches[a], branches[b]):
            del live[k]
        live[new_key] = joined
        for end in (joined[0], joined[-1]):
            if end >= first_centre and end != j:
                ends.setdefault(end, []).append(new_key)
        new_key += 1
        for c_idx, k in enumerate(branches):
            if c_idx in pair or k not in live:
                continue
            # A side branch ends at the through line's edge, less the lines' usual overlap.
            c = toward(live[k], j)
            reach = max(0.0, widths[j] / 2 - 0.05)
            keep = [n for n in c[:-1] if np.hypot(*(at(n) - pts[j])) > reach]
            if not keep:
                del live[k]
                continue
            # From the branch's last kept point on along its own middle, to the through
            # line's edge.
            last = at(keep[-1])
            extra_pts.append(last - dirs[c_idx] * (float(np.hypot(*(last - pts[j]))) - reach))
            extra_w.append(float(widths[keep[-1]]) if keep[-1] < base else extra_w[keep[-1] - base])
            extra_part.append(int(part[j]))
            live[k] = [*keep, next_id]
            next_id += 1
    if extra_pts:
        pts = np.vstack([pts, np.array(extra_pts)])
        widths = np.concatenate([widths, np.array(extra_w)])
        part = np.concatenate([part, np.array(extra_part, dtype=part.dtype)])
    return list(live.values()), pts, widths, part


def skin_gaps(
    lines: list[np.ndarray],
    area: shapely.Geometry,
    open_top: shapely.Geometry,
    spacing: float,
    height: float,
    max_width: float,
    widths: list[np.ndarray] | None = None,
) -> list[GapLine]:
    """Gap-fill lines for what a skin's straight lines leave open in `area`, where it shows
    (within a line of `open_top`, the part of the layer nothing above covers).

    With `widths` (each line's width at its points) the lines are gap fill of their own, each
    as wide as its strip: what their round corners leave in a strip's mitred corner (the rim
    of a thin wall) is filled the same way.

    Straight lines meet a curved wall at every angle: where they run nearly along it the last
    line can stand up to (1 − overlap) spacings off the wall's band, a wedge on each side of a
    round hole, a pinhole in a top surface. Each wedge gets a line along its middle, as wide as
    it is at each point (plus the neighbours' overlap).
    """
    if not lines or area.is_empty or open_top.is_empty:
        return []
    extra = height * (1 - np.pi / 4)
    if widths is None:
        bands = shapely.buffer(MultiLineString(lines), spacing / 2, quad_segs=4)
    else:
        # Each segment's band reaches as far as its neighbours' would: half its width less
        # the overlap the flow model gives neighbouring lines.
        # Only where it shows: the strips within a line of the top face, and the segments
        # there (a sloped part's walls have gap lines on most layers, a top face on each).
        area = shapely.intersection(area, shapely.buffer(open_top, spacing, quad_segs=2))
        if area.is_empty:
            return []
        segs = np.concatenate([np.stack([ln[:-1], ln[1:]], axis=1) for ln in lines])
        w = np.concatenate([(wd[1:] + wd[:-1]) / 2 for wd in widths])
        geoms = shapely.linestrings(segs)
        shapely.prepare(area)
        near = shapely.intersects(area, geoms)
        bands = shapely.union_all(
            shapely.buffer(geoms[near], np.maximum(w[near] - extra, 0.0) / 2, quad_segs=4)
        )
    # A hair's opening drops the needle-thin spikes GEOS cannot triangulate.
    left = shapely.get_parts(_hair_opening(shapely.difference(area, bands)))
    left = left[shapely.area(left) >= SKIN_GAP_MIN_AREA_MM2]
    if len(left) == 0:
        return []
    left = left[shapely.intersects(left, shapely.buffer(open_top, spacing))]
    if len(left) == 0:
        return []
    try:
        out = centre_lines(
            np.array([shapely.union_all(left)], dtype=object),
            np.array([extra]),
            np.array([SKIN_GAP_MIN_WIDTH_MM]),
            np.array([max_width]),
        )[0]
    except shapely.errors.GEOSException as err:
        # A degenerate wedge GEOS cannot triangulate: each gets the short line below instead.
        log.debug("skin gap fill: %s; short lines instead", err)
        out = []
    # A triangle (a line's end against a wall met at a slant) has no strip to follow: one
    # short line along its long side, with the triangle's plastic.
    if out:
        hit = shapely.points(np.vstack([g.points for g in out]))
        left = left[~shapely.intersects(left, shapely.union_all(hit))]
    for piece in left:
        out += _blob_line(piece, extra)
    return out


def _hair_opening(geom: shapely.Geometry, r: float = 0.005) -> shapely.Geometry:
    return shapely.buffer(shapely.buffer(geom, -r, join_style="mitre"), r, join_style="mitre")


def _blob_line(piece: shapely.Geometry, extra: float) -> list[GapLine]:
    """One short line in `piece` along its minimum rotated rectangle's long side, centred on
    its largest inscribed circle (a corner's triangle is fattest near the corner, not at its
    rectangle's middle) and as wide as that circle (plus the neighbours' overlap)."""
    rect = shapely.minimum_rotated_rectangle(piece)
    c = np.asarray(shapely.get_coordinates(rect))[:4]
    sides = np.diff(np.vstack([c, c[:1]]), axis=0)
    k = int(np.argmax(np.hypot(*sides.T)))
    length = float(np.hypot(*sides[k]))
    if length <= 1e-6:
        return []
    along = sides[k] / length
    circle = np.asarray(shapely.get_coordinates(shapely.maximum_inscribed_circle(piece)))
    centre, radius = circle[0], float(np.hypot(*(circle[1] - circle[0])))
    width = 2 * radius + extra
    if width < SKIN_GAP_MIN_WIDTH_MM:
        return []
    half = max((length - 2 * radius) / 2, radius / 2, 0.02)
    # A long wedge keeps its rectangle's middle: its inscribed circle sits at one end.
    if length > 6 * radius:
        centre = c.mean(axis=0)
        width = max(piece.area / length + extra, width)
        half = max((length - width) / 2, 0.02)
    pts = np.array([centre - along * half, centre + along * half])
    return [GapLine(pts, np.full(2, width))]
