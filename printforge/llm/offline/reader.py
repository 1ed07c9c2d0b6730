"""What the offline families share: the reader that takes labelled lengths out of a scan and
records what it used and assumed, screw and board tables, and the common size readers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from printforge.llm.offline.quantities import PHRASE_END_WORDS, Quantity, Scan

__all__ = [
    "Draft",
    "Missing",
    "Node",
    "Reader",
    "clearance_hole",
    "corner_of",
    "hole_recess",
    "iso_nut",
    "mm",
    "pilot_hole",
    "ring_node",
    "ring_triple",
    "round_size",
    "size3",
    "spec_node",
    "tube_dims",
    "wall_of",
]

Node = dict[str, Any]

# ISO 273 medium clearance holes for metric screws, mm.
_CLEARANCE = {2: 2.4, 2.5: 2.9, 3: 3.4, 4: 4.5, 5: 5.5, 6: 6.6, 8: 9.0, 10: 11.0, 12: 13.5}
# ISO 7089 washer outer diameters.
_WASHER_OD = {2: 5.0, 2.5: 6.0, 3: 7.0, 4: 9.0, 5: 10.0, 6: 12.0, 8: 16.0, 10: 20.0, 12: 24.0}
# Tap drills for screws that cut their own thread into a printed post (ISO 261 coarse pitch:
# d - pitch, rounded to the drill sold: M8 6.75 -> 6.8).
_PILOT = {
    1.6: 1.25,
    2: 1.6,
    2.5: 2.05,
    3: 2.5,
    4: 3.3,
    5: 4.2,
    6: 5.0,
    8: 6.8,
    10: 8.5,
    12: 10.2,
    14: 12.0,
    16: 14.0,
    20: 17.5,
    24: 21.0,
}


# ISO 4032 hex nuts and ISO 4017 hex bolt heads: width across flats, nut and head height, mm.
_NUT_AF = {2: 4.0, 2.5: 5.0, 3: 5.5, 4: 7.0, 5: 8.0, 6: 10.0, 8: 13.0, 10: 16.0, 12: 18.0}
# Nut height is ISO 4032's m max (the older DIN 934 heights, 4/5/6.5/8/10 for M5-M12, differ).
_NUT_H = {2: 1.6, 2.5: 2.0, 3: 2.4, 4: 3.2, 5: 4.7, 6: 5.2, 8: 6.8, 10: 8.4, 12: 10.8}
_HEAD_H = {2: 1.4, 2.5: 1.7, 3: 2.0, 4: 2.8, 5: 3.5, 6: 4.0, 8: 5.3, 10: 6.4, 12: 7.5}
# ISO 10642 countersunk heads and ISO 4762 socket heads: head diameter, mm.
_CSK_HEAD = {2: 4.0, 2.5: 5.0, 3: 6.0, 4: 8.0, 5: 10.0, 6: 12.0, 8: 16.0, 10: 20.0, 12: 24.0}
_SOCKET_HEAD = {2: 3.8, 2.5: 4.5, 3: 5.5, 4: 7.0, 5: 8.5, 6: 10.0, 8: 13.0, 10: 16.0, 12: 18.0}

_RECESS = {
    "countersink": r"\bcounter[- ]?sunk\b|\bcounter[- ]?sinks?\b|\bcsk\b",
    "counterbore": r"\bcounter[- ]?bored?s?\b|\bcounter[- ]?bores\b",
    "hex pocket": r"\bhex(?:agon(?:al)?)?\s+(?:pocket|recess|trap|socket|cut-?out|hole)s?\b|"
    r"\bnut\s+(?:trap|pocket|recess|catch)s?\b|\b(?:pocket|recess|trap)s?\s+for\s+"
    r"(?:an?\s+|the\s+)?(?:m\d+(?:\.\d+)?\s+)?(?:hex\s+)?(?:nuts?|bolt\s+heads?)\b|"
    r"\bcaptive\s+nuts?\b",
}


def hole_recess(r: Reader, hole: float) -> tuple[str, float, float]:
    """The head recess the request asks for on its holes: (spec hole_style, diameter or across
    flats, depth), from the screw's standard sizes when one is named; ("plain", 0, 0) if none.
    Claims the feature it reads."""
    text = r.s.text
    screw = r.s.screw
    for feature, pattern in _RECESS.items():
        if not re.search(pattern, text):
            continue
        r.claim(feature)
        if feature == "countersink":
            d = _CSK_HEAD.get(screw or 0) or round(hole * 2, 2)
            r.note(f"countersunk {mm(d)} at the surface")
            return "countersunk", d, 0.0
        if feature == "counterbore":
            d = (_SOCKET_HEAD.get(screw or 0) or hole * 1.8) + 1.0
            depth = round((screw or hole) + 0.5, 2)
            thick = r.thickness_hint
            if thick and depth > thick - 1.2:
                # The head sits partly proud rather than the recess going through.
                depth = round(max(0.6, thick - 1.2), 2)
                r.assume(f"a counterbore {mm(depth)} deep (the head stands proud of the part)")
            r.note(f"counterbored {mm(d)}, {mm(depth)} deep")
            return "counterbored", round(d, 2), depth
        bolt = bool(re.search(r"bolt\s+heads?|head", text))
        thick = r.thickness_hint
        af = (_NUT_AF.get(screw or 0) or round(hole * 1.7, 2)) + 0.2
        depth = (_HEAD_H if bolt else _NUT_H).get(screw or 0) or round(hole * 0.8, 2)
        depth = round(depth + 0.3, 2)
        if thick and depth > thick - 1.0:
            depth = round(max(0.6, thick - 1.0), 2)
            r.assume(f"a hex pocket {mm(depth)} deep (as deep as the part allows)")
        r.note(
            f"a hex pocket {mm(af)} across flats, {mm(depth)} deep,"
            f" for the {'bolt head' if bolt else 'nut'}"
        )
        return "hex_pocket", round(af, 2), depth
    return "plain", 0.0, 0.0


def iso_nut(screw_mm: float | None) -> tuple[float, float] | None:
    """(width across flats, height) of the ISO 4032 hex nut for an M-size screw; None for a
    size the table does not hold."""
    if screw_mm is None or screw_mm not in _NUT_AF:
        return None
    return _NUT_AF[screw_mm], _NUT_H[screw_mm]


def pilot_hole(screw_mm: float) -> float:
    return _PILOT.get(screw_mm, round(screw_mm * 0.82, 2))


def clearance_hole(screw_mm: float) -> float:
    return _CLEARANCE.get(screw_mm, round(screw_mm * 1.1 + 0.1, 2))


# What ends the noun phrase after a length ("a 3 mm hole in a panel": "panel" is not the 3 mm's
# noun): the quantity scanner's joiner words, and punctuation, which reaches this reader's tokens.
_PHRASE_END = PHRASE_END_WORDS | {",", ";", "."}


def _phrase_head(after: list[Any], nouns: set[str]) -> bool:
    """True when one of `nouns` is a word of the noun phrase `after` starts (up to three words,
    ended by a preposition, a joiner, punctuation or another number)."""
    for tok in after:
        if not isinstance(tok, str) or tok in _PHRASE_END:
            return False
        if tok in nouns:
            return True
    return False


def mm(v: float) -> str:
    return f"{v:g} mm" if v == round(v, 2) else f"{v:.2f} mm"


@dataclass
class Draft:
    family: str
    name: str
    parts: list[Node]
    understood: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    # The family already made one part per thing counted ("two gears, 20 and 40 teeth"), so
    # the request's count is not applied again.
    counted: bool = False
    # The reader that made it: which lengths, counts and features it used, and its defaults.
    reader: Reader | None = None
    # The scanned request and the words that named the family (set by the parser).
    scan: Scan | None = None
    named: str = ""
    # False for parts drawn in their print pose from generic nodes (a die sits on a face).
    orient: bool = True


class Missing(Exception):
    def __init__(self, missing: list[str], understood: list[str]) -> None:
        super().__init__("; ".join(missing))
        self.missing = missing
        self.understood = understood


class Reader:
    """Pulls labelled lengths out of a scan and writes down what it used and assumed."""

    def __init__(self, s: Scan, what: str) -> None:
        self.s = s
        self.understood = [what if not re.match(r"a [aeiou]", what) else "an" + what[1:]]
        self.assumed: list[str] = []
        self._used: set[int] = set()
        # What each used length was taken as ("outer diameter"), by the Quantity's id.
        self.said: dict[int, str] = {}
        # Defaults chosen for what the request left open: (what, value in mm or None).
        self.defaults: list[tuple[str, float | None]] = []
        # Named features (see offline/account.py) the family realised or handled.
        self.claimed: set[str] = set()
        # Features the family knows it cannot do, with why: they become not_built.
        self.refused: dict[str, str] = {}
        # The part's thickness where the family knows it before cutting recesses into it.
        self.thickness_hint: float | None = None

    def use(self, q: Quantity, say: str) -> float:
        """Mark `q` as used (taken as `say`) and return its length."""
        self._used.add(id(q))
        self.said[id(q)] = say
        self.understood.append(f"{say} {mm(q.mm)}")
        return q.mm

    def used(self, q: Quantity) -> bool:
        return id(q) in self._used

    def claim(self, *features: str) -> None:
        """The design realises these named features (or their absence, when negated)."""
        self.claimed.update(features)

    def cannot(self, feature: str, why: str) -> None:
        """The design cannot realise this named feature: it becomes a not_built requirement."""
        self.refused[feature] = why

    def get(self, *labels: str, say: str | None = None) -> float | None:
        for q in self.s.quantities:
            if q.label in labels and id(q) not in self._used:
                return self.use(q, say or labels[0].replace("_", " "))
        return None

    def followed_by(self, nouns: set[str], say: str, after: set[str] | None = None) -> float | None:
        """A length written just before one of `nouns` ("a 20 mm rail"), not yet used; with
        `after`, only when one of those words comes just before it ("for a 22 mm tube")."""
        tokens = self.s.tokens
        for i, tok in enumerate(tokens[:-1]):
            nxt = tokens[i + 1]
            if after is not None and not any(
                isinstance(t, str) and t in after for t in tokens[max(0, i - 2) : i]
            ):
                continue
            if (
                isinstance(tok, Quantity)
                and id(tok) not in self._used
                and (
                    (isinstance(nxt, str) and nxt in nouns)
                    # "a 6 mm shelf board": the noun may end a phrase of two or three words.
                    or _phrase_head(tokens[i + 1 : i + 4], nouns)
                    or (
                        isinstance(nxt, str)
                        and nxt in ("diameter", "thick", "wide")
                        and i + 2 < len(tokens)
                        and isinstance(tokens[i + 2], str)
                        and tokens[i + 2] in nouns
                    )
                )
            ):
                return self.use(tok, say)
        return None

    def of_thing(self, nouns: set[str], labels: set[str], say: str) -> float | None:
        """A length labelled one of `labels` that the words just before it give to one of
        `nouns` ("over a door, the door is 35 mm thick"): a size of what the part fits."""
        tokens = self.s.tokens
        for i, tok in enumerate(tokens):
            if not isinstance(tok, Quantity) or tok.label not in labels or id(tok) in self._used:
                continue
            before = [t for t in tokens[max(0, i - 3) : i] if isinstance(t, str)]
            # Only the words of its own clause: in "a 3 mm desk panel, 8 mm cable opening" the
            # panel is not the 8 mm's thing.
            cut = [k for k, t in enumerate(before) if t in {",", ";", "."}]
            if cut:
                before = before[cut[-1] + 1 :]
            if any(t in nouns for t in before):
                return self.use(tok, say)
        return None

    def free(self) -> list[Quantity]:
        """Lengths nobody labelled, in order, not yet used."""
        return [q for q in self.s.unlabelled() if id(q) not in self._used]

    def take_free(self, say: str) -> float | None:
        free = self.free()
        if not free:
            return None
        return self.use(free[0], say)

    def default(self, value: float, say: str) -> float:
        self.assumed.append(f"{say} {mm(value)}")
        self.defaults.append((say, value))
        return value

    def assume(self, text: str) -> None:
        """A choice that is not one length ("a belly-and-neck profile"), listed as assumed."""
        self.assumed.append(text)
        self.defaults.append((text, None))

    def note(self, text: str) -> None:
        self.understood.append(text)

    def missing(self, *what: str) -> Missing:
        return Missing(list(what), self.understood)

    def draft(self, family: str, name: str, parts: list[Node]) -> Draft:
        return Draft(family, name, parts, self.understood, self.assumed, reader=self)

    def diameter(self) -> float | None:
        """A diameter, from a radius when that is what was given."""
        d = self.get("diameter", "outer_diameter", say="diameter")
        if d is None:
            r = self.get("radius", say="radius")
            if r is not None:
                d = 2 * r
        if d is None:
            # "1 inch wide" on a round part is its diameter.
            d = self.get("width", say="diameter")
        return d

    def hole(self) -> float | None:
        d = self.get("hole", "inner_diameter", say="hole diameter")
        if d is None:
            r = self.get("inner_radius", say="hole radius")
            d = 2 * r if r is not None else None
        if d is None and self.s.screw is not None:
            d = clearance_hole(self.s.screw)
            self.understood.append(f"{self.s.screw_name} screws ({mm(d)} clearance holes)")
        return d


def size3(r: Reader) -> tuple[float, float, float] | None:
    """An [x, y, z] size: '20x30x10', length/width/height words, or one side for a cube."""
    triple = next((t for t in r.s.triples if len(t) == 3), None)
    if triple is not None:
        x, y, z = triple
        r.note(f"size {mm(x)} x {mm(y)} x {mm(z)}")
        return x, y, z
    pair = next((t for t in r.s.triples if len(t) == 2), None)
    if pair is not None and r.s.first("height", "depth", "thickness") is not None:
        # "a tray 8.5 x 11 inches, 1 inch deep": the footprint, then how tall.
        height = r.get("height", "depth", "thickness", say="height")
        if height is not None:  # None when the family already took that one
            r.note(f"footprint {mm(pair[0])} x {mm(pair[1])}")
            return pair[0], pair[1], height
    length = r.get("length", say="length")
    width = r.get("width", say="width")
    height = r.get("height", "thickness", say="height")
    depth = r.get("depth", say="depth")
    across = [v for v in (length, width, depth) if v is not None]
    if height is not None and len(across) >= 2:
        return across[0], across[1], height
    if height is None and len(across) == 3:
        return length, width, depth  # type: ignore[return-value]  # "40 deep": how tall
    height = height if height is not None else depth
    if height is not None and len(across) == 1 and re.search(r"\bsquare\b", r.s.text):
        return across[0], across[0], height
    if height is not None and not across and re.search(r"\bsquare\b", r.s.text) and r.free():
        side = r.take_free("side")
        return side, side, height  # type: ignore[return-value]
    side = r.get("side", say="side") or (r.take_free("size") if len(r.free()) == 1 else None)
    if side is not None and not (length or width or height):
        return side, side, side
    return None


def _tidy(v: Any) -> Any:
    # 3 * 25.4 is 76.19999999999999; specs read better (and compare) at a micrometre.
    if isinstance(v, float):
        return round(v, 3)
    if isinstance(v, list | tuple) and all(isinstance(x, int | float) for x in v):
        return [round(float(x), 3) if isinstance(x, float) else x for x in v]
    return v


def spec_node(kind: str, **fields: Any) -> Node:
    return {"kind": kind, **{k: _tidy(v) for k, v in fields.items()}}


def ring_node(kind: str, od: float, inner: float, h: float, **extra: Any) -> Node:
    return spec_node(
        kind,
        outer_diameter=od,
        inner_diameter=inner,
        **extra,
        **({"height": h} if kind == "tube" else {"thickness": h}),
    )


def ring_triple(r: Reader) -> tuple[float, float, float] | None:
    """'a tube 40 x 36 x 150' with no labels: outside, inside and length, as ring sizes are
    written; None when there is no such triple."""
    t = next((t for t in r.s.triples if len(t) == 3), None)
    if (
        t is None
        or not t[1] < t[0]
        or r.s.all("outer_diameter", "inner_diameter", "diameter", "wall", "hole")
    ):
        return None
    r.note(f"outside {mm(t[0])}, inside {mm(t[1])}, {mm(t[2])}")
    return t[0], t[1], t[2]


_RIDES_ON = {"pipe", "pipes", "tube", "tubes", "rod", "rods", "axle", "dowel", "bar", "pole"}


def tube_dims(r: Reader, what: str) -> tuple[float, float]:
    od: float | None
    inner: float | None
    if re.search(r"\breduc", r.s.text):
        # "a bushing to reduce a 22 mm hole to 8 mm": the hole it fills, and the new one.
        sizes = [
            q
            for q in r.s.quantities
            if q.label in (None, "hole", "inner_diameter", "diameter", "shaft")
        ]
        if len(sizes) >= 2:
            for q in sizes[:2]:
                r.s.tokens.remove(q)
            od, inner = max(sizes[0].mm, sizes[1].mm), min(sizes[0].mm, sizes[1].mm)
            r.note(f"fills a {mm(od)} hole, leaves {mm(inner)}")
            return od, inner
    on = r.followed_by(
        _RIDES_ON, say="slides onto a", after={"on", "onto", "over", "for", "fit", "fits"}
    )
    if on is not None and what in ("spacer", "washer"):
        # "a spacer ring to go on a 30 mm pipe": it slides on with 0.4 mm of play.
        inner = round(on + 0.4, 2)
        od = r.get("outer_diameter", "diameter", say="outer diameter") or r.default(
            round(inner + 6.0, 1), "outer diameter"
        )
        return od, inner
    od = r.get("outer_diameter", "diameter", say="outer diameter")
    if od is None and (rad := r.get("radius", say="outer radius")) is not None:
        od = 2 * rad
    inner = r.get("inner_diameter", "hole", "shaft", say="inner diameter")
    if inner is None and (ir := r.get("inner_radius", say="inner radius")) is not None:
        inner = 2 * ir
    if inner is None and r.s.screw is not None:
        inner = clearance_hole(r.s.screw)
        r.note(f"for {r.s.screw_name} ({mm(inner)} hole)")
    wall = r.get("wall", say="wall")
    if inner is None and r.s.bearing is not None and what in ("spacer", "washer"):
        # A spacer or shim for a bearing rides its shaft and presses on the inner race only,
        # so the outer ring stays free to turn.
        name, bore, outer, _ = r.s.bearing
        inner = round(bore + 0.2, 2)
        r.note(f"for a {name} bearing ({mm(bore)} bore, {mm(outer)} outside; {mm(inner)} hole)")
        if od is None and wall is None:
            od = r.default(round(bore + (outer - bore) / 4, 1), "outer diameter (inner race)")
    if od is None and inner is not None and wall is not None:
        od = inner + 2 * wall
    if inner is None and od is not None and wall is not None:
        inner = od - 2 * wall
    if od is None:
        od = r.get("width", say="outer diameter")
    if od is None and len(r.free()) == 1 and (inner is None or r.free()[0].mm > inner):
        od = r.take_free("outer diameter")
    if od is None and inner is not None and r.s.screw is not None and what in ("washer", "spacer"):
        od = _WASHER_OD.get(r.s.screw, inner * 2.2) * (1.0 if what == "washer" else 0.9)
        r.default(od, "outer diameter")
    if od is None or inner is None:
        need = []
        if od is None:
            need.append(f"the {what}'s outer diameter")
        if inner is None:
            need.append("its inner diameter, hole size or wall thickness")
        raise r.missing(*need)
    return od, inner


def round_size(r: Reader, default_ratio: float | None = None) -> tuple[float, float]:
    """(diameter, height); with `default_ratio`, a missing diameter is that share of the height."""
    d = r.diameter()
    h = r.get("height", "depth", say="height")
    if d is None and r.free():
        d = r.take_free("diameter")
    if h is None and r.free():
        h = r.take_free("height")
    if d is None and h is not None and default_ratio is not None:
        d = r.default(round(h * default_ratio, 1), "diameter")
    if d is None or h is None:
        raise r.missing(
            *(["a diameter"] if d is None else []), *(["a height"] if h is None else [])
        )
    return d, h


def corner_of(r: Reader, x: float, y: float) -> float:
    """The corner radius asked for; "rounded corners" alone gets a fifth of the short side,
    at most 5 mm."""
    c = r.get("corner_radius", say="corner radius")
    rounded = re.search(r"\b(rounded|round|radiused|filleted)\s+(corners|edges)", r.s.text)
    if c is None and rounded:
        c = r.get("radius", say="corner radius")  # "rounded corners, r5"
    if c is not None:
        r.claim("rounded corners")
        return c
    if rounded:
        r.claim("rounded corners")
        return r.default(round(min(5.0, min(x, y) / 5), 1), "corner radius")
    return 0.0


def wall_of(r: Reader, default: float = 2.0) -> float:
    w = r.get("wall", say="wall")
    return w if w is not None else r.default(default, "wall")
