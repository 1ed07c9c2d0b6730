"""An opening cut through one wall of an open box: "a 20x10mm cutout in one side for a USB
cable", "a 12 mm hole in the end", "a slot in the front for the cable".

The box families draw their walls centred on X and Y with the floor at z = 0; the opening is a
cutter through one wall, sized as written (W x H: W along the wall, H up it, or a round hole's
diameter). Nothing is guessed: an opening the request gives no size for is left to the
requirement list to ask about (a cable's plug must pass, and plugs differ).
"""

from __future__ import annotations

import re

from printforge.llm.offline.reader import Node, Reader, mm
from printforge.llm.offline.shapes import EPS, box, tr

__all__ = ["CUTOUT_PATTERN", "side_cutout"]

_SIDE_WORDS = (
    r"(?:the\s+|one\s+|1\s+|a\s+|an\s+|each\s+)?(?:long\s+|short\s+)?"
    r"(side|end|wall|front|back|left|right|rear)s?\b"
)
# The named feature (also used by the requirement list, offline/account.py).
CUTOUT_PATTERN = (
    r"\bcut-?outs?\b|\b(?:openings?|slots?|holes?|windows?|notch(?:es)?)\s+(?:[\w.-]+\s+){0,4}?"
    rf"(?:in|on|through|into)\s+{_SIDE_WORDS}"
)


def side_cutout(
    r: Reader, size: tuple[float, float, float], wall: float, floor: float
) -> Node | None:
    """The cutter for the opening the request asks for in a wall of an open box of outer
    `size`; None when it asks for none or gives no size for it. Claims the feature it makes."""
    text = r.s.text
    named = re.search(CUTOUT_PATTERN, text)
    if named is None:
        return None
    side_m = re.search(rf"\b(?:in|on|through|into)\s+{_SIDE_WORDS}", text[named.start() :])
    side = side_m.group(1) if side_m else "side"
    r.s.counts.get(side)  # "in one end": which wall, not one end counted
    pairs = [
        i
        for i, t in enumerate(list.__iter__(r.s.triples))
        if len(t) == 2 and i not in r.s.triples.seen  # type: ignore[attr-defined]
    ]
    round_d = None
    if len(pairs) == 1:
        w, h = r.s.triples[pairs[0]]
        r.note(f"a {mm(w)} x {mm(h)} opening in the {side}")
    elif (round_d := r.get("hole", "diameter", say="opening diameter")) is not None:
        w = h = round_d
        r.note(f"a round {mm(round_d)} opening in the {side}")
    else:
        # No size: a cable's plug (not its socket) must pass, and plugs differ; ask.
        return None
    x, y, z = size
    along_x = side not in ("end", "left", "right")
    span = x if along_x else y
    free = z - floor
    if w >= span - 2 * wall or h > free:
        r.cannot("cutout", f"a {mm(w)} x {mm(h)} opening does not fit in the {side} wall")
        return None
    # A window centred in the wall; one as tall as the wall (less a 1 mm rim) opens at the top.
    z0 = floor + (free - h) / 2 if h <= free - 2.0 else z - h
    top = z + EPS if z0 == z - h else z0 + h
    depth = wall + 2 * EPS
    far = side in ("back", "rear", "right")
    if along_x:
        y0 = (y / 2 - wall - EPS) if far else (-y / 2 - EPS)
        cutter = tr([-w / 2, y0, z0], box(w, depth, top - z0))
    else:
        x0 = (x / 2 - wall - EPS) if far else (-x / 2 - EPS)
        cutter = tr([x0, -w / 2, z0], box(depth, w, top - z0))
    if round_d is not None:
        cyl_axis = {
            "kind": "cylinder",
            "height": round(depth, 4),
            "radius": round(round_d / 2, 4),
            "center": True,
        }
        # A round opening: a cylinder along the wall's normal, at the window's centre.
        turn = [90.0, 0.0, 0.0] if along_x else [0.0, 90.0, 0.0]
        cx = 0.0 if along_x else ((x / 2 - wall / 2) if far else (-x / 2 + wall / 2))
        cy = ((y / 2 - wall / 2) if far else (-y / 2 + wall / 2)) if along_x else 0.0
        cutter = tr(
            [cx, cy, z0 + h / 2],
            {"kind": "rotate", "angles": turn, "children": [cyl_axis]},
        )
    r.claim("cutout")
    return cutter
