"""Bounding boxes of spec nodes worked out from their parameters, without building a mesh.

spec_problems needs the bed footprint before anything is built, so each kind states its box.
Transforms take the box of the moved corners, which can only over-estimate: safe for a bed check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from printforge.models.spec import EXPANDED_FAMILIES

__all__ = ["FAMILY_SIZES", "Bounds", "node_bounds", "part_body_sizes"]

Bounds = tuple[np.ndarray, np.ndarray]


def _b(lo: list[float], hi: list[float]) -> Bounds:
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def _centred(x: float, y: float, z: float) -> Bounds:
    return _b([-x / 2, -y / 2, 0], [x / 2, y / 2, z])


def _union(children: list[Any]) -> Bounds:
    boxes = [node_bounds(c) for c in children]
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def _intersection(children: list[Any]) -> Bounds:
    boxes = [node_bounds(c) for c in children]
    lo = np.max([b[0] for b in boxes], axis=0)
    hi = np.min([b[1] for b in boxes], axis=0)
    return lo, np.maximum(hi, lo)


def _box(n: Any) -> Bounds:
    size = np.asarray(n.size, dtype=float)
    return (-size / 2, size / 2) if n.center else (np.zeros(3), size)


def _cyl(n: Any) -> Bounds:
    z0 = -n.height / 2 if n.center else 0.0
    return _b([-n.radius, -n.radius, z0], [n.radius, n.radius, z0 + n.height])


def _profiles_bounds(profiles: list[Any]) -> tuple[float, float, float, float]:
    from printforge.geometry.profiles import cross_section

    b = cross_section(profiles).bounds()
    return b[0], b[1], b[2], b[3]


def _extrude(n: Any) -> Bounds:
    x0, y0, x1, y1 = _profiles_bounds(n.profiles)
    if n.scale_top > 1:
        # Scaling about the origin can grow the top beyond the bottom outline.
        x0, y0, x1, y1 = (v * n.scale_top for v in (x0, y0, x1, y1))
    if n.twist:
        r = max(abs(x0), abs(y0), abs(x1), abs(y1)) * math.sqrt(2)
        x0, y0, x1, y1 = -r, -r, r, r
    z0 = -n.height / 2 if n.center else 0.0
    return _b([x0, y0, z0], [x1, y1, z0 + n.height])


def _revolve(n: Any) -> Bounds:
    _, y0, x1, y1 = _profiles_bounds(n.profiles)
    return _b([-x1, -x1, y0], [x1, x1, y1])


def _pattern(n: Any) -> Bounds:
    lo, hi = _union(n.children)
    if n.kind == "linear_pattern":
        shift = np.asarray(n.step, dtype=float) * (n.count - 1)
        return np.minimum(lo, lo + shift), np.maximum(hi, hi + shift)
    if n.kind == "grid_pattern":
        sx, sy = n.spacing[0] * (n.columns - 1), n.spacing[1] * (n.rows - 1)
        off = np.array([-sx / 2, -sy / 2, 0.0]) if n.center else np.zeros(3)
        return lo + off, hi + off + np.array([sx, sy, 0.0])
    r = float(np.max(np.hypot(*np.meshgrid([lo[0], hi[0]], [lo[1], hi[1]]))))
    return _b([-r, -r, lo[2]], [r, r, hi[2]])


def _transformed(n: Any) -> Bounds:
    return _transform_box(n, _union(n.children))


def _transform_box(n: Any, box: Bounds) -> Bounds:
    from printforge.geometry.build import node_matrix

    m = node_matrix(n)
    lo, hi = box
    corners = np.array(
        [[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    pts = (corners @ m.T)[:, :3]
    return pts.min(axis=0), pts.max(axis=0)


_BOUNDS: dict[str, Callable[[Any], Bounds]] = {
    "box": _box,
    "rounded_box": _box,
    "cylinder": _cyl,
    "cone": lambda n: _cyl_r(max(n.radius_bottom, n.radius_top), n.height, n.center),
    "sphere": lambda n: _b([-n.radius] * 3, [n.radius] * 3),
    "torus": lambda n: _b(
        [-(n.major_radius + n.minor_radius)] * 2 + [-n.minor_radius],
        [n.major_radius + n.minor_radius] * 2 + [n.minor_radius],
    ),
    "polygon_prism": lambda n: _cyl_r(n.radius, n.height, n.center),
    "linear_extrude": _extrude,
    "revolve": _revolve,
    "union": lambda n: _union(n.children),
    "difference": lambda n: node_bounds(n.children[0]),
    "intersection": lambda n: _intersection(n.children),
    "hull": lambda n: _union(n.children),
    "translate": _transformed,
    "rotate": _transformed,
    "scale": _transformed,
    "mirror": _transformed,
    "linear_pattern": _pattern,
    "grid_pattern": _pattern,
    "circular_pattern": _pattern,
}


def _cyl_r(r: float, h: float, center: bool) -> Bounds:
    z0 = -h / 2 if center else 0.0
    return _b([-r, -r, z0], [r, r, z0 + h])


def _profile_size(shape: Any, z: float) -> tuple[float, float, float]:
    x0, y0, x1, y1 = shape.bounds
    return x1 - x0, y1 - y0, z


def _sizes_phone(n: Any) -> list[tuple[float, float, float]]:
    from printforge.geometry.families import phone_stand_profile

    return [_profile_size(phone_stand_profile(n), n.width)]


def _sizes_nameplate(n: Any) -> list[tuple[float, float, float]]:
    from printforge.geometry.signs import nameplate_layout

    x, y, _, _ = nameplate_layout(n)
    return [(x, y, n.thickness + (n.text_depth if n.style == "raised" else 0.0))]


def _sizes_cookie(n: Any) -> list[tuple[float, float, float]]:
    from printforge.geometry.signs import cookie_outline

    grow = 2 * (n.blade + (n.flange_width if n.flange_thickness > 0 else 0.0))
    x, y, _ = _profile_size(cookie_outline(n), n.height)
    return [(x + grow, y + grow, n.height)]


def _sizes_standoffs(n: Any) -> list[tuple[float, float, float]]:
    od, h = n.outer_diameter, n.height
    if n.base_thickness <= 0:
        return [(od, od, h)] * 4
    return [(n.spacing[0] + od, n.spacing[1] + od, h + n.base_thickness)]


def _hook(n: Any) -> list[tuple[float, float, float]]:
    return [(n.reach, max(n.back_height, n.thickness + n.tip_height), n.width)]


def _round(d: float, h: float) -> list[tuple[float, float, float]]:
    return [(d, d, h)]


def _turned(d: float, h: float, sides: int) -> list[tuple[float, float, float]]:
    """A revolved part: round, or a regular polygon with a corner on +X (a twisted one is
    given as round, which it fits inside)."""
    if not sides:
        return _round(d, h)
    a = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    xs, ys = d / 2 * np.cos(a), d / 2 * np.sin(a)
    return [(float(np.ptp(xs)), float(np.ptp(ys)), h)]


# Part families: the size of each body they make, in print orientation.
FAMILY_SIZES: dict[str, Callable[[Any], list[tuple[float, float, float]]]] = {
    "box_with_lid": lambda n: [
        (n.size[0], n.size[1], n.size[2]),
        (n.size[0], n.size[1], n.lid_thickness + n.lip_height),
    ],
    "tray": lambda n: [tuple(n.size)],
    "enclosure": lambda n: [n.outer(), (*n.outer()[:2], n.wall + n.lip_height)],
    "l_bracket": lambda n: [(n.leg_a, n.width, n.leg_b)],
    "shelf_bracket": lambda n: [(n.leg_a, n.leg_b, n.width)],
    "wall_hook": _hook,
    "cable_clip": lambda n: [
        (n.cable_diameter + 3 * n.thickness + n.tab_length, n.cable_diameter + n.thickness, n.width)
    ],
    "pipe_clamp": lambda n: [
        (
            n.pipe_diameter + 2 * n.thickness + 2 * n.flange_length,
            n.pipe_diameter + n.thickness,
            n.width,
        )
    ],
    "phone_stand": _sizes_phone,
    "gear": lambda n: _round(n.module * (n.teeth + 2), n.thickness),
    "tube": lambda n: _round(n.outer_diameter, n.height),
    "washer": lambda n: _round(n.outer_diameter, n.thickness),
    "spacer": lambda n: [
        (n.outer_diameter, n.outer_diameter * (math.sqrt(3) / 2 if n.hexagonal else 1.0), n.height)
    ],
    "standoffs": _sizes_standoffs,
    "plate": lambda n: [(n.size[0], n.size[1], n.thickness)],
    "vase": lambda n: _turned(2 * max(n.radii), n.height, 0 if n.twist else n.sides),
    "plant_pot": lambda n: _turned(max(n.top_diameter, n.bottom_diameter), n.height, n.sides),
    "coaster": lambda n: _round(n.diameter, n.thickness + n.rim_height),
    "knob": lambda n: _round(n.diameter, n.height),
    "drawer_handle": lambda n: [(n.hole_spacing + n.thickness, n.clearance + n.thickness, n.width)],
    "funnel": lambda n: _round(n.top_diameter, n.cone_height + n.spout_length),
    "wedge": lambda n: [(n.length, n.width, n.height)],
    "nameplate": _sizes_nameplate,
    "cookie_cutter": _sizes_cookie,
}


def _expanded_sizes(n: Any) -> list[tuple[float, float, float]]:
    from printforge.geometry.expand import expand

    return [_size(node_bounds(tree)) for tree in expand(n)]


for _kind in EXPANDED_FAMILIES:
    FAMILY_SIZES[_kind] = _expanded_sizes


def node_bounds(node: Any) -> Bounds:
    fn = _BOUNDS.get(node.kind)
    if fn is not None:
        return fn(node)
    sizes = FAMILY_SIZES[node.kind](node)
    return _centred(
        max(x for x, _, _ in sizes), max(y for _, y, _ in sizes), max(z for _, _, z in sizes)
    )


def part_body_sizes(node: Any) -> list[tuple[float, float, float]]:
    """The [x, y, z] of each body one top-level part prints as."""
    from printforge.geometry.build import TRANSFORMS

    if node.kind in TRANSFORMS and len(node.children) == 1:
        inner = part_body_sizes(node.children[0])
        if len(inner) == 1:
            return [_size(node_bounds(node))]
        return [_size(_transform_box(node, _centred(*sz))) for sz in inner]
    if node.kind in FAMILY_SIZES:
        return FAMILY_SIZES[node.kind](node)
    return [_size(node_bounds(node))]


def _size(b: Bounds) -> tuple[float, float, float]:
    d = b[1] - b[0]
    return float(d[0]), float(d[1]), float(d[2])
