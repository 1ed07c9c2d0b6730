"""Household families: coasters, knobs, drawer handles, funnels and wedges. Same conventions as
`families.py`: every length read is recorded, every default is listed as assumed."""

from __future__ import annotations

import re

from printforge.llm.offline.reader import Draft, Reader, mm, pilot_hole, spec_node

__all__ = ["coaster", "drawer_handle", "funnel", "knob", "wedge"]


def coaster(r: Reader) -> Draft:
    square = bool(re.search(r"\bsquare\b", r.s.text))
    d = r.diameter() or r.get("side", "length", say="side")
    if d is None and r.s.triples:
        d = r.s.triples[0][0]
        r.note(f"size {mm(d)}")
        square = True
    if d is None:
        d = r.take_free("size")
    d = d if d is not None else r.default(95.0 if not square else 100.0, "size")
    total = r.get("thickness", "height", say="thickness")
    flat = re.search(r"\b(no|without)\s+(a\s+)?(rim|lip|edge)|\bflat\b", r.s.text)
    rim = 0.0 if flat else r.get("rim", say="rim height")
    if rim is None:
        # "4 mm thick" is the coaster as it lies on the table, rim included.
        rim = r.default(2.0 if total is None else round(min(2.0, total * 0.4), 1), "rim height")
    if total is not None and total - rim >= 1.0:
        t = round(total - rim, 2)
        if rim:
            r.note(f"base {mm(t)} + rim {mm(rim)} = {mm(total)} overall")
    else:
        t = total if total is not None else r.default(3.0, "thickness")
    if flat:
        r.note("no rim")
    node = spec_node(
        "coaster",
        diameter=d,
        thickness=t,
        rim_height=rim,
        rim_width=min(2.5, round(d / 8, 2)),
        square=square,
    )
    return r.draft("coaster", "square coaster" if square else "coaster", [node])


def knob(r: Reader) -> Draft:
    shaft = r.get("shaft", "hole", "inner_diameter", say="shaft")
    if shaft is None and r.s.screw is not None:
        shaft = r.s.screw
        r.note(f"an {r.s.screw_name} shaft")
    d = r.diameter()
    if shaft is None and d is not None:
        # "a knob for a 6 mm shaft" labels the one length as a diameter: the smaller one
        # alone, under 12 mm, is the shaft.
        free = r.free()
        if free:
            shaft = r.take_free("shaft")
        elif d <= 12:
            shaft, d = d, None
            r.understood[-1] = f"shaft {mm(shaft)}"
    if shaft is None:
        free = r.free()
        if len(free) >= 1 and free[0].mm <= 12:
            shaft = r.take_free("shaft")
    if d is None:
        d = r.take_free("diameter") if r.free() else None
    if d is None:
        d = r.default(max(30.0, round((shaft or 6.0) * 2 + 6, 1)), "diameter")
    shaft = shaft if shaft is not None else r.default(6.0, "shaft")
    h = r.get("height", "length", "thickness", say="height") or r.default(
        round(max(15.0, min(25.0, d * 0.6)), 1), "height"
    )
    depth = r.get("depth", say="shaft depth") or r.default(
        round(min(12.0, h - 4.0), 1), "shaft depth"
    )
    round_shaft = re.search(
        r"\b(round|plain|smooth|no d|without (?:a )?flat)\b.{0,8}shaft"
        r"|round hole",
        r.s.text,
    )
    d_flat = not round_shaft
    r.note("D-shaped (flat) shaft hole" if d_flat else "round shaft hole")
    smooth = re.search(r"\bsmooth\b(?!.{0,8}shaft)|\bno (?:ridges|grip|knurl)", r.s.text)
    m = re.search(r"(\d+)\s*(?:ridges|grooves|flutes|grips)", r.s.text)
    ridges = 0 if smooth else int(m.group(1)) if m else 18
    node = spec_node(
        "knob",
        diameter=d,
        height=h,
        shaft_diameter=shaft,
        shaft_depth=depth,
        d_flat=d_flat,
        ridges=ridges,
    )
    return r.draft("knob", "knob", [node])


def drawer_handle(r: Reader) -> Draft:
    spacing = r.get("spacing", say="hole spacing")
    if spacing is None:
        spacing = r.get("length", say="hole spacing") or r.take_free("hole spacing")
    if spacing is None:
        spacing = r.default(96.0, "hole spacing (the common 96 mm cabinet standard)")
    clearance = r.get("clearance", "reach", "depth", "opening", say="finger room") or r.default(
        25.0, "finger room"
    )
    width = r.get("width", say="width") or r.default(12.0, "width")
    t = r.get("thickness", say="thickness") or r.default(8.0, "thickness")
    screw = r.s.screw or 4.0
    pilot = pilot_hole(screw)
    r.note(f"{mm(pilot)} pilot holes for {r.s.screw_name or 'M4'} screws")
    node = spec_node(
        "drawer_handle",
        hole_spacing=spacing,
        clearance=clearance,
        width=width,
        thickness=t,
        hole_diameter=pilot,
        hole_depth=round(min(12.0, clearance + t - 2), 1),
    )
    return r.draft("drawer_handle", "drawer handle", [node])


def funnel(r: Reader) -> Draft:
    top = r.get("outer_diameter", "diameter", "width", say="mouth")
    if top is None and (rad := r.get("radius", say="mouth radius")) is not None:
        top = 2 * rad
    spout = r.get("inner_diameter", "spout", say="spout")
    if top is None and r.free():
        top = r.take_free("mouth")
    if spout is None and r.free() and top is not None and r.free()[0].mm < top:
        spout = r.take_free("spout")
    if top is not None and spout is not None and spout > top:
        top, spout = spout, top
    top = top if top is not None else r.default(80.0, "mouth")
    spout = spout if spout is not None else r.default(round(max(8.0, top / 7), 1), "spout")
    cone_h = r.get("height", say="cone height") or r.default(round(top * 0.55, 1), "cone height")
    spout_len = r.get("length", say="spout length") or r.default(25.0, "spout length")
    # A fine spout needs a thinner wall to leave a bore (two 0.4 mm lines at least).
    wall = r.get("wall", say="wall") or r.default(round(min(1.6, max(0.8, spout / 4)), 2), "wall")
    node = spec_node(
        "funnel",
        top_diameter=top,
        spout_diameter=spout,
        cone_height=cone_h,
        spout_length=spout_len,
        wall=wall,
    )
    return r.draft("funnel", "funnel", [node])


def wedge(r: Reader) -> Draft:
    length: float | None
    width: float | None
    height: float | None
    triple = next((t for t in r.s.triples if len(t) == 3), None)
    if triple is not None:
        length, width, height = triple
        r.note(f"wedge {mm(length)} long, {mm(width)} wide, {mm(height)} high")
    else:
        pair = next((t for t in r.s.triples if len(t) == 2), None)
        if pair is not None:
            # "a 5 mm thick shim 40 x 20": the pair is its footprint, the height is labelled.
            length, width = pair
            r.note(f"footprint {mm(length)} x {mm(width)}")
        else:
            length = r.get("length", say="length")
            width = r.get("width", say="width")
        height = r.get("height", "thickness", say="height")
        door = bool(re.search(r"door", r.s.text))
        length = length or r.default(120.0 if door else 60.0, "length")
        width = width or r.default(40.0 if door else 25.0, "width")
        height = height or r.default(25.0 if door else 10.0, "height")
    tip = r.get("tip", say="thin end") or r.default(round(min(1.0, height / 4), 2), "thin end")
    node = spec_node("wedge", length=length, width=width, height=height, tip=tip)
    return r.draft("wedge", "door stop" if "door" in r.s.text else "wedge", [node])
