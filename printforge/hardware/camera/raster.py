"""A small software rasteriser for the virtual camera: a pinhole view, triangles, ellipsoids and
tubes turned into fragments, and one depth test over all of them.

Written by hand rather than taken from an OpenGL binding: the camera must render in a headless
worker on a CPU with nothing but numpy, and a frame of a Benchy-sized part is a few thousand
triangles a few pixels each. Everything is vectorised over faces and pixels; nothing loops in
Python per triangle. A fragment is (pixel index, depth, colour); depth is the distance along the
camera's forward axis, so one depth test resolves meshes, spheres and strands together.

This module is the virtual camera's own: the failure detector's twin renderer must not share it
(the two would agree by construction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Fragments",
    "View",
    "ellipsoid_fragments",
    "mesh_fragments",
    "resolve",
    "tube_fragments",
]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

NEAR_MM = 5.0  # geometry closer to the lens than this is not drawn
_INDEX_BITS = 24  # fragment index bits in the depth-test key (16 M fragments per frame)


@dataclass
class View:
    """A pinhole camera: position, orientation (rows: right, down, forward) and focal length."""

    width: int
    height: int
    focal_px: float
    position: F64
    rotation: F64  # world -> camera, 3x3
    _rays: F32 | None = field(default=None, repr=False)

    @classmethod
    def look_at(
        cls,
        position: tuple[float, float, float],
        target: tuple[float, float, float],
        width: int,
        height: int,
        focal_px: float,
    ) -> View:
        pos = np.asarray(position, dtype=np.float64)
        forward = np.asarray(target, dtype=np.float64) - pos
        forward /= np.linalg.norm(forward)
        up = np.array([0.0, 0.0, 1.0])
        if abs(float(forward @ up)) > 0.999:  # looking straight down: any horizontal 'up'
            up = np.array([0.0, 1.0, 0.0])
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        return cls(width, height, focal_px, pos, np.stack([right, down, forward]))

    def rays(self) -> F32:
        """Per pixel, the world direction whose forward component is 1 (so t is depth)."""
        if self._rays is None:
            u = (np.arange(self.width, dtype=np.float32) + 0.5 - self.width / 2) / self.focal_px
            v = (np.arange(self.height, dtype=np.float32) + 0.5 - self.height / 2) / self.focal_px
            uu, vv = np.meshgrid(u, v)
            cam = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size, np.float32)], axis=1)
            self._rays = (cam @ self.rotation.astype(np.float32)).astype(np.float32)
        return self._rays

    def to_camera(self, points: F64) -> F64:
        out: F64 = (np.asarray(points, dtype=np.float64) - self.position) @ self.rotation.T
        return out

    def project(self, cam: F64) -> tuple[F64, F64]:
        """Camera-frame points to continuous pixel coordinates (pixel i covers [i, i+1))."""
        z = cam[:, 2]
        return (
            cam[:, 0] * self.focal_px / z + self.width / 2,
            cam[:, 1] * self.focal_px / z + self.height / 2,
        )


@dataclass
class Fragments:
    """Candidate surface points: pixel index, depth (mm along the view axis), linear RGB."""

    pixel: I64
    depth: F32
    rgb: F32

    @classmethod
    def empty(cls) -> Fragments:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 3), np.float32))

    def __len__(self) -> int:
        return int(self.pixel.size)

    def keep(self, mask: NDArray[np.bool_]) -> Fragments:
        return Fragments(self.pixel[mask], self.depth[mask], self.rgb[mask])


def _expand(counts: I64) -> tuple[I64, I64]:
    """For items with `counts` each: the owning item and the index within it, flattened."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    return owner, within


@dataclass
class Coverage:
    """Which pixels each face covers: the face index and the pixel, one row per fragment."""

    face: I64
    pixel: I64


def cover_triangles(
    view: View, verts: F64, faces: NDArray[np.int64], *, cull_back: bool = False
) -> Coverage:
    """Scan-convert triangles: rows first, then the exact span of each row (pixel centres).

    `cull_back` leaves out faces turned away from the camera (in a closed mesh they are
    always behind a front face), which halves the work."""
    cam = view.to_camera(verts)
    tri = cam[faces]  # (F, 3, 3)
    ok = np.all(tri[:, :, 2] > NEAR_MM, axis=1)
    if cull_back:
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        ok &= np.einsum("ij,ij->i", normal, tri[:, 0]) < 0
    faces_idx = np.nonzero(ok)[0]
    if faces_idx.size == 0:
        return Coverage(np.zeros(0, np.int64), np.zeros(0, np.int64))
    tri = tri[faces_idx]
    px, py = view.project(tri.reshape(-1, 3))
    px = px.reshape(-1, 3)
    py = py.reshape(-1, 3)
    # Rows whose centre (j + 0.5) lies within the triangle's vertical extent.
    j0 = np.maximum(np.ceil(py.min(axis=1) - 0.5), 0).astype(np.int64)
    j1 = np.minimum(np.floor(py.max(axis=1) - 0.5), view.height - 1).astype(np.int64)
    rows = np.maximum(j1 - j0 + 1, 0)
    # Faces entirely left or right of the picture cover nothing.
    rows[(px.max(axis=1) < 0) | (px.min(axis=1) > view.width)] = 0
    owner, within = _expand(rows)
    if owner.size == 0:
        return Coverage(np.zeros(0, np.int64), np.zeros(0, np.int64))
    y = (j0[owner] + within).astype(np.float64) + 0.5
    fx, fy = px[owner], py[owner]
    lo = np.full(owner.size, np.inf)
    hi = np.full(owner.size, -np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ya, yb, xa, xb = fy[:, a], fy[:, b], fx[:, a], fx[:, b]
        crosses = (np.minimum(ya, yb) <= y) & (y <= np.maximum(ya, yb)) & (ya != yb)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = xa + (y - ya) * (xb - xa) / (yb - ya)
        lo = np.where(crosses, np.minimum(lo, x), lo)
        hi = np.where(crosses, np.maximum(hi, x), hi)
    i0 = np.maximum(np.ceil(lo - 0.5), 0)
    i1 = np.minimum(np.floor(hi - 0.5), view.width - 1)
    valid = np.isfinite(i0) & np.isfinite(i1)
    span = np.where(valid, np.maximum(i1 - i0 + 1, 0), 0).astype(np.int64)
    row_of, col = _expand(span)
    i = i0[row_of].astype(np.int64) + col
    j = (j0[owner] + within)[row_of]
    return Coverage(faces_idx[owner[row_of]], j * view.width + i)


def mesh_fragments(
    view: View, verts: F64, faces: NDArray[np.int64], *, cull_back: bool = False
) -> tuple[Coverage, F32, F32, NDArray[np.bool_]]:
    """Cover a mesh and measure each fragment: depth, world point, and whether it is a back face.

    Depth comes from intersecting the pixel's ray with the face's plane, which is exact and
    perspective-correct without interpolating anything across the triangle.
    """
    cover = cover_triangles(view, verts, faces, cull_back=cull_back)
    if cover.face.size == 0:
        z = np.zeros(0, np.float32)
        return cover, z, np.zeros((0, 3), np.float32), np.zeros(0, bool)
    # Per face (not per fragment): the plane n.p = d, in float64 for thin slivers.
    face_ids, inverse = np.unique(cover.face, return_inverse=True)
    ftri = verts[faces[face_ids]]
    normal = np.cross(ftri[:, 1] - ftri[:, 0], ftri[:, 2] - ftri[:, 0])
    offset = np.einsum("ij,ij->i", normal, ftri[:, 0] - view.position)
    rays = view.rays()[cover.pixel].astype(np.float64)
    n = normal[inverse]
    denom = np.einsum("ij,ij->i", n, rays)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = offset[inverse] / denom
    good = np.isfinite(t) & (t > NEAR_MM)
    t = np.where(good, t, np.inf)
    world = view.position + rays * t[:, None]
    back = denom > 0  # the ray leaves through this face: we see its inside
    return cover, t.astype(np.float32), world.astype(np.float32), back


def ellipsoid_fragments(
    view: View, center: F64, axes: F64, rgb: F32, light: F64, ambient: float
) -> Fragments:
    """Ellipsoids (centre, 3x3 matrix whose columns are the semi-axes) hit by pixel rays.

    Each is drawn over the box its projected bounding box covers; the hit is exact (a ray
    against the unit sphere in the ellipsoid's own frame), shaded by Lambert. A ray's direction
    in that frame is linear in the pixel's column and row, so the quadratic is built from one
    row vector and one column vector per axis, not from a ray per pixel.
    """
    out: list[Fragments] = []
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
    f = view.focal_px
    for k in range(center.shape[0]):
        c, a = center[k], axes[k]
        inv = np.linalg.inv(a)
        # The projected corners of the ellipsoid's own bounding box bound its picture tightly,
        # which matters for long thin ones (fingers, a forearm) close to the lens.
        corners = view.to_camera(c + signs @ a.T)
        if corners[:, 2].min() <= NEAR_MM:
            continue
        u, v = view.project(corners)
        i0, i1 = max(int(u.min()), 0), min(int(u.max()) + 1, view.width)
        j0, j1 = max(int(v.min()), 0), min(int(v.max()) + 1, view.height)
        if i0 >= i1 or j0 >= j1:
            continue
        m = (inv @ view.rotation.T).astype(np.float32)  # camera-frame ray -> ellipsoid frame
        o = (inv @ (view.position - c)).astype(np.float32)
        x = ((np.arange(i0, i1, dtype=np.float32) + 0.5 - view.width / 2) / f)[None, :]
        y = ((np.arange(j0, j1, dtype=np.float32) + 0.5 - view.height / 2) / f)[:, None]
        dl = [x * m[r, 0] + y * m[r, 1] + m[r, 2] for r in range(3)]
        qa = dl[0] * dl[0] + dl[1] * dl[1] + dl[2] * dl[2]
        qb = 2 * (dl[0] * o[0] + dl[1] * o[1] + dl[2] * o[2])
        qc = float(o @ o) - 1
        disc = qb * qb - 4 * qa * qc
        jj, ii = np.nonzero(disc > 0)
        if jj.size == 0:
            continue
        qa_h, qb_h, disc_h = qa[jj, ii], qb[jj, ii], disc[jj, ii]
        t = (-qb_h - np.sqrt(disc_h)) / (2 * qa_h)
        front = t > NEAR_MM
        jj, ii, t = jj[front], ii[front], t[front]
        p_local = o[None] + np.stack([d[jj, ii] for d in dl], axis=1) * t[:, None]
        normal = p_local @ inv.astype(np.float32)  # the sphere's normal, carried back
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        shade = ambient + (1 - ambient) * np.clip(normal @ light.astype(np.float32), 0, 1)
        colour = np.asarray(rgb[k], np.float32)[None] * shade[:, None].astype(np.float32)
        pix = (jj + j0).astype(np.int64) * view.width + (ii + i0)
        out.append(Fragments(pix, t.astype(np.float32), colour))
    return concat(out)


def tube_fragments(
    view: View, points: F64, radius_mm: float, rgb: F32, light: F64, ambient: float
) -> Fragments:
    """A polyline of thin filament (points in mm, NaN rows break it) as overlapping discs.

    Strands are a pixel or two wide at the camera's distance, so each sample is a small disc
    facing the camera, a pixel apart; shading follows the tube's normal towards
    the light, which keeps the coil-and-curve look of fallen filament.
    """
    pts = np.asarray(points, dtype=np.float64)
    seg_ok = np.all(np.isfinite(pts[:-1]), axis=1) & np.all(np.isfinite(pts[1:]), axis=1)
    if not seg_ok.any():
        return Fragments.empty()
    a, b = pts[:-1][seg_ok], pts[1:][seg_ok]
    ca, cb = view.to_camera(a), view.to_camera(b)
    keep = (ca[:, 2] > NEAR_MM) & (cb[:, 2] > NEAR_MM)
    a, b, ca, cb = a[keep], b[keep], ca[keep], cb[keep]
    if a.size == 0:
        return Fragments.empty()
    ua, va = view.project(ca)
    ub, vb = view.project(cb)
    # A sample per pixel of length; each is a disc at least half a pixel wide, so they join.
    steps = np.maximum(np.ceil(np.hypot(ub - ua, vb - va)), 1).astype(np.int64)
    seg, k = _expand(steps)
    f = (k / steps[seg])[:, None]
    cam = ca[seg] + (cb[seg] - ca[seg]) * f
    tangent = b[seg] - a[seg]
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    # The tube's normal facing the light is the light with its along-tube part removed.
    lit = light[None] - tangent * (tangent @ light)[:, None]
    shade = ambient + (1 - ambient) * np.clip(np.linalg.norm(lit, axis=1), 0, 1) ** 2
    depth = cam[:, 2].astype(np.float32)
    u = (cam[:, 0] * view.focal_px / cam[:, 2] + view.width / 2).astype(np.float32)
    v = (cam[:, 1] * view.focal_px / cam[:, 2] + view.height / 2).astype(np.float32)
    r_px = np.maximum(radius_mm * view.focal_px / depth, 0.5)
    shade = shade.astype(np.float32)
    reach = int(np.ceil(r_px.max()))
    offsets = np.array(
        [
            (di, dj)
            for dj in range(-reach, reach + 1)
            for di in range(-reach, reach + 1)
            if di * di + dj * dj <= (reach + 0.5) ** 2
        ],
        np.int64,
    )
    # Every sample against every offset at once: (samples, offsets).
    i = np.floor(u).astype(np.int64)[:, None] + offsets[None, :, 0]
    j = np.floor(v).astype(np.int64)[:, None] + offsets[None, :, 1]
    dist2 = (i + 0.5 - u[:, None]) ** 2 + (j + 0.5 - v[:, None]) ** 2
    r2 = (r_px * r_px)[:, None]
    inside = (dist2 <= r2) & (i >= 0) & (i < view.width) & (j >= 0) & (j < view.height)
    row, _ = np.nonzero(inside)
    pix = (j * view.width + i)[inside]
    # Rounder look: the rim of the tube is darker than its middle.
    rim = 1 - 0.35 * dist2[inside] / r2[row, 0]
    shade_all = (shade[row] * rim).astype(np.float32)
    colour = np.asarray(rgb, np.float32)[None] * shade_all[:, None]
    return Fragments(pix, depth[row], colour)


def concat(parts: list[Fragments]) -> Fragments:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Fragments.empty()
    return Fragments(
        np.concatenate([p.pixel for p in parts]),
        np.concatenate([p.depth for p in parts]),
        np.concatenate([p.rgb for p in parts]),
    )


def resolve(frags: Fragments, depth: F32, image: F32) -> None:
    """Depth test: each pixel of `image` (H*W, 3) takes its nearest fragment, if nearer than
    what `depth` (H*W) already holds (the background). Updates both in place."""
    if not len(frags):
        return
    if len(frags) >= 1 << _INDEX_BITS:
        raise ValueError(f"{len(frags)} fragments in one frame: more than the depth test holds")
    # One integer key per fragment, micrometres of depth above the fragment's index: the
    # smallest key per pixel is its nearest fragment (np.minimum.at, no sort).
    micron = np.minimum(frags.depth.astype(np.float64) * 1000.0, 2.0**38).astype(np.int64)
    key = (micron << _INDEX_BITS) | np.arange(len(frags), dtype=np.int64)
    best = np.full(depth.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, frags.pixel, key)
    hit = np.nonzero(best != np.iinfo(np.int64).max)[0]
    winner = best[hit] & ((1 << _INDEX_BITS) - 1)
    nearer = frags.depth[winner] < depth[hit]
    hit, winner = hit[nearer], winner[nearer]
    depth[hit] = frags.depth[winner]
    image[hit] = frags.rgb[winner]
