"""One function per part family: what a scanned request says -> spec parts, or what is missing.

Each function records what it understood and every default it assumed, so the description of
the result (and a refusal) tells the person exactly what was read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from printforge.llm.offline.blocks import block, capsule, cube, square_tube
from printforge.llm.offline.boards import find_board
from printforge.llm.offline.cutouts import side_cutout
from printforge.llm.offline.extras import (
    battery_cover,
    brick,
    dice,
    headphone_stand,
    hole_cover,
    pawn,
    pulley,
    soap_dish,
    switch_plate,
)
from printforge.llm.offline.household import coaster, drawer_handle, funnel, knob, wedge
from printforge.llm.offline.makers import (
    bag_clip,
    bridge_test,
    cable_comb,
    fan_part,
    first_layer_test,
    grommet,
    hinge,
    overhang_test,
    pegboard_hook,
    sliding_box,
    stringing_test,
    temp_tower,
    tool_holder,
)
from printforge.llm.offline.mounts import bracket, clamp, clip, hook, stand
from printforge.llm.offline.ports import read_ports
from printforge.llm.offline.quantities import Quantity
from printforge.llm.offline.reader import (
    Draft,
    Missing,
    Reader,
    clearance_hole,
    corner_of,
    hole_recess,
    mm,
    pilot_hole,
    ring_node,
    ring_triple,
    size3,
    spec_node,
    tube_dims,
    wall_of,
)
from printforge.llm.offline.round_parts import (
    adapter,
    cap,
    cone,
    cookie_cutter,
    cylinder,
    flat_star,
    pot,
    prism,
    sphere,
    torus,
    vase,
)
from printforge.llm.offline.shapes import EPS, cyl, diff, tr
from printforge.llm.offline.signs import nameplate

__all__ = ["FAMILIES", "Draft", "Missing", "clearance_hole"]


# families ---------------------------------------------------------------------------------------


def box_with_lid(r: Reader) -> Draft:
    if not r.s.triples and re.search(r"\b(round|circular|cylindrical|cylinder)\b", r.s.text):
        return _round_box_with_lid(r)
    size = size3(r)
    if size is None:
        raise r.missing("the box's outer size (e.g. '80 x 60 x 40 mm')")
    wall = wall_of(r)
    x, y, z = size
    if re.search(r"\b(inside|internal|inner)\b", r.s.text):
        x, y, z = x + 2 * wall, y + 2 * wall, z + wall
        r.note("the size is the inside; walls added outside")
    corner = corner_of(r, x, y)
    if r.s.counts.get("compartment") or r.s.counts.get("divider") or r.s.grids:
        r.assume("no compartments (a box with lid has none; ask for a tray)")
    floor = r.get("floor", say="floor") or wall
    node = spec_node(
        "box_with_lid",
        size=[x, y, z],
        wall=wall,
        floor=floor,
        lid_thickness=wall,
        lip_height=min(4.0, round((z - wall) / 2, 2)),
        corner_radius=corner,
    )
    return r.draft("box_with_lid", "box with lid", [node])


def _round_box_with_lid(r: Reader) -> Draft:
    """A round box and its lid: a box with lid whose corners are rounded by half its width."""
    d = r.diameter()
    h = r.get("height", "depth", say="height")
    if d is None and r.free():
        d = r.take_free("diameter")
    if h is None and r.free():
        h = r.take_free("height")
    if d is None or h is None:
        raise r.missing(
            *(["the box's diameter"] if d is None else []), *(["its height"] if h is None else [])
        )
    wall = wall_of(r)
    node = spec_node(
        "box_with_lid",
        size=[d, d, h],
        wall=wall,
        floor=wall,
        lid_thickness=wall,
        lip_height=min(4.0, round((h - wall) / 2, 2)),
        corner_radius=d / 2,
    )
    r.note("round")
    return r.draft("box_with_lid", "round box with lid", [node])


def tray(r: Reader) -> Draft:
    round_with_diameter = bool(re.search(r"\b(round|circular|cylindrical)\b", r.s.text)) and (
        r.s.first("diameter", "outer_diameter", "radius") is not None
    )
    polygonal = bool(re.search(r"\b(pentagon|hexagon|heptagon|octagon)", r.s.text)) or (
        5 <= r.s.counts.get("side", 0) <= 64
    )  # "an 8 sided box"
    if not r.s.triples and (round_with_diameter or polygonal):
        # "a round tray 150 mm diameter, 20 mm high", "a hexagonal box 50 mm": an open round
        # or polygonal vessel is a pot's shape, without a drain hole.
        r.understood[0] = "an open round or polygonal box"
        return pot(r, open_box=True)
    size = size3(r)
    if size is None:
        raise r.missing("the box's outer size (e.g. '120 x 80 x 30 mm')")
    wall = wall_of(r)
    n = r.s.counts.get("compartment") or (
        r.s.counts["divider"] + 1 if "divider" in r.s.counts else 1
    )
    grid = next((g for k, g in r.s.grids.items() if k != "hole"), None)
    rows = re.search(r"(\d+)\s+rows?\s+of\s+(\d+)", r.s.text)
    in_rows = re.search(
        r"(\d+)\s+(?:compartments?|sections?|cells?|pockets?)\s+in\s+(\d+)\s+rows?", r.s.text
    )
    r.s.counts.get("row")
    if in_rows and int(in_rows.group(1)) % int(in_rows.group(2)) == 0:
        # "6 compartments in 2 rows": 3 across, 2 deep.
        grid = (int(in_rows.group(1)) // int(in_rows.group(2)), int(in_rows.group(2)))
    named = re.search(r"\b(\d+)\s*x\s*(\d+)\s+grid\b", r.s.text)
    if grid is None and named:
        grid = (int(named.group(1)), int(named.group(2)))  # "a 4x4 grid tray"
    if rows:
        grid = (int(rows.group(2)), int(rows.group(1)))
    nx, ny = grid if grid else (n, 1)
    if nx * ny > 1:
        r.note(f"{nx} x {ny} compartments" if ny > 1 else f"{nx} compartments")
    corner = corner_of(r, size[0], size[1])
    floor = r.get("floor", say="floor") or wall
    node = spec_node(
        "tray",
        size=list(size),
        wall=wall,
        floor=floor,
        corner_radius=corner,
        compartments_x=nx,
        compartments_y=ny,
    )
    cutter = side_cutout(r, size, wall, floor)
    part = diff(node, cutter) if cutter is not None else node
    return r.draft("tray", "tray" if nx * ny == 1 else "organiser tray", [part])


# Openings only an enclosure has (a box with lid has no ports).
_OPENING_WORDS = (
    r"\b(?:usb|hdmi|ports?|jacks?|sockets?|ethernet|rj45|cable|switch|openings?|"
    r"cut-?outs?|vents?|sd)\b"
)


def enclosure(r: Reader) -> Draft:
    board = find_board(r.s.text)
    inset, hole = 3.5, 2.5
    holes: list[list[float]] | None = None
    if board is not None:
        bx, by = board.size
        headroom_default = board.headroom
        inset, hole = board.hole_inset, board.hole_diameter
        r.note(f"board {board.name} ({mm(bx)} x {mm(by)})")
        for i, t in enumerate(list.__iter__(r.s.triples)):
            # "(board is 85 x 56 mm)": the named board's own size, said again, is used (it
            # confirms the table); a different size is left unread and asked about.
            if (
                len(t) == 2
                and sorted(abs(a - b) for a, b in zip(sorted(t), sorted((bx, by)), strict=True))[-1]
                <= 1.0
            ):
                r.s.triples[i]
                r.note(f"the {mm(t[0])} x {mm(t[1])} given is the {board.name}'s size")
        if board.holes is not None:
            # The board's own drawing: a Pi 4's right-hand pair is 23.5 mm in, not 3.5.
            holes = [[x, y] for x, y in board.holes]
            r.note(f"standoffs under its {len(holes)} mounting holes")
        else:
            r.assume(f"standoffs {mm(inset)} in from each corner ({board.caveat})")
    elif (
        r.s.triples
        and not re.search(
            r"\b(board|pcb|circuit|perfboard|protoboard|"
            r"stripboard)\b",
            r.s.text,
        )
        and (
            re.search(r"\blid\b", r.s.text)
            or (len(r.s.triples[0]) == 3 and not re.search(_OPENING_WORDS, r.s.text))
        )
    ):
        # "a project box 120 x 80 x 50 (with lid)" gives the box, not a board inside it: with
        # no board named, three sizes are the outside of a box that closes with a lid.
        r.understood[0] = "a box with lid"
        return box_with_lid(r)
    elif r.s.triples:
        t = r.s.triples[0]
        bx, by = t[0], t[1]
        headroom_default = t[2] if len(t) == 3 else 15.0
        r.note(f"board {mm(bx)} x {mm(by)}")
    else:
        raise r.missing(
            "the board's size or name (e.g. 'for a Raspberry Pi' or 'for a 60 x 40 mm board')"
        )
    if board is None and holes is None and len(r.s.triples) > 1 and len(r.s.triples[1]) == 2:
        # "a 100 x 80 board with mounting holes 90 x 70 apart": a rectangle centred on it.
        hx, hy = r.s.triples[1]
        if hx < bx and hy < by:
            holes = [
                [round((bx + i * hx) / 2, 3), round((by + j * hy) / 2, 3)]
                for j in (-1, 1)
                for i in (-1, 1)
            ]
            r.note(f"mounting holes {mm(hx)} x {mm(hy)} apart")
    if r.s.screw is not None:
        # "M3 standoffs": posts the screw cuts its own thread into.
        hole = pilot_hole(r.s.screw)
        r.note(f"standoffs for {r.s.screw_name} ({mm(hole)} pilot holes)")
    posts = r.of_thing(
        {"standoff", "standoffs", "posts", "post", "pillars"},
        {"height", "length"},
        say="standoff height",
    )
    wall = wall_of(r)
    gap = r.get("clearance", say="gap around the board") or r.default(1.0, "gap around the board")
    headroom = r.get("height", say="headroom") or r.default(
        headroom_default, "headroom above the board"
    )
    ports = read_ports(r, headroom)
    fields: dict[str, Any] = {"holes": holes} if holes is not None else {"hole_inset": inset}
    if posts is not None:
        fields["standoff_height"] = posts
    node = spec_node(
        "enclosure",
        board_size=[bx, by],
        headroom=headroom,
        wall=wall,
        gap=gap,
        hole_diameter=hole,
        ports=ports,
        **fields,
    )
    return r.draft("enclosure", f"{board.name} case" if board else "enclosure", [node])


def tube(r: Reader) -> Draft:
    if re.search(r"\b(square|rectangular|box[- ]section)\b", r.s.text):
        return square_tube(r)
    over = (
        None
        if r.s.first("inner_diameter", "hole")
        else r.followed_by(
            {"tube", "tubes", "pipe", "pipes", "rod", "shaft", "dowel", "bar", "hose", "tubing"},
            say="fits over a",
            after={"for", "over", "onto", "fit", "fits", "on"},
        )
    )
    if over is not None:
        # "a sleeve for a 22 mm tube": it slides over the tube, with 0.4 mm of play.
        inner = round(over + 0.4, 2)
        wall = r.get("wall", "thickness", say="wall") or r.default(2.0, "wall")
        od = r.get("outer_diameter", say="outer diameter") or round(inner + 2 * wall, 2)
        h = r.get("height", "length", say="length") or r.take_free("length")
        if h is None:
            raise r.missing("the tube's length or height")
        return r.draft("tube", "sleeve", [ring_node("tube", od, inner, h)])
    if (three := ring_triple(r)) is not None:
        return r.draft("tube", "tube", [ring_node("tube", *three)])
    if re.search(r"\b(?:finger\s+)?rings?\b", r.s.text) and r.s.first("width", "height"):
        # A ring worn on a finger: its inside, its band (the wall) and how wide the band is.
        h = r.get("width", "height", say="band width")
        if not r.s.all("wall", "outer_diameter"):
            for q in r.s.quantities:
                if q.label == "thickness" and not r.used(q):
                    q.label = "wall"  # a ring's thickness is its band's
        od, inner = tube_dims(r, "ring")
        return r.draft("tube", "ring", [ring_node("tube", od, inner, h)])  # type: ignore[arg-type]
    try:
        od, inner = tube_dims(r, "tube")
    except Missing as missing:
        _also_missing_length(r, missing, "the tube's length or height")
        raise
    h = r.get("height", "length", say="length") or r.take_free("length")
    if h is None:
        raise r.missing("the tube's length or height")
    return r.draft("tube", "tube", [ring_node("tube", od, inner, h)])


def _also_missing_length(r: Reader, missing: Missing, what: str) -> None:
    # Say everything that is missing at once, so one more message fixes the request.
    if r.s.first("height", "length", "thickness") is None and not r.free():
        missing.missing.append(what)


def washer(r: Reader) -> Draft:
    if (three := ring_triple(r)) is not None:
        return r.draft("washer", "washer", [ring_node("washer", *three)])
    od, inner = tube_dims(r, "washer")
    t = (
        r.get("thickness", "height", say="thickness")
        or r.take_free("thickness")
        or r.default(1.5, "thickness")
    )
    return r.draft("washer", "washer", [ring_node("washer", od, inner, t)])


def spacer(r: Reader) -> Draft:
    af = r.get("across_flats", say="across flats")
    hexagonal = af is not None or bool(re.search(r"\bhex", r.s.text))
    h = None
    if af is not None:
        od = af * 2 / math.sqrt(3)
        inner = r.hole()
        if inner is None:
            raise r.missing("the hole size (e.g. 'for M3' or 'a 3.4 mm hole')")
    else:
        h = r.get("height", "length", "thickness", say="length")
        if (
            h is None
            and r.s.screw is not None
            and len(r.free()) == 1
            and not r.s.all("diameter", "outer_diameter", "radius", "width")
        ):
            # "a 12 mm standoff for M2.5": with the screw named, the one length is the length.
            h = r.take_free("length")
        try:
            od, inner = tube_dims(r, "spacer")
        except Missing as missing:
            if h is None:
                _also_missing_length(r, missing, "the spacer's length")
            raise
    h = h or r.get("height", "length", "thickness", say="length") or r.take_free("length")
    if h is None and r.s.bearing is not None:
        # "a spacer for a 608 bearing": a bearing's own width is the one length its standard
        # gives; chosen and said, rather than refused.
        name, _, _, width = r.s.bearing
        h = r.default(float(width), f"length (the {name} bearing's width)")
    if h is None:
        raise r.missing("the spacer's length")
    node = spec_node(
        "spacer", outer_diameter=od, hole_diameter=inner, height=h, hexagonal=hexagonal
    )
    return r.draft("spacer", "hex spacer" if hexagonal else "spacer", [node])


def standoffs(r: Reader) -> Draft:
    spacing = None
    board = find_board(r.s.text)
    hole_default = 2.5
    if board is not None:
        if board.hole_spacing is None:
            raise r.missing(
                f"the hole spacing: the {board.name}'s mounting holes are not a"
                " rectangle; give it as e.g. '58 x 49 mm apart'"
            )
        spacing = board.hole_spacing
        hole_default = board.hole_diameter
        r.note(f"the {board.name} hole pattern {mm(spacing[0])} x {mm(spacing[1])}")
    if spacing is None and r.s.triples:
        spacing = (r.s.triples[0][0], r.s.triples[0][1])
        r.note(f"holes {mm(spacing[0])} x {mm(spacing[1])} apart")
    if spacing is None and board is None and (r.s.screw is not None or r.s.all("hole")):
        # "a pair of 15 mm standoffs for M3 screws": loose standoffs, no pattern to stand in.
        return spacer(r)
    if spacing is None:
        raise r.missing("the hole pattern (e.g. 'for a Raspberry Pi' or '58 x 49 mm apart')")
    h = r.get("height", "length", say="height") or r.take_free("height") or r.default(6.0, "height")
    hole = r.hole() or r.default(hole_default, "screw hole")
    od = r.get("outer_diameter", "diameter", say="outer diameter") or r.default(
        round(max(min(6.0, min(spacing) - 1), hole + 3.0), 1), "outer diameter"
    )
    loose = bool(re.search(r"\b(loose|separate|without (?:a )?(?:base|frame))\b", r.s.text))
    node = spec_node(
        "standoffs",
        spacing=list(spacing),
        height=h,
        outer_diameter=od,
        hole_diameter=hole,
        base_thickness=0.0 if loose else 2.0,
    )
    return r.draft("standoffs", "standoffs", [node])


# NEMA stepper motor faces: side, screw hole spacing, screw, and the centring boss's diameter
# (NEMA ICS 16 frame sizes as motor makers draw them), mm.
_NEMA = {
    8: (20.3, 16.0, 2.0, 15.0),
    11: (28.2, 23.0, 2.5, 22.0),
    14: (35.2, 26.0, 3.0, 22.0),
    17: (42.3, 31.0, 3.0, 22.0),
    23: (56.4, 47.14, 5.0, 38.1),
    34: (86.0, 69.6, 6.0, 73.0),
}


def _motor_plate(r: Reader, frame: int) -> Draft:
    """A plate a NEMA stepper bolts to: its four screw holes and a hole for the boss."""
    face, pitch, screw, boss = _NEMA[frame]
    r.note(
        f"for a NEMA {frame} motor ({mm(pitch)} hole spacing, M{screw:g} screws, {mm(boss)} boss)"
    )
    t3 = r.s.triples[0] if r.s.triples else None
    x, y = (t3[0], t3[1]) if t3 else (face, face)
    t = (
        (t3[2] if t3 and len(t3) == 3 else None)
        or r.get("thickness", say="thickness")
        or (r.default(4.0, "thickness"))
    )
    d = clearance_hole(screw)
    holes = [[i * pitch / 2, j * pitch / 2] for i in (-1, 1) for j in (-1, 1)]
    node = spec_node(
        "plate",
        size=[x, y],
        thickness=t,
        hole_diameter=d,
        holes=holes,
        corner_radius=corner_of(r, x, y),
    )
    boss_hole = tr([0, 0, -EPS], cyl(t + 2 * EPS, (boss + 1.0) / 2))
    return r.draft("plate", f"NEMA {frame} motor plate", [diff(node, boss_hole)])


def plate(r: Reader) -> Draft:
    if r.s.nema is not None:
        return _motor_plate(r, r.s.nema)
    t3 = r.s.triples[0] if r.s.triples else None
    if t3 is None and re.search(r"\b(round|circular|disc|disk)\b", r.s.text):
        return cylinder(r)  # a round plate is a disc
    if t3 is None:
        length, width = r.get("length", say="length"), r.get("width", say="width")
        if length is None and width is None and re.search(r"\bsquare\b", r.s.text):
            side = r.get("side", say="side") or r.take_free("side")
            length = width = side
        if length is None or width is None:
            raise r.missing("the plate's size (e.g. '100 x 60 x 3 mm')")
        x, y, t = length, width, None
    else:
        x, y = t3[0], t3[1]
        t = t3[2] if len(t3) == 3 else None
        r.note(f"plate {mm(x)} x {mm(y)}")
    if t is None:
        t = r.get("thickness", "height", say="thickness")
    else:
        r.note(f"thickness {mm(t)}")
    n = r.s.counts.get("hole") or r.s.counts.get("screw")
    d = r.hole()
    if t is None and d is not None and len(r.free()) == 1:
        # "60 x 40 with four 5 mm holes, 4 mm": the holes have their size, and the one bare
        # size left is the one a plate still lacks, its thickness (not asked about).
        t = r.take_free("thickness")
    if t is None:
        t = r.default(3.0, "thickness")
    corner = corner_of(r, x, y)
    if re.search(
        r"\b(?:each|every|all(?: four| 4| the)?|the four|the 4|four|4)\s+corners?\b", r.s.text
    ):
        n = n or 4  # "a 10 mm hole in each corner" is four holes
        if d is None:
            d = r.take_free("hole diameter")
    if d is None and re.search(r"\b(a|one|single|centre|center)\s+(?:\w+\s+)?hole\b", r.s.text):
        d = r.take_free("hole diameter")
        n = n or 1
    if d is None and n:
        d = r.default(3.4, "hole diameter")
    if d is not None and not n:
        n = 4 if re.search(r"\bholes\b|corners", r.s.text) else 1
    fields: dict[str, Any] = {"size": [x, y], "thickness": t, "corner_radius": corner}
    if n and d is not None:
        r.note(f"{n} hole{'s' if n > 1 else ''} of {mm(d)}")
        fields["hole_diameter"] = d
        fields.update(_hole_layout(r, x, y, n, d))
        r.thickness_hint = t
        style, head, depth = hole_recess(r, d)
        if style != "plain":
            fields.update(hole_style=style, head_diameter=head, head_depth=depth)
        if re.search(r"\bslott?ed\b|\bslots?\b", r.s.text):
            fields["slot_length"] = r.default(round(max(6.0, 2 * d), 1), "slot length")
    return r.draft("plate", "plate with holes" if n else "plate", [spec_node("plate", **fields)])


def _margin(r: Reader, d: float) -> float:
    """How far the hole centres sit in from the edges: as asked, else 1.5 diameters (6 mm
    at least)."""
    return r.get("inset", say="holes in from the edges") or r.default(
        round(max(1.5 * d, 6.0), 1), "holes inset from the edges"
    )


def _hole_layout(r: Reader, x: float, y: float, n: int, d: float) -> dict[str, Any]:
    """Plate hole fields: a 2 x 2 grid at the corners, a row, a circle, or one in the middle."""
    text = r.s.text
    spacing = r.get("spacing", say="hole spacing")
    grid = r.s.grids.get("hole")
    if grid is not None:
        margin = _margin(r, d)
        r.note(f"a {grid[0]} x {grid[1]} grid of holes")
        return {"hole_columns": grid[0], "hole_rows": grid[1], "hole_margin": margin}
    if n == 1:
        return {"holes": [[0.0, 0.0]]}
    if n == 4 and "row" not in text and "line" not in text and "circle" not in text:
        if spacing is not None:
            margin = max(1.5 * d, 6.0)
            more = [q.mm for q in r.s.all("spacing")[1:]]
            sx = spacing
            sy = more[0] if more else min(spacing, y - 2 * margin)
            if not more and sy != spacing:
                r.default(round(sy, 2), "hole spacing across")
            return {"holes": [[i * sx / 2, j * sy / 2] for i in (-1, 1) for j in (-1, 1)]}
        margin = _margin(r, d)
        return {"hole_columns": 2, "hole_rows": 2, "hole_margin": margin}
    if "circle" in text or "round" in text:
        radius = (r.get("diameter", say="bolt circle") or min(x, y) * 0.6) / 2
        return {
            "holes": [
                [
                    round(radius * math.cos(2 * math.pi * k / n), 3),
                    round(radius * math.sin(2 * math.pi * k / n), 3),
                ]
                for k in range(n)
            ]
        }
    if n % 2 == 0 and n >= 6 and "row" not in text and "line" not in text:
        margin = _margin(r, d)
        r.note(f"{n // 2} x 2 holes")
        return {"hole_columns": n // 2, "hole_rows": 2, "hole_margin": margin}
    margin = r.get("inset", say="holes in from the ends") or max(1.5 * d, 6.0)
    pitch = spacing if spacing is not None else (x - 2 * margin) / (n - 1)
    r.note(f"{n} holes in a row")
    return {"holes": [[round(-pitch * (n - 1) / 2 + k * pitch, 3), 0.0] for k in range(n)]}


def gear(r: Reader) -> Draft:
    other = re.search(
        r"\b(bevel|worm|rack|herringbone|planetary|mitre|miter|helical|internal|"
        r"ring)\s+gears?\b|\bgear\s+(rack)\b",
        r.s.text,
    )
    if other is not None:
        # Only straight-cut spur gears are a family; a spur gear in their place would not mesh.
        kind = other.group(1) or other.group(2)
        raise r.missing(
            f"a spur gear: {kind} gears are not something the offline parser"
            " makes (try an LLM provider)"
        )
    n = r.s.counts.get("tooth")
    module = r.get("module", say="module")
    metres = next((q for q in r.s.quantities if q.unit == "m" and q.mm <= 10_000), None)
    if module is None and metres is not None:
        # "a 36T 0.5M gear": on a gear, M after a number is the module, not metres.
        module = metres.mm / 1000
        r.s.tokens.remove(metres)
        r.note(f"module {module:g}")
    if (
        module is None
        and r.s.screw is not None
        and r.s.screw <= 10
        and not re.search(r"\b(screws?|bolts?|nuts?|set ?screw|grub)\b", r.s.text)
    ):
        # On a gear with no screw named, "m1" / "M1.5" is the module (as gear tables write it).
        module = r.s.screw
        r.note(f"module {module:g}")
    d = r.get("diameter", "outer_diameter", say="diameter")
    if n is None and d is not None and module is not None:
        n = max(6, round(d / module) - 2)
    if n is None:
        raise r.missing("the number of teeth (e.g. 'a 20-tooth gear')")
    r.note(f"{n} teeth")
    if module is None:
        module = round(d / (n + 2), 3) if d is not None else r.default(1.5, "module")
    t = r.get("thickness", "height", "width", say="thickness") or r.default(6.0, "thickness")
    bore = r.get("inner_diameter", "hole", "shaft", say="bore")
    if bore is None and re.search(
        r"\b(no|without (?:a )?)\s*(bore|hole|shaft hole|centre hole|"
        r"center hole)",
        r.s.text,
    ):
        bore = 0.0
        r.note("no bore")
    if bore is None:
        bore = r.default(min(5.0, round(module * n / 4, 1)), "bore")
    node = spec_node("gear", module=module, teeth=n, thickness=t, bore=bore)
    meshing = re.search(
        r"\b(\d+)\s*(?:teeth\s*)?(?:and|&|\+|/|,)\s*(\d+)\s*(?:teeth|tooth)\b", r.s.text
    )
    if meshing is not None and int(meshing.group(1)) != n and 6 <= int(meshing.group(1)) <= 200:
        # "two gears, 20 and 40 teeth": a meshing pair of the same module, side by side.
        other_teeth = int(meshing.group(1))
        # The first count was read as a bare number; it is a count of teeth, not a length.
        r.s.tokens[:] = [
            tok
            for tok in r.s.tokens
            if not (isinstance(tok, Quantity) and tok.unit is None and tok.mm == other_teeth)
        ]
        centres = mm(module * (n + other_teeth) / 2)
        r.note(f"and a {other_teeth}-tooth gear to mesh with it ({centres} between their centres)")
        mate = spec_node(
            "gear",
            module=module,
            teeth=other_teeth,
            thickness=t,
            bore=min(bore, round(module * other_teeth / 4, 1)) if bore else 0.0,
        )
        draft = r.draft("gear", f"{other_teeth} and {n} tooth gears", [mate, node])
        draft.counted = True
        return draft
    return r.draft("gear", f"{n}-tooth gear", [node])


Family = Callable[[Reader], Draft]

_BOARD_WORDS = (
    r"raspberry|arduino|esp32|esp8266|nodemcu|\bpcb\b|\bboard\b|\bpi\b|"
    r"\bpi\s*\d|pizero|\bpico\b|wemos|\brpi\b|perfboard|protoboard|"
    r"stripboard|circuit"
)

# Ordered: the first family whose pattern matches wins, so specific names come first.
FAMILIES: list[tuple[str, str, Family]] = [
    ("temperature tower", r"\btemp(?:erature)?\.?\s*towers?\b", temp_tower),
    ("bridging test", r"\bbridg(?:e|ing)\s*(?:test|calibration)", bridge_test),
    ("overhang test", r"\boverhangs?\s*(?:test|calibration)", overhang_test),
    (
        "stringing test",
        r"\b(?:stringing|retraction|string)\s*(?:test|tower|calibration)",
        stringing_test,
    ),
    (
        "first layer test",
        r"\bfirst[- ]layer\s*(?:test|calibration|squares?)|"
        r"\bbed[- ]level(?:l)?ing\s+(?:test|print|squares?)",
        first_layer_test,
    ),
    (
        "fan part",
        r"\bfans?\b.*\b(?:shroud|duct|adapt[eo]r|plate|gril+e?s?|guard|cover|mount|cowl)\b|"
        r"\b(?:shroud|duct|adapt[eo]r|gril+e?s?|guard|cowl)\b.*\bfans?\b",
        fan_part,
    ),
    ("pegboard hook", r"\bpeg-?boards?\b|\bskadis\b", pegboard_hook),
    (
        "tool holder",
        r"(?:\b(?:hex|allen)\s*(?:keys?|wrench(?:es)?)|\bdrill\s*bits?|\bscrew\s*drivers?|"
        r"\btooth\s*brush(?:es)?|\b(?:tool|bit)s?)\b.*\b(?:holders?|racks?|organi[sz]ers?|"
        r"stands?|blocks?|storage|caddy|station|index)\b|\bdrill\s+index\b|\b(?:holders?|racks?|organi[sz]ers?|"
        r"stands?|blocks?|storage|caddy)\s+for\s+(?:my\s+|the\s+)?(?:\w+\s+)?(?:hex|allen|"
        r"drill|screw\s*drivers?|tooth\s*brush(?:es)?|bits?)\b",
        tool_holder,
    ),
    (
        "sliding-lid box",
        r"\bslid(?:e|ing)[- ]?(?:in\s+|on\s+)?(?:top|lid)|\blids?\s+that\s+slides?",
        sliding_box,
    ),
    ("grommet", r"\bgrommets?\b", grommet),
    (
        "bag clip",
        r"\b(?:bag|chip|bread|snack|food|freezer)s?\s+(?:bag\s+)?clips?\b|\bclips?\s+for\s+"
        r"(?:\w+\s+)?bags?\b",
        bag_clip,
    ),
    (
        "battery cover",
        r"\bbattery\s+(?:cover|door|lid|hatch|compartment\s+(?:cover|door|lid))",
        battery_cover,
    ),
    (
        "switch plate",
        r"\b(?:light\s+|toggle\s+|rocker\s+|decora\s+)?switch\s+(?:wall\s*)?(?:plate|cover|"
        r"face ?plate)\b|\b(?:toggle|decora)\s+(?:wall\s*)?(?:plate|cover)\b",
        switch_plate,
    ),
    ("soap dish", r"\bsoap\s+(?:dish|holder|tray|saver|rest)", soap_dish),
    (
        "hole cover",
        # A "hole plug" stays a plain plug (a cylinder), as earlier rounds built it.
        r"\bhole\s+(?:cover|cap)s?\b|\bblank(?:ing)?\s+(?:plug|cap)s?\b|"
        # "a plug to cover a 35 mm hole" (a plain "plug for a hole" stays a cylinder).
        r"\b(?:(?:cover|cap)s?\s+for|(?:cover|cap|plug)s?\s+to\s+(?:cover|fill|close|plug|"
        r"block|seal))\s+"
        r"(?:an?\s+|the\s+)?(?:\S+\s+){0,2}holes?\b",
        hole_cover,
    ),
    (
        "headphone stand",
        r"\b(?:headphones?|headsets?|earphones?)\s+(?:stand|holder|rest|cradle)\b|"
        r"\b(?:stand|holder|rest)\s+for\s+(?:my\s+)?(?:headphones?|headsets?)",
        headphone_stand,
    ),
    ("die", r"\bdice\b|\bd6\b|\b(?:a|one|small|\d+\s*mm|d\d+)\s+die\b", dice),
    ("chess pawn", r"\bpawns?\b", pawn),
    ("GT2 pulley", r"\bgt2\b|\btiming\s+(?:belt\s+)?pulley", pulley),
    (
        "LEGO-compatible brick",
        r"\blego\b|\bstuds?\b.*\b(?:brick|plate)s?\b|\b(?:brick|plate)s?\b.*\bstuds\b",
        brick,
    ),
    (
        "cable comb",
        r"\b(?:cable|wire|cord)s?\s+combs?\b|\bcombs?\s+for\s+(?:\d+\s+)?(?:cables|wires)",
        cable_comb,
    ),
    (
        "cookie cutter",
        r"cookie[- ]?cutter|biscuit cutter|fondant cutter|dough cutter|\bcutters?\b",
        cookie_cutter,
    ),
    (
        "name plate",
        r"name ?plate|name ?tag|door sign|desk sign|\bsign\b|text plate|key ?tag|"
        r"\blabel\b|key ?chain|key ?ring|key ?fob|\btag\b|\bplaque\b|name ?badge|\bbookmarks?\b",
        nameplate,
    ),
    (
        "stand",
        r"(?:phone|tablet|ipad)\s+(?:stand|holder|dock)|\bstand\b.*\b(?:phone|tablet|"
        r"ipad)",
        stand,
    ),
    # "a hinge for a box lid" is a hinge; "a box with a hinged lid" a box (which asks).
    ("hinge", r"^(?:(?!\b(?:box|case|container|chest|enclosure)\b).)*\bhinges?\b", hinge),
    (
        "enclosure",
        r"enclosure|\bcase\b|housing|project box|"
        rf"(?:\bbox|container|shell|cover)\b.*(?:{_BOARD_WORDS})|"
        rf"(?:{_BOARD_WORDS})\w*(?:\s+[\w-]+){{0,2}}?\s+(?:box|container|shell|cover)\b",
        enclosure,
    ),
    # "a box with 2 mm walls and a lid": the lid may come after other features, but "a box
    # without a lid" / "no lid" stays an open box.
    (
        "box with lid",
        r"box with (?:a )?lid|lidded|\blid\s+(?:box|container|bin)\b|"
        r"box and (?:a )?lid|with (?:a )?lid|"
        r"\b(?:box|container|bin)\b(?!.*\b(?:without|no) (?:a |the )?lid\b).*\blid\b|"
        r"hinged box|\btrinket box|\bjewel(?:le)?ry box|\bgift box",
        box_with_lid,
    ),
    ("calibration cube", r"calibration cube|test cube|\bxyz\s+(?:calibration\s+)?cube", cube),
    ("hinge", r"\bhinges?\b", hinge),
    ("gear", r"\bgears?\b|\bcog(?:wheel)?s?\b|spur|pinion|sprocket", gear),
    ("washer", r"\bwashers?\b|\bshims? washer", washer),
    (
        "standoffs",
        r"\bstand-?offs\b.*\b(?:for|apart|pattern|\d+\s*x)|stand-?off (?:set|frame)|"
        r"mounting posts",
        standoffs,
    ),
    # "a spacer plate", "a spacer block": there "spacer" says what the plate is for.
    (
        "spacer",
        r"\bspacers?\b(?!\s+(?:plates?|blocks?|bars?|boards?))|standoffs?|stand-offs?|"
        r"bushings?",
        spacer,
    ),
    ("knob", r"\bknobs?\b|\bdial\b|control cap|pot(?:entiometer)? cap", knob),
    (
        "drawer handle",
        r"drawer (?:handle|pull)|cabinet (?:handle|pull)|cupboard (?:handle|pull)|"
        # "a cup with a handle": there the handle is a feature of another part.
        r"door (?:handle|pull)|bar (?:handle|pull)|\bpull handle|"
        r"(?<!with a )(?<!with )(?<!and a )\bhandle\b|\bpulls?\b",
        drawer_handle,
    ),
    ("hex nut", r"\bhex(?:agon(?:al)?)? (?:nut|prism|bar|block)|\bnut\b", prism),
    # "a bracket to hold a 25 mm pipe to the wall" holds the pipe: a pipe clamp.
    (
        "clamp",
        r"\b(?:brackets?|mounts?)\b.*\b(?:pipes?|tubes?|tubing|rods?|dowels?|poles?|"
        r"conduits?)\b",
        clamp,
    ),
    ("bracket", r"\bbrackets?\b|angle bracket|corner brace", bracket),
    (
        "clamp",
        r"(?:pipe|rod|tube|dowel|pole|broom|mop) (?:hanger|holder|strap|support|mount)|"
        r"conduit|\bu[- ]?clamp|\bp[- ]?clip",
        clamp,
    ),
    ("hook", r"\bhooks?\b|\bhanger\b", hook),
    ("clamp", r"\bclamps?\b|shaft collar|pipe collar|saddle", clamp),
    ("clip", r"\bclips?\b", clip),
    (
        "stand",
        r"\bstands?\b|(?:phone|tablet|ipad) (?:holder|dock)|holder for (?:my |a )?"
        r"(?:phone|tablet|ipad)",
        stand,
    ),
    ("coaster", r"\bcoasters?\b", coaster),
    ("funnel", r"\bfunnels?\b", funnel),
    ("wedge", r"\bwedges?\b|door ?stops?|door ?stopper|\bshims?\b|\bramps?\b", wedge),
    ("vase", r"\bvases?\b|lamp ?shade", vase),
    (
        "pot",
        r"\bpots?\b|planter|flower ?pot|pencil cup|pen holder|pencil holder|"
        r"\bsucculent|\bcups?\b|\bmugs?\b|\bbowls?\b|\bdish\b",
        pot,
    ),
    ("adapter", r"\b(?:reducers?|adapters?|adaptors?)\b", adapter),
    # "an end cap for a 25 mm tube", "a lid for a 75 mm jar": a cup that slides over it.
    ("cap", r"\b(?:end\s*)?caps?\b|\blids?\s+(?:for|to fit)\b", cap),
    # Before "tube": "a torus with a 10 mm thick tube" names the torus's own tube.
    ("torus", r"\btorus\b|\bdo(?:ugh)?nuts?\b", torus),
    ("tube", r"\btubes?\b|\bpipes?\b|\bsleeves?\b|\brings?\b|\bstraws?\b", tube),
    ("plate", r"\bplates?\b|\bpanels?\b|mounting plate|\bsheet\b", plate),
    ("cube", r"\bcubes?\b", cube),
    (
        "box",
        r"\bbox(?:es)?\b|\btray\b|container|\bbins?\b|organi[sz]er|"
        r"\bdrawers?\b(?!\s+(?:handles?|pulls?|knobs?|slides?|runners?))",
        tray,
    ),
    ("capsule", r"\bcapsules?\b|\bpills?\b|\blozenge", capsule),
    ("sphere", r"\bspheres?\b|\bballs?\b|\bdomes?\b|hemisphere|\bbeads?\b", sphere),
    ("star", r"\bstars?\b", flat_star),
    ("cone", r"\bcones?\b", cone),
    (
        "cylinder",
        r"cylinder|\brod\b|\bdowel\b|\bpeg\b|\bdis[ck]\b|\bpuck\b|\bpost\b|\bpin\b",
        cylinder,
    ),
    # A hex key or hex bit is a tool, not a hexagonal part.
    (
        "prism",
        r"\bhexagon(?:al)?\b|\bhex\b(?!\s+(?:keys?|wrench(?:es)?|bits?|drivers?))|"
        r"\b(?:octagon|pentagon|heptagon)(?:al)?\b|\btriang(?:le|ular)\b|\bprisms?\b",
        prism,
    ),
    ("block", r"\bblock\b|cuboid|\bbrick\b|rectangular prism|\bslab\b", block),
    # Last: a part named by no family but called round ("a round base 80 mm across, 5 mm
    # thick", "a circular foot") is a disc or a cylinder of the sizes given.
    (
        "round part",
        r"\b(?:round|circular|cylindrical)\b|\b(?:a|an|the|some|table|chair|furniture|"
        r"rubber|replacement|levell?ing|shelf|cabinet|sofa|couch|bed)\s+(?:foot|feet)\b"
        r"(?!\s*(?:long|tall|wide|high|deep|thick))|\b(?:hole\s+)?plugs?\b|\bstoppers?\b|"
        r"\bbumpers?\b",
        cylinder,
    ),
]
