"""Cubes and blocks, with the two things people add to them: rounded vertical edges and a hole
straight through ("a 20 mm cube with a 5 mm hole through it")."""

from __future__ import annotations

import re

from printforge.llm.offline.reader import Draft, Node, Reader, corner_of, hole_recess, mm, size3
from printforge.llm.offline.shapes import EPS, box, cyl, diff, tr

__all__ = ["block", "capsule", "cube", "square_tube"]


def _all_round(r: Reader, size: tuple[float, float, float]) -> Node:
    """Every edge rounded: the hull of a sphere in each corner."""
    x, y, z = size
    rad = r.get("corner_radius", "radius", say="edge radius") or r.default(
        round(min(3.0, min(size) / 5), 2), "edge radius"
    )
    if not 0 < 2 * rad < min(size):
        raise r.missing(f"an edge radius under {min(size) / 2:g} mm")
    return {
        "kind": "hull",
        "children": [
            tr([a, b, c], {"kind": "sphere", "radius": rad})
            for a in (rad, x - rad)
            for b in (rad, y - rad)
            for c in (rad, z - rad)
        ],
    }


def _solid(r: Reader, size: tuple[float, float, float]) -> tuple[str, Node]:
    x, y, z = size
    if re.search(
        r"\b(all (?:the )?edges|rounded edges|round(?:ed)? all over|soft edges)\b", r.s.text
    ) and not re.search(r"\bhole\b", r.s.text):
        r.note("every edge rounded")
        r.claim("rounded corners")
        return "hull", _all_round(r, size)
    corner = corner_of(r, x, y)
    if corner:
        node: Node = {"kind": "rounded_box", "size": [x, y, z], "radius": corner, "center": False}
        kind = "rounded_box"
    else:
        node, kind = box(x, y, z), "box"
    recess = re.search(r"counter|\bcsk\b|\btrap\b|\bpocket\b|\brecess\b", r.s.text)
    # A nut trap or countersink for a named screw implies the screw's hole through.
    wants_hole = re.search(r"\bhole\b", r.s.text) or (recess and r.s.screw is not None)
    hole = r.hole() if wants_hole else None
    if hole is None and re.search(r"\b(a|one|centre|center)\s+(?:\w+\s+)?hole\b", r.s.text):
        hole = r.take_free("hole diameter")
    if hole and hole >= min(x, y) - 1.0:
        raise r.missing(
            f"a hole smaller than the part: a {mm(hole)} hole leaves nothing of a"
            f" {mm(min(x, y))} side (keep it under {mm(min(x, y) - 1.0)})"
        )
    if hole:
        r.note("a hole straight through the middle (along Z)")
        cutter = tr([x / 2, y / 2, -EPS], cyl(z + 2 * EPS, hole / 2))
        cuts = [cutter]
        r.thickness_hint = z
        style, head, depth = hole_recess(r, hole)
        if style == "countersunk":
            depth = (head - hole) / 2
            cone: Node = {
                "kind": "cone",
                "height": round(depth + EPS, 4),
                "radius_bottom": round(hole / 2, 4),
                "radius_top": round(head / 2, 4),
            }
            cuts.append(tr([x / 2, y / 2, z - depth], cone))
        elif style == "counterbored":
            cuts.append(tr([x / 2, y / 2, z - depth], cyl(depth + 1.0, head / 2)))
        elif style == "hex_pocket":
            prism: Node = {
                "kind": "polygon_prism",
                "sides": 6,
                "radius": round(head / 3**0.5, 4),
                "height": round(depth + 1.0, 4),
            }
            cuts.append(tr([x / 2, y / 2, z - depth], prism))
        return kind, diff(node, *cuts)
    return kind, node


def _not_hollow(r: Reader) -> None:
    if re.search(r"\bhollow\b", r.s.text) or r.s.all("wall"):
        # A closed hollow box cannot be printed without trapping its support; say what can.
        raise r.missing(
            "an open shape: a closed hollow block cannot be printed; ask for 'an"
            " open box 20 x 20 x 20 mm' or 'a box with lid'"
        )


def cube(r: Reader) -> Draft:
    from printforge.llm.offline.extras import cube_has_letters, xyz_cube

    if cube_has_letters(r):
        return xyz_cube(r)
    _not_hollow(r)
    size = size3(r)
    if (
        size is None
        and len(r.s.quantities) == 1
        and not r.s.triples
        and r.s.quantities[0].label
        in (None, "height", "width", "length", "depth", "side", "thickness")
    ):
        # "a cube, height: 30 mm": a cube's one size is its side, whatever it is called.
        side = r.s.quantities[0].mm
        r.note(f"side {mm(side)}")
        size = (side, side, side)
    if size is None:
        if "calibration" in r.s.text:
            size = (20.0, 20.0, 20.0)
            r.default(20.0, "calibration cube side")
        else:
            raise r.missing("the cube's side length (e.g. 'a 20 mm cube')")
    name = "calibration cube" if "calibration" in r.s.text else "cube"
    kind, node = _solid(r, size)
    return r.draft(kind, name, [node])


def block(r: Reader) -> Draft:
    _not_hollow(r)
    size = size3(r)
    if size is None:
        raise r.missing("the block's size (e.g. '40 x 20 x 10 mm')")
    kind, node = _solid(r, size)
    return r.draft(kind, "block", [node])


def square_tube(r: Reader) -> Draft:
    """A square tube: a box with a square box cut through it along Z."""
    side = r.get("width", "side", "outer_diameter", "diameter", say="outside") or r.take_free(
        "outside"
    )
    wall = r.get("wall", "thickness", say="wall")
    inner = r.get("inner_diameter", say="inside")
    if side is not None and wall is None and inner is not None:
        wall = (side - inner) / 2
    h = r.get("height", "length", say="length") or r.take_free("length")
    if side is None or wall is None or h is None:
        raise r.missing(
            *(["its outside width"] if side is None else []),
            *(["its wall thickness"] if wall is None else []),
            *(["its length"] if h is None else []),
        )
    if not 0 < 2 * wall < side:
        raise r.missing(f"a wall under {side / 2:g} mm, so the tube stays hollow")
    cut = tr([wall, wall, -EPS], box(side - 2 * wall, side - 2 * wall, h + 2 * EPS))
    return r.draft("box", "square tube", [diff(box(side, side, h), cut)])


def capsule(r: Reader) -> Draft:
    """A capsule (pill): two half-spheres joined by a cylinder, standing upright."""
    d = r.diameter()
    length = r.get("length", "height", say="length")
    if d is None and r.free():
        d = r.take_free("diameter")
    if length is None and r.free():
        length = r.take_free("length")
    if d is None or length is None:
        raise r.missing(
            *(["its diameter"] if d is None else []),
            *(["its overall length"] if length is None else []),
        )
    if length < d:
        raise r.missing(f"a length of at least its diameter {d:g} mm")
    rad = d / 2
    ends = [tr([0, 0, z], {"kind": "sphere", "radius": round(rad, 3)}) for z in (rad, length - rad)]
    return r.draft("hull", "capsule", [{"kind": "hull", "children": ends}])
