"""Parametric part families: boxes, brackets and mounts. Each builds its bodies in print
orientation; `place()` later rests them on z = 0 and lays them out.

Profile parts (hook, clip, clamp, shelf bracket, phone stand) print lying on their side: the
profile is drawn in XY with shapely and extruded along Z by the part's width, so layers run
along the part's length and it is strong where it bends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import manifold3d as mf
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry import box as rect
from shapely.geometry.base import BaseGeometry

from printforge.geometry import signs, turned
from printforge.geometry.expand import expand
from printforge.geometry.profiles import from_shapely
from printforge.geometry.solids import EPS, cylinder, rounded_rect
from printforge.models import spec as s

__all__ = [
    "EXPANDED",
    "FAMILIES",
    "bodies",
    "phone_stand_profile",
    "raw_bodies",
    "side_profile",
    "slab",
    "wedge_points",
]


def slab(x: float, y: float, height: float, radius: float = 0.0) -> mf.Manifold:
    """A block centred in XY standing on z = 0, vertical edges rounded by `radius`."""
    return mf.Manifold.extrude(rounded_rect(x, y, radius), height)


def _lip(
    x: float, y: float, wall: float, clearance: float, radius: float, height: float
) -> mf.Manifold:
    """The ring under a lid that slides into a box of inner size x - 2 wall."""
    lx, ly = x - 2 * wall - 2 * clearance, y - 2 * wall - 2 * clearance
    lr = max(radius - wall - clearance, 0)
    inner = slab(lx - 2 * wall, ly - 2 * wall, height + 2 * EPS, max(lr - wall, 0))
    return slab(lx, ly, height, lr) - inner.translate((0, 0, -EPS))


def _lid(
    x: float, y: float, plate: float, lip: float, wall: float, clearance: float, radius: float
) -> mf.Manifold:
    lid = slab(x, y, plate, radius)
    if lip > 0:
        lid = lid + _lip(x, y, wall, clearance, radius, lip).translate((0, 0, plate))
    return lid


def box_with_lid(n: s.BoxWithLid) -> list[mf.Manifold]:
    x, y, z = n.size
    w, r = n.wall, n.corner_radius
    pocket = slab(x - 2 * w, y - 2 * w, z, max(r - w, 0)).translate((0, 0, n.floor))
    shell = slab(x, y, z, r) - pocket
    return [shell, _lid(x, y, n.lid_thickness, n.lip_height, w, n.clearance, r)]


def tray(n: s.Tray) -> list[mf.Manifold]:
    x, y, z = n.size
    w = n.wall
    ix, iy = x - 2 * w, y - 2 * w
    body = slab(x, y, z, n.corner_radius) - slab(ix, iy, z, max(n.corner_radius - w, 0)).translate(
        (0, 0, n.floor)
    )
    walls = []
    for count, span, along_x in ((n.compartments_x, ix, True), (n.compartments_y, iy, False)):
        cell = (span - (count - 1) * w) / count
        for i in range(1, count):
            c = -span / 2 + i * cell + (i - 0.5) * w
            size = (w, iy + 2 * EPS, z) if along_x else (ix + 2 * EPS, w, z)
            at = (c, 0, 0) if along_x else (0, c, 0)
            walls.append(mf.Manifold.cube(size, True).translate((at[0], at[1], z / 2)))
    return [mf.Manifold.batch_boolean([body, *walls], mf.OpType.Add) if walls else body]


def enclosure(n: s.Enclosure) -> list[mf.Manifold]:
    ox, oy, oz = n.outer()
    w = n.wall
    shell = slab(ox, oy, oz) - slab(ox - 2 * w, oy - 2 * w, oz).translate((0, 0, w))
    od = n.standoff_diameter()
    posts, pilots = [], []
    for x, y in n.hole_centres():
        posts.append(cylinder(n.standoff_height + EPS, od / 2).translate((x, y, w - EPS)))
        pilots.append(
            cylinder(n.standoff_height + EPS, n.hole_diameter / 2).translate((x, y, w + 1.0))
        )
    box = mf.Manifold.batch_boolean([shell, *posts], mf.OpType.Add)
    ports = [mf.Manifold.cube(size, True).translate(at) for at, size in n.port_boxes()]
    box = mf.Manifold.batch_boolean([box, *pilots, *ports], mf.OpType.Subtract)
    return [box, _lid(ox, oy, w, n.lip_height, w, n.clearance, 0.0)]


def _holes_along(count: int, start: float, end: float) -> list[float]:
    return [start + (end - start) * (i + 0.5) / count for i in range(count)]


def _xz_prism(points: list[tuple[float, float]], y0: float, y1: float) -> mf.Manifold:
    """A polygon drawn in the XZ plane, extruded along Y from y0 to y1."""
    cs = mf.CrossSection([points], mf.FillRule.NonZero)
    # Rotating +90° about X sends the profile's Y to Z and the extrusion to -Y.
    return mf.Manifold.extrude(cs, y1 - y0).rotate((90, 0, 0)).translate((0, y1, 0))


def l_bracket(n: s.LBracket) -> list[mf.Manifold]:
    a, b, w, t = n.leg_a, n.leg_b, n.width, n.thickness
    parts = [mf.Manifold.cube((a, w, t)), mf.Manifold.cube((t, w, b))]
    if n.brace:
        size = 0.6 * min(a, b) - t / 2
        tri = [(t - EPS, t - EPS), (t + size, t - EPS), (t - EPS, t + size)]
        parts += [_xz_prism(tri, 0, t), _xz_prism(tri, w - t, w)]
    body = mf.Manifold.batch_boolean(parts, mf.OpType.Add)
    cuts = []
    if n.hole_diameter and n.holes_per_leg:
        r = n.hole_diameter / 2
        for x in _holes_along(n.holes_per_leg, t, a):
            cuts.append(cylinder(t + 2, r).translate((x, w / 2, -1)))
        for z in _holes_along(n.holes_per_leg, t, b):
            cuts.append(cylinder(t + 2, r).rotate((0, 90, 0)).translate((-1, w / 2, z)))
    return [mf.Manifold.batch_boolean([body, *cuts], mf.OpType.Subtract) if cuts else body]


def _fillet(shape: BaseGeometry, inner: float, outer: float) -> BaseGeometry:
    """Round concave corners by `inner` (stronger) and convex ones by `outer` (kinder)."""
    if inner > 0:
        shape = shape.buffer(inner, quad_segs=6).buffer(-inner, quad_segs=6)
    if outer > 0:
        shape = shape.buffer(-outer, quad_segs=6).buffer(outer, quad_segs=6)
    return shape


def _side_part(
    profile: BaseGeometry, holes: list[tuple[float, float, str]], diameter: float, width: float
) -> mf.Manifold:
    """A profile on the bed extruded up by `width`, with horizontal holes through it: each hole
    is (x, y, axis) with axis "x" or "y", centred in the width."""
    body = mf.Manifold.extrude(from_shapely(profile), width)
    if not holes or diameter <= 0:
        return body
    minx, miny, maxx, maxy = profile.bounds
    span = max(maxx - minx, maxy - miny) + 2
    cuts = []
    for hx, hy, axis in holes:
        c = cylinder(span, diameter / 2, center=True)
        c = c.rotate((0, 90, 0)) if axis == "x" else c.rotate((90, 0, 0))
        cuts.append(c.translate((hx, hy, width / 2)))
    return mf.Manifold.batch_boolean([body, *cuts], mf.OpType.Subtract)


Hole = tuple[float, float, str]


def _shelf_bracket(n: s.ShelfBracket) -> tuple[BaseGeometry, list[Hole], float]:
    a, b, t = n.leg_a, n.leg_b, n.thickness
    legs = rect(0, 0, t, b).union(rect(0, b - t, a, b))
    strut = LineString([(t / 2, t), (a - t, b - t / 2)]).buffer(t / 2, cap_style="flat")
    shape = _fillet(legs.union(strut).intersection(rect(0, 0, a, b)), 1.5 * t, 0.0)
    holes: list[Hole] = []
    if n.holes_per_leg and n.hole_diameter:
        d = n.hole_diameter
        holes += [(t / 2, y, "x") for y in _holes_along(n.holes_per_leg, b * 0.4, b - t - d)]
        holes += [(x, b - t / 2, "y") for x in _holes_along(n.holes_per_leg, t + d, a * 0.6)]
    return shape, holes, n.hole_diameter


def _wall_hook(n: s.WallHook) -> tuple[BaseGeometry, list[Hole], float]:
    t, r = n.thickness, n.reach
    top = max(n.back_height, t + n.tip_height)
    shape = rect(0, 0, t, top).union(rect(0, 0, r, t)).union(rect(r - t, 0, r, t + n.tip_height))
    shape = _fillet(shape, min(t, (r - 2 * t) / 2 - 0.01), t * 0.3)
    holes: list[Hole] = []
    if n.holes and n.hole_diameter:
        lo = t + n.tip_height / 2 + n.hole_diameter
        holes = [(t / 2, y, "x") for y in _holes_along(n.holes, lo, top)]
    return shape, holes, n.hole_diameter


def _saddle(radius: float, t: float, left: float, right: float) -> BaseGeometry:
    """An arch over a round object of `radius` resting on the wall (y = 0), with feet of the
    given lengths on each side; the object's centre is at (0, radius)."""
    ring = (
        Point(0, radius)
        .buffer(radius + t, quad_segs=32)
        .difference(Point(0, radius).buffer(radius, quad_segs=32))
    )
    arch = ring.intersection(rect(-radius - t, radius, radius + t, 2 * radius + t))
    legs = rect(-radius - t, 0, -radius, radius).union(rect(radius, 0, radius + t, radius))
    feet = rect(-radius - t - left, 0, -radius, t).union(rect(radius, 0, radius + t + right, t))
    return shapely.union_all([arch, legs, feet])


def _cable_clip(n: s.CableClip) -> tuple[BaseGeometry, list[Hole], float]:
    r, t = n.cable_diameter / 2, n.thickness
    shape = _fillet(_saddle(r, t, t, n.tab_length), 0.0, t * 0.25)
    holes: list[Hole] = [(r + t + n.tab_length / 2, t / 2, "y")] if n.hole_diameter else []
    return shape, holes, n.hole_diameter


def _pipe_clamp(n: s.PipeClamp) -> tuple[BaseGeometry, list[Hole], float]:
    r, t, f = n.pipe_diameter / 2, n.thickness, n.flange_length
    shape = _fillet(_saddle(r, t, f, f), 0.0, t * 0.25)
    holes: list[Hole] = (
        [(sx * (r + t + f / 2), t / 2, "y") for sx in (-1, 1)] if n.hole_diameter else []
    )
    return shape, holes, n.hole_diameter


def phone_stand_profile(n: s.PhoneStand) -> BaseGeometry:
    """Side view: foot on the desk, front lip, back support leaning at `angle`, rear strut."""
    t, a = n.thickness, math.radians(n.angle)
    base = rect(0, 0, n.base_depth, t)
    lip = rect(0, 0, t, t + n.lip_height)
    x0 = t + n.device_thickness + t / 2
    top = (x0 + n.back_height * math.cos(a), n.back_height * math.sin(a))
    back = LineString([(x0, 0), top]).buffer(t / 2, cap_style="flat")
    mid = (x0 + 0.55 * (top[0] - x0), 0.55 * top[1])
    strut = LineString([(n.base_depth - t / 2, t / 2), mid]).buffer(t / 2, cap_style="round")
    shape = shapely.union_all([base, lip, back, strut])
    # The leaning plate's flat end dips below the desk; cut it flush with the foot.
    shape = shape.intersection(rect(-1, 0, n.base_depth + n.back_height, top[1] + t))
    return _fillet(shape, t * 0.6, t * 0.2)


def _drawer_handle(n: s.DrawerHandle) -> tuple[BaseGeometry, list[Hole], float]:
    half, t, c = n.hole_spacing / 2, n.thickness, n.clearance
    posts = rect(-half - t / 2, 0, -half + t / 2, c + t).union(
        rect(half - t / 2, 0, half + t / 2, c + t)
    )
    shape = _fillet(posts.union(rect(-half - t / 2, c, half + t / 2, c + t)), t / 2, t * 0.3)
    return shape, [], 0.0


def drawer_handle(n: s.DrawerHandle) -> list[mf.Manifold]:
    shape, _, _ = _drawer_handle(n)
    body = mf.Manifold.extrude(from_shapely(shape), n.width)
    if n.hole_diameter <= 0:
        return [body]
    # Blind pilot holes up into each post from its foot (the face against the drawer).
    pilot = cylinder(n.hole_depth + 1, n.hole_diameter / 2).rotate((-90, 0, 0))
    cuts = [
        pilot.translate((x, -1, n.width / 2)) for x in (-n.hole_spacing / 2, n.hole_spacing / 2)
    ]
    return [mf.Manifold.batch_boolean([body, *cuts], mf.OpType.Subtract)]


def wedge_points(n: s.Wedge) -> list[tuple[float, float]]:
    pts = [(0.0, 0.0), (n.length, 0.0), (n.length, n.height)]
    return [*pts, (0.0, n.tip)] if n.tip > 0 else pts


def wedge(n: s.Wedge) -> list[mf.Manifold]:
    return [_xz_prism(wedge_points(n), 0.0, n.width)]


_SIDE_PROFILES: dict[str, Callable[[Any], tuple[BaseGeometry, list[Hole], float]]] = {
    "shelf_bracket": _shelf_bracket,
    "wall_hook": _wall_hook,
    "cable_clip": _cable_clip,
    "pipe_clamp": _pipe_clamp,
    "phone_stand": lambda n: (phone_stand_profile(n), [], 0.0),
    "drawer_handle": _drawer_handle,
}


def side_profile(n: Any) -> tuple[BaseGeometry, list[Hole], float, float]:
    """For a part printed on its side: its profile, horizontal holes (x, y, axis), hole
    diameter and the width it is extruded by."""
    shape, holes, diameter = _SIDE_PROFILES[n.kind](n)
    return shape, holes, diameter, n.width


def _side_family(n: Any) -> list[mf.Manifold]:
    return [_side_part(*side_profile(n))]


FAMILIES: dict[str, Callable[[Any], list[mf.Manifold]]] = {
    "box_with_lid": box_with_lid,
    "tray": tray,
    "enclosure": enclosure,
    "l_bracket": l_bracket,
    "shelf_bracket": _side_family,
    "wall_hook": _side_family,
    "cable_clip": _side_family,
    "pipe_clamp": _side_family,
    "phone_stand": _side_family,
    "gear": turned.gear,
    "tube": turned.tube,
    "washer": turned.washer,
    "spacer": turned.spacer,
    "standoffs": turned.standoffs,
    "plate": turned.plate,
    "vase": turned.vase,
    "plant_pot": turned.plant_pot,
    "coaster": turned.coaster,
    "knob": turned.knob,
    "funnel": turned.funnel,
    "drawer_handle": drawer_handle,
    "wedge": wedge,
    "nameplate": signs.nameplate,
    "cookie_cutter": signs.cookie_cutter,
}


# Families written as generic nodes (geometry/expand.py): the generic builder builds them.
EXPANDED: frozenset[str] = s.EXPANDED_FAMILIES


def raw_bodies(node: Any, solid: Callable[[Any], mf.Manifold]) -> list[mf.Manifold]:
    """A family's bodies where its builder puts them.

    Args:
        solid: the generic node builder (`geometry.build.solid`), for the families in
            EXPANDED. It is passed in rather than imported because the generic builder
            dispatches to this module: importing it back would make an import cycle.
    """
    if node.kind in EXPANDED:
        return [solid(tree) for tree in expand(node)]
    try:
        fn = FAMILIES[node.kind]
    except KeyError:
        raise ValueError(f"no builder for node kind {node.kind!r}") from None
    return fn(node)


def _centred(body: mf.Manifold) -> mf.Manifold:
    lo_x, lo_y, lo_z, hi_x, hi_y, _ = body.bounding_box()
    return body.translate((-(lo_x + hi_x) / 2, -(lo_y + hi_y) / 2, -lo_z))


def bodies(node: Any, solid: Callable[[Any], mf.Manifold]) -> list[mf.Manifold]:
    """A family's bodies, each centred on the origin in XY and standing on z = 0, so that a
    family used inside a boolean tree sits where its bounds say (`solid`: see raw_bodies)."""
    return [_centred(b) for b in raw_bodies(node, solid)]
