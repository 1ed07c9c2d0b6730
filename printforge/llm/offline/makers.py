"""Families for what makers ask for most that the first families lacked: pegboard hooks, fan
plates and ducts, hinges, tool holders, sliding-lid boxes, grommets, bag clips, cable combs,
and calibration prints (temperature towers, bridging and overhang tests). Same conventions as
`families.py`: every length used goes through the reader, every default is assumed aloud.
"""

from __future__ import annotations

import math
import re
from typing import Any

from printforge.llm.offline.quantities import Quantity
from printforge.llm.offline.reader import Draft, Node, Reader, mm, spec_node
from printforge.llm.offline.shapes import EPS, box, cyl, diff, tr

__all__ = [
    "bag_clip",
    "bridge_test",
    "cable_comb",
    "fan_part",
    "first_layer_test",
    "grommet",
    "hinge",
    "overhang_test",
    "pegboard_hook",
    "sliding_box",
    "stringing_test",
    "temp_tower",
    "tool_holder",
    "value_range",
]

_FANS = (40, 50, 60, 70, 80, 92, 120, 140)


def _take(r: Reader, q: Quantity, say: str) -> float:
    return r.use(q, say)


def value_range(r: Reader) -> tuple[float, float, float | None, list[Quantity]] | None:
    """A range with an optional step: "220-250 in 5 degree steps", "1mm to 10mm in 1mm steps",
    "20 to 70 degrees every 10 degrees": (first, last, step, the quantities it was written
    with, which the caller marks used)."""
    qs = [q for q in r.s.quantities if not r.used(q)]
    text = r.s.text
    for i, qa in enumerate(qs[:-1]):
        qb = qs[i + 1]
        between = text[qa.start + len(qa.text) : qb.start]
        before = text[max(0, qa.start - 9) : qa.start]
        if re.fullmatch(r"\s*(?:-|–|to|up\s+to|through|thru|until|till)\s*", between) or (
            re.fullmatch(r"\s*and\s*", between) and re.search(r"\b(?:between|from)\s*$", before)
        ):
            # "1/16 to 1/4 inch in 1/16 steps": the lengths as scanned, fractions and units
            # included; a step is a length said after "in", "every", "by" or "steps of".
            after = qs[i + 2] if i + 2 < len(qs) else None
            step_q = None
            if after is not None and re.search(
                r"(?:\bin|\bevery|\bby|\bat|steps? of|increments? of)\s*$",
                text[qb.start + len(qb.text) : after.start],
            ):
                step_q = after
            used = [qa, qb] + ([step_q] if step_q is not None else [])
            return qa.mm, qb.mm, step_q.mm if step_q is not None else None, used
    num = r"(\d+(?:\.\d+)?)"
    unit = r"\s*(?:mm|°c?|c\b|degrees?|deg\b)?"
    m = re.search(rf"{num}{unit}\s*(?:-|–|to|up\s+to|through|thru)\s*{num}{unit}", r.s.text)
    if m is None:
        return None
    a, b = float(m.group(1)), float(m.group(2))
    step_m = re.search(
        rf"(?:in|every|by|at|steps? of|increments? of)\s+{num}{unit}\s*(?:steps?|increments?)?"
        rf"|{num}{unit}\s*(?:steps?|increments?)",
        r.s.text[m.end() :],
    )
    step = None
    if step_m is not None:
        step = float(step_m.group(1) or step_m.group(2))
    values = {a, b} | ({step} if step is not None else set())
    used = [q for q in r.s.quantities if any(abs(q.mm - v) < 1e-6 for v in values)]
    return a, b, step, used


# pegboard --------------------------------------------------------------------------------------


def pegboard_hook(r: Reader) -> Draft:
    other = re.search(
        r"\b(shel(?:f|ves)|bins?|cups?|boxe?s?|trays?|baskets?|pockets?|holders?|racks?|"
        r"mounts?|organi[sz]ers?)\b",
        r.s.text,
    )
    if other is not None and not re.search(r"\bhooks?\b", r.s.text):
        # The family is a hook; a pegboard shelf or bin built as one would be something else.
        r.cannot(
            "pegboard " + other.group(1),
            f"a pegboard {other.group(1)} is not made here, only pegboard hooks (a hook would"
            " be built)",
        )
    skadis = bool(re.search(r"skadis|ikea", r.s.text))
    board = "skadis" if skadis else "pegboard"
    r.note("for IKEA Skadis (5 x 15 mm slots)" if skadis else "for 1/4 in pegboard (1 in grid)")
    r.claim("pegboard")
    # "a 1/4 inch pegboard": the board's hole size names the board, it is no length here.
    r.followed_by({"pegboard", "peg", "pegboards"}, say="pegboard holes")
    big = bool(re.search(r"headphones?|headsets?|coats?|bags?|cables?|cords?|hoses?", r.s.text))
    reach = r.get("reach", "length", "depth", say="reach") or r.take_free("reach")
    reach = reach or r.default(60.0 if big else 40.0, "reach")
    tip = r.get("height", say="tip height") or r.default(20.0 if big else 15.0, "tip height")
    width = r.get("width", say="width") or r.default(20.0 if big else 10.0, "width")
    t = r.get("thickness", say="thickness") or r.default(5.0, "thickness")
    node = spec_node(
        "pegboard_hook", board=board, reach=reach, tip_height=tip, width=width, thickness=t
    )
    return r.draft("pegboard_hook", f"{'Skadis' if skadis else 'pegboard'} hook", [node])


# fans ------------------------------------------------------------------------------------------


def _fan_sizes(r: Reader) -> list[tuple[int, Quantity]]:
    """Fan sizes written in the request ("an 80mm fan", "120 to 80 mm"), in order."""
    out = []
    for q in r.s.quantities:
        size = round(q.mm)
        if size in _FANS and abs(q.mm - size) < 0.6 and not r.used(q):
            out.append((size, q))
    return out


def fan_part(r: Reader) -> Draft:
    fans = _fan_sizes(r)
    duct = bool(re.search(r"shroud|duct|funnel|cowl|tunnel", r.s.text))
    if not fans:
        raise r.missing(
            "the fan size (40, 50, 60, 70, 80, 92, 120 or 140 mm), e.g. 'a grill for a 120 mm fan'"
        )
    if duct:
        if len(fans) < 2:
            raise r.missing("both fan sizes it joins (e.g. 'a 120 mm to 80 mm fan shroud')")
        (a, qa), (b, qb) = fans[:2]
        _take(r, qa, "fan size")
        _take(r, qb, "other fan size")
        if a == b:
            raise r.missing("two different fan sizes (a straight duct is a tube)")
        length = r.get("length", "height", "depth", say="length") or r.take_free("length")
        length = length or r.default(max(40.0, abs(a - b)), "length")
        node = spec_node("fan_duct", fan_in=max(a, b), fan_out=min(a, b), length=length)
        r.note(f"flanges with the standard {a} and {b} mm fan hole patterns")
        return r.draft("fan_duct", f"{a} to {b} mm fan duct", [node])
    grill = bool(re.search(r"gril+e?s?\b|guard|cover|mesh|finger", r.s.text))
    fan, q = fans[0]
    _take(r, q, "fan size")
    second = 0
    if len(fans) > 1:
        second, q2 = fans[1]
        _take(r, q2, "other fan size")
        if second == fan:
            second = 0
    t = r.get("thickness", say="thickness") or r.default(3.0 if not grill else 2.0, "thickness")
    fields: dict[str, Any] = {"fan": max(fan, second), "thickness": t, "grill": grill}
    if second:
        fields["second_fan"] = min(fan, second)
        r.note(
            f"a {max(fan, second)} mm plate with both fans' hole patterns and the"
            f" {min(fan, second)} mm fan's opening"
        )
    elif grill:
        r.note("rings and spokes over the opening")
    name = "fan adapter plate" if second else "fan grill" if grill else "fan plate"
    return r.draft("fan_plate", name, [spec_node("fan_plate", **fields)])


# hinge -----------------------------------------------------------------------------------------


def hinge(r: Reader) -> Draft:
    r.claim("hinge")
    r.s.counts.get("leaf")  # "two leaves": a hinge has two
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    length = r.get("length", say="length")
    leaf = None
    if pair is not None and length is None:
        # "a hinge 30 x 30 mm": along the pin, then both leaves together.
        length, leaf = pair[0], round(pair[1] / 2, 2)
        r.note(f"{mm(pair[0])} along the pin, {mm(pair[1])} across both leaves")
    length = length or r.take_free("length") or r.default(40.0, "length")
    leaf = leaf or r.get("width", say="leaf width") or r.take_free("leaf width")
    leaf = leaf or r.default(round(max(15.0, length / 2), 1), "leaf width")
    t = r.get("thickness", say="leaf thickness") or r.default(2.0, "leaf thickness")
    hole = r.hole() or 0.0
    if not hole and re.search(r"\bholes?\b", r.s.text):
        hole = r.default(3.4, "screw holes (M3)")
    if hole:
        r.claim("screw holes")
    knuckles = max(3, min(15, int(length // 8) | 1))
    r.assume(f"{knuckles} knuckles with 0.4 mm of clearance (prints assembled)")
    node = spec_node(
        "pin_hinge",
        length=length,
        leaf_width=leaf,
        thickness=t,
        knuckles=knuckles,
        hole_diameter=hole,
    )
    return r.draft("pin_hinge", "print-in-place hinge", [node])


# tool holders ----------------------------------------------------------------------------------

# Metric hex keys of a common set, mm across flats.
_HEX_SET = [1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
# The metric hex key sizes sold (ISO 2936), for a range said without its members
# ("1.5 to 10 mm allen keys" is the 9 keys of a set, not 1.5, 2.5, 3.5 ...).
_HEX_SIZES = [0.7, 0.9, 1.3, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 14.0, 17.0, 19.0]


def _range_members(a: float, b: float, n: int | None, hexes: bool) -> list[float]:
    """The sizes a range without a step stands for: the hex key sizes sold within it for hex
    keys, else (with a count) `n` evenly spaced sizes, else whole millimetres."""
    lo, hi = min(a, b), max(a, b)
    if hexes:
        series = [v for v in _HEX_SIZES if lo - 1e-6 <= v <= hi + 1e-6]
        if n is None or len(series) == n:
            return series
    if n is not None and n > 1:
        return [round(lo + i * (hi - lo) / (n - 1), 2) for i in range(n)]
    if hi - lo >= 1 and float(lo).is_integer() and float(hi).is_integer():
        return [float(v) for v in range(int(lo), int(hi) + 1)]
    return []


def tool_holder(r: Reader) -> Draft:
    text = r.s.text
    hexes = bool(re.search(r"\b(?:hex|allen)\b", text))
    drills = bool(re.search(r"\bdrill", text))
    drivers = bool(re.search(r"screw ?drivers?", text))
    brushes = bool(re.search(r"tooth ?brush", text))
    n = next(
        (
            r.s.counts.get(noun)
            for noun in (
                "hole",
                "bit",
                "slot",
                "screwdriver",
                "key",
                "toothbrush",
                "brush",
                "tool",
                "pen",
                "pencil",
                "marker",
            )
            if r.s.counts.get(noun)
        ),
        None,
    )
    rng = value_range(r)
    sizes: list[float] = []
    given_as_holes = bool(re.search(r"\bholes?\b", text))
    if rng is not None and rng[2]:
        a, b, step, used = rng
        for q in used:
            r.use(q, "tool size range")
        count = round((b - a) / step) + 1 if step else 0
        if 1 < count <= 60:
            sizes = [round(a + i * step, 3) for i in range(count)]  # type: ignore[operator]
            r.note(f"{count} sizes from {a:g} to {b:g} mm")
    elif rng is not None:
        a, b, _, used = rng
        members = _range_members(a, b, n, hexes)
        if 1 < len(members) <= 60:
            for q in used:
                r.use(q, "tool size range")
            sizes = members
            r.note(
                f"{len(sizes)} sizes from {a:g} to {b:g} mm: " + ", ".join(f"{v:g}" for v in sizes)
            )
    if not sizes:
        free = [
            q for q in r.s.quantities if not r.used(q) and q.label in (None, "hole", "diameter")
        ]
        for q in free:
            sizes.append(r.use(q, "tool size"))
    if len(sizes) == 1 and n and n > 1:
        sizes = sizes * n
        r.note(f"{n} holes of {mm(sizes[0])}")
    if not sizes:
        if hexes:
            sizes = list(_HEX_SET)
            r.assume("a metric hex key set 1.5-10 mm")
        elif drivers:
            sizes = [10.0] * (n or 6)
            r.assume(f"{len(sizes)} screwdriver holes of 10 mm")
        elif brushes:
            sizes = [16.0] * (n or 4)
            r.assume(f"{len(sizes)} toothbrush holes of 16 mm")
        elif drills:
            sizes = [float(v) for v in range(1, 11)]
            r.assume("drill bits 1-10 mm")
        elif n:
            sizes = [10.0] * n
            r.assume(f"{n} holes of 10 mm")
        else:
            raise r.missing("the tool sizes or how many holes (e.g. 'for bits 1 to 10 mm')")
    if n and len(sizes) != n and len(sizes) > 1:
        r.cannot("hole count", f"{n} holes asked, but {len(sizes)} sizes given")
    # "holes of 8 mm" are the holes themselves; tool sizes get room to slide in.
    clearance = 0.0 if given_as_holes and rng is None else 0.3 if hexes else 0.4
    if clearance:
        r.assume(f"holes {clearance:g} mm larger than each tool")
    wall = bool(re.search(r"wall|rack|mount|screw holes", text))
    if wall:
        r.claim("wall mount", "screw holes")
    deep = max(sizes)
    height = r.get("height", say="height") or r.default(
        round(max(15.0, min(40.0, deep * 2.5 if not brushes else 25.0)), 1), "height"
    )
    rows = 1 if len(sizes) <= 12 else 2
    spacing = r.get("spacing", say="spacing") or (3.0 if deep < 8 else 5.0)
    node = spec_node(
        "tool_holder",
        holes=sizes,
        hex=hexes,
        rows=rows,
        clearance=clearance,
        spacing=spacing,
        height=height,
        depth=round(height - 3.0, 2),
        wall_mount=wall,
    )
    what = (
        "hex key holder"
        if hexes
        else "drill bit holder"
        if drills
        else "screwdriver rack"
        if drivers
        else "toothbrush holder"
        if brushes
        else "tool holder"
    )
    return r.draft("tool_holder", what, [node])


# boxes and small parts -------------------------------------------------------------------------


def sliding_box(r: Reader) -> Draft:
    from printforge.llm.offline.reader import size3

    size = size3(r)
    if size is None:
        raise r.missing("the box's outer size (e.g. '80 x 50 x 30 mm')")
    r.claim("sliding lid", "lid")
    wall = r.get("wall", say="wall") or r.default(2.0, "wall")
    node = spec_node("sliding_box", size=list(size), wall=max(wall, 1.6), floor=wall)
    return r.draft("sliding_box", "box with sliding lid", [node])


def grommet(r: Reader) -> Draft:
    hole = r.get("hole", "diameter", "outer_diameter", say="panel hole") or r.take_free(
        "panel hole"
    )
    if hole is None:
        raise r.missing("the size of the hole it goes in (e.g. 'a grommet for a 25 mm hole')")
    panel = r.of_thing(
        {"panel", "desk", "sheet", "board", "wall", "plate", "table", "top"},
        {"thickness", None},  # type: ignore[arg-type]
        say="panel thickness",
    ) or r.followed_by(
        {"panel", "desk", "sheet", "board", "wall", "plate", "table"}, say="panel thickness"
    )
    # "a 10 mm opening for cables": the opening is the cable hole through it.
    bore = r.get("hole", "inner_diameter", "opening", say="cable hole") or r.take_free("cable hole")
    if panel is None:
        panel = r.get("thickness", say="panel thickness") or r.default(
            25.0 if "desk" in r.s.text else 3.0, "panel thickness"
        )
    if bore is None:
        bore = r.default(round(hole * 0.6, 1), "cable hole")
    r.claim("flange")
    node = spec_node("grommet", panel_hole=hole, panel_thickness=panel, bore=bore)
    return r.draft("grommet", "grommet", [node])


def bag_clip(r: Reader) -> Draft:
    length = r.get("length", say="length") or r.take_free("length") or r.default(100.0, "length")
    width = r.get("width", say="width") or r.default(12.0, "width")
    r.assume("a spring loop that closes the jaws")
    node = spec_node("bag_clip", length=length, width=width)
    return r.draft("bag_clip", "bag clip", [node])


def cable_comb(r: Reader) -> Draft:
    d = (
        r.get("diameter", "hole", say="cable diameter")
        or r.followed_by({"cable", "cables", "wire", "wires", "each"}, say="cable diameter")
        or r.take_free("cable diameter")
    )
    if d is None:
        raise r.missing("the cable diameter (e.g. 'a cable comb for 24 cables of 3 mm')")
    n = r.s.counts.get("wire") or r.s.counts.get("cable") or r.s.counts.get("hole")
    r.s.counts.get("row")  # "4 rows of 6" is read as the grid below
    grid = r.s.grids.get("row") or r.s.grids.get("hole")
    if grid is not None:
        cols, rows = grid
    elif n:
        rows = 1 if n <= 12 else 2 if n <= 24 else math.ceil(n / 12)
        cols = math.ceil(n / rows)
    else:
        cols, rows = 8, 1
        r.assume("8 cables in a row")
    if n and cols * rows < n:
        r.cannot("cable count", f"{n} cables do not fit {rows} rows of {cols}")
    r.note(f"{rows} row{'s' if rows > 1 else ''} of {cols}")
    node = spec_node("cable_comb", cable_diameter=d, columns=cols, rows=rows)
    return r.draft("cable_comb", "cable comb", [node])


# calibration prints (generic nodes: each label is a text the spec carries) ---------------------

_TOWER_RANGES = {
    "pla": (190, 230),
    "petg": (220, 250),
    "abs": (230, 260),
    "asa": (240, 270),
    "tpu": (210, 240),
    "nylon": (240, 270),
}


def _label_cut(text: str, at: tuple[float, float, float], size: float) -> Node:
    """Text engraved 0.6 mm into a front face (the -Y side) whose middle is at `at`."""
    profile = {"kind": "text", "text": text, "size": size, "halign": "center", "valign": "center"}
    extrude = {"kind": "linear_extrude", "height": 1.2, "profiles": [profile]}
    # Turned so the letters face -Y, then pushed 0.6 mm into the face.
    return tr(
        [at[0], at[1] + 0.6, at[2]], {"kind": "rotate", "angles": [90, 0, 0], "children": [extrude]}
    )


def temp_tower(r: Reader) -> Draft:
    rng = value_range(r)
    material = next((m for m in _TOWER_RANGES if re.search(rf"\b{m}\b", r.s.text)), None)
    if rng is not None:
        a, b, step, used = rng
        for q in used:
            r.use(q, "temperatures")
        r.claim("angle")  # "5 degree steps" are temperatures here
    elif material is not None:
        a, b = _TOWER_RANGES[material]
        step = None
        r.assume(f"{a}-{b} °C for {material.upper()}")
    else:
        a, b, step = 190.0, 230.0, None
        r.assume("190-230 °C (PLA)")
    if step is None:
        step = r.default(5.0, "step (°C)")
    lo, hi = min(a, b), max(a, b)
    count = round((hi - lo) / step) + 1
    if not 2 <= count <= 16:
        raise r.missing(f"between 2 and 16 steps (got {count} from {lo:g} to {hi:g} by {step:g})")
    temps = [hi - i * step for i in range(count)]  # hottest at the bottom, as it prints first
    block_h, width, depth = 10.0, 30.0, 10.0
    parts: list[Node] = [box(width + 10, depth + 10, 1.0)]  # a base for adhesion
    for i, temp in enumerate(temps):
        z = 1.0 + i * block_h
        level = box(width, depth, block_h - 0.8)  # a 0.8 mm groove between levels
        # A 45 degree overhang at the right end and a 10 mm bridge gap at the left show
        # stringing, overhang and bridging at each temperature.
        cut = tr([3, -EPS, 3], box(6, depth + 2 * EPS, block_h - 5.8))
        overhang = {
            "kind": "linear_extrude",
            "height": round(depth + 2 * EPS, 3),
            "profiles": [
                {"kind": "polygon", "points": [[width - 6, 0], [width + EPS, 0], [width + EPS, 6]]}
            ],
        }
        slope = tr(
            [0, depth + EPS, 0], {"kind": "rotate", "angles": [90, 0, 0], "children": [overhang]}
        )
        label = _label_cut(f"{temp:g}", (width / 2 + 2, 0, (block_h - 0.8) / 2 + 1.0), 4.0)
        block = diff(level, cut, slope, label)
        parts.append(tr([5, 5, z], block))
    base_and_blocks = {"kind": "union", "children": parts}
    r.note(f"{count} levels, {hi:g} at the bottom to {lo:g} at the top, each labelled")
    draft = r.draft("union", "temperature tower", [base_and_blocks])
    draft.orient = False  # it stands as drawn, hottest level first
    return draft


def bridge_test(r: Reader) -> Draft:
    spans = [r.use(q, "bridge span") for q in r.s.quantities if not r.used(q) and q.mm >= 2]
    n = r.s.counts.get("bridge")
    if n and len(spans) == 1 and 2 <= n <= 12:
        # "5 bridges up to 60 mm": evenly spread up to the longest.
        longest = spans[0]
        spans = [round(longest * (i + 1) / n, 1) for i in range(n)]
    if not spans:
        spans = [r.default(v, f"{v:g} mm span") for v in (10.0, 20.0, 30.0, 40.0, 50.0)]
    if max(spans) > 150:
        raise r.missing("bridges of at most 150 mm")
    pillar, depth, height, deck = 5.0, 8.0, 6.0, 1.0
    parts: list[Node] = []
    y = 0.0
    for span in sorted(spans):
        length = span + 2 * pillar
        parts.append(tr([0, y, 0], box(length, depth, 1.0)))
        parts.append(tr([0, y, 0], box(pillar, depth, height + deck)))
        parts.append(tr([pillar + span, y, 0], box(pillar, depth, height + deck)))
        parts.append(tr([pillar - EPS, y, height], box(span + 2 * EPS, depth, deck)))
        y += depth + 3.0
    # A spine joins the rows so the test is one piece.
    parts.append(box(pillar, y - 3.0, 1.0))
    r.note(f"bridges of {', '.join(f'{s:g}' for s in sorted(spans))} mm, {height:g} mm up")
    draft = r.draft("union", "bridging test", [{"kind": "union", "children": parts}])
    draft.orient = False  # the bridges print as drawn, spanning in the air
    return draft


def overhang_test(r: Reader) -> Draft:
    rng = value_range(r)
    angles: list[float] = []
    if rng is not None:
        a, b, step, used = rng
        for q in used:
            r.use(q, "angles")
        step = step or 10.0
        count = round((max(a, b) - min(a, b)) / step) + 1
        angles = [min(a, b) + i * step for i in range(count)]
    if not angles and r.s.angles:
        angles = sorted({v for v, _ in r.s.angles})
    if not angles:
        angles = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
        r.assume("overhangs of 20-70 degrees")
    r.claim("angle")
    if max(angles) >= 90 or min(angles) <= 0:
        raise r.missing("angles between 0 and 90 degrees")
    depth, height = 8.0, 12.0
    parts: list[Node] = []
    x = 2.0
    for angle in angles:
        # A wall rising from the base, leaning out at `angle` from the vertical, labelled on
        # the base in front of it.
        run = height * math.tan(math.radians(angle))
        pts: list[list[float]] = [[0, 0], [3, 0], [3 + run, height], [run, height]]
        fin = {
            "kind": "linear_extrude",
            "height": depth,
            "profiles": [
                {"kind": "polygon", "points": [[round(a, 3), round(b, 3)] for a, b in pts]}
            ],
        }
        parts.append(
            tr(
                [x, depth + 6.0, 1.0 - EPS],
                {"kind": "rotate", "angles": [90, 0, 0], "children": [fin]},
            )
        )
        text = {
            "kind": "text",
            "text": f"{angle:g}",
            "size": 4.0,
            "halign": "center",
            "valign": "center",
        }
        parts.append(
            tr(
                [x + 2.5, 3.0, 1.0 - EPS],
                {"kind": "linear_extrude", "height": 0.6 + EPS, "profiles": [text]},
            )
        )
        x += 3.0 + run + 3.0
    parts.insert(0, box(x + 2.0, depth + 8.0, 1.0))
    r.note(f"overhangs at {', '.join(f'{a:g}' for a in angles)} degrees, each labelled")
    draft = r.draft("union", "overhang test", [{"kind": "union", "children": parts}])
    draft.orient = False  # the overhangs are the test: never turned away
    return draft


def stringing_test(r: Reader) -> Draft:
    """Two thin towers on a base: the travel between them shows stringing (retraction)."""
    h = r.get("height", say="height") or r.take_free("height") or r.default(30.0, "height")
    gap = r.get("spacing", "length", say="gap") or r.default(30.0, "gap between the towers")
    d = 5.0
    base = tr([-(gap + 2 * d) / 2 - 3, -d / 2 - 3, 0], box(gap + 2 * d + 6, d + 6, 1.0))
    towers = [tr([sx * (gap / 2 + d / 2), 0, 1.0 - EPS], cyl(h, d / 2)) for sx in (-1, 1)]
    r.note(f"two {mm(d)} towers {mm(gap)} apart, {mm(h)} tall")
    draft = r.draft("union", "stringing test", [{"kind": "union", "children": [base, *towers]}])
    draft.orient = False
    return draft


def first_layer_test(r: Reader) -> Draft:
    """Squares one or two layers thick over the bed: how the first layer goes down."""
    side = r.get("side", "width", "length", say="square") or r.take_free("square")
    side = side or r.default(30.0, "square side")
    t = r.get("thickness", "height", say="thickness") or r.default(0.3, "thickness")
    spread = r.default(round(side * 2.5, 1), "spread (centre and four corners)")
    squares = [
        tr([sx * spread / 2 - side / 2, sy * spread / 2 - side / 2, 0], box(side, side, t))
        for sx, sy in ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
    ]
    r.note(f"five {mm(side)} squares, {mm(t)} thick, one in the middle and one near each corner")
    draft = r.draft("union", "first layer test", [{"kind": "union", "children": squares}])
    draft.orient = False
    return draft
