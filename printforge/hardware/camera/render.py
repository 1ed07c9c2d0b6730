"""Render a `FrameSpec` into a JPEG: the bed, the part as printed so far, the print head and the
events, lit, then seen through a cheap lens and a noisy sensor.

Runs in the render worker (see worker.py); meshes, the head and the bed texture are cached in
the process between frames.
"""

from __future__ import annotations

import io
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from printforge.hardware.camera.effects import (
    blob_lumps,
    hand_ellipsoids,
    hanging_strand,
    joined,
    lying_strand,
    pile,
)
from printforge.hardware.camera.frame import FrameSpec, Motion, Piece, Pose
from printforge.hardware.camera.raster import (
    Fragments,
    View,
    concat,
    ellipsoid_fragments,
    mesh_fragments,
    resolve,
    tube_fragments,
)
from printforge.hardware.camera.scene import PartMesh, bed_texture, head_mesh, load_part

__all__ = ["part_for", "render_frame", "render_rgb"]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

LIGHT = np.array([-0.35, -0.55, 1.0]) / np.linalg.norm([-0.35, -0.55, 1.0])
AMBIENT = 0.38
FILAMENT_RADIUS_MM = 0.3
_HEAD_COLOURS = np.array([[0.78, 0.58, 0.26], [0.62, 0.63, 0.66], [0.09, 0.09, 0.10]], np.float32)
_FRAME_GREY = np.array([0.10, 0.10, 0.11], np.float32)
_FLOOR = np.array([0.16, 0.15, 0.14], np.float32)
_WALL = np.array([0.55, 0.56, 0.58], np.float32)
_PARTS: OrderedDict[tuple[str, int, int, float, float], PartMesh] = OrderedDict()


def part_for(path: str, center: tuple[float, float]) -> PartMesh:
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size, center[0], center[1])
    part = _PARTS.get(key)
    if part is None:
        part = load_part(Path(path), center)
        _PARTS[key] = part
        while len(_PARTS) > 8:
            _PARTS.popitem(last=False)
    return part


@lru_cache(maxsize=1)
def _head() -> tuple[F64, NDArray[np.int64], NDArray[np.int64]]:
    return head_mesh()


@lru_cache(maxsize=4)
def _bed_texture(bed_x: float, bed_y: float) -> F32:
    return bed_texture(bed_x, bed_y)


@dataclass
class _Optics:
    focal_pinhole: float
    taps: list[NDArray[np.int64]]  # the four pinhole pixels each output pixel blends
    weights: list[F32]  # their bilinear weights, the vignetting folded in
    ray_x: F32  # each output pixel's undistorted direction: x/z
    ray_y: F32  # and y/z
    fall: F32  # vignetting per output pixel


def _taps(
    map_x: NDArray[np.floating], map_y: NDArray[np.floating], fall: F32, width: int, height: int
) -> tuple[list[NDArray[np.int64]], list[F32]]:
    """Bilinear sampling of the pinhole picture at (map_x, map_y) for every output pixel."""
    x0 = np.clip(np.floor(map_x), 0, width - 2).astype(np.int64)
    y0 = np.clip(np.floor(map_y), 0, height - 2).astype(np.int64)
    fx = np.clip(map_x - x0, 0, 1).astype(np.float32)
    fy = np.clip(map_y - y0, 0, 1).astype(np.float32)
    top_left = y0 * width + x0
    taps = [top_left, top_left + 1, top_left + width, top_left + width + 1]
    weights = [
        ((1 - fx) * (1 - fy) * fall)[:, None],
        (fx * (1 - fy) * fall)[:, None],
        ((1 - fx) * fy * fall)[:, None],
        (fx * fy * fall)[:, None],
    ]
    return taps, weights


@lru_cache(maxsize=8)
def _optics(width: int, height: int, fov_deg: float, k1: float, vignette: float) -> _Optics:
    """Barrel distortion x_u = x_d (1 + k1 r_d^2): where each output pixel samples the pinhole
    picture. `fov_deg` is the horizontal field of the output (distorted) picture; the pinhole
    picture is made wide enough that its corners hold the output's corners."""
    edge_u = math.tan(math.radians(fov_deg) / 2)
    edge_d = edge_u
    for _ in range(30):  # Newton on x (1 + k1 x^2) = edge_u
        edge_d -= (edge_d * (1 + k1 * edge_d**2) - edge_u) / (1 + 3 * k1 * edge_d**2)
    focal_d = (width / 2) / edge_d
    corner_r2 = edge_d**2 * (1 + (height / width) ** 2)
    focal_p = (width / 2) / (edge_d * (1 + k1 * corner_r2))
    u = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / focal_d
    v = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / focal_d
    uu, vv = np.meshgrid(u, v)
    r2 = uu**2 + vv**2
    scale = 1 + k1 * r2
    ray_x = (uu * scale).ravel().astype(np.float32)
    ray_y = (vv * scale).ravel().astype(np.float32)
    fall = (1 - vignette * (r2 / corner_r2) ** 1.5).ravel().astype(np.float32)
    map_x = ray_x * focal_p + width / 2 - 0.5
    map_y = ray_y * focal_p + height / 2 - 0.5
    taps, weights = _taps(map_x, map_y, fall, width, height)
    return _Optics(focal_p, taps, weights, ray_x, ray_y, fall)


def _shaken(optics: _Optics, spec: FrameSpec) -> tuple[list[NDArray[np.int64]], list[F32]]:
    """Sampling for a camera knocked by a small rotation: each output pixel's ray turned back
    into the steady camera's frame. A turn of the camera moves the picture as a whole, exactly
    (a homography), so a shaken frame costs a resampling rather than a second render; the
    millimetre of sideways play that goes with it moves nothing visibly at this distance."""
    rng = np.random.default_rng((spec.seed, spec.frame, 3))
    ax, ay, az = rng.normal(0, math.radians(0.6) * spec.shake, 3)
    t = _rotation_xyz(ax, ay, az).T
    x, y = optics.ray_x, optics.ray_y
    # Three dot products spelt out: a (N, 2) @ (2, 3) matmul is far slower in numpy.
    dz = x * np.float32(t[2, 0]) + y * np.float32(t[2, 1]) + np.float32(t[2, 2])
    scale = np.float32(optics.focal_pinhole) / dz
    dx = (x * np.float32(t[0, 0]) + y * np.float32(t[0, 1]) + np.float32(t[0, 2])) * scale
    dy = (x * np.float32(t[1, 0]) + y * np.float32(t[1, 1]) + np.float32(t[1, 2])) * scale
    pose = spec.pose
    map_x = dx + np.float32(pose.width / 2 - 0.5)
    map_y = dy + np.float32(pose.height / 2 - 0.5)
    return _taps(map_x, map_y, optics.fall, pose.width, pose.height)


@lru_cache(maxsize=1)
def _noise_bank() -> F32:
    """Unit sensor noise, drawn once; each frame reads it from its own random offset (a fresh
    normal draw per frame costs more than the whole rest of the sensor model)."""
    return np.random.default_rng(11).standard_normal(1 << 22, dtype=np.float32)


# Display values: a soft gamma so the lit side is not clipped and shadows keep detail; as a
# table over 4096 steps (a power per pixel costs more than the rest of the sensor).
_GAMMA = (255.0 * np.linspace(0, 1, 4096) ** (1 / 1.15)).astype(np.float32)


def _stage(spec: FrameSpec) -> tuple[View, F32, F32]:
    """The view and the background (depth, colour) behind everything, kept between frames
    (a shaken camera is the steady one, resampled: see `_shaken`)."""
    view, depth, rgb = _steady_stage(spec.pose, spec.lens.k1, spec.lens.vignette, spec.bed)
    return view, depth.copy(), rgb.copy()


@lru_cache(maxsize=8)
def _steady_view(pose: Pose, k1: float, vignette: float) -> View:
    optics = _optics(pose.width, pose.height, pose.fov_deg, k1, vignette)
    return View.look_at(pose.position, pose.look_at, pose.width, pose.height, optics.focal_pinhole)


@lru_cache(maxsize=8)
def _steady_stage(
    pose: Pose, k1: float, vignette: float, bed: tuple[float, float, bool]
) -> tuple[View, F32, F32]:
    view = _steady_view(pose, k1, vignette)
    depth, rgb = _background(view, bed)
    return view, depth, rgb


def _rotation_xyz(ax: float, ay: float, az: float) -> F64:
    cx, sx, cy, sy, cz, sz = (
        math.cos(ax),
        math.sin(ax),
        math.cos(ay),
        math.sin(ay),
        math.cos(az),
        math.sin(az),
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _bed_origin(spec: FrameSpec) -> tuple[float, float]:
    bx, by, centred = spec.bed
    return (-bx / 2, -by / 2) if centred else (0.0, 0.0)


def _background(view: View, bed: tuple[float, float, bool]) -> tuple[F32, F32]:
    """The bed plate, the frame around it, the floor and the wall behind: depth and colour."""
    rays = view.rays()
    cam = view.position.astype(np.float32)
    bx, by, centred = bed
    ox, oy = (-bx / 2, -by / 2) if centred else (0.0, 0.0)
    n = rays.shape[0]
    depth = np.full(n, np.inf, np.float32)
    rgb = np.empty((n, 3), np.float32)
    # The wall behind the printer, lit softly from above (brighter higher up).
    wall_y = oy + by + 80.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_wall = np.where(rays[:, 1] > 0, (wall_y - cam[1]) / rays[:, 1], np.inf)
        t_bed = np.where(rays[:, 2] < 0, -cam[2] / rays[:, 2], np.inf)
    wall = t_wall < t_bed
    height = cam[2] + rays[wall, 2] * t_wall[wall]
    rgb[wall] = _WALL[None] * (0.55 + 0.25 * np.clip(height / 400.0, 0, 1))[:, None]
    depth[wall] = t_wall[wall]
    low = ~wall & np.isfinite(t_bed)
    px = cam[0] + rays[low, 0] * t_bed[low]
    py = cam[1] + rays[low, 1] * t_bed[low]
    tex = _bed_texture(bx, by)
    tx = ((px - ox) / 0.5).astype(np.int64)
    ty = ((py - oy) / 0.5).astype(np.int64)
    on_bed = (tx >= 0) & (tx < tex.shape[1]) & (ty >= 0) & (ty < tex.shape[0])
    near = (px > ox - 40) & (px < ox + bx + 40) & (py > oy - 40) & (py < oy + by + 40)
    colour = np.where(near[:, None], _FRAME_GREY[None], _FLOOR[None])
    colour[on_bed] = tex[ty[on_bed], tx[on_bed]]
    lit = AMBIENT + (1 - AMBIENT) * float(LIGHT[2])
    rgb[low] = colour * lit
    depth[low] = t_bed[low]
    sky = ~wall & ~low
    rgb[sky] = _WALL * 0.4
    return depth, rgb


def _motion_matrix(motion: Motion) -> tuple[F64, F64]:
    """Rotation and translation of a moved piece (world = R p + t)."""
    yaw, tilt, pivot, move = motion
    p = np.asarray(pivot, np.float64)
    rot = _rotation_xyz(math.radians(tilt), 0.0, math.radians(yaw))
    return rot, p - rot @ p + np.asarray(move, np.float64)


def _gap_mask(local: F32, seed: int, share: float) -> NDArray[np.bool_]:
    """Under-extrusion: missing bits of line, cells 0.8 mm long and one 0.2 mm layer high."""
    cells = np.floor(local / np.array([0.8, 0.8, 0.2], np.float32)).astype(np.int64)
    h = (cells[:, 0] * 73856093) ^ (cells[:, 1] * 19349663) ^ (cells[:, 2] * 83492791) ^ seed
    h = (h ^ (h >> 13)) * 1274126177
    unit = ((h >> 8) & 0xFFFF) / 65535.0
    return unit < share


def _piece_fragments(view: View, part: PartMesh, piece: Piece, spec: FrameSpec) -> Fragments:
    verts, faces = part.piece(piece.z_lo, piece.z_hi)
    if faces.size == 0:
        return Fragments.empty()
    rot, move = _motion_matrix(piece.motion)
    if piece.motion[1]:
        # Knocked over: it comes to rest lying on the bed, not through it.
        move = move - np.array([0.0, 0.0, float((verts @ rot.T)[:, 2].min() + move[2])])
    world_v = verts @ rot.T + move
    # A closed piece's inside shows only through gaps: without gaps, faces turned away are
    # always hidden and are not drawn at all.
    cover, depth, world, back = mesh_fragments(view, world_v, faces, cull_back=piece.gaps <= 0)
    if cover.face.size == 0:
        return Fragments.empty()
    local = ((world - move) @ rot).astype(np.float32)
    tri = world_v[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    lambert = AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT, 0, 1)
    shade = lambert[cover.face].astype(np.float32)
    base = np.broadcast_to(np.asarray(spec.color, np.float32), (cover.face.size, 3)).copy()
    for z_from, z_to, other in spec.color_bands:
        band = (local[:, 2] >= z_from) & (local[:, 2] < z_to)
        base[band] = np.asarray(other, np.float32)
    # The inside, seen only through gaps: dark, as sparse infill in its own shadow.
    shade = np.where(back, 0.22, shade).astype(np.float32)
    keep = np.isfinite(depth)
    if piece.gaps > 0:
        keep &= ~(~back & _gap_mask(local, piece.gap_seed, piece.gaps))
        shade = np.where(back, shade, shade * 0.85).astype(np.float32)
    rgb = base * shade[:, None]
    return Fragments(cover.pixel[keep], depth[keep], rgb[keep])


def _head_fragments(view: View, at: tuple[float, float, float]) -> Fragments:
    verts, faces, material = _head()
    world = verts + np.asarray(at)
    cover, depth, _, back = mesh_fragments(view, world, faces, cull_back=True)
    if cover.face.size == 0:
        return Fragments.empty()
    tri = world[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    shade = (AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT, 0, 1)).astype(np.float32)
    rgb = _HEAD_COLOURS[material[cover.face]] * shade[cover.face][:, None]
    keep = ~back & np.isfinite(depth)
    return Fragments(cover.pixel[keep], depth[keep], rgb[keep])


@lru_cache(maxsize=1024)
def _lying(
    seed: int, i: int, center: tuple[float, float], half: tuple[float, float], top: float
) -> F64:
    strand = lying_strand(seed, i, center, half, top)
    strand.setflags(write=False)
    return strand


def _strands(spec: FrameSpec, part: PartMesh | None) -> F64:
    sp = spec.spaghetti
    if sp is None or sp.strands <= 0:
        return np.zeros((0, 3))
    if part is not None:
        lo, hi = part.bounds
        center = (float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2)
        half = (float(hi[0] - lo[0]) / 2, float(hi[1] - lo[1]) / 2)
    else:
        bx, by, _ = spec.bed
        ox, oy = _bed_origin(spec)
        center, half = (ox + bx / 2, oy + by / 2), (10.0, 10.0)
    # Strands lying still are kept between frames (a few more each layer); only the one
    # hanging from the nozzle is drawn anew.
    top = round(sp.part_top, 3)
    strands = [_lying(sp.seed, i, center, half, top) for i in range(sp.strands)]
    if spec.head is not None:
        strands.append(hanging_strand(sp.seed, spec.head, center, half, top + pile(sp.strands)))
    return joined(strands)


def render_rgb(spec: FrameSpec) -> NDArray[np.uint8]:
    """The picture as the sensor delivers it (H, W, 3), before JPEG."""
    pose = spec.pose
    view, depth, image = _stage(spec)
    frags: list[Fragments] = []
    part = None
    if spec.mesh is not None:
        bx, by, centred = spec.bed
        part = part_for(spec.mesh, (0.0, 0.0) if centred else (bx / 2, by / 2))
        for piece in spec.pieces:
            frags.append(_piece_fragments(view, part, piece, spec))
    if spec.head is not None:
        frags.append(_head_fragments(view, spec.head))
        if spec.blob_mm > 0:
            centres, axes = blob_lumps(spec.blob_seed, spec.blob_mm)
            burnt = np.asarray(spec.color, np.float32) * 0.7 + np.float32(0.03)
            colours = np.broadcast_to(burnt, (len(centres), 3))
            frags.append(
                ellipsoid_fragments(
                    view, centres + np.asarray(spec.head), axes, colours, LIGHT, AMBIENT
                )
            )
    strands = _strands(spec, part)
    if len(strands):
        frags.append(
            tube_fragments(
                view,
                strands,
                FILAMENT_RADIUS_MM,
                np.asarray(spec.color, np.float32),
                LIGHT,
                AMBIENT,
            )
        )
    if spec.hand_seed is not None:
        centres, axes, tone = hand_ellipsoids(
            spec.hand_seed, pose.position, pose.look_at, spec.frame
        )
        colours = np.broadcast_to(np.asarray(tone, np.float32), (len(centres), 3))
        frags.append(ellipsoid_fragments(view, centres, axes, colours, LIGHT, 0.45))
    resolve(concat(frags), depth, image)
    gain, tint = spec.light
    image *= np.float32(gain) * np.asarray(tint, np.float32)[None]
    return _sensor(image, spec)


def _sensor(image: F32, spec: FrameSpec) -> NDArray[np.uint8]:
    pose, lens = spec.pose, spec.lens
    optics = _optics(pose.width, pose.height, pose.fov_deg, lens.k1, lens.vignette)
    taps, weights = _shaken(optics, spec) if spec.shake > 0 else (optics.taps, optics.weights)
    warped = np.take(image, taps[0], axis=0)
    warped *= weights[0]
    for tap, weight in zip(taps[1:], weights[1:], strict=True):
        warped += np.take(image, tap, axis=0) * weight
    steps = (np.clip(warped, 0, 1) * 4095).astype(np.int16)
    levels = np.take(_GAMMA, steps)
    bank = _noise_bank()
    rng = np.random.default_rng((spec.seed, spec.frame, 1))
    start = int(rng.integers(0, bank.size - levels.size))
    noise = bank[start : start + levels.size].reshape(levels.shape)
    levels += noise * (lens.read_noise + lens.shot_noise * np.sqrt(levels))
    np.clip(levels + 0.5, 0, 255, out=levels)
    return levels.astype(np.uint8).reshape(pose.height, pose.width, 3)


def render_frame(spec: FrameSpec) -> bytes:
    """One JPEG, as a webcam would send it."""
    pixels = render_rgb(spec)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=spec.lens.jpeg_quality)
    return out.getvalue()
