"""Parts makers often ask for that are a few generic nodes each: dice, a chess pawn, a GT2
pulley, a US light switch plate, a battery cover, LEGO-compatible bricks, a headphone stand, a
soap dish and an XYZ calibration cube. Published standards give their sizes (each says which);
what the request leaves open is assumed aloud like everywhere else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from printforge.llm.offline.reader import Draft, Node, Reader, mm, spec_node
from printforge.llm.offline.shapes import EPS, box, cyl, diff, tr

__all__ = [
    "battery_cover",
    "brick",
    "cube_has_letters",
    "dice",
    "headphone_stand",
    "hole_cover",
    "pawn",
    "pulley",
    "soap_dish",
    "switch_plate",
    "xyz_cube",
]


def _posed(draft: Draft) -> Draft:
    """These parts are drawn in their print pose (a die on a face, a pawn on its foot)."""
    draft.orient = False
    return draft


def _rot(angles: list[float], *children: Node) -> Node:
    return {"kind": "rotate", "angles": angles, "children": list(children)}


def _sphere(r: float) -> Node:
    return {"kind": "sphere", "radius": round(r, 4)}


def _union(*children: Node) -> Node:
    return {"kind": "union", "children": list(children)}


def _text_cut(text: str, size: float, depth: float) -> Node:
    return {
        "kind": "linear_extrude",
        "height": round(depth + EPS, 4),
        "profiles": [
            {"kind": "text", "text": text, "size": size, "halign": "center", "valign": "center"}
        ],
    }


# A die's pips on each face (+Z 1, -Z 6, +X 2, -X 5, +Y 3, -Y 4: opposite faces add to 7), as
# (u, v) in units of the pip offset on that face.
_PIPS = {
    1: [(0, 0)],
    2: [(-1, -1), (1, 1)],
    3: [(-1, -1), (0, 0), (1, 1)],
    4: [(-1, -1), (-1, 1), (1, -1), (1, 1)],
    5: [(-1, -1), (-1, 1), (0, 0), (1, -1), (1, 1)],
    6: [(-1, -1), (-1, 0), (-1, 1), (1, -1), (1, 0), (1, 1)],
}


def dice(r: Reader) -> Draft:
    other = re.search(r"\bd(4|8|10|12|20|100)\b", r.s.raw.lower())
    if other is not None:
        # "d20" names a 20-sided die, which is not made.
        r.cannot(f"d{other.group(1)}", f"a d{other.group(1)} is not made here, only six-sided dice")
    side = r.get("side", "size", "width", "length", "height", say="side") or r.take_free("side")
    side = side or r.default(16.0, "side")
    r.claim("pips")
    half = side / 2
    body = {
        "kind": "intersection",
        "children": [{"kind": "box", "size": [side] * 3, "center": True}, _sphere(side * 0.8)],
    }
    pip_r, off = side * 0.085, side * 0.25
    # Where a point (u, v) of each face lies, by the number the face shows.
    faces: dict[int, Callable[[float, float], list[float]]] = {
        1: lambda u, v: [u, v, half],
        6: lambda u, v: [u, v, -half],
        2: lambda u, v: [half, u, v],
        5: lambda u, v: [-half, u, v],
        3: lambda u, v: [u, half, v],
        4: lambda u, v: [u, -half, v],
    }
    pips = [
        tr([round(c, 4) for c in place(u * off, v * off)], _sphere(pip_r))
        for n, place in faces.items()
        for u, v in _PIPS[n]
    ]
    r.note("rounded edges, pips 1-6 (opposite faces add up to 7)")
    return _posed(r.draft("intersection", "die", [tr([0, 0, half], diff(body, *pips))]))


def pawn(r: Reader) -> Draft:
    h = r.get("height", "length", say="height") or r.take_free("height")
    h = h or r.default(40.0, "height")
    base = r.get("diameter", "width", say="base diameter") or r.default(round(h * 0.6, 1), "base")
    k = base / 2
    # A turned profile: foot, a waist, a collar and a ball for the head.
    pts = [
        (0, 0),
        (k, 0),
        (k, h * 0.06),
        (k * 0.8, h * 0.12),
        (k * 0.55, h * 0.2),
        (k * 0.32, h * 0.55),
        (k * 0.62, h * 0.6),
        (k * 0.62, h * 0.64),
        (k * 0.3, h * 0.66),
        (0, h * 0.66),
    ]
    body = {
        "kind": "revolve",
        "profiles": [{"kind": "polygon", "points": [[round(x, 3), round(y, 3)] for x, y in pts]}],
    }
    head_r = h * 0.18
    head = tr([0, 0, round(h - head_r, 3)], _sphere(head_r))
    r.note("a turned pawn: foot, waist, collar and a round head")
    return _posed(r.draft("union", "chess pawn", [_union(body, head)]))


def _gt2_outline(teeth: int) -> list[list[float]]:
    """A GT2 (2 mm pitch) pulley's toothed outline: its outside diameter is the pitch diameter
    less 0.508 mm, and each of the belt's teeth sits in a groove 0.75 mm deep, 1.3 mm wide."""
    pitch_d = teeth * 2.0 / math.pi
    ro = pitch_d / 2 - 0.254
    depth, width = 0.75, 1.3
    pts = []
    per = 24
    for i in range(teeth * per):
        a = 2 * math.pi * i / (teeth * per)
        local = (a % (2 * math.pi / teeth)) * ro - math.pi / teeth * ro  # arc from groove centre
        g = 0.0
        if abs(local) < width / 2:
            g = depth * math.sqrt(1 - (2 * local / width) ** 2)
        rad = ro - g
        pts.append([round(rad * math.cos(a), 4), round(rad * math.sin(a), 4)])
    return pts


def pulley(r: Reader) -> Draft:
    teeth = r.s.counts.get("tooth") or int(r.default(20, "teeth"))
    if not 10 <= teeth <= 80:
        raise r.missing("between 10 and 80 teeth")
    bore = r.hole() or r.get("shaft", say="bore") or r.default(5.0, "bore")
    belt = r.get("width", say="belt width") or r.default(6.0, "belt width")
    od = teeth * 2.0 / math.pi - 0.508
    hub_d = max(od, bore + 8.0)
    hub_h = 7.0
    flange_d = od + 3.0
    teeth_h = belt + 1.0
    outline = {"kind": "polygon", "points": _gt2_outline(teeth)}
    parts = [
        cyl(hub_h, hub_d / 2),
        tr([0, 0, hub_h], cyl(1.0, flange_d / 2)),
        tr(
            [0, 0, hub_h + 1.0 - EPS],
            {"kind": "linear_extrude", "height": teeth_h + 2 * EPS, "profiles": [outline]},
        ),
        tr([0, 0, hub_h + 1.0 + teeth_h], cyl(1.0, flange_d / 2)),
    ]
    total = hub_h + teeth_h + 2.0
    set_screw = tr([0, 0, hub_h / 2], _rot([0, 90, 0], cyl(hub_d, 1.5)))
    body = diff(_union(*parts), tr([0, 0, -EPS], cyl(total + 2 * EPS, bore / 2)), set_screw)
    r.note(f"GT2 pulley, {teeth} teeth ({mm(round(od, 2))} outside), {mm(belt)} belt, M3 set screw")
    return _posed(r.draft("union", f"GT2 {teeth}T pulley", [body]))


# US wall plates (NEMA WD 6 / ANSI C73 "standard" size): 2.75 x 4.5 in, screws 3.8125 in apart.
_PLATE = (69.85, 114.3)
_SCREWS = 96.84
_OPENINGS = {"toggle": (10.3, 23.9), "decora": (33.3, 66.7)}


def switch_plate(r: Reader) -> Draft:
    kind = "decora" if re.search(r"decora|rocker|paddle|gfci", r.s.text) else "toggle"
    gangs = 2 if re.search(r"\b(?:double|two|2)[- ]gang|\bdouble\b", r.s.text) else 1
    r.s.counts.get("gang")
    x, y = _PLATE[0] + (gangs - 1) * 46.0, _PLATE[1]
    t, skirt = 2.5, 6.0
    r.assume(f"the US standard plate {mm(x)} x {mm(y)} ({kind} opening)")
    r.claim("screw holes")
    shell = diff(
        tr([-x / 2, -y / 2, 0], box(x, y, skirt)),
        tr([-x / 2 + 2.0, -y / 2 + 2.0, t], box(x - 4.0, y - 4.0, skirt)),
    )
    ow, oh = _OPENINGS[kind]
    cuts: list[Node] = []
    for g in range(gangs):
        cx = -(gangs - 1) * 23.0 + g * 46.0
        cuts.append(tr([cx - ow / 2, -oh / 2, -EPS], box(ow, oh, t + 2 * EPS)))
        for sy in (-1, 1):
            cuts.append(tr([cx, sy * _SCREWS / 2, -EPS], cyl(t + 2 * EPS, 1.9)))
    r.note("printed face down; a 6 mm skirt stands off the wall box")
    r.claim("cutout")  # the switch opening is the plate's cutout
    return _posed(r.draft("box", f"{kind} switch plate", [diff(shell, *cuts)]))


def battery_cover(r: Reader) -> Draft:
    pair = next((t for t in r.s.triples if len(t) >= 2), None)
    if pair is None:
        raise r.missing("the cover's size (e.g. '45 x 22 mm, 1.5 mm thick')")
    x, y = max(pair[:2]), min(pair[:2])
    t = (pair[2] if len(pair) == 3 else None) or r.get("thickness", say="thickness")
    t = t or r.default(1.5, "thickness")
    r.note(f"cover {mm(x)} x {mm(y)}, {mm(t)} thick")
    plate = tr([-x / 2, -y / 2, 0], box(x, y, t))
    # A catch under one end and grip ridges on top at the other.
    catch = tr([x / 2 - 3.0, -y * 0.3, -0.8], box(1.5, y * 0.6, 0.8 + EPS))
    ridges = [
        tr([-x / 2 + 3.0 + 2.0 * i, -y * 0.3, t - EPS], box(0.8, y * 0.6, 0.6)) for i in range(3)
    ]
    r.assume("a 0.8 mm catch under one end and grip ridges at the other")
    return _posed(r.draft("box", "battery cover", [_union(plate, catch, *ridges)]))


# LEGO-compatible sizes as the community measures them: 8 mm stud pitch, 9.6 mm brick height
# (3.2 for a plate), studs 4.8 across and 1.7 high, 0.2 mm less than the pitch overall.
def brick(r: Reader) -> Draft:
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    if pair is None or not all(1 <= v <= 16 and v == int(v) for v in pair):
        raise r.missing("its size in studs (e.g. 'a 2x4 brick')")
    nx, ny = int(max(pair)), int(min(pair))
    plate = bool(re.search(r"\bplate\b|\bflat\b|\btile\b", r.s.text))
    h = 3.2 if plate else 9.6
    x, y = nx * 8.0 - 0.2, ny * 8.0 - 0.2
    wall, top = 1.2, 1.0
    r.claim("studs")
    shell = diff(
        tr([-x / 2, -y / 2, 0], box(x, y, h)),
        tr([-x / 2 + wall, -y / 2 + wall, -EPS], box(x - 2 * wall, y - 2 * wall, h - top + EPS)),
    )
    studs = [
        tr([(i - (nx - 1) / 2) * 8.0, (j - (ny - 1) / 2) * 8.0, h - EPS], cyl(1.7 + EPS, 2.4))
        for i in range(nx)
        for j in range(ny)
    ]
    tubes: list[Node] = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            at = [(i - (nx - 2) / 2) * 8.0, (j - (ny - 2) / 2) * 8.0, 0]
            tubes.append(tr(at, diff(cyl(h - top + EPS, 3.255), tr([0, 0, -EPS], cyl(h, 2.4)))))
    if ny == 1 and nx > 1:
        for i in range(nx - 1):
            tubes.append(tr([(i - (nx - 2) / 2) * 8.0, 0, 0], cyl(h - top + EPS, 1.6)))
    r.note(f"{nx} x {ny} studs, {mm(x)} x {mm(y)} x {mm(h)} plus 1.7 mm studs")
    name = f"{nx}x{ny} {'plate' if plate else 'brick'} (LEGO-compatible)"
    return _posed(r.draft("union", name, [_union(shell, *studs, *tubes)]))


def headphone_stand(r: Reader) -> Draft:
    h = r.get("height", say="height") or r.take_free("height") or r.default(180.0, "height")
    base = r.get("width", "diameter", say="base") or r.default(110.0, "base width")
    r.assume("a weighted-looking square base, a post and a 90 mm curved saddle")
    post_w = 22.0
    parts: list[Node] = [
        {"kind": "rounded_box", "size": [base, base, 6.0], "radius": 10.0, "center": False},
        tr(
            [base / 2 - post_w / 2, base / 2 - post_w / 2, 6.0 - EPS], box(post_w, post_w, h - 18.0)
        ),
    ]
    # The saddle: a bar across the top, rounded so the band rests on a curve.
    saddle = {
        "kind": "hull",
        "children": [
            tr([base / 2 - 45.0 + 8.0, base / 2, h - 8.0], _rot([90, 0, 0], cyl(post_w, 8.0))),
            tr([base / 2 + 45.0 - 8.0, base / 2, h - 8.0], _rot([90, 0, 0], cyl(post_w, 8.0))),
            tr([base / 2 - 6.0, base / 2 - post_w / 2, h - 24.0], box(12.0, post_w, 2.0)),
        ],
    }
    fix = tr([0, post_w / 2, 0], saddle)
    return _posed(r.draft("union", "headphone stand", [_union(*parts, fix)]))


def soap_dish(r: Reader) -> Draft:
    pair = next((t for t in r.s.triples if len(t) >= 2), None)
    if pair is not None:
        x, y = max(pair[:2]), min(pair[:2])
        z = pair[2] if len(pair) == 3 else r.get("height", "depth", say="height")
    else:
        x = r.get("length", say="length") or r.default(120.0, "length")
        y = r.get("width", say="width") or r.default(80.0, "width")
        z = r.get("height", "depth", say="height")
    z = z or r.default(20.0, "height")
    r.claim("drain holes")
    tray = spec_node("tray", size=[x, y, z], wall=2.5, floor=3.0, corner_radius=min(10.0, y / 5))
    slots = max(3, int((x - 20) // 12))
    pitch = (x - 20) / slots
    cuts = [
        tr(
            [-x / 2 + 10 + pitch * (i + 0.5) - 2.0, -(y - 20) / 2, -EPS],
            box(4.0, y - 20, 3.0 + 2 * EPS),
        )
        for i in range(slots)
    ]
    r.note(f"{slots} drain slots through the floor")
    return _posed(r.draft("tray", "soap dish", [diff(tray, *cuts)]))


def xyz_cube(r: Reader) -> Draft:
    side = r.get("side", "size", "width", "length", "height", say="side") or r.take_free("side")
    side = side or r.default(20.0, "side")
    r.claim("text on sides")
    size = round(side * 0.5, 2)
    depth = 0.8
    c = side / 2
    cuts = [
        # X on the front (-Y) face, Y on the right (+X) face, Z on top: each reads upright.
        tr([c, depth, c], _rot([90, 0, 0], _text_cut("X", size, depth))),
        tr([side + EPS, c, c], _rot([90, 0, -90], _text_cut("Y", size, depth))),
        tr([c, c, side - depth], _text_cut("Z", size, depth)),
    ]
    r.note(f"X, Y and Z engraved {mm(depth)} deep on three faces")
    return _posed(r.draft("box", "XYZ calibration cube", [diff(box(side, side, side), *cuts)]))


def cube_has_letters(r: Reader) -> bool:
    return bool(re.search(r"\bx\s*,?\s*y\s*(?:,|and)?\s*z\b|\bxyz\b", r.s.text))


def hole_cover(r: Reader) -> Draft:
    """A cap that closes a round hole in a panel or desk: a flange over the hole and a plug
    that pushes in, with a lip that catches behind a thin panel."""
    hole = (
        r.followed_by({"hole", "holes", "opening", "grommet"}, say="covers a hole of")
        or r.get("hole", "diameter", say="covers a hole of")
        or r.take_free("covers a hole of")
    )
    if hole is None:
        raise r.missing("the size of the hole it covers (e.g. 'a cover for a 35 mm hole')")
    panel = r.followed_by(
        {"panel", "desk", "board", "sheet", "wall", "table", "top"}, say="fits a panel of"
    )
    depth = r.get("thickness", "depth", say="plug depth")
    if depth is None and panel is not None:
        depth = r.default(round(panel + 4.0, 1), "plug depth (through the panel and 4 mm on)")
    depth = depth or r.default(8.0, "plug depth")
    flange = r.default(round(hole + 10.0, 1), "flange diameter")
    plug = hole / 2 - 0.2  # a push fit with 0.2 mm of play
    pts = [
        [0.0, 0.0],
        [flange / 2, 0.0],
        [flange / 2, 2.0],
        [plug, 2.0],
        [plug, 2.0 + depth - 1.0],
        [plug - 0.8, 2.0 + depth],
        [max(plug - 2.0, 0.5), 2.0 + depth],
        [max(plug - 2.0, 0.5), 2.6],
        [0.0, 2.6],
    ]
    node = {
        "kind": "revolve",
        "profiles": [{"kind": "polygon", "points": [[round(x, 3), round(y, 3)] for x, y in pts]}],
    }
    r.note(f"a {mm(flange)} flange over a {mm(hole)} hole, a hollow plug {mm(depth)} deep")
    return _posed(r.draft("revolve", "hole cover", [node]))
