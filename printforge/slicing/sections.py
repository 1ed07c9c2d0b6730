"""Cut a mesh at many heights in one vectorised pass and assemble the cuts into polygons.

trimesh's `section_multiplane` builds a Path per plane, which costs more than the whole rest of
slicing on a detailed model. Here every (triangle, plane) crossing is computed at once with
numpy, and the segments are chained into loops by the mesh edge each endpoint lies on, which is
exact for a watertight mesh and needs no tolerance-based point matching.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from printforge.slicing.mesh import Mesh

__all__ = ["slice_mesh"]

# Outline detail below this (mm) is far under a nozzle's width; dropping it speeds up every
# later polygon operation. PrusaSlicer's default resolution is of the same order.
SIMPLIFY_MM = 0.0125


def slice_mesh(mesh: Mesh, heights: np.ndarray) -> list[MultiPolygon]:
    """The solid cross-section at each height, holes included (even-odd by loop orientation)."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    face_edges = np.asarray(mesh.faces_unique_edges, dtype=np.int64)  # edges 01, 12, 20
    zs = np.asarray(heights, dtype=np.float64)
    n_layers = len(zs)

    fz = vertices[faces][:, :, 2]
    zmin, zmax = fz.min(axis=1), fz.max(axis=1)
    # Planes crossed by each face: zmin < z <= zmax with "at or above" counting as above.
    first = np.searchsorted(zs, zmin, side="right")
    last = np.searchsorted(zs, zmax, side="right")
    counts = np.maximum(last - first, 0)
    face_idx = np.repeat(np.arange(len(faces)), counts)
    if len(face_idx) == 0:
        return [MultiPolygon() for _ in range(n_layers)]
    starts = np.repeat(first - np.cumsum(counts) + counts, counts)
    layer_idx = starts + np.arange(len(face_idx))
    z = zs[layer_idx]

    tri = faces[face_idx]
    above = vertices[tri][:, :, 2] >= z[:, None]  # (n, 3)
    nxt = np.roll(above, -1, axis=1)
    up = ~above & nxt  # edge k goes from below to above
    down = above & ~nxt
    keep = up.any(axis=1) & down.any(axis=1)
    tri, face_idx, layer_idx, z = tri[keep], face_idx[keep], layer_idx[keep], z[keep]
    up_k = np.argmax(up[keep], axis=1)
    down_k = np.argmax(down[keep], axis=1)

    rows = np.arange(len(tri))
    start_edge = face_edges[face_idx, down_k]
    end_edge = face_edges[face_idx, up_k]
    start_pt = _cross(vertices, tri, down_k, z, rows)
    # A segment runs from where the outline enters the triangle to where it leaves; chaining by
    # edge id needs only the start points.
    n_edges = int(face_edges.max()) + 1
    start_key = layer_idx * n_edges + start_edge
    end_key = layer_idx * n_edges + end_edge
    nxt_seg = _successors(start_key, end_key)

    loops = _chain(nxt_seg.tolist())
    per_layer: list[list[np.ndarray]] = [[] for _ in range(n_layers)]
    for loop in loops:
        if len(loop) >= 3:
            idx = np.asarray(loop)
            per_layer[int(layer_idx[idx[0]])].append(start_pt[idx])
    return [_assemble(rings) for rings in per_layer]


def _successors(start_key: np.ndarray, end_key: np.ndarray) -> np.ndarray:
    """For each segment, the one starting where it ends (-1 if none).

    An edge shared by four faces (bodies touching along a line) has two segments starting and
    two ending on it per plane; pairing them by rank keeps the successor map a permutation,
    so every segment still lies on a closed loop.
    """
    n = len(start_key)
    order_s = np.argsort(start_key, kind="stable")
    order_e = np.argsort(end_key, kind="stable")
    ss, se = start_key[order_s], end_key[order_e]
    rank = np.arange(n) - np.searchsorted(se, se, side="left")
    pos = np.searchsorted(ss, se, side="left") + rank
    valid = pos < n
    valid[valid] = ss[pos[valid]] == se[valid]
    nxt = np.full(n, -1, dtype=np.int64)
    nxt[order_e[valid]] = order_s[pos[valid]]
    return nxt


def _cross(
    vertices: np.ndarray, tri: np.ndarray, k: np.ndarray, z: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    a = vertices[tri[rows, k]]
    b = vertices[tri[rows, (k + 1) % 3]]
    dz = b[:, 2] - a[:, 2]
    t = np.divide(z - a[:, 2], dz, out=np.zeros_like(dz), where=dz != 0)
    return a[:, :2] + (b[:, :2] - a[:, :2]) * t[:, None]


def _chain(nxt: list[int]) -> list[list[int]]:
    """Cycles of the successor list; open chains (a non-manifold cut) are dropped."""
    seen = bytearray(len(nxt))
    loops = []
    for s in range(len(nxt)):
        if seen[s]:
            continue
        loop = []
        i = s
        while i >= 0 and not seen[i]:
            seen[i] = 1
            loop.append(i)
            i = nxt[i]
        if i == s:
            loops.append(loop)
    return loops


def _assemble(rings: list[np.ndarray]) -> MultiPolygon:
    if not rings:
        return MultiPolygon()
    polys = [Polygon(r) for r in rings]
    polys = list(shapely.simplify(polys, SIMPLIFY_MM, preserve_topology=False))
    areas = np.array([_signed_area(r) for r in rings])
    outer = [p for p, a in zip(polys, areas, strict=True) if a > 0 and not p.is_empty]
    holes = [p for p, a in zip(polys, areas, strict=True) if a < 0 and not p.is_empty]
    if not outer:
        return MultiPolygon()
    if len(outer) == 1 and not holes and outer[0].is_valid:
        return MultiPolygon([outer[0]])
    # Even-odd fill: a manifold cut's loops do not cross, so outer minus holes (nested islands
    # added back level by level) is the solid. Sorting by area lets each hole find its parent.
    outer.sort(key=lambda p: p.area)
    holes_of: list[list[Polygon]] = [[] for _ in outer]
    islands: list[Polygon] = []
    for h in holes:
        pt = h.exterior.coords[0]
        for i, o in enumerate(outer):
            if o.area > h.area and shapely.contains_xy(o, pt[0], pt[1]):
                holes_of[i].append(h)
                break
    for o, hs in zip(outer, holes_of, strict=True):
        islands.append(o.difference(shapely.union_all(hs)) if hs else o)
    # A solid nested inside a hole was subtracted by its parent's hole; union brings it back.
    merged = shapely.union_all([shapely.make_valid(g) for g in islands])
    return _as_multi(merged)


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _as_multi(geom: shapely.Geometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom]) if not geom.is_empty else MultiPolygon()
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]
    return MultiPolygon(polys)
