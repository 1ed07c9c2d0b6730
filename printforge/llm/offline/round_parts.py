"""Round and turned part families: vases, pots, cookie cutters, cylinders, spheres, cones, and
hexagonal prisms. Same conventions as `families.py`."""

from __future__ import annotations

import math
import re

from printforge.llm.offline.reader import (
    Draft,
    Node,
    Reader,
    mm,
    ring_node,
    round_size,
    spec_node,
    wall_of,
)
from printforge.llm.offline.shapes import EPS, box, cyl, diff, tr

__all__ = ["cone", "cookie_cutter", "cylinder", "pot", "prism", "sphere", "vase"]


_POLYGON_WORDS = {"triangular": 3, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6,
                  "heptagon": 7, "octagon": 8, "decagon": 10, "dodecagon": 12}


def polygon_sides(r: Reader) -> int:
    """0 for round, else the number of sides named ("hexagonal", "8-sided", "square")."""
    n = r.s.counts.get("side")
    if n is not None and 3 <= n <= 64:
        r.note(f"{n} sides")
        return n
    for word, sides in _POLYGON_WORDS.items():
        if re.search(rf"\b{word}", r.s.text):
            r.note(f"{word} ({sides} sides)")
            return sides
    return 0


def vase(r: Reader) -> Draft:
    shade = bool(re.search(r"lamp ?shade|\bshade\b|sleeve|open (?:bottom|ended)|"
                           r"(?:no|without (?:a )?)(?:bottom|floor|base)", r.s.text))
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    if pair is not None and not r.s.all("diameter", "radius", "width", "height", "depth"):
        # "a tall vase 200 x 60 mm": a vase is taller than it is wide.
        h, d = max(pair), min(pair)
        r.note(f"height {mm(h)}, diameter {mm(d)}")
    elif len(r.free()) == 1 and not r.s.all("diameter", "radius", "width", "height", "depth"):
        h = r.take_free("height")  # "a vase 150 mm": the one size of a vase is its height
        d = r.default(round(h * 0.5, 1), "diameter")
    else:
        d, h = round_size(r, default_ratio=0.5)
    wall = wall_of(r, 1.6)
    rad = d / 2
    sides = polygon_sides(r)
    twist = 0.0
    if re.search(r"twist|spiral|swirl|helical", r.s.text):
        m = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:degrees?|°|deg\b)", r.s.text)
        if m:
            twist = float(m.group(1))
            r.note(f"twist {twist:g} degrees")
        else:
            twist = 90.0
            r.assumed.append("twist 90 degrees")
        if not sides:
            sides = 6
            r.assumed.append("6 sides (a twist shows on a polygon)")
    if re.search(r"straight|cylindrical|simple|prism", r.s.text) or (sides and twist):
        radii = [rad, rad]
    else:
        # A classic belly-and-neck profile whose widest point is the diameter asked for.
        radii = [round(rad * f, 2) for f in (0.75, 1.0, 0.7, 0.8)]
        r.assumed.append("a belly-and-neck profile")
    floor = 0.0 if shade else max(2.0, wall)
    if shade:
        r.note("open at the bottom")
    node = spec_node("vase", height=h, radii=radii, wall=wall, floor=floor, sides=sides,
                     twist=twist)
    return r.draft("vase", "lamp shade" if shade else "vase", [node])


def pot(r: Reader, open_box: bool = False) -> Draft:
    """A plant pot, cup, bowl or mug; with `open_box`, a round or polygonal tray or box
    (straight sides, no drain)."""
    d = r.get("outer_diameter", "top_diameter", say="top diameter")
    plant = r.get("plant", say="for a plant")
    if d is None and plant is not None:
        # A pot "for a 12 cm plant" takes its nursery pot: that plus the walls and some soil.
        d = r.default(round(plant + 10, 1), "top diameter (the plant's pot plus 5 mm around)")
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    if d is None and pair is not None and not r.s.all("diameter", "radius", "outer_diameter") and (
            not re.search(r"\b(dish|bowl|tray)\b", r.s.text)):  # a dish 100 x 70 is oblong
        d, h = pair  # "a pot 60 x 50 mm": diameter x height, as drawings write round parts
        r.note(f"diameter {mm(d)}, height {mm(h)}")
    elif d is None and (d := r.diameter()) is None and len(r.free()) >= 2:
        d, h = round_size(r)
    else:
        d = d if d is not None else r.take_free("top diameter")
        if d is None:
            raise r.missing("the pot's size (e.g. 'a 10 cm plant pot' or '90 mm wide, 80 mm"
                            " tall')")
        h = r.get("height", "depth", say="height") or r.take_free("height") or r.default(
            round(d * 0.85, 1), "height")
    wall = wall_of(r, 2.0)
    sides = polygon_sides(r)
    no_drain = re.search(r"\b(no|without)\s+(a\s+)?(drain|drainage|hole)|pen|brush|cup|"
                         r"utensil|\bmug\b|\bbowl\b|\bdish\b", r.s.text) or open_box
    drain = 0.0 if no_drain else (r.hole() or r.default(min(8.0, round(d / 6, 1)), "drain hole"))
    # A tray or box stands straight; a pot or cup tapers.
    bottom = r.default(round(d * (1.0 if open_box else 0.75), 1), "bottom diameter")
    node = spec_node("plant_pot", height=h, top_diameter=d, bottom_diameter=bottom, wall=wall,
                     floor=2.5, drain_hole_diameter=drain, sides=sides)
    cup = re.search(r"pen|brush|cup|utensil|\bmug\b|\bbowl\b|\bdish\b", r.s.text)
    return r.draft("plant_pot", "round tray" if open_box else "cup" if cup else "plant pot",
                   [node])


def cookie_cutter(r: Reader) -> Draft:
    shape = "circle"
    for word, name in (("star", "star"), ("heart", "heart"), ("square", "polygon"),
                       ("hexagon", "polygon")):
        if re.search(rf"\b{word}", r.s.text):
            shape = name
            r.note(f"{word} outline")
            break
    else:
        if re.search(r"\b(animal|gingerbread|tree|letter|dinosaur|bunny)\b", r.s.text):
            raise r.missing("an outline it knows: round, star, heart, square or hexagon")
    size = r.get("diameter", "side", "width", say="size") or r.take_free("size") or r.default(
        60.0, "size")
    h = r.get("height", say="height") or r.default(15.0, "height")
    points: list[list[float]] = []
    if "square" in r.s.text:
        points = [[0, 0], [1, 0], [1, 1], [0, 1]]
    elif "hexagon" in r.s.text:
        points = [[round(math.cos(math.pi * k / 3), 4), round(math.sin(math.pi * k / 3), 4)]
                  for k in range(6)]
    node = spec_node("cookie_cutter", shape=shape, size=size, height=h, points=points)
    return r.draft("cookie_cutter", f"{shape if not points else 'polygon'} cookie cutter", [node])


def cylinder(r: Reader) -> Draft:
    d = r.diameter()
    h = r.get("height", "length", "thickness", say="height")
    if d is None and r.free():
        d = r.take_free("diameter")
    if h is None and r.free():
        h = r.take_free("height")
    if d is None or h is None:
        raise r.missing(*(["a diameter or radius"] if d is None else []),
                        *(["a height or length"] if h is None else []))
    n = r.s.counts.get("hole", 0)
    if n >= 2 and h <= d / 4:
        # "a round plate 100 mm across with 4 holes": the holes on a circle at 70 % of it.
        hole = r.hole() or r.default(3.4, "hole diameter")
        ring = r.get("diameter", say="bolt circle") or r.default(round(d * 0.7, 1),
                                                                 "bolt circle")
        r.note(f"{n} holes of {mm(hole)} on a {mm(ring)} circle")
        cuts = [tr([round(ring / 2 * math.cos(2 * math.pi * k / n), 3),
                    round(ring / 2 * math.sin(2 * math.pi * k / n), 3), -EPS],
                   cyl(h + 2 * EPS, hole / 2)) for k in range(n)]
        return r.draft("cylinder", "round plate with holes", [diff(cyl(h, d / 2), *cuts)])
    hole = r.hole()
    if hole and h <= d / 4:
        # A thin disc with a hole is a washer whatever it is called.
        return r.draft("washer", "disc with a hole", [ring_node("washer", d, hole, h)])
    if hole:
        return r.draft("tube", "cylinder with a hole", [ring_node("tube", d, hole, h)])
    return r.draft("cylinder", "cylinder", [cyl(h, d / 2)])


def sphere(r: Reader) -> Draft:
    d = r.diameter() or r.take_free("diameter")
    if d is None:
        raise r.missing("the sphere's diameter or radius")
    node: Node = {"kind": "sphere", "radius": round(d / 2, 3)}
    if re.search(r"\b(dome|hemisphere|half)\b", r.s.text):
        cut = tr([-d, -d, -d], box(2 * d, 2 * d, d))
        return r.draft("sphere", "dome", [diff(node, cut)])
    return r.draft("sphere", "sphere", [node])


def cone(r: Reader) -> Draft:
    d, h = round_size(r)
    top = r.get("inner_diameter", say="top diameter") or 0.0
    node: Node = {"kind": "cone", "height": h, "radius_bottom": round(d / 2, 3),
                  "radius_top": round(top / 2, 3), "center": False}
    return r.draft("cone", "cone", [node])


def prism(r: Reader) -> Draft:
    """A hexagonal (or triangular, octagonal...) prism or nut. Its size is across the flats,
    across the corners, or the length of a side; the spec's radius is centre to corner."""
    n = polygon_sides(r) or 6
    af = r.get("across_flats", say="across flats")
    ac = r.get("across_corners", say="across corners") if af is None else None
    side = r.get("side", say="side") if af is None and ac is None else None
    h = r.get("height", "thickness", "length", say="height")
    if af is None and ac is None and side is None:
        af = r.diameter() or r.take_free("size across flats")
    if h is None:
        h = r.take_free("height")
    no_size = af is None and ac is None and side is None
    if no_size or h is None:
        raise r.missing(*(["its size across the flats"] if no_size else []),
                        *(["its height"] if h is None else []))
    if ac is not None:
        radius = ac / 2
    elif side is not None:
        radius = side / (2 * math.sin(math.pi / n))
    else:
        radius = af / (2 * math.cos(math.pi / n))  # type: ignore[operator]
    node: Node = {"kind": "polygon_prism", "sides": n, "radius": round(radius, 3),
                  "height": h, "center": False}
    hole = r.hole()
    part = diff(node, cyl(h + 2 * EPS, hole / 2, -EPS)) if hole else node
    name = "hex nut" if hole and n == 6 else "hexagonal prism" if n == 6 else f"{n}-sided prism"
    return r.draft("polygon_prism", name, [part])
