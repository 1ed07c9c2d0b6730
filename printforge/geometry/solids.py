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
    corners = ((x / 2 - radius, y / 2 - radius, 0), (-x / 2 + radius, y / 2 - radius, 1),
               (-x / 2 + radius, -y / 2 + radius, 2), (x / 2 - radius, -y / 2 + radius, 3))
    for cx, cy, quad in corners:
        for i in range(q + 1):
            a = (quad + i / q) * math.pi / 2
            pts.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return mf.CrossSection([np.asarray(pts)])


def to_trimesh(solid: mf.Manifold) -> trimesh.Trimesh:
    mesh = solid.to_mesh64()  # float64: a 23.6 mm size stays 23.6, not 23.60000038
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    # process=False keeps manifold3d's topology: merging nearly equal vertices (what trimesh's
    # processing does) can fuse two surfaces that merely touch and open the mesh.
    return trimesh.Trimesh(vertices=verts, faces=faces, process=False)
