"""Mounting families: L and shelf brackets, wall hooks, cable clips, pipe clamps and phone or
tablet stands. Same conventions as `families.py`."""

from __future__ import annotations

import re

from printforge.llm.offline.reader import Draft, Reader, clearance_hole, mm, spec_node

__all__ = ["bracket", "clamp", "clip", "hook", "stand"]

# The screws that go into an aluminium profile's slot (with T-nuts), by profile side.
_SLOT_SCREW = {20.0: 5.0, 30.0: 6.0, 40.0: 8.0}


def bracket(r: Reader) -> Draft:
    shelf = bool(re.search(r"shelf", r.s.text))
    profile = r.s.extrusion
    if profile is not None:
        r.note(f"for {profile:g} mm aluminium profile")
    r.s.counts.get("leg")  # "two 50 mm legs": both legs take the one length
    t3 = r.s.triples[0] if r.s.triples else None
    leg_a: float | None
    width: float | None
    if t3 is not None and len(t3) == 3:
        leg_a, leg_b, width = t3
        r.note(f"legs {mm(leg_a)} and {mm(leg_b)}, {mm(width)} wide")
    elif t3 is not None:
        leg_a, leg_b = t3
        r.note(f"legs {mm(leg_a)} and {mm(leg_b)}")
        width = r.get("width", say="width") or r.default(
            25.0 if shelf else round(max(16.0, min(leg_a, leg_b) / 2), 1), "width"
        )
    else:
        leg_a = r.get("length", "side", "depth", say="leg length") or r.take_free("leg length")
        if leg_a is None and profile is not None:
            # A corner bracket for a 2020 profile: each leg long enough for one slot screw.
            leg_a = r.default(2 * profile, "leg length")
        if leg_a is None:
            raise r.missing("the bracket's leg length (e.g. 'a 40 mm L bracket, 20 mm wide')")
        leg_b = r.get("height", say="upright leg") or r.take_free("other leg") or leg_a
        width = r.get("width", say="width")
        if width is None and profile is not None:
            width = r.default(profile, "width (the profile's)")
        if width is None:
            width = r.default(
                25.0 if shelf else round(max(16.0, min(leg_a, leg_b) / 2), 1), "width"
            )
    t = r.get("thickness", "wall", say="thickness") or r.default(5.0 if shelf else 4.0, "thickness")
    d = r.hole()
    if d is None and profile is not None:
        # The screw that takes a T-nut in the profile's slot.
        d = r.default(clearance_hole(_SLOT_SCREW.get(profile, 5.0)), "screw holes")
    if d is None:
        d = r.default(4.5, "screw holes")
    holes = r.s.counts.get("hole")
    if holes and re.search(r"\b(per|each|in each|on each|a) leg", r.s.text):
        per_leg = holes
    else:
        per_leg = max(1, holes // 2) if holes else (2 if shelf else 1)
    if any(abs(v - 90.0) < 1e-6 for v, _ in r.s.angles):
        r.claim("angle")  # an L bracket is a right angle
    if shelf:
        node = spec_node(
            "shelf_bracket",
            width=width,
            leg_a=leg_a,
            leg_b=leg_b,
            thickness=t,
            hole_diameter=d,
            holes_per_leg=per_leg,
        )
        return r.draft("shelf_bracket", "shelf bracket", [node])
    node = spec_node(
        "l_bracket",
        width=width,
        leg_a=leg_a,
        leg_b=leg_b,
        thickness=t,
        hole_diameter=d,
        holes_per_leg=per_leg,
        brace=not re.search(r"\b(no|without)\s+(braces?|gussets?)", r.s.text),
    )
    return r.draft("l_bracket", "L bracket", [node])


_HANG_ON = {
    "rail",
    "rod",
    "bar",
    "pipe",
    "tube",
    "pole",
    "handlebar",
    "railing",
    "shelf",
    "door",
    "board",
    "panel",
    "desk",
    "table",
    "edge",
    "cabinet",
}


def hook(r: Reader) -> Draft:
    held = r.of_thing(_HANG_ON, {"thickness", "width", "diameter"}, say="hangs on")
    t = r.get("thickness", say="thickness") or r.default(5.0, "thickness")
    held = held or r.followed_by(_HANG_ON, say="hangs on")
    reach = r.get("reach", "depth", say="reach")
    tip = None
    if held is not None and reach is None:
        # The hook's inside must take the rail (or the door) with 1 mm of play each side.
        reach = round(held + 2 * t + 2.0, 2)
        tip = round(max(2 * t, held * 0.6 + t), 1)
        r.note(f"reach {mm(reach)} to fit it")
    reach = reach or r.take_free("reach")
    height = r.get("height", "length", say="height")
    if reach is None and height is None:
        # A hook has a natural size; say so rather than refuse.
        big = bool(
            re.search(
                r"\b(coat|towel|bag|large|big|heavy|bikes?|bicycles?|ladders?|hoses?)\b", r.s.text
            )
        )
        small = bool(re.search(r"\b(small|key|tiny|little)\b", r.s.text))
        reach = r.default(40.0 if big else 20.0 if small else 30.0, "reach")
    reach = reach or r.default(round(height * 0.6, 1), "reach")  # type: ignore[operator]
    height = height or r.default(round(max(40.0, reach * 1.6), 1), "height")
    width = r.get("width", say="width") or r.default(15.0, "width")
    d = r.hole() or r.default(4.0, "screw holes")
    n = r.s.counts.get("hole", 2)
    if re.search(
        r"\b(?:no|without)\s+(?:screws?\s+|screw\s+)?holes?\b|adhesive|stick[- ]on|"
        r"\bcommand\b|\btape\b|\bover\s+(?:the|a)\s+(?:door|cabinet|drawer)",
        r.s.text,
    ):
        n = 0  # stuck on or hung over: a plain back
        r.note("no screw holes")
    node = spec_node(
        "wall_hook",
        width=width,
        back_height=height,
        reach=reach,
        tip_height=tip or round(max(2 * t, reach * 0.4), 1),
        thickness=t,
        hole_diameter=d,
        holes=min(n, 4),
    )
    return r.draft("wall_hook", "wall hook", [node])


def clip(r: Reader) -> Draft:
    spool = re.search(r"\b(filament|spool)\b", r.s.text)
    if spool is not None:
        # A filament clip holds the loose end on the spool's rim: not a cable clip.
        r.cannot(
            "filament clip",
            "a clip for a spool's rim is not made here (a screw-on cable clip would be built)",
        )
    d = r.get("inner_diameter", "diameter", "opening", say="for a diameter") or r.take_free(
        "for a diameter"
    )
    if d is None:
        raise r.missing("what it clips onto (e.g. 'a cable clip for a 6 mm cable')")
    t = r.get("thickness", "wall", say="thickness") or r.default(2.0, "thickness")
    width = r.get("width", "length", say="width") or r.default(10.0, "width")
    hole = r.hole() or r.default(3.5, "screw hole")
    node = spec_node("cable_clip", cable_diameter=d, width=width, thickness=t, hole_diameter=hole)
    return r.draft("cable_clip", f"clip for {mm(d)}", [node])


def clamp(r: Reader) -> Draft:
    d = r.get("inner_diameter", "diameter", "opening", say="for a diameter") or r.take_free(
        "for a diameter"
    )
    if d is None:
        raise r.missing("the diameter it clamps (e.g. 'a pipe clamp for 25 mm pipe')")
    t = r.get("thickness", "wall", say="thickness") or r.default(3.0, "thickness")
    width = r.get("width", "length", say="width") or r.default(15.0, "width")
    hole = r.hole() or r.default(4.5, "screw holes")
    node = spec_node(
        "pipe_clamp",
        pipe_diameter=d,
        width=width,
        thickness=t,
        hole_diameter=hole,
        flange_length=round(max(12.0, hole * 2.6), 1),
    )
    return r.draft("pipe_clamp", f"clamp for {mm(d)}", [node])


# Things people put on a stand that do not stand in a phone stand's slot.
_NOT_IN_A_SLOT = re.compile(
    r"\b(headphones?|headsets?|plants?|monitors?|laptops?|spools?|filament|helmets?|guitars?|"
    r"bikes?|bicycles?|microphones?|mics?|speakers?|soldering|cakes?|watch(?:es)?|controllers?|"
    r"glasses|figures?|models?|tv|television|printer)\b"
)


def stand(r: Reader) -> Draft:
    other = _NOT_IN_A_SLOT.search(r.s.text)
    if other is not None:
        raise r.missing(
            f"something it can hold: the offline parser's stand holds a flat device"
            f" (phone, tablet, e-reader) in a slot, not a {other.group(1)}; try an"
            " LLM provider"
        )
    tablet = bool(re.search(r"tablet|ipad", r.s.text))
    width = r.get("width", say="width") or r.default(140.0 if tablet else 70.0, "width")
    device = r.get("thickness", "opening", say="device thickness") or r.default(
        12.0, "slot for a device up to"
    )
    height = r.get("height", say="back height") or r.default(
        120.0 if tablet else 90.0, "back height"
    )
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:degrees?|°|deg\b)", r.s.text)
    if m:
        angle = float(m.group(1))
        r.note(f"angle {angle:g} degrees")
        if not 40 <= angle <= 85:
            raise r.missing("an angle between 40 and 85 degrees")
    else:
        angle = 65.0
        r.assume("angle 65 degrees")
    node = spec_node(
        "phone_stand",
        width=width,
        back_height=height,
        angle=angle,
        device_thickness=device,
        base_depth=round(max(90.0, height * 0.8), 1),
    )
    return r.draft("phone_stand", "tablet stand" if tablet else "phone stand", [node])
