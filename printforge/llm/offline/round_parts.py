"""Round and turned part families: vases, pots, cookie cutters, cylinders, spheres, cones, and
hexagonal prisms. Same conventions as `families.py`."""

from __future__ import annotations

import math
import re

from printforge.llm.offline.reader import (
    Draft,
    Node,
    Reader,
    iso_nut,
    mm,
    pilot_hole,
    ring_node,
    round_size,
    spec_node,
    wall_of,
)
from printforge.llm.offline.shapes import EPS, box, cyl, diff, tr

__all__ = [
    "adapter",
    "cap",
    "cone",
    "cookie_cutter",
    "cylinder",
    "flat_star",
    "pot",
    "prism",
    "sphere",
    "torus",
    "vase",
]


_POLYGON_WORDS = {
    "triangular": 3,
    "triangle": 3,
    "square": 4,
    "pentagon": 5,
    "hexagon": 6,
    "heptagon": 7,
    "octagon": 8,
    "decagon": 10,
    "dodecagon": 12,
}


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
    shade = bool(
        re.search(
            r"lamp ?shade|\bshade\b|sleeve|open (?:bottom|ended)|"
            r"(?:no|without (?:a )?)(?:bottom|floor|base)",
            r.s.text,
        )
    )
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    if pair is not None and not r.s.all("diameter", "radius", "width", "height", "depth"):
        # "a tall vase 200 x 60 mm": a vase is taller than it is wide.
        h, d = max(pair), min(pair)
        r.note(f"height {mm(h)}, diameter {mm(d)}")
    elif len(r.free()) == 1 and not r.s.all("diameter", "radius", "width", "height", "depth"):
        free = r.take_free("height")  # "a vase 150 mm": the one size of a vase is its height
        assert free is not None  # one free size, checked just above
        h = free
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
            r.assume("twist 90 degrees")
        if not sides:
            sides = 6
            r.assume("6 sides (a twist shows on a polygon)")
        r.claim("twist")
    if re.search(r"straight|cylindrical|simple|prism", r.s.text) or (sides and twist):
        radii = [rad, rad]
    else:
        # A classic belly-and-neck profile whose widest point is the diameter asked for.
        radii = [round(rad * f, 2) for f in (0.75, 1.0, 0.7, 0.8)]
        r.assume("a belly-and-neck profile")
    floor = 0.0 if shade else (r.get("floor", say="floor") or max(2.0, wall))
    if shade:
        r.note("open at the bottom")
    node = spec_node(
        "vase", height=h, radii=radii, wall=wall, floor=floor, sides=sides, twist=twist
    )
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
    if (
        d is None
        and pair is not None
        and not r.s.all("diameter", "radius", "outer_diameter")
        and (not re.search(r"\b(dish|bowl|tray)\b", r.s.text))
    ):  # a dish 100 x 70 is oblong
        d, h = pair  # "a pot 60 x 50 mm": diameter x height, as drawings write round parts
        r.note(f"diameter {mm(d)}, height {mm(h)}")
    elif d is None and (d := r.diameter()) is None and len(r.free()) >= 2:
        d, h = round_size(r)
    else:
        d = d if d is not None else r.take_free("top diameter")
        if d is None:
            raise r.missing("the pot's size (e.g. 'a 10 cm plant pot' or '90 mm wide, 80 mm tall')")
        h = (
            r.get("height", "depth", say="height")
            or r.take_free("height")
            or r.default(round(d * 0.85, 1), "height")
        )
    wall = wall_of(r, 2.0)
    sides = polygon_sides(r)
    no_drain = (
        re.search(
            r"\b(no|without)\s+(a\s+)?(drain|drainage|hole)|pen|brush|cup|"
            r"utensil|\bmug\b|\bbowl\b|\bdish\b",
            r.s.text,
        )
        or open_box
    )
    drain = 0.0 if no_drain else (r.hole() or r.default(min(8.0, round(d / 6, 1)), "drain hole"))
    if drain:
        r.claim("drain holes")
    # A tray or box stands straight; a pot or cup tapers.
    bottom = r.default(round(d * (1.0 if open_box else 0.75), 1), "bottom diameter")
    floor = r.get("floor", say="floor") or 2.5
    node = spec_node(
        "plant_pot",
        height=h,
        top_diameter=d,
        bottom_diameter=bottom,
        wall=wall,
        floor=floor,
        drain_hole_diameter=drain,
        sides=sides,
    )
    cup = re.search(r"pen|brush|cup|utensil|\bmug\b|\bbowl\b|\bdish\b", r.s.text)
    if re.search(r"\bhandle\b", r.s.text):
        r.assume("no handle (pots and cups are made without one)")
    return r.draft("plant_pot", "round tray" if open_box else "cup" if cup else "plant pot", [node])


def cookie_cutter(r: Reader) -> Draft:
    shape = "circle"
    for word, name in (
        ("star", "star"),
        ("heart", "heart"),
        ("square", "polygon"),
        ("hexagon", "polygon"),
    ):
        if re.search(rf"\b{word}", r.s.text):
            shape = name
            r.note(f"{word} outline")
            break
    else:
        if re.search(r"\b(animal|gingerbread|tree|letter|dinosaur|bunny)\b", r.s.text):
            raise r.missing("an outline it knows: round, star, heart, square or hexagon")
    size = (
        r.get("diameter", "side", "width", say="size")
        or r.take_free("size")
        or r.default(60.0, "size")
    )
    h = r.get("height", say="height") or r.default(15.0, "height")
    points: list[list[float]] = []
    if "square" in r.s.text:
        points = [[0, 0], [1, 0], [1, 1], [0, 1]]
    elif "hexagon" in r.s.text:
        points = [
            [round(math.cos(math.pi * k / 3), 4), round(math.sin(math.pi * k / 3), 4)]
            for k in range(6)
        ]
    node = spec_node("cookie_cutter", shape=shape, size=size, height=h, points=points)
    return r.draft("cookie_cutter", f"{shape if not points else 'polygon'} cookie cutter", [node])


def cylinder(r: Reader) -> Draft:
    d = r.diameter()
    h = r.get("height", "length", "thickness", say="height")
    if d is None and h is None and len(r.s.triples) == 1 and len(r.s.triples[0]) == 2:
        # "a disc 50 x 3 mm", "a dowel 8 x 100": a round part's two sizes are diameter x
        # length, the drawing convention (Ø first), whichever is larger.
        d, h = r.s.triples[0]
        r.note(f"diameter {mm(d)} x height {mm(h)}")
    if d is None and r.free():
        d = r.take_free("diameter")
    if h is None and r.free():
        h = r.take_free("height")
    if h is None and d is not None and re.search(r"\bplugs?\b|\bstoppers?\b", r.s.text):
        h = r.default(round(max(5.0, d * 0.6), 1), "length")  # a plug's grip: most of its width
    if d is None or h is None:
        raise r.missing(
            *(["a diameter or radius"] if d is None else []),
            *(["a height or length"] if h is None else []),
        )
    n = r.s.counts.get("hole", 0)
    if n >= 2 and h <= d / 4:
        # "a round plate 100 mm across with 4 holes": the holes on a circle at 70 % of it.
        hole = r.hole() or r.default(3.4, "hole diameter")
        ring = r.get("diameter", say="bolt circle") or r.default(round(d * 0.7, 1), "bolt circle")
        r.note(f"{n} holes of {mm(hole)} on a {mm(ring)} circle")
        cuts = [
            tr(
                [
                    round(ring / 2 * math.cos(2 * math.pi * k / n), 3),
                    round(ring / 2 * math.sin(2 * math.pi * k / n), 3),
                    -EPS,
                ],
                cyl(h + 2 * EPS, hole / 2),
            )
            for k in range(n)
        ]
        return r.draft("cylinder", "round plate with holes", [diff(cyl(h, d / 2), *cuts)])
    bore = r.hole()
    if bore and h <= d / 4:
        # A thin disc with a hole is a washer whatever it is called.
        return r.draft("washer", "disc with a hole", [ring_node("washer", d, bore, h)])
    if bore:
        return r.draft("tube", "cylinder with a hole", [ring_node("tube", d, bore, h)])
    return r.draft("cylinder", "cylinder", [cyl(h, d / 2)])


def sphere(r: Reader) -> Draft:
    if re.search(r"\bhollow\b", r.s.text):
        raise r.missing(
            "an open shape: a closed hollow ball traps its inside; ask for a dome"
            " ('a dome 50 mm across') or a bowl"
        )
    d = r.diameter() or r.take_free("diameter")
    if d is None:
        raise r.missing("the sphere's diameter or radius")
    node: Node = {"kind": "sphere", "radius": round(d / 2, 3)}
    hole = r.hole()
    if hole is not None and not re.search(r"\b(dome|hemisphere|half)\b", r.s.text):
        # "a 20 mm ball with a 5 mm hole", a bead: the hole goes straight through.
        if hole >= d:
            raise r.missing(f"a hole smaller than the ball ({mm(d)})")
        r.note("a hole straight through")
        return r.draft("sphere", "bead", [diff(node, cyl(d + 2, hole / 2, -d / 2 - 1))])
    if re.search(r"\b(dome|hemisphere|half)\b", r.s.text):
        cut = tr([-d, -d, -d], box(2 * d, 2 * d, d))
        return r.draft("sphere", "dome", [diff(node, cut)])
    return r.draft("sphere", "sphere", [node])


def flat_star(r: Reader) -> Draft:
    """A flat star (an ornament, a badge): points, width tip to tip, thickness."""
    n = r.s.counts.get("point", 5)
    if not 3 <= n <= 24:
        raise r.missing("between 3 and 24 points")
    w = r.get("diameter", "width", "outer_diameter", say="width") or r.take_free("width")
    if w is None:
        raise r.missing("its width from tip to tip (e.g. 'a star 60 mm wide, 4 mm thick')")
    t = (
        r.get("thickness", "height", say="thickness")
        or r.take_free("thickness")
        or r.default(3.0, "thickness")
    )
    # Tips on a unit circle, inner corners at 45 % (a classic five-point star), then scaled
    # so that the star is exactly `w` wide from side to side (its tips are not all level).
    unit = [
        (
            (1.0 if k % 2 == 0 else 0.45) * math.cos(math.pi / 2 + math.pi * k / n),
            (1.0 if k % 2 == 0 else 0.45) * math.sin(math.pi / 2 + math.pi * k / n),
        )
        for k in range(2 * n)
    ]
    scale = w / (max(x for x, _ in unit) - min(x for x, _ in unit))
    pts = [[round(x * scale, 3), round(y * scale, 3)] for x, y in unit]
    r.note(f"{n} points")
    node: Node = {
        "kind": "linear_extrude",
        "height": t,
        "profiles": [{"kind": "polygon", "points": pts}],
    }
    return r.draft("linear_extrude", "star", [node])


_CAPPED = {
    "tube",
    "tubes",
    "pipe",
    "pipes",
    "jar",
    "bottle",
    "can",
    "rod",
    "dowel",
    "leg",
    "legs",
    "post",
    "pole",
    "tubing",
    "hose",
    "bar",
    "profile",
    "extrusion",
}


# Centre bore of an aluminium profile's cell by series (20: 4.2 mm for an M5 tap, 30: 6.8 mm
# for M8, 40: 8.5 mm for M10), as the makers' drawings give it.
_PROFILE_BORE = {20.0: 4.2, 30.0: 6.8, 40.0: 8.5}


def _extrusion_cap(r: Reader, side: float, long: float) -> Draft:
    """An end cap for an aluminium profile: a plate flush with its section, with a pin that
    pushes into the centre bore of each cell."""
    t = r.get("thickness", say="thickness") or r.default(2.0, "cap thickness")
    bore = _PROFILE_BORE.get(side, round(side * 0.21, 1))
    pin = round(bore - 0.2, 2)  # a push fit
    depth = r.get("depth", "length", say="pin depth") or r.default(6.0, "pin depth")
    r.note(f"a {mm(side)} x {mm(long)} plate, flush with the {side:g}{long:g} profile")
    r.assume(f"{mm(pin)} pins into the profile's {mm(bore)} centre bores")
    cells = max(1, round(long / side))
    pins = [
        tr([round(-long / 2 + side * (i + 0.5), 3), 0.0, 0.0], cyl(depth + EPS, pin / 2, t - EPS))
        for i in range(cells)
    ]
    plate = tr([-long / 2, -side / 2, 0.0], box(long, side, t))
    node: Node = {"kind": "union", "children": [plate, *pins]}
    return r.draft("union", f"{side:g}{long:g} extrusion end cap", [node])


def cap(r: Reader) -> Draft:
    """An end cap or push-on lid: a cup whose inside slides over the thing it covers (0.4 mm
    of play), printed open side up. Round, or square for square tube."""
    over = r.followed_by(
        _CAPPED, say="fits over a", after={"for", "over", "on", "onto", "fit", "fits", "of"}
    )
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    if over is None and pair is None and r.s.extrusion is not None:
        return _extrusion_cap(r, r.s.extrusion, r.s.extrusion_long or r.s.extrusion)
    square = bool(re.search(r"\b(square|rectangular|box[- ]section)\b", r.s.text)) or (
        pair is not None and over is None
    )
    if over is None and not square:
        over = r.get("inner_diameter", "diameter", say="fits over") or r.take_free("fits over")
    if over is None and not (square and (pair or r.free())):
        raise r.missing("what it covers (e.g. 'an end cap for a 25 mm tube')")
    wall = r.get("wall", "thickness", say="wall") or r.default(2.0, "wall")
    depth = r.get("depth", "height", "length", say="depth") or r.default(12.0, "depth")
    floor = r.get("floor", say="top") or r.default(2.0, "top thickness")
    if square:
        if pair is not None:
            x, y = pair[0], pair[1]
        else:
            side = over or r.take_free("side")
            if side is None:
                raise r.missing("the size of the tube it covers")
            x = y = side
        r.note(f"for {mm(x)} x {mm(y)} tube")
        size = [round(x + 0.4 + 2 * wall, 2), round(y + 0.4 + 2 * wall, 2), round(depth + floor, 2)]
        node = spec_node("tray", size=size, wall=wall, floor=floor)
        return r.draft("tray", "square end cap", [node])
    d = round(over + 0.4 + 2 * wall, 2)  # type: ignore[operator]
    node = spec_node(
        "plant_pot",
        height=round(depth + floor, 2),
        top_diameter=d,
        bottom_diameter=d,
        wall=wall,
        floor=floor,
        drain_hole_diameter=0.0,
    )
    return r.draft("plant_pot", "end cap", [node])


def adapter(r: Reader) -> Draft:
    """A hose or pipe adapter (reducer): two sleeves of different bores joined by a taper,
    turned about Z. The two sizes are the bores, which slide over pipes of those sizes."""
    sizes = [
        q
        for q in r.s.quantities
        if q.label in (None, "diameter", "inner_diameter", "outer_diameter", "shaft", "hole")
    ]
    if len(sizes) < 2:
        raise r.missing("the two sizes it joins (e.g. 'a hose adapter from 32 mm to 25 mm')")
    a, b = sizes[0].mm, sizes[1].mm
    if re.search(r"\b(shafts?|bores?|axles?|spindles?|motors?|bearings?)\b", r.s.text):
        # "an 8 mm to 5 mm shaft adapter": a sleeve that makes an 8 mm bore take a 5 mm shaft.
        for q in sizes[:2]:
            r.s.tokens.remove(q)
        od, inner = max(a, b), min(a, b)
        r.note(f"a sleeve {mm(od)} outside for a {mm(inner)} shaft")
        h = (
            r.get("length", "height", say="length")
            or r.take_free("length")
            or r.default(10.0, "length")
        )
        return r.draft("tube", "shaft adapter", [ring_node("tube", od, inner, h)])
    r.s.counts.get("end")  # "on one end ... the other end": the two ends read below
    wall = r.get("wall", say="wall") or r.default(2.0, "wall")
    # Each end either slides over what it joins (the size is its bore, the default) or goes
    # inside it ("fits inside a 2.5 in hose": the size is its outside).
    ends = []
    for q in sizes[:2]:
        before = r.s.text[: q.start][-45:]
        inside = re.search(
            r"\b(?:fits?|goes|slides?|push(?:es)?|plugs?)\s+(?:in|into|inside)\b(?!.*\bover\b)"
            r"|\binside\s+(?:of\s+)?(?:an?\s+|the\s+)?$|\binto\s+(?:an?\s+|the\s+)?$",
            before,
        )
        r.use(q, "end (its outside)" if inside else "end (its bore)")
        ends.append((q.mm, bool(inside)))
    (a, a_in), (b, b_in) = ends
    if a_in:
        a -= 2 * wall
    if b_in:
        b -= 2 * wall
    r.note(
        f"one end {'goes inside' if a_in else 'slides over'} {mm(ends[0][0])}, the other"
        f" {'goes inside' if b_in else 'slides over'} {mm(ends[1][0])}"
    )
    end_len = r.get("length", say="each end") or r.default(
        round(max(15.0, max(a, b) * 0.8), 1), "each end's length"
    )
    taper = round(max(8.0, abs(a - b) * 1.2), 1)
    ra, rb = a / 2, b / 2
    h1, h2 = end_len, end_len + taper
    pts = [
        [ra, 0.0],
        [ra + wall, 0.0],
        [ra + wall, h1],
        [rb + wall, h2],
        [rb + wall, h2 + end_len],
        [rb, h2 + end_len],
        [rb, h2],
        [ra, h1],
    ]
    node: Node = {
        "kind": "revolve",
        "profiles": [{"kind": "polygon", "points": [[round(x, 3), round(y, 3)] for x, y in pts]}],
    }
    return r.draft("revolve", "adapter", [node])


def torus(r: Reader) -> Draft:
    """A ring of round section (a doughnut) lying flat: outside diameter and how thick."""
    d = r.get("outer_diameter", "diameter", "width", say="outside diameter") or r.take_free(
        "outside diameter"
    )
    if d is None:
        raise r.missing("its outside diameter (e.g. 'a torus 60 mm across, 15 mm thick')")
    t = r.get("thickness", "height", say="thickness") or r.take_free("thickness")
    inner = r.get("inner_diameter", "hole", say="hole")
    if t is None and inner is not None:
        t = (d - inner) / 2
    if t is None:
        t = r.default(round(d / 3, 1), "thickness")
    if not 0 < t < d / 2:
        raise r.missing(f"a thickness under half its outside diameter ({mm(d / 2)})")
    node: Node = {
        "kind": "torus",
        "major_radius": round((d - t) / 2, 3),
        "minor_radius": round(t / 2, 3),
    }
    return r.draft("torus", "torus", [node])


def cone(r: Reader) -> Draft:
    d, h = round_size(r)
    top = r.get("inner_diameter", say="top diameter") or 0.0
    node: Node = {
        "kind": "cone",
        "height": h,
        "radius_bottom": round(d / 2, 3),
        "radius_top": round(top / 2, 3),
        "center": False,
    }
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
    # "an M8 hex nut": a standard nut's sizes are known facts (ISO 4032), not guesses.
    standard = iso_nut(r.s.screw) if re.search(r"\bnuts?\b", r.s.text) and n == 6 else None
    nut_hole: float | None = None
    if standard is not None:
        if af is None and ac is None and side is None:
            af = standard[0]
            r.note(f"{r.s.screw_name} nut {mm(af)} across flats (ISO 4032)")
        if h is None:
            h = standard[1]
            r.note(f"{mm(h)} high (ISO 4032)")
        if r.s.first("hole", "inner_diameter", "inner_radius") is None:
            # No threads offline: a tap-drill hole the bolt (or a tap) cuts its thread into.
            nut_hole = pilot_hole(r.s.screw)  # type: ignore[arg-type]
            r.assume(
                f"a plain {mm(nut_hole)} hole (tap drill for {r.s.screw_name}: tap it or let the"
                " bolt cut its thread; no printed threads)"
            )
    no_size = af is None and ac is None and side is None
    if no_size or h is None:
        raise r.missing(
            *(["its size across the flats"] if no_size else []),
            *(["its height"] if h is None else []),
        )
    if ac is not None:
        radius = ac / 2
    elif side is not None:
        radius = side / (2 * math.sin(math.pi / n))
    else:
        radius = af / (2 * math.cos(math.pi / n))  # type: ignore[operator]
    node: Node = {
        "kind": "polygon_prism",
        "sides": n,
        "radius": round(radius, 3),
        "height": h,
        "center": False,
    }
    hole = nut_hole or r.hole()
    part = diff(node, cyl(h + 2 * EPS, hole / 2, -EPS)) if hole else node
    name = "hex nut" if hole and n == 6 else "hexagonal prism" if n == 6 else f"{n}-sided prism"
    return r.draft("polygon_prism", name, [part])
