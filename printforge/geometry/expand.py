"""The newer part families written as trees of the spec's generic nodes.

A pegboard hook, a fan plate, a hinge... is a handful of extrusions, cylinders and booleans.
Writing each one as generic nodes means the mesh builder and the OpenSCAD writer use the very
same tree (both already handle every generic node), so the `.scad` file cannot drift from the
STL. `expand(node)` gives one tree per body the family prints as.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import shapely
from shapely.geometry import LineString, Point
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry import box as rect
from shapely.geometry.base import BaseGeometry

from printforge.models import spec as s
from printforge.models.spec_extra import FAN_HOLE_SPACING, fan_hole_diameter

__all__ = ["EXPANDERS", "PEGBOARDS", "expand"]

E = 0.01  # cutters overshoot the faces they cut

# Pegboards: hole pitch (vertical, between the two pegs), board thickness, peg section
# (width across the board's face, height), mm. 1/4 in pegboard: 1/4 in holes on a 1 in grid,
# 1/4 in hardboard. IKEA Skadis: 5 x 15 mm slots, 40 mm apart in a column, 5 mm board.
PEGBOARDS: dict[str, tuple[float, float, float, float]] = {
    "pegboard": (25.4, 6.35, 4.4, 4.4),
    "skadis": (40.0, 5.0, 4.4, 8.0),
}


def _r(v: float) -> float:
    return round(float(v), 4)


def _poly(shape: BaseGeometry) -> list[dict[str, Any]]:
    """Polygon profiles of a shapely shape without holes (one per piece)."""
    pieces = list(shape.geoms) if hasattr(shape, "geoms") else [shape]
    out = []
    for piece in pieces:
        if not isinstance(piece, ShapelyPolygon) or piece.is_empty or piece.area < 1e-6:
            continue
        coords = list(piece.exterior.coords)[:-1]
        out.append({"kind": "polygon", "points": [[_r(x), _r(y)] for x, y in coords]})
    return out


def _extrude(
    height: float, profiles: list[dict[str, Any]], cutouts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "kind": "linear_extrude",
        "height": _r(height),
        "profiles": profiles,
        "cutouts": cutouts or [],
    }


def _tr(offset: tuple[float, float, float], *children: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "translate", "offset": [_r(v) for v in offset], "children": list(children)}


def _rot(angles: tuple[float, float, float], *children: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "rotate", "angles": list(angles), "children": list(children)}


def _cyl(h: float, r: float) -> dict[str, Any]:
    return {"kind": "cylinder", "height": _r(h), "radius": _r(r)}


def _box(x: float, y: float, z: float) -> dict[str, Any]:
    return {"kind": "box", "size": [_r(x), _r(y), _r(z)]}


def _union(*children: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "union", "children": list(children)}


def _diff(keep: dict[str, Any], *cuts: dict[str, Any]) -> dict[str, Any]:
    return keep if not cuts else {"kind": "difference", "children": [keep, *cuts]}


def _circle(r: float, x: float = 0.0, y: float = 0.0) -> dict[str, Any]:
    return {"kind": "circle", "radius": _r(r), "position": [_r(x), _r(y)]}


# pegboard hook ---------------------------------------------------------------------------------


def _pegboard_hook(n: s.PegboardHook) -> list[dict[str, Any]]:
    pitch, board, peg_w, peg_h = PEGBOARDS[n.board]
    t, reach = n.thickness, n.reach
    top = pitch + peg_h + 8.0  # back plate: both pegs with 4 mm of plate around them
    y_top = top - 4.0 - peg_h / 2
    y_low = y_top - pitch
    back = rect(0, 0, t, top)
    arm = rect(0, 0, reach, t)
    tip = rect(reach - t, 0, reach, t + n.tip_height)
    body = shapely.union_all([back, arm, tip])
    body = body.buffer(min(t, 3.0), quad_segs=6).buffer(-min(t, 3.0), quad_segs=6)
    # Upper peg: through the board, then a tab down behind it that catches; lower peg: into
    # the board's next hole so the hook cannot swing.
    behind = board + 0.6
    drop = peg_h * 0.75 + 2.0
    upper = rect(-behind, y_top - peg_h / 2, E, y_top + peg_h / 2).union(
        rect(-behind - peg_w, y_top - peg_h / 2 - drop, -behind + E, y_top + peg_h / 2)
    )
    lower = rect(-board + 0.5, y_low - peg_h / 2, E, y_low + peg_h / 2)
    pegs = shapely.union_all([upper, lower])
    # Pegs rest on the bed (z from 0) so they print without support.
    return [_union(_extrude(n.width, _poly(body)), _extrude(peg_w, _poly(pegs)))]


# fan plates and ducts --------------------------------------------------------------------------


def _fan_holes(fan: int) -> list[dict[str, Any]]:
    half = FAN_HOLE_SPACING[fan] / 2
    r = fan_hole_diameter(fan) / 2
    return [_circle(r, sx * half, sy * half) for sx in (-1, 1) for sy in (-1, 1)]


def _opening(fan: int) -> float:
    """Diameter of the air opening for a fan: its blades' circle, a little inside the frame."""
    return round(fan * 0.94, 2)


def _square(side: float) -> dict[str, Any]:
    return {
        "kind": "rounded_rectangle",
        "size": [_r(side), _r(side)],
        "radius": _r(min(4.0, side / 10)),
        "center": True,
    }


def _grill(d: float, t: float) -> list[dict[str, Any]]:
    """Rings and four spokes filling an opening of diameter d."""
    bar = 1.6
    parts = []
    r = d / 2 + 0.5
    while r > 4:
        parts.append(_extrude(t, [_circle(r)], [_circle(r - bar)]))
        r -= 6.0
    for angle in (0.0, 90.0):
        parts.append(_rot((0, 0, angle), _tr((-d / 2 - 0.5, -bar / 2, 0), _box(d + 1, bar, t))))
    parts.append(_cyl(t, 4.5))
    return parts


def _fan_plate(n: s.FanPlate) -> list[dict[str, Any]]:
    big = max(n.fan, n.second_fan)
    small = min(n.fan, n.second_fan) if n.second_fan else n.fan
    holes = _fan_holes(n.fan) + (_fan_holes(n.second_fan) if n.second_fan else [])
    d = _opening(small)
    plate = _extrude(n.thickness, [_square(big)], [_circle(d / 2), *holes])
    if not n.grill:
        return [plate]
    return [
        _union(
            plate,
            {
                "kind": "intersection",
                "children": [
                    _union(*_grill(d, n.thickness)),
                    _extrude(n.thickness, [_circle(d / 2 + 0.01)]),
                ],
            },
        )
    ]


def _fan_duct(n: s.FanDuct) -> list[dict[str, Any]]:
    low, high = (n.fan_in, n.fan_out) if n.fan_in >= n.fan_out else (n.fan_out, n.fan_in)
    ft, length, w = n.flange_thickness, n.length, n.wall
    r1, r2 = _opening(low) / 2, _opening(high) / 2
    # The duct's ends stop 0.2 mm inside the flanges: faces that only touch the flanges' own
    # faces leave slivers that break the mesh once an STL reader merges its vertices.
    z0, z1 = 0.2, length - 0.2
    profile = [
        [r1, z0],
        [r1 + w, z0],
        [r1 + w, ft],
        [r2 + w, length - ft],
        [r2 + w, z1],
        [r2, z1],
        [r2, length - ft],
        [r1, ft],
    ]
    duct = {
        "kind": "revolve",
        "profiles": [{"kind": "polygon", "points": [[_r(x), _r(y)] for x, y in profile]}],
    }
    bottom = _extrude(ft, [_square(low)], [_circle(r1 + w / 2), *_fan_holes(low)])
    top = _tr(
        (0, 0, length - ft), _extrude(ft, [_square(high)], [_circle(r2 + w / 2), *_fan_holes(high)])
    )
    return [_union(bottom, top, duct)]


# print-in-place hinge --------------------------------------------------------------------------


def _pin_hinge(n: s.PinHinge) -> list[dict[str, Any]]:
    length, width, t, c = n.length, n.leaf_width, n.thickness, n.clearance
    d = n.knuckle_diameter()
    zc = d / 2
    seg = (length - (n.knuckles - 1) * c) / n.knuckles
    spans = [(i * (seg + c), i * (seg + c) + seg) for i in range(n.knuckles)]
    pin_r = d / 2 - 1.2 - c

    def along_x(x0: float, x1: float, r: float) -> dict[str, Any]:
        """A cylinder on the hinge axis from x0 to x1."""
        return _tr((x0, 0, zc), _rot((0, 90, 0), _cyl(x1 - x0, r)))

    def leaf(sign: float) -> dict[str, Any]:
        y0 = 0.0 if sign > 0 else -width
        plate = _tr((0, y0, 0), _box(length, width, t))
        if n.hole_diameter:
            cuts = [
                _tr((x, sign * (d / 2 + (width - d / 2) / 2), -1), _cyl(t + 2, n.hole_diameter / 2))
                for x in (length * 0.25, length * 0.75)
            ]
            plate = _diff(plate, *cuts)
        return plate

    a_spans = spans[0::2]
    b_spans = spans[1::2]
    # Leaf A (y < 0) owns the outer knuckles and the pin; leaf B (y > 0) the others.
    body_a = _diff(
        _union(
            leaf(-1), *[along_x(x0, x1, d / 2) for x0, x1 in a_spans], along_x(0, length, pin_r)
        ),
        *[along_x(x0 - c, x1 + c, d / 2 + c) for x0, x1 in b_spans],
    )
    body_b = _diff(
        _union(leaf(1), *[along_x(x0, x1, d / 2) for x0, x1 in b_spans]),
        *[along_x(x0 - c, x1 + c, d / 2 + c) for x0, x1 in a_spans],
        along_x(-1, length + 1, pin_r + c),
    )
    # One body of two interlocked pieces: they print and stay assembled.
    return [_union(body_a, body_b)]


# tool holder -----------------------------------------------------------------------------------


def tool_layout(n: s.ToolHolder) -> tuple[float, float, list[tuple[float, float, float]]]:
    """The block's x and y and each hole's (x, y, size) with its centre from the block centre."""
    sizes = [h + n.clearance for h in n.holes]
    per_row = math.ceil(len(sizes) / n.rows)
    rows = [sizes[i : i + per_row] for i in range(0, len(sizes), per_row)]
    margin = n.spacing + 1.0
    lengths = [sum(r) + n.spacing * (len(r) - 1) for r in rows]
    x = max(lengths) + 2 * margin
    depths = [max(r) for r in rows]
    y = sum(depths) + n.spacing * (len(rows) - 1) + 2 * margin
    out: list[tuple[float, float, float]] = []
    cy = -y / 2 + margin
    for row, row_len, deep in zip(rows, lengths, depths, strict=True):
        cx = -row_len / 2
        for size in row:
            out.append((cx + size / 2, cy + deep / 2, size))
            cx += size + n.spacing
        cy += deep + n.spacing
    return x, y, out


def _tool_holder(n: s.ToolHolder) -> list[dict[str, Any]]:
    x, y, holes = tool_layout(n)
    h = n.height
    through = n.wall_mount
    depth = h + 2 * E if through else n.depth + E
    z0 = -E if through else h - n.depth
    cuts = []
    for hx, hy, size in holes:
        if n.hex:
            prism = {
                "kind": "polygon_prism",
                "sides": 6,
                "radius": _r(size / math.sqrt(3)),
                "height": _r(depth),
            }
            cuts.append(_tr((hx, hy, z0), prism))
        else:
            cuts.append(_tr((hx, hy, z0), _cyl(depth, size / 2)))
    block = _diff(_tr((-x / 2, -y / 2, 0), _box(x, y, h)), *cuts)
    if not through:
        return [block]
    # A rack: the holed shelf, a back plate up from its back edge with two screw holes.
    back_h = h + 40.0
    back = _tr((-x / 2, y / 2, 0), _box(x, 4.0, back_h))
    screws = [
        _tr((sx, y / 2 - 1, back_h - 12.0), _rot((-90, 0, 0), _cyl(6.0, 2.25)))
        for sx in (-x / 2 + max(10.0, x * 0.2), x / 2 - max(10.0, x * 0.2))
    ]
    return [_diff(_union(block, back), *screws)]


# sliding-lid box -------------------------------------------------------------------------------


def sliding_lid_size(n: s.SlidingBox) -> tuple[float, float, float]:
    x, y, _ = n.size
    half = n.wall / 2
    return x - half - n.clearance, y - 2 * half - 2 * n.clearance, n.lid_thickness


def _sliding_box(n: s.SlidingBox) -> list[dict[str, Any]]:
    x, y, z = n.size
    w, c = n.wall, n.clearance
    groove_h = n.lid_thickness + c
    zg = z - groove_h - 1.2  # a 1.2 mm lip above the groove holds the lid down
    shell = _diff(
        _tr((-x / 2, -y / 2, 0), _box(x, y, z)),
        _tr((-x / 2 + w, -y / 2 + w, n.floor), _box(x - 2 * w, y - 2 * w, z)),
        # The grooves: half the wall deep into both long walls and the closed end wall.
        _tr((-x / 2 + w / 2, -y / 2 + w / 2, zg), _box(x, y - w, groove_h)),
        # The open end: its wall cut down to the groove so the lid slides in.
        _tr((x / 2 - w - E, -y / 2 + w / 2, zg), _box(w + 2 * E, y - w, z - zg + E)),
    )
    lx, ly, lt = sliding_lid_size(n)
    lid = _tr((-lx / 2, -ly / 2, 0), _box(lx, ly, lt))
    grip = _tr((lx / 2 - 8.0, -ly / 4, lt - 0.6), _box(2.0, ly / 2, 0.6 + E))
    return [shell, _diff(lid, grip)]


# grommet, bag clip, cable comb -----------------------------------------------------------------


def _grommet(n: s.Grommet) -> list[dict[str, Any]]:
    fd, ft, pt = n.flange_diameter(), n.flange_thickness, n.panel_thickness
    sleeve = n.panel_hole / 2 - 0.2  # slides into the hole with 0.2 mm of play
    lip = n.panel_hole / 2 + 0.6  # and a lip 0.6 mm wider catches behind the panel
    bore = n.bore / 2
    h = ft + pt
    pts = [
        [bore, 0.0],
        [fd / 2, 0.0],
        [fd / 2, ft],
        [sleeve, ft],
        [sleeve, h + 0.2],
        [lip, h + 0.4],
        [sleeve, h + 2.0],
        [bore, h + 2.0],
    ]
    return [
        {
            "kind": "revolve",
            "profiles": [{"kind": "polygon", "points": [[_r(a), _r(b)] for a, b in pts]}],
        }
    ]


def bag_clip_profile(n: s.BagClip) -> BaseGeometry:
    """Two jaws joined by a springy loop at x = 0, meeting (0.6 mm apart) at the far end."""
    t, length = n.thickness, n.length
    gap = 6.0  # the jaws' opening at the loop; the spring closes them at the tip
    ro = t + gap / 2
    cy = ro
    loop = (
        Point(ro, cy)
        .buffer(ro, quad_segs=16)
        .difference(Point(ro, cy).buffer(ro - t, quad_segs=16))
        .intersection(rect(0, 0, ro, 2 * ro))
    )
    lower = rect(ro - E, 0, length, t)
    upper = LineString([(ro - E, 2 * ro - t / 2), (length, t + 0.6 + t / 2)]).buffer(
        t / 2, cap_style="flat"
    )
    shape = shapely.union_all([loop, lower, upper])
    return shape.intersection(rect(0, 0, length, 2 * ro + t))


def _bag_clip(n: s.BagClip) -> list[dict[str, Any]]:
    return [_extrude(n.width, _poly(bag_clip_profile(n)))]


def comb_layout(n: s.CableComb) -> tuple[float, float, float]:
    """(x, y, hole diameter) of a cable comb."""
    hole = n.cable_diameter + 0.5
    x = n.columns * (hole + n.gap) + n.gap + 4.0
    y = n.rows * (hole + n.gap) + n.gap + 4.0
    return x, y, hole


def _cable_comb(n: s.CableComb) -> list[dict[str, Any]]:
    x, y, hole = comb_layout(n)
    pitch = hole + n.gap
    cuts = []
    for j in range(n.rows):
        cy = -((n.rows - 1) * pitch) / 2 + j * pitch
        for i in range(n.columns):
            cx = -((n.columns - 1) * pitch) / 2 + i * pitch
            cuts.append(_circle(hole / 2, cx, cy))
            if n.rows <= 2:
                # A slit to the nearer long edge, narrower than the cable, to push it in.
                toward = 1 if (n.rows == 1 or j == 1) else -1
                slit = round(n.cable_diameter * 0.7, 3)
                y0 = cy if toward > 0 else -y / 2 - 1
                cuts.append(
                    {
                        "kind": "rectangle",
                        "size": [slit, _r(y / 2 + 1 - abs(cy))],
                        "position": [_r(cx - slit / 2), _r(y0)],
                    }
                )
    outline = {"kind": "rounded_rectangle", "size": [_r(x), _r(y)], "radius": 2.0, "center": True}
    return [_extrude(n.thickness, [outline], cuts)]


EXPANDERS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "pegboard_hook": _pegboard_hook,
    "fan_plate": _fan_plate,
    "fan_duct": _fan_duct,
    "pin_hinge": _pin_hinge,
    "tool_holder": _tool_holder,
    "sliding_box": _sliding_box,
    "grommet": _grommet,
    "bag_clip": _bag_clip,
    "cable_comb": _cable_comb,
}


def expand(n: Any) -> list[Any]:
    """The generic-node tree (validated spec nodes) of each body of a newer family node."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(s.Node)
    return [adapter.validate_python(tree) for tree in EXPANDERS[n.kind](n)]
