"""Geometry of what the virtual camera adds to the part: fallen filament, a blob on the nozzle,
a hand. Each is generated from its event's seed, so the same event looks the same in every
frame and in every run, and grows only as the print goes on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SKIN_TONES",
    "blob_lumps",
    "hand_ellipsoids",
    "hanging_strand",
    "joined",
    "lying_strand",
    "pile",
    "spaghetti_strands",
]

F64 = NDArray[np.float64]

STEP_MM = 0.4  # spacing of the points along a strand
GRAVITY_MM = 0.05  # extra fall per step, per step: strands droop in parabolas, not lines
SKIN_TONES = (
    (0.86, 0.62, 0.50),
    (0.74, 0.51, 0.38),
    (0.55, 0.36, 0.24),
    (0.36, 0.22, 0.14),
)


def _strand(
    rng: np.random.Generator,
    start: F64,
    floor_at: object,
    length_mm: float,
) -> F64:
    """One strand: a smooth random walk in plan (its curvature drifts), falling under gravity
    until it lies on whatever is below it, then curling on along that surface."""
    steps = max(int(length_mm / STEP_MM), 2)
    heading = rng.uniform(0, 2 * np.pi)
    curvature = rng.normal(0, 0.3)
    out = np.empty((steps, 3))
    p = start.astype(np.float64).copy()
    fall = 0.0
    for k in range(steps):
        out[k] = p
        # Curvature wanders (an Ornstein-Uhlenbeck walk): loops and S-bends of a few mm.
        curvature = 0.94 * curvature + rng.normal(0, 0.09)
        heading += curvature * STEP_MM
        p[0] += STEP_MM * np.cos(heading)
        p[1] += STEP_MM * np.sin(heading)
        floor = floor_at(p[0], p[1])  # type: ignore[operator]
        if p[2] > floor:
            fall += GRAVITY_MM
            p[2] = max(floor, p[2] - fall)
        else:
            fall = 0.0
            p[2] = floor
    return out


def pile(i: int) -> float:
    """How high the tangle stands under strand `i`: strands land on strands."""
    return float(0.8 * np.sqrt(i))


def lying_strand(
    seed: int,
    i: int,
    center: tuple[float, float],
    half: tuple[float, float],
    part_top: float,
) -> F64:
    """Strand `i` of the tangle on and around a part (its footprint an ellipse of semi-axes
    `half` at `center`) that stopped holding at `part_top`. Depends on nothing else, so a
    tangle grows by adding strands, never by redrawing the ones already there."""
    cx, cy = center
    hx, hy = max(half[0], 2.0), max(half[1], 2.0)
    rng = np.random.default_rng((seed, i))
    angle = rng.uniform(0, 2 * np.pi)
    reach = rng.uniform(0.0, 1.1)
    start = np.array(
        [
            cx + hx * reach * np.cos(angle),
            cy + hy * reach * np.sin(angle),
            part_top + rng.uniform(1.0, 8.0),
        ]
    )
    extra = pile(i) * rng.uniform(0.3, 1.0)

    def floor_at(x: float, y: float) -> float:
        inside = ((x - cx) / hx) ** 2 + ((y - cy) / hy) ** 2 <= 1.0
        return (part_top if inside else 0.0) + extra

    return _strand(rng, start, floor_at, rng.uniform(20.0, 60.0))


def spaghetti_strands(
    seed: int,
    count: int,
    center: tuple[float, float],
    half: tuple[float, float],
    part_top: float,
    nozzle: tuple[float, float, float] | None,
) -> F64:
    """Filament that no longer sticks: `count` strands tangled on and around the part, and
    one hanging from the nozzle down to the tangle. NaN rows separate strands."""
    strands = [lying_strand(seed, i, center, half, part_top) for i in range(count)]
    if nozzle is not None and count:
        strands.append(hanging_strand(seed, nozzle, center, half, part_top + pile(count)))
    return joined(strands)


def hanging_strand(
    seed: int,
    nozzle: tuple[float, float, float],
    center: tuple[float, float],
    half: tuple[float, float],
    tangle_top: float,
) -> F64:
    """From the nozzle tip down to the tangle, bowed and kinked like soft filament."""
    rng = np.random.default_rng((seed, 1 << 20))
    tip = np.asarray(nozzle, np.float64)
    inside = ((tip[0] - center[0]) / max(half[0], 2.0)) ** 2 + (
        (tip[1] - center[1]) / max(half[1], 2.0)
    ) ** 2 <= 1.0
    bottom_z = tangle_top if inside else tangle_top - (tangle_top - 0.5) * 0.8
    drop = tip[2] - bottom_z
    if drop < 1.0:
        return np.zeros((0, 3))
    n = max(int(drop / STEP_MM * 1.3), 8)
    s = np.linspace(0.0, 1.0, n)
    lean = rng.normal(0, 0.25, 2) * drop
    bow = rng.normal(0, 0.15, 2) * drop
    wiggle = rng.normal(0, 0.6, (4, 2))
    x = tip[0] + lean[0] * s + bow[0] * np.sin(np.pi * s)
    y = tip[1] + lean[1] * s + bow[1] * np.sin(np.pi * s)
    for k, (wx, wy) in enumerate(wiggle, 2):
        x = x + wx * np.sin(k * np.pi * s)
        y = y + wy * np.sin(k * np.pi * s)
    z = tip[2] - drop * s**1.3
    return np.stack([x, y, z], axis=1)


def joined(strands: list[F64]) -> F64:
    parts: list[F64] = []
    for strand in strands:
        if len(strand):
            parts.extend([strand, np.full((1, 3), np.nan)])
    return np.concatenate(parts) if parts else np.zeros((0, 3))


def blob_lumps(seed: int, size_mm: float) -> tuple[F64, F64]:
    """A lump of molten plastic around the nozzle and heater block, in the head's frame (tip at
    the origin): centres (n, 3) and ellipsoid axes (n, 3, 3)."""
    rng = np.random.default_rng((seed, 77))
    n = 8
    centres = np.column_stack(
        [
            rng.normal(0, 0.35, n) * size_mm,
            rng.normal(0, 0.35, n) * size_mm,
            rng.uniform(1.0, 9.0, n) + rng.normal(0, 0.2, n) * size_mm,
        ]
    )
    radii = rng.uniform(0.45, 0.8, (n, 3)) * size_mm
    axes = np.stack([np.diag(r) for r in radii])
    return centres, axes


def hand_ellipsoids(
    seed: int,
    camera: tuple[float, float, float],
    target: tuple[float, float, float],
    frame: int,
) -> tuple[F64, F64, tuple[float, float, float]]:
    """A hand reaching in from one side of the picture towards the bed, between the camera and
    the part: ellipsoid centres (n, 3), axes (n, 3, 3) in mm, and a skin tone."""
    rng = np.random.default_rng((seed, 5))
    cam = np.asarray(camera, np.float64)
    tgt = np.asarray(target, np.float64)
    view = tgt - cam
    flat = np.array([view[0], view[1], 0.0])
    flat /= max(float(np.linalg.norm(flat)), 1e-9)
    side = np.array([flat[1], -flat[0], 0.0]) * (1 if rng.random() < 0.5 else -1)
    # A little way in front of the look-at point and well to one side, above the bed.
    frac = rng.uniform(0.75, 0.95)
    jitter = np.random.default_rng((seed, frame)).normal(0, 3.0, 3)
    anchor = cam + view * frac + side * rng.uniform(45, 75) + jitter
    anchor[2] = rng.uniform(25.0, 45.0) + jitter[2]
    u = -side  # fingers point into the picture
    v = np.cross([0.0, 0.0, 1.0], u)
    w = np.array([0.0, 0.0, 1.0])
    basis = np.stack([u, v, w], axis=1)
    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    centres: list[F64] = []
    axes: list[F64] = []

    def add(at: tuple[float, float, float], semi: tuple[float, float, float]) -> None:
        centres.append(anchor + basis @ np.asarray(at))
        axes.append(basis @ np.diag(semi))

    def finger(
        at: tuple[float, float, float], semi: tuple[float, float, float], droop: float
    ) -> None:
        # One long ellipsoid per finger, tipped down by `droop`: smooth, tapering at the tip.
        c, s = np.cos(droop), np.sin(droop)
        tilt = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        centres.append(anchor + basis @ np.asarray(at))
        axes.append(basis @ tilt @ np.diag(semi))

    add((0.0, 0.0, 0.0), (46.0, 40.0, 13.0))  # palm
    add((-150.0, 0.0, 5.0), (115.0, 33.0, 28.0))  # forearm, out of the picture's side
    droop = rng.uniform(0.05, 0.35)
    for offset, length in ((-27.0, 62.0), (-9.0, 72.0), (9.0, 68.0), (27.0, 54.0)):
        half = length / 2
        finger(
            (40.0 + half * np.cos(droop), offset, -half * np.sin(droop)), (half, 8.0, 7.0), droop
        )
    finger((20.0, 46.0, -5.0), (30.0, 9.5, 8.5), 0.2)  # thumb
    return np.asarray(centres), np.asarray(axes), tone
