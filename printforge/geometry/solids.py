"""Small manifold3d helpers shared by the builders: segment counts, rounded shapes, conversion."""

from __future__ import annotations

import math

import manifold3d as mf
import numpy as np
import trimesh

__all__ = [
    "EPS",
    "box",
    "cylinder",
    "rounded_rect",
    "segments",
    "to_trimesh",
    "twisted",
]

# Cutters overshoot the faces they cut by this much so coplanar faces never meet exactly.
EPS = 0.01


def segments(radius: float, *, chord: float = 0.5) -> int:
    """Facets for a circle: about `chord` mm each, a multiple of 4 so the X and Y extents are
    exactly the diameter (a vertex sits on each axis)."""
    n = math.ceil(2 * math.pi * max(radius, 0.01) / chord)
    return int(min(256, max(16, 4 * math.ceil(n / 4))))


def box(x: float, y: float, z: float, *, center: bool = False) -> mf.Manifold:
    return mf.Manifold.cube((x, y, z), center)


def cylinder(
    height: float, r_low: float, r_high: float | None = None, *, center: bool = False
) -> mf.Manifold:
    r_high = r_low if r_high is None else r_high
    n = segments(max(r_low, r_high))
    return mf.Manifold.cylinder(height, r_low, r_high, n, center)


def rounded_rect(x: float, y: float, radius: float) -> mf.CrossSection:
    """A rectangle centred on the origin with its corners rounded by `radius`."""
    if radius <= 0:
        return mf.CrossSection.square((x, y), True)
    radius = min(radius, x / 2 - 1e-3, y / 2 - 1e-3)
    n = segments(radius)
    q = n // 4
    pts: list[tuple[float, float]] = []
    corners = (
        (x / 2 - radius, y / 2 - radius, 0),
        (-x / 2 + radius, y / 2 - radius, 1),
        (-x / 2 + radius, -y / 2 + radius, 2),
        (x / 2 - radius, -y / 2 + radius, 3),
    )
    for cx, cy, quad in corners:
        for i in range(q + 1):
            a = (quad + i / q) * math.pi / 2
            pts.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return mf.CrossSection([np.asarray(pts)])


def twisted(body: mf.Manifold, degrees: float, height: float) -> mf.Manifold:
    """`body` (standing on z = 0, `height` tall) turned counter-clockwise by `degrees` from
    bottom to top, about the Z axis.

    Twisting moves only vertices, so a long straight edge (a flat side of a polygon, a
    straight vase wall manifold3d stores as one row) would cut a chord through the twisted
    shape: a 20 x 10 mm bar twisted 90 degrees lost 0.4 mm on its sides, a square vase twisted
    a full turn collapsed to a twisted ribbon. Splitting every edge first keeps each facet's
    turn small: pieces of sqrt(0.1 * height / twist) mm (twist in radians) keep the surface
    within about 0.05 mm of the true twisted shape up to a turn per 30 mm, never below
    0.5 mm so extreme twists stay a sane size.
    """
    if not degrees:
        return body
    turn = math.radians(degrees)
    body = body.refine_to_length(max(math.sqrt(0.1 * height / abs(turn)), 0.5))

    def warp(points: np.ndarray) -> np.ndarray:
        a = turn * points[:, 2] / height
        x, y = points[:, 0], points[:, 1]
        return np.column_stack(
            [x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a), points[:, 2]]
        )

    return body.warp_batch(warp)


def to_trimesh(solid: mf.Manifold) -> trimesh.Trimesh:
    mesh = solid.to_mesh64()  # float64: a 23.6 mm size stays 23.6, not 23.60000038
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    # process=False keeps manifold3d's topology: merging nearly equal vertices (what trimesh's
    # processing does) can fuse two surfaces that merely touch and open the mesh.
    return trimesh.Trimesh(vertices=verts, faces=faces, process=False)
