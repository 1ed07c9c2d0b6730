"""A PNG picture of a mesh, drawn on the CPU.

There is no GPU or display here (servers, CI), and trimesh's renderer needs pyglet with an
OpenGL context, so this is a small z-buffer rasteriser in numpy: triangles are projected to an
isometric view, every pixel they cover is computed in bulk (scanlines, no Python loop per
triangle), the nearest one wins per pixel, and faces are flat-shaded with two lights.
Rendering at twice the size and scaling down with Pillow smooths the edges. A 10 mm grid is
drawn underneath for scale.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageDraw, ImageFont

__all__ = ["render_png", "render_preview"]

_BASE = np.array([236.0, 122.0, 40.0])  # PLA orange
_BG_TOP = np.array([246.0, 248.0, 251.0])
_BG_BOTTOM = np.array([214.0, 221.0, 230.0])
_GRID = (170, 178, 190)
_CHUNK = 3_000_000  # candidate pixels per batch: bounds memory at ~200 MB


def _view(azimuth: float, elevation: float) -> np.ndarray:
    """World -> camera rotation: camera x right, y up, z towards the viewer."""
    az, el = math.radians(azimuth), math.radians(elevation)
    eye = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    right = np.cross([0.0, 0.0, 1.0], eye)
    right /= np.linalg.norm(right)
    up = np.cross(eye, right)
    return np.vstack([right, up, eye])


def _rasterise(tri: np.ndarray, w: int, h: int) -> np.ndarray:
    """Per pixel: index (-1 = empty) of the nearest triangle. tri is (n, 3, 3) in pixel x,
    pixel y (down) and depth (larger = nearer).

    Scanline in bulk: each triangle is cut into the pixel rows it crosses, each row into the
    pixels between its two edges, so the work follows the area drawn (a bounding-box test
    would cost as much as the box, which for a long thin sliver is most of the picture).
    """
    best = np.full(h * w, -1, dtype=np.int64)
    # Depth plane per triangle: z = z0 + zx * x + zy * y.
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    e1, e2 = b - a, c - a
    cross = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    keep = np.abs(cross) > 1e-9
    tri, a, e1, e2, cross = tri[keep], a[keep], e1[keep], e2[keep], cross[keep]
    index = np.nonzero(keep)[0]
    if not len(tri):
        return best.reshape(h, w)
    zx = (e1[:, 2] * e2[:, 1] - e2[:, 2] * e1[:, 1]) / cross
    zy = (e2[:, 2] * e1[:, 0] - e1[:, 2] * e2[:, 0]) / cross
    z0 = a[:, 2] - zx * a[:, 0] - zy * a[:, 1]
    zlo, zhi = float(tri[:, :, 2].min()), float(tri[:, :, 2].max())
    zscale = (2**30 - 1) / max(zhi - zlo, 1e-9)
    # Pixel rows whose centres (y + 0.5) fall inside each triangle's vertical extent.
    r0 = np.clip(np.ceil(tri[:, :, 1].min(axis=1) - 0.5), 0, h).astype(np.int64)
    r1 = np.clip(np.floor(tri[:, :, 1].max(axis=1) - 0.5), -1, h - 1).astype(np.int64)
    rows = np.maximum(r1 - r0 + 1, 0)
    face = np.repeat(np.arange(len(tri)), rows)
    yc = (r0[face] + np.arange(rows.sum()) - np.repeat(np.cumsum(rows) - rows, rows)) + 0.5
    xl = np.full(len(face), np.inf)
    xr = np.full(len(face), -np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        p, q = tri[face, i], tri[face, j]
        lo_y, hi_y = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
        crosses = (yc >= lo_y) & (yc <= hi_y) & (hi_y > lo_y)
        dy = np.where(crosses, q[:, 1] - p[:, 1], 1.0)
        x = p[:, 0] + (yc - p[:, 1]) / dy * (q[:, 0] - p[:, 0])
        xl = np.where(crosses, np.minimum(xl, x), xl)
        xr = np.where(crosses, np.maximum(xr, x), xr)
    c0 = np.clip(np.ceil(xl - 0.5), 0, w).astype(np.int64)
    c1 = np.clip(np.floor(xr - 0.5), -1, w - 1).astype(np.int64)
    span = np.maximum(c1 - c0 + 1, 0)
    start = 0
    cum = np.cumsum(span)
    while start < len(span):
        # Batches keep the pixel arrays to a few million entries.
        stop = int(np.searchsorted(cum, (cum[start - 1] if start else 0) + _CHUNK)) + 1
        stop = min(max(stop, start + 1), len(span))
        n = span[start:stop]
        seg = np.repeat(np.arange(start, stop), n)
        px = c0[seg] + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        f = face[seg]
        y = yc[seg]
        z = z0[f] + zx[f] * (px + 0.5) + zy[f] * y
        packed = (np.clip((z - zlo) * zscale, 0, 2**30 - 1).astype(np.int64) << 24) | index[f]
        np.maximum.at(best, (y - 0.5).astype(np.int64) * w + px, packed)
        start = stop
    owner = np.where(best >= 0, best & ((1 << 24) - 1), -1)
    return owner.reshape(h, w)


def _creases(owner: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Pixels on the outline or on a sharp edge (neighbouring faces more than ~25° apart).

    Flat shading alone gives two parallel faces the same colour, so raised text seen from
    above or a step in a wall would vanish; drawing the edges keeps them readable."""
    n = np.zeros((*owner.shape, 3))
    hit = owner >= 0
    n[hit] = normals[owner[hit]]
    edge = np.zeros(owner.shape, dtype=bool)
    for axis in (0, 1):
        a = np.take(n, np.arange(owner.shape[axis] - 1), axis=axis)
        b = np.take(n, np.arange(1, owner.shape[axis]), axis=axis)
        ha = np.take(hit, np.arange(owner.shape[axis] - 1), axis=axis)
        hb = np.take(hit, np.arange(1, owner.shape[axis]), axis=axis)
        sharp = (ha != hb) | (ha & hb & (np.einsum("...k,...k->...", a, b) < 0.9))
        # Mark both pixels of the pair; the background one is dropped below.
        if axis == 0:
            edge[:-1] |= sharp
            edge[1:] |= sharp
        else:
            edge[:, :-1] |= sharp
            edge[:, 1:] |= sharp
    return edge & hit


def _background(w: int, h: int) -> np.ndarray:
    t = np.linspace(0, 1, h)[:, None, None]
    return np.broadcast_to(_BG_TOP * (1 - t) + _BG_BOTTOM * t, (h, w, 3)).copy()


def render_preview(
    mesh: trimesh.Trimesh,
    size: tuple[int, int] = (640, 480),
    bed: tuple[float, float] | None = None,
    label: str | None = None,
    azimuth: float = -60.0,
    elevation: float | None = None,
) -> Image.Image:
    """The mesh as an RGB image, seen from the front right and above (steeper for flat
    parts, so text and holes on top stay readable)."""
    w, h = size
    if elevation is None:
        ext = mesh.extents
        elevation = 50.0 if ext[2] < 0.2 * max(ext[0], ext[1]) else 28.0
    ss = 2  # supersampling factor
    W, H = w * ss, h * ss
    rot = _view(azimuth, elevation)
    verts = np.asarray(mesh.vertices, dtype=float)
    centre = (verts.max(axis=0) + verts.min(axis=0)) / 2
    cam = (verts - centre) @ rot.T
    # The bed grid spans the part plus a margin, so scale to whichever is bigger.
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    pad = max(10.0, 0.15 * float(np.max(hi - lo)))
    gx = np.arange(math.floor((lo[0] - pad) / 10) * 10, hi[0] + pad + 10, 10.0)
    gy = np.arange(math.floor((lo[1] - pad) / 10) * 10, hi[1] + pad + 10, 10.0)
    corners = np.array([[x, y, lo[2]] for x in (gx[0], gx[-1]) for y in (gy[0], gy[-1])])
    extent = np.vstack([cam[:, :2], ((corners - centre) @ rot.T)[:, :2]])
    span = np.maximum(extent.max(axis=0) - extent.min(axis=0), 1e-6)
    scale = 0.9 * min(W / span[0], H / span[1])
    mid = (extent.max(axis=0) + extent.min(axis=0)) / 2

    def to_px(p: np.ndarray) -> np.ndarray:
        q = (p - centre) @ rot.T
        return np.column_stack(
            [(q[:, 0] - mid[0]) * scale + W / 2, H / 2 - (q[:, 1] - mid[1]) * scale, q[:, 2]]
        )

    img = Image.fromarray(_background(W, H).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for x in gx:
        a, b = to_px(np.array([[x, gy[0], lo[2]], [x, gy[-1], lo[2]]]))
        draw.line([tuple(a[:2]), tuple(b[:2])], fill=_GRID, width=ss)
    for y in gy:
        a, b = to_px(np.array([[gx[0], y, lo[2]], [gx[-1], y, lo[2]]]))
        draw.line([tuple(a[:2]), tuple(b[:2])], fill=_GRID, width=ss)
    pixels = np.asarray(img, dtype=float).copy()

    normals = np.asarray(mesh.face_normals) @ rot.T
    front = normals[:, 2] > 1e-6  # back faces of a closed mesh are never seen
    tri = to_px(verts)[np.asarray(mesh.faces)][front]
    nrm = normals[front]
    key = np.array([-0.4, 0.6, 0.7])
    fill = np.array([0.6, -0.2, 0.5])
    light = (
        0.32
        + 0.58 * np.clip(nrm @ (key / np.linalg.norm(key)), 0, None)
        + 0.18 * np.clip(nrm @ (fill / np.linalg.norm(fill)), 0, None)
    )
    colours = np.clip(_BASE[None, :] * light[:, None], 0, 255)
    owner = _rasterise(tri, W, H)
    hit = owner >= 0
    pixels[hit] = colours[owner[hit]]
    pixels[_creases(owner, nrm)] *= 0.55
    out = Image.fromarray(pixels.astype(np.uint8)).resize((w, h), Image.Resampling.LANCZOS)
    if label:
        ImageDraw.Draw(out).text(
            (10, h - 22), label, fill=(60, 66, 76), font=ImageFont.load_default(14)
        )
    return out


def render_png(
    mesh: trimesh.Trimesh,
    path: Path,
    *,
    label: str | None = None,
    size: tuple[int, int] = (640, 480),
) -> Path:
    """Write the preview of `mesh` to `path` (PNG) and return the path."""
    render_preview(mesh, size, label=label).save(path, format="PNG", optimize=True)
    return path
