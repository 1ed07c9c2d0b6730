"""The spec as an OpenSCAD file a person can open, read and edit.

Primitives, profiles, booleans, transforms and patterns map one-to-one onto OpenSCAD
statements. A part family becomes a module built from the same solids and 2-D outlines the
builder uses (outlines that need maths OpenSCAD lacks, such as involute teeth or the stroke
font, are written out as polygon points), with its parameters in a comment. Each body is then
placed with the exact matrix the builder used, so the file renders the same model as the STL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import manifold3d as mf
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from printforge.geometry import families, signs, turned
from printforge.geometry.font import text_shape
from printforge.geometry.profiles import cross_section, text_offset
from printforge.models import spec as s

__all__ = ["to_scad"]

_HEADER = """\
// Design "{name}", written by printforge. Units: mm.
// Each body is placed where printforge laid it out on the bed (multmatrix at the end).
$fa = 2; $fs = 0.4;

// A block centred in XY standing on z = 0, vertical edges rounded by r.
// A slot: `l` long between the centres of its round ends of radius r.
module pf_obround(l, r) {{ hull() for (sx = [-1, 1]) translate([sx * l / 2, 0]) circle(r = r); }}

module pf_slab(x, y, h, r = 0) {{
    // The hull of four corner circles: still right when r is half a side (round ends).
    if (r > 0) linear_extrude(h) hull() for (sx = [-1, 1], sy = [-1, 1])
        translate([sx * (x / 2 - r), sy * (y / 2 - r)]) circle(r = r);
    else translate([-x / 2, -y / 2, 0]) cube([x, y, h]);
}}
"""


def _f(v: float) -> str:
    text = f"{float(v):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _v(values: Any) -> str:
    return "[" + ", ".join(_f(v) for v in values) + "]"


def _block(head: str, body: list[str]) -> list[str]:
    return [f"{head} {{", *("    " + line for line in body), "}"]


def _polygon(shape: BaseGeometry) -> str:
    """A shapely (multi)polygon as one OpenSCAD polygon with paths (holes by even-odd)."""
    polys = list(shape.geoms) if isinstance(shape, MultiPolygon) else [shape]
    points: list[tuple[float, float]] = []
    paths: list[list[int]] = []
    for poly in polys:
        if not isinstance(poly, Polygon) or poly.is_empty:
            continue
        for ring in [poly.exterior, *poly.interiors]:
            coords = list(ring.coords)[:-1]
            paths.append(list(range(len(points), len(points) + len(coords))))
            points += coords
    pts = ", ".join(_v(p) for p in points)
    return f"polygon(points = [{pts}], paths = {json.dumps(paths)});"


def _points_polygon(points: Any) -> str:
    return "polygon(points = [" + ", ".join(_v(p) for p in points) + "]);"


# generic nodes ---------------------------------------------------------------------------------


def _profile(n: Any) -> list[str]:
    pos = _v(n.position)
    if n.kind == "polygon":
        return [f"translate({pos}) " + _points_polygon(n.points)]
    if n.kind == "circle":
        return [f"translate({pos}) circle(r = {_f(n.radius)});"]
    if n.kind == "rectangle":
        return [f"translate({pos}) square({_v(n.size)}, center = {str(n.center).lower()});"]
    if n.kind == "rounded_rectangle":
        x, y = n.size
        r = n.radius
        shift = (0.0, 0.0) if n.center else (x / 2, y / 2)
        at = _v((shift[0] + n.position[0], shift[1] + n.position[1]))
        return [
            f"translate({at}) offset(r = {_f(r)})"
            f" square({_v((x - 2 * r, y - 2 * r))}, center = true);"
        ]
    # The stroke font is printforge's own, so the outline is written out; the comment shows
    # the OpenSCAD call to use instead when another font is fine.
    return [
        f'// text("{n.text}", size = {_f(n.size)}, halign = "{n.halign}", valign = "{n.valign}")',
        f"translate({_v(text_offset(n))}) " + _polygon(text_shape(n.text, n.size)),
    ]


def _profiles(n: Any) -> list[str]:
    shapes = [line for p in n.profiles for line in _profile(p)]
    if not n.cutouts:
        return _block("union()", shapes)
    cuts = [line for p in n.cutouts for line in _profile(p)]
    return _block("difference()", [*_block("union()", shapes), *_block("union()", cuts)])


def _children(n: Any) -> list[str]:
    return [line for c in n.children for line in node(c)]


def _pattern(n: Any) -> list[str]:
    if n.kind == "linear_pattern":
        head = f"for (i = [0 : {n.count - 1}]) translate(i * {_v(n.step)})"
    elif n.kind == "grid_pattern":
        sx, sy = n.spacing
        ox = -(n.columns - 1) * sx / 2 if n.center else 0.0
        oy = -(n.rows - 1) * sy / 2 if n.center else 0.0
        head = (
            f"for (i = [0 : {n.columns - 1}], j = [0 : {n.rows - 1}])"
            f" translate([{_f(ox)} + i * {_f(sx)}, {_f(oy)} + j * {_f(sy)}, 0])"
        )
    else:
        div = n.count if n.angle >= 360 else max(n.count - 1, 1)
        head = f"for (i = [0 : {n.count - 1}]) rotate([0, 0, i * {_f(n.angle)} / {div}])"
    return _block(head, _children(n))


def _twist_slices(n: Any) -> int:
    """Enough slices that OpenSCAD's twisted sides stay within about 0.05 mm of the true
    shape: each slice bends a flat side of length L by about L x (its turn) / 4, so the
    longest side (at most the outline's diagonal) sets the count; at least one per 5 degrees,
    at most 2000."""
    if not n.twist:
        return 1
    x0, y0, x1, y1 = cross_section(n.profiles).bounds()
    longest = math.hypot(x1 - x0, y1 - y0) * max(1.0, n.scale_top)
    need = math.ceil(math.radians(abs(n.twist)) * longest / (4 * 0.05))
    return int(min(2000, max(1, int(abs(n.twist) / 5), need)))


def _extrude(n: Any) -> list[str]:
    c = str(n.center).lower()
    head = (
        f"linear_extrude(height = {_f(n.height)}, center = {c}, twist = {_f(n.twist)},"
        f" scale = {_f(n.scale_top)}, slices = {_twist_slices(n)})"
    )
    return _block(head, _profiles(n))


def _rounded_box_shift(n: s.RoundedBox) -> tuple[float, float, float]:
    x, y, z = n.size
    return (0.0, 0.0, -z / 2) if n.center else (x / 2, y / 2, 0.0)


_GENERIC: dict[str, Callable[[Any], list[str]]] = {
    "box": lambda n: [f"cube({_v(n.size)}, center = {str(n.center).lower()});"],
    "rounded_box": lambda n: [
        f"translate({_v(_rounded_box_shift(n))}) pf_slab({_f(n.size[0])}, {_f(n.size[1])},"
        f" {_f(n.size[2])}, {_f(n.radius)});"
    ],
    "cylinder": lambda n: [
        f"cylinder(h = {_f(n.height)}, r = {_f(n.radius)}, center = {str(n.center).lower()});"
    ],
    "cone": lambda n: [
        f"cylinder(h = {_f(n.height)}, r1 = {_f(n.radius_bottom)},"
        f" r2 = {_f(n.radius_top)}, center = {str(n.center).lower()});"
    ],
    "sphere": lambda n: [f"sphere(r = {_f(n.radius)});"],
    "torus": lambda n: [
        f"rotate_extrude() translate([{_f(n.major_radius)}, 0]) circle(r = {_f(n.minor_radius)});"
    ],
    "polygon_prism": lambda n: [
        f"cylinder(h = {_f(n.height)}, r = {_f(n.radius)},"
        f" $fn = {n.sides}, center = {str(n.center).lower()});"
    ],
    "linear_extrude": _extrude,
    "revolve": lambda n: _block(f"rotate_extrude(angle = {_f(n.angle)})", _profiles(n)),
    "union": lambda n: _block("union()", _children(n)),
    "difference": lambda n: _block("difference()", _children(n)),
    "intersection": lambda n: _block("intersection()", _children(n)),
    "hull": lambda n: _block("hull()", _children(n)),
    "translate": lambda n: _block(f"translate({_v(n.offset)})", _children(n)),
    "rotate": lambda n: _block(f"rotate({_v(n.angles)})", _children(n)),
    "scale": lambda n: _block(f"scale({_v(n.factors)})", _children(n)),
    "mirror": lambda n: _block(f"mirror({_v(n.normal)})", _children(n)),
    "linear_pattern": _pattern,
    "grid_pattern": _pattern,
    "circular_pattern": _pattern,
}


def node(n: Any) -> list[str]:
    """OpenSCAD statements for one node (a family used inside a tree: all its bodies)."""
    fn = _GENERIC.get(n.kind)
    if fn is not None:
        return fn(n)
    return [line for body in family_bodies(n) for line in body]


# part families ---------------------------------------------------------------------------------


def _cyl(
    h: float,
    r: float,
    at: tuple[float, float, float] = (0, 0, 0),
    axis: str = "z",
) -> str:
    turn = {"z": "", "x": "rotate([0, 90, 0]) ", "y": "rotate([90, 0, 0]) "}[axis]
    centre = "true" if axis != "z" else "false"
    return f"translate({_v(at)}) {turn}cylinder(h = {_f(h)}, r = {_f(r)}, center = {centre});"


def _slab(x: float, y: float, h: float, r: float = 0.0, z: float = 0.0) -> str:
    call = f"pf_slab({_f(x)}, {_f(y)}, {_f(h)}, {_f(max(r, 0))});"
    return (f"translate([0, 0, {_f(z)}]) " + call) if z else call


def _lid(x: float, y: float, plate: float, lip: float, w: float, c: float, r: float) -> list[str]:
    out = [_slab(x, y, plate, r)]
    if lip > 0:
        lx, ly, lr = x - 2 * w - 2 * c, y - 2 * w - 2 * c, max(r - w - c, 0)
        out += _block(
            f"translate([0, 0, {_f(plate)}]) difference()",
            [
                _slab(lx, ly, lip, lr),
                _slab(lx - 2 * w, ly - 2 * w, lip + 0.02, max(lr - w, 0), -0.01),
            ],
        )
    return _block("union()", out)


def _box_with_lid(n: s.BoxWithLid) -> list[list[str]]:
    x, y, z = n.size
    w, r = n.wall, n.corner_radius
    box = _block(
        "difference()", [_slab(x, y, z, r), _slab(x - 2 * w, y - 2 * w, z, r - w, n.floor)]
    )
    return [box, _lid(x, y, n.lid_thickness, n.lip_height, w, n.clearance, r)]


def _tray(n: s.Tray) -> list[list[str]]:
    x, y, z = n.size
    w = n.wall
    ix, iy = x - 2 * w, y - 2 * w
    lines = _block(
        "difference()",
        [_slab(x, y, z, n.corner_radius), _slab(ix, iy, z, n.corner_radius - w, n.floor)],
    )
    for count, span, along_x in ((n.compartments_x, ix, True), (n.compartments_y, iy, False)):
        cell = (span - (count - 1) * w) / count
        for i in range(1, count):
            c = -span / 2 + i * cell + (i - 0.5) * w
            size = (w, iy + 0.02, z) if along_x else (ix + 0.02, w, z)
            at = (c, 0, z / 2) if along_x else (0, c, z / 2)
            lines.append(f"translate({_v(at)}) cube({_v(size)}, center = true);")
    return [_block("union()", lines)]


def _enclosure(n: s.Enclosure) -> list[list[str]]:
    ox, oy, oz = n.outer()
    w = n.wall
    od = n.standoff_diameter()
    spots = n.hole_centres()
    shell = _block("difference()", [_slab(ox, oy, oz), _slab(ox - 2 * w, oy - 2 * w, oz, 0, w)])
    posts = [_cyl(n.standoff_height + 0.01, od / 2, (x, y, w - 0.01)) for x, y in spots]
    pilots = [_cyl(n.standoff_height + 0.01, n.hole_diameter / 2, (x, y, w + 1)) for x, y in spots]
    ports = [f"translate({_v(at)}) cube({_v(size)}, center = true);" for at, size in n.port_boxes()]
    box = _block("difference()", [*_block("union()", [*shell, *posts]), *pilots, *ports])
    return [box, _lid(ox, oy, w, n.lip_height, w, n.clearance, 0.0)]


def _l_bracket(n: s.LBracket) -> list[list[str]]:
    a, b, w, t = n.leg_a, n.leg_b, n.width, n.thickness
    parts = [f"cube({_v((a, w, t))});", f"cube({_v((t, w, b))});"]
    if n.brace:
        size = 0.6 * min(a, b) - t / 2
        tri = _points_polygon([(t - 0.01, t - 0.01), (t + size, t - 0.01), (t - 0.01, t + size)])
        for y1 in (t, w):
            parts.append(
                f"translate([0, {_f(y1)}, 0]) rotate([90, 0, 0]) linear_extrude({_f(t)}) {tri}"
            )
    cuts = []
    if n.hole_diameter and n.holes_per_leg:
        r = n.hole_diameter / 2
        for i in range(n.holes_per_leg):
            x = t + (a - t) * (i + 0.5) / n.holes_per_leg
            z = t + (b - t) * (i + 0.5) / n.holes_per_leg
            cuts.append(_cyl(t + 2, r, (x, w / 2, -1)))
            cuts.append(_cyl(t + 2, r, (t / 2, w / 2, z), "x"))
    return [_block("difference()", [*_block("union()", parts), *cuts])]


def _side_part(
    shape: BaseGeometry, width: float, holes: list[tuple[float, float, str]], diameter: float
) -> list[list[str]]:
    body = [f"linear_extrude({_f(width)}) " + _polygon(shape)]
    minx, miny, maxx, maxy = shape.bounds
    span = max(maxx - minx, maxy - miny) + 2
    cuts = [_cyl(span, diameter / 2, (hx, hy, width / 2), axis) for hx, hy, axis in holes]
    return [_block("difference()", body + cuts) if cuts else body]


def _profile_family(n: Any) -> list[list[str]]:
    shape, holes, diameter, width = families.side_profile(n)
    return _side_part(shape, width, holes, diameter)


def _gear(n: s.Gear) -> list[list[str]]:
    inner = [_points_polygon(turned.gear_outline(n.module, n.teeth, n.pressure_angle))]
    if n.bore > 0:
        inner.append(f"circle(d = {_f(n.bore)});")
    return [_block(f"linear_extrude({_f(n.thickness)}) difference()", inner)]


def _ring(od: float, idia: float, h: float, fn: str = "") -> list[list[str]]:
    return [
        _block(
            "difference()",
            [
                f"cylinder(h = {_f(h)}, d = {_f(od)}{fn});",
                f"translate([0, 0, -0.01]) cylinder(h = {_f(h + 0.02)}, d = {_f(idia)});",
            ],
        )
    ]


def _standoffs(n: s.Standoffs) -> list[list[str]]:
    sx, sy = n.spacing
    od, base, h = n.outer_diameter, n.base_thickness, n.height
    spots = [(x * sx / 2, y * sy / 2) for x in (-1, 1) for y in (-1, 1)]
    if base <= 0:
        return [_ring(od, n.hole_diameter, h)[0] for _ in spots]
    frame = _block(
        "difference()",
        [
            _slab(sx + od - 0.4, sy + od - 0.4, base, od / 2 - 0.2),
            _slab(sx - od + 0.4, sy - od + 0.4, base + 0.02, 0, -0.01),
        ],
    )
    posts = [_cyl(h + base, od / 2, (x, y, 0)) for x, y in spots]
    holes = [_cyl(base + h + 2, n.hole_diameter / 2, (x, y, -1)) for x, y in spots]
    return [_block("difference()", [*_block("union()", [*frame, *posts]), *holes])]


def _plate_hole(n: s.Plate) -> list[str]:
    """One hole of a plate at the origin, as plate_hole_cutter builds it."""
    t, r = n.thickness, n.hole_diameter / 2
    if n.slot_length > 0:
        hole = [
            f"translate([0, 0, -1]) linear_extrude({_f(t + 2)})"
            f" pf_obround({_f(n.slot_length)}, {_f(r)});"
        ]
    else:
        hole = [_cyl(t + 2, r, (0, 0, -1))]
    d, depth = n.head()
    if not d:
        return hole
    if n.hole_style == "countersunk":
        head = [
            f"translate([0, 0, {_f(t - depth)}]) cylinder(h = {_f(depth + 0.01)}, r1 = {_f(r)},"
            f" r2 = {_f(d / 2)});",
            _cyl(1.0, d / 2, (0, 0, t)),
        ]
    elif n.hole_style == "counterbored":
        head = [_cyl(depth + 1.0, d / 2, (0, 0, t - depth))]
    else:
        head = [
            f"translate([0, 0, {_f(t - depth)}]) cylinder(h = {_f(depth + 1.0)},"
            f" r = {_f(d / math.sqrt(3))}, $fn = 6);"
        ]
    if n.slot_length > 0 and n.hole_style != "hex_pocket":
        half = _f(n.slot_length / 2)
        head = _block(
            "hull()",
            [
                *_block(f"translate([-{half}, 0, 0])", head),
                *_block(f"translate([{half}, 0, 0])", head),
            ],
        )
    return hole + head


def _plate(n: s.Plate) -> list[list[str]]:
    x, y = n.size
    body = [_slab(x, y, n.thickness, n.corner_radius)]
    if n.hole_diameter > 0:
        one = _plate_hole(n)
        for hx, hy in n.hole_centres():
            body += _block(f"translate([{_f(hx)}, {_f(hy)}, 0])", one)
    return [_block("difference()", body)]


def _nameplate(n: s.Nameplate) -> list[list[str]]:
    x, y, text_x, hole_x = signs.nameplate_layout(n)
    t = n.thickness
    letters = f"translate([{_f(text_x)}, {_f(-n.text_height / 2)}]) " + _polygon(
        text_shape(n.text, n.text_height)
    )
    lines = [f'// text: "{n.text}" in printforge\'s stroke font', _slab(x, y, t, n.corner_radius)]
    if n.style == "raised":
        body = _block(
            "union()",
            [
                *lines,
                f"translate([0, 0, {_f(t - 0.01)}])"
                f" linear_extrude({_f(n.text_depth + 0.01)}) {letters}",
            ],
        )
    else:
        body = _block(
            "difference()",
            [
                *lines,
                f"translate([0, 0, {_f(t - n.text_depth)}])"
                f" linear_extrude({_f(n.text_depth + 1)}) {letters}",
            ],
        )
    if n.hole_diameter:
        body = _block(
            "difference()",
            [*body, _cyl(t + n.text_depth + 2, n.hole_diameter / 2, (hole_x, 0, -1))],
        )
    return [body]


def _cookie(n: s.CookieCutter) -> list[list[str]]:
    outline = _polygon(signs.cookie_outline(n))
    blade = _block(
        f"linear_extrude({_f(n.height)}) difference()",
        [f"offset(r = {_f(n.blade)}) {outline}", outline],
    )
    if n.flange_width <= 0 or n.flange_thickness <= 0:
        return [blade]
    flange = _block(
        f"linear_extrude({_f(n.flange_thickness)}) difference()",
        [f"offset(r = {_f(n.blade + n.flange_width)}) {outline}", outline],
    )
    return [_block("union()", blade + flange)]


def _vase(n: s.Vase) -> list[str]:
    fn = f"$fn = {n.sides}" if n.sides else ""
    body = f"rotate_extrude({fn}) {_points_polygon(turned.vase_profile(n))}"
    if not n.twist:
        return [body]
    # OpenSCAD cannot twist a rotate_extrude; a polygonal vase is the same as a twisted
    # extrusion of its cross-section only when its radius is constant, so say so plainly.
    return [
        f"// printforge twists this vase by {_f(n.twist)} degrees from bottom to top;"
        " OpenSCAD has no twisted rotate_extrude, so it is shown untwisted here",
        body,
    ]


def _plant_pot(n: s.PlantPot) -> list[list[str]]:
    pts = turned.plant_pot_profile(n)
    fn = f"$fn = {n.sides}" if n.sides else ""
    body = [f"rotate_extrude({fn}) {_points_polygon(pts)}"]
    if n.drain_hole_diameter > 0:
        body.append(_cyl(n.floor + 2, n.drain_hole_diameter / 2, (0, 0, -1)))
    return [_block("difference()", body)]


def _coaster(n: s.Coaster) -> list[list[str]]:
    d, t, rim, rw = n.diameter, n.thickness, n.rim_height, n.rim_width
    if n.square:
        r = min(8.0, d / 4)
        body, well = (
            _slab(d, d, t + rim, r),
            _slab(d - 2 * rw, d - 2 * rw, rim + 1, max(r - rw, 0.5), t),
        )
    else:
        body = f"cylinder(h = {_f(t + rim)}, d = {_f(d)});"
        well = _cyl(rim + 1, d / 2 - rw, (0, 0, t))
    return [_block("difference()", [body, well]) if rim > 0 else [body]]


def _knob(n: s.Knob) -> list[list[str]]:
    big, rr = n.diameter / 2, turned.knob_ridge(n)
    solid = [f"cylinder(h = {_f(n.height)}, r = {_f(big - rr)});"]
    if n.ridges:
        solid.append(
            f"for (i = [0 : {n.ridges - 1}]) rotate([0, 0, i * 360 / {n.ridges}])"
            f" translate([{_f(big - rr)}, 0, 0]) cylinder(h = {_f(n.height)},"
            f" r = {_f(rr)});"
        )
    r = n.shaft_diameter / 2
    shape = f"circle(r = {_f(r)});"
    if n.d_flat:
        shape = (
            f"intersection() {{ circle(r = {_f(r)}); translate([{_f(-r)}, {_f(-r)}])"
            f" square([{_f(1.5 * r)}, {_f(2 * r)}]); }}"
        )
    hole = (
        f"translate([0, 0, {_f(n.height - n.shaft_depth)}])"
        f" linear_extrude({_f(n.shaft_depth + 1)}) {shape}"
    )
    return [_block("difference()", [*_block("union()", solid), hole])]


def _drawer_handle(n: s.DrawerHandle) -> list[list[str]]:
    shape, _, _, width = families.side_profile(n)
    body = [f"linear_extrude({_f(width)}) " + _polygon(shape)]
    if n.hole_diameter > 0:
        for x in (-n.hole_spacing / 2, n.hole_spacing / 2):
            body.append(
                f"translate({_v((x, -1, width / 2))}) rotate([-90, 0, 0])"
                f" cylinder(h = {_f(n.hole_depth + 1)}, r = {_f(n.hole_diameter / 2)});"
            )
    return [_block("difference()", body)]


def _wedge(n: s.Wedge) -> list[list[str]]:
    return [
        [
            f"translate([0, {_f(n.width)}, 0]) rotate([90, 0, 0])"
            f" linear_extrude({_f(n.width)}) " + _points_polygon(families.wedge_points(n))
        ]
    ]


_FAMILIES: dict[str, Callable[[Any], list[list[str]]]] = {
    "box_with_lid": _box_with_lid,
    "tray": _tray,
    "enclosure": _enclosure,
    "l_bracket": _l_bracket,
    "shelf_bracket": _profile_family,
    "wall_hook": _profile_family,
    "cable_clip": _profile_family,
    "pipe_clamp": _profile_family,
    "phone_stand": _profile_family,
    "gear": _gear,
    "tube": lambda n: _ring(n.outer_diameter, n.inner_diameter, n.height),
    "washer": lambda n: _ring(n.outer_diameter, n.inner_diameter, n.thickness),
    "spacer": lambda n: _ring(
        n.outer_diameter, n.hole_diameter, n.height, ", $fn = 6" if n.hexagonal else ""
    ),
    "standoffs": _standoffs,
    "plate": _plate,
    "vase": lambda n: [_vase(n)],
    "plant_pot": _plant_pot,
    "nameplate": _nameplate,
    "cookie_cutter": _cookie,
    "coaster": _coaster,
    "knob": _knob,
    "drawer_handle": _drawer_handle,
    "funnel": lambda n: [[f"rotate_extrude() {_points_polygon(turned.funnel_profile(n))}"]],
    "wedge": _wedge,
}


def _expanded(n: Any) -> list[list[str]]:
    from printforge.geometry.expand import expand

    return [node(tree) for tree in expand(n)]


for _kind in families.EXPANDED:
    _FAMILIES[_kind] = _expanded


def family_bodies(n: Any) -> list[list[str]]:
    """Statements per body of a family, centred the way families.bodies() centres them."""
    from printforge.geometry.build import solid

    raw = families.raw_bodies(n, solid)
    out = []
    for body, lines in zip(raw, _FAMILIES[n.kind](n), strict=True):
        lo_x, lo_y, lo_z, hi_x, hi_y, _ = mf.Manifold.bounding_box(body)
        shift = (-(lo_x + hi_x) / 2, -(lo_y + hi_y) / 2, -lo_z)
        out.append(_block(f"translate({_v(shift)})", lines))
    return out


def _part_bodies(n: Any) -> list[list[str]]:
    from printforge.geometry.build import TRANSFORMS

    if n.kind in TRANSFORMS and len(n.children) == 1:
        head = _GENERIC[n.kind](n.model_copy(update={"children": []}))[0].removesuffix(" {")
        return [_block(head, body) for body in _part_bodies(n.children[0])]
    if n.kind in _GENERIC:
        return [node(n)]
    return family_bodies(n)


def _matrix(m: list[list[float]]) -> str:
    return "[" + ", ".join(_v(row) for row in m) + "]"


def to_scad(spec: s.DesignSpec, placements: list[dict[str, Any]] | None = None) -> str:
    """OpenSCAD source for `spec`. `placements` (from build_mesh's metadata) puts each body
    where the STL has it; without them bodies stay in design coordinates."""
    lines = _HEADER.format(name=spec.name.replace('"', "'")).splitlines()
    bodies = []
    for index, part in enumerate(spec.parts):
        params = part.model_dump(mode="json", exclude={"children", "profiles", "cutouts"})
        for body in _part_bodies(part):
            bodies.append((index, json.dumps(params), body))
    for k, (index, params, body) in enumerate(bodies):
        lines += ["", f"// part {index + 1}: {params}"]
        lines += _block(f"module body_{k + 1}()", body)
    lines.append("")
    for k in range(len(bodies)):
        m = placements[k]["matrix"] if placements and k < len(placements) else None
        call = f"body_{k + 1}();"
        lines.append(f"multmatrix({_matrix(m)}) {call}" if m is not None else call)
    return "\n".join(lines) + "\n"
