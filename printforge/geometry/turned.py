"""Round and flat part families: gear, tube, washer, spacer, standoffs, plate, vase, pot."""

from __future__ import annotations

import math

import manifold3d as mf
import numpy as np
from scipy.interpolate import PchipInterpolator

from printforge.geometry.solids import EPS, cylinder, rounded_rect, segments, twisted
from printforge.models import spec as s

__all__ = [
    "coaster",
    "funnel",
    "funnel_profile",
    "gear",
    "gear_outline",
    "knob",
    "knob_ridge",
    "plant_pot",
    "plant_pot_profile",
    "plate",
    "spacer",
    "standoffs",
    "tube",
    "vase",
    "vase_profile",
    "washer",
]


def _ring(outer: float, inner: float, height: float) -> mf.Manifold:
    hole = cylinder(height + 2 * EPS, inner).translate((0, 0, -EPS))
    return cylinder(height, outer) - hole


def tube(n: s.Tube) -> list[mf.Manifold]:
    return [_ring(n.outer_diameter / 2, n.inner_diameter / 2, n.height)]


def washer(n: s.Washer) -> list[mf.Manifold]:
    return [_ring(n.outer_diameter / 2, n.inner_diameter / 2, n.thickness)]


def spacer(n: s.Spacer) -> list[mf.Manifold]:
    if not n.hexagonal:
        return [_ring(n.outer_diameter / 2, n.hole_diameter / 2, n.height)]
    hexa = mf.Manifold.cylinder(n.height, n.outer_diameter / 2, n.outer_diameter / 2, 6)
    hole = cylinder(n.height + 2 * EPS, n.hole_diameter / 2).translate((0, 0, -EPS))
    return [hexa - hole]


def standoffs(n: s.Standoffs) -> list[mf.Manifold]:
    sx, sy = n.spacing
    od, base = n.outer_diameter, n.base_thickness
    spots = [(x * sx / 2, y * sy / 2) for x in (-1, 1) for y in (-1, 1)]
    hole = cylinder(base + n.height + 2, n.hole_diameter / 2).translate((0, 0, -1))
    post = cylinder(n.height + base, od / 2) - hole
    if base <= 0:
        return [post for _ in spots]
    # The frame stops 0.2 mm inside the posts' outline: surfaces that only touch make
    # slivers that break the mesh once an STL reader merges its vertices.
    frame = slab_ring(
        sx + od - 0.4, sy + od - 0.4, sx - od + 0.4, sy - od + 0.4, base, od / 2 - 0.2
    )
    posts = [cylinder(n.height + base, od / 2).translate((x, y, 0)) for x, y in spots]
    body = mf.Manifold.batch_boolean([frame, *posts], mf.OpType.Add)
    holes = [hole.translate((x, y, 0)) for x, y in spots]
    return [mf.Manifold.batch_boolean([body, *holes], mf.OpType.Subtract)]


def slab_ring(
    ox: float, oy: float, ix: float, iy: float, height: float, radius: float
) -> mf.Manifold:
    """A rectangular frame: outer ox x oy (corners rounded), inner ix x iy open."""
    outer = mf.Manifold.extrude(rounded_rect(ox, oy, radius), height)
    if ix <= 0 or iy <= 0:
        return outer
    inner = mf.Manifold.extrude(rounded_rect(ix, iy, 0), height + 2 * EPS)
    return outer - inner.translate((0, 0, -EPS))


def plate_hole_cutter(n: s.Plate) -> mf.Manifold:
    """One hole of a plate, centred on the origin: round or a slot, with its head recess."""
    t, r = n.thickness, n.hole_diameter / 2
    if n.slot_length > 0:
        shape = rounded_rect(n.slot_length + 2 * r, 2 * r, r - 1e-3)
        hole = mf.Manifold.extrude(shape, t + 2).translate((0, 0, -1))
    else:
        hole = cylinder(t + 2, r).translate((0, 0, -1))
    d, depth = n.head()
    if not d:
        return hole
    if n.hole_style == "countersunk":
        head = cylinder(depth + EPS, r, d / 2).translate((0, 0, t - depth))
        head = head + cylinder(1.0, d / 2).translate((0, 0, t))
    elif n.hole_style == "counterbored":
        head = cylinder(depth + 1.0, d / 2).translate((0, 0, t - depth))
    else:
        rad = d / math.sqrt(3)
        head = mf.Manifold.cylinder(depth + 1.0, rad, rad, 6).translate((0, 0, t - depth))
    if n.slot_length > 0 and n.hole_style != "hex_pocket":
        # A slotted head: the recess swept along the slot.
        head = mf.Manifold.batch_hull(
            [head.translate((-n.slot_length / 2, 0, 0)), head.translate((n.slot_length / 2, 0, 0))]
        )
    return hole + head


def plate(n: s.Plate) -> list[mf.Manifold]:
    x, y = n.size
    body = mf.Manifold.extrude(rounded_rect(x, y, n.corner_radius), n.thickness)
    centres = n.hole_centres()
    if not centres or n.hole_diameter <= 0:
        return [body]
    hole = plate_hole_cutter(n)
    cuts = [hole.translate((hx, hy, 0)) for hx, hy in centres]
    return [mf.Manifold.batch_boolean([body, *cuts], mf.OpType.Subtract)]


def _involute_angle(rb: float, r: float) -> float:
    """Polar angle of the involute of the base circle rb where it reaches radius r."""
    alpha = math.acos(min(1.0, rb / r))
    return math.tan(alpha) - alpha


def gear_outline(module: float, teeth: int, pressure_angle: float) -> np.ndarray:
    """The closed outline of an involute spur gear, tooth 0 centred on +X, counter-clockwise."""
    pitch = module * teeth / 2
    base = pitch * math.cos(math.radians(pressure_angle))
    tip = pitch + module
    root = pitch - 1.25 * module
    # Half the tooth's angular width at the base circle: a quarter pitch plus inv(alpha).
    half_base = math.pi / (2 * teeth) + _involute_angle(base, pitch)
    start = max(base, root)
    radii = np.linspace(start, tip, 10)
    flank = [(r, half_base - _involute_angle(base, r)) for r in radii]
    pts: list[tuple[float, float]] = []
    step = 2 * math.pi / teeth
    for k in range(teeth):
        c = k * step
        if root < base:
            pts.append(_polar(root, c - half_base))
        pts += [_polar(r, c - a) for r, a in flank]
        pts.append(_polar(tip, c))
        pts += [_polar(r, c + a) for r, a in reversed(flank)]
        if root < base:
            pts.append(_polar(root, c + half_base))
        # The root arc to the next tooth, so the gap bottom is round, not a chord.
        gap_from, gap_to = c + half_base, c + step - half_base
        if gap_to > gap_from:
            pts += [_polar(root, a) for a in np.linspace(gap_from, gap_to, 5)[1:-1]]
    return np.asarray(pts)


def _polar(r: float, a: float) -> tuple[float, float]:
    return r * math.cos(a), r * math.sin(a)


def gear(n: s.Gear) -> list[mf.Manifold]:
    outline = mf.CrossSection(
        [gear_outline(n.module, n.teeth, n.pressure_angle)], mf.FillRule.NonZero
    )
    if n.bore > 0:
        outline = outline - mf.CrossSection.circle(n.bore / 2, segments(n.bore / 2))
    return [mf.Manifold.extrude(outline, n.thickness)]


def vase_profile(n: s.Vase) -> np.ndarray:
    """Half section (radius, height): outside up, rim, inside down to the floor."""
    zs = np.linspace(0, n.height, len(n.radii))
    # PCHIP never overshoots the given radii, so the widest point is the widest radius asked.
    curve = PchipInterpolator(zs, n.radii)
    # Sample at the given heights too, so the widest radius asked is the widest one built.
    out_z = np.union1d(np.linspace(0, n.height, 48), zs)
    outer = np.clip(curve(out_z), n.wall + 0.8, None)
    in_z = np.linspace(n.height, n.floor, 48)
    inner = np.clip(curve(in_z) - n.wall, 0.4, None)
    wall = [*zip(outer, out_z, strict=True), *zip(inner, in_z, strict=True)]
    # With no floor the section is the wall alone: an open sleeve such as a lamp shade.
    pts = [(0.0, 0.0), *wall, (0.0, n.floor)] if n.floor > 0 else wall
    return np.asarray(pts, dtype=float)


def _turn(
    profile: np.ndarray, radius: float, sides: int = 0, twist: float = 0.0, height: float = 1.0
) -> mf.Manifold:
    """A half section revolved about Z: round, or with `sides` flat faces (a corner on +X),
    turned by `twist` degrees from bottom to top."""
    cs = mf.CrossSection([profile], mf.FillRule.NonZero)
    body = mf.Manifold.revolve(cs, sides or segments(radius))
    # A round body looks the same twisted; turning it would only add triangles.
    return twisted(body, twist, height) if sides else body


def vase(n: s.Vase) -> list[mf.Manifold]:
    return [_turn(vase_profile(n), max(n.radii), n.sides, n.twist, n.height)]


def plant_pot_profile(n: s.PlantPot) -> np.ndarray:
    """Half section (radius, height) of the pot's wall and floor."""
    rb, rt, h = n.bottom_diameter / 2, n.top_diameter / 2, n.height
    # Offset the inside horizontally by wall / cos(taper) so the wall is `wall` thick square
    # to its surface, not just measured flat.
    taper = math.atan2(rt - rb, h)
    w = n.wall / math.cos(taper)
    slope = (rt - rb) / h
    return np.asarray(
        [
            (0.0, 0.0),
            (rb, 0.0),
            (rt, h),
            (rt - w, h),
            (rb + slope * n.floor - w, n.floor),
            (0.0, n.floor),
        ]
    )


def plant_pot(n: s.PlantPot) -> list[mf.Manifold]:
    pot = _turn(plant_pot_profile(n), max(n.bottom_diameter, n.top_diameter) / 2, n.sides)
    if n.drain_hole_diameter > 0:
        pot = pot - cylinder(n.floor + 2, n.drain_hole_diameter / 2).translate((0, 0, -1))
    return [pot]


def coaster(n: s.Coaster) -> list[mf.Manifold]:
    d, t, rim, rw = n.diameter, n.thickness, n.rim_height, n.rim_width
    if n.square:
        r = min(8.0, d / 4)
        body = mf.Manifold.extrude(rounded_rect(d, d, r), t + rim)
        well = mf.Manifold.extrude(rounded_rect(d - 2 * rw, d - 2 * rw, max(r - rw, 0.5)), rim + 1)
    else:
        body = cylinder(t + rim, d / 2)
        well = cylinder(rim + 1, d / 2 - rw)
    return [body - well.translate((0, 0, t)) if rim > 0 else body]


def knob_ridge(n: s.Knob) -> float:
    """Radius of the grip ridges (0 when smooth): small enough that neighbours stay apart."""
    if not n.ridges:
        return 0.0
    return min(1.2, 0.35 * math.pi * n.diameter / n.ridges, n.diameter / 8)


def knob(n: s.Knob) -> list[mf.Manifold]:
    big, rr = n.diameter / 2, knob_ridge(n)
    parts = [cylinder(n.height, big - rr)]
    for i in range(n.ridges):
        a = 2 * math.pi * i / n.ridges
        parts.append(
            cylinder(n.height, rr).translate(
                ((big - rr) * math.cos(a), (big - rr) * math.sin(a), 0)
            )
        )
    body = mf.Manifold.batch_boolean(parts, mf.OpType.Add) if len(parts) > 1 else parts[0]
    r = n.shaft_diameter / 2
    hole = mf.CrossSection.circle(r, segments(r))
    if n.d_flat:
        # A D shaft's flat sits half a radius from the centre (6 mm shaft: 4.5 mm across).
        hole = hole ^ mf.CrossSection.square((1.5 * r, 2 * r)).translate((-r, -r))
    cut = mf.Manifold.extrude(hole, n.shaft_depth + 1).translate((0, 0, n.height - n.shaft_depth))
    return [body - cut]


def funnel_profile(n: s.Funnel) -> np.ndarray:
    """Half section (radius, height), mouth at z = 0, the wall `wall` thick square to the cone."""
    big, small, h, w = n.top_diameter / 2, n.spout_diameter / 2, n.cone_height, n.wall
    slope = math.atan2(big - small, h)
    shift = w / math.cos(slope)
    meet = h * (big - shift - (small - w)) / (big - small)
    top = h + n.spout_length
    return np.asarray(
        [
            (big, 0.0),
            (small, h),
            (small, top),
            (small - w, top),
            (small - w, meet),
            (big - shift, 0.0),
        ]
    )


def funnel(n: s.Funnel) -> list[mf.Manifold]:
    cs = mf.CrossSection([funnel_profile(n)], mf.FillRule.NonZero)
    return [mf.Manifold.revolve(cs, segments(n.top_diameter / 2))]
