"""Reading numbers and lengths out of a sentence: words, fractions, units, and what each length is.

`scan(text)` turns a request into tokens where every length is one `Quantity` in millimetres,
labelled by the words around it (diameter, radius, across flats, wall, height, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from text_to_num import alpha2digit

from printforge.llm.offline.boards import board_name_span
from printforge.llm.offline.quotes import find_quotes, mask_quotes
from printforge.llm.offline.spelling import read_spelling

__all__ = ["Quantity", "Scan", "number_words_to_digits", "scan"]

_UNITS = {
    "mm": 1.0,
    "millimeter": 1.0,
    "millimeters": 1.0,
    "millimetre": 1.0,
    "millimetres": 1.0,
    "cm": 10.0,
    "centimeter": 10.0,
    "centimeters": 10.0,
    "centimetre": 10.0,
    "centimetres": 10.0,
    "in": 25.4,
    "inch": 25.4,
    "inches": 25.4,
    '"': 25.4,
    "″": 25.4,
    "ft": 304.8,
    "foot": 304.8,
    "feet": 304.8,
    "m": 1000.0,
    "meter": 1000.0,
    "meters": 1000.0,
    "metre": 1000.0,
    "metres": 1000.0,
}

# Which words around a length say what it is. Checked after the length first ("20 mm tall"),
# then before it ("height of 20 mm"); multi-word phrases before single words.
_LABELS: list[tuple[str, str]] = [
    ("across flats", "across_flats"),
    ("across the flats", "across_flats"),
    ("af", "across_flats"),
    ("across corners", "across_corners"),
    ("across the corners", "across_corners"),
    ("corner to corner", "across_corners"),
    ("across points", "across_corners"),
    ("inner diameter", "inner_diameter"),
    ("inside diameter", "inner_diameter"),
    ("internal diameter", "inner_diameter"),
    ("id", "inner_diameter"),
    ("bore", "inner_diameter"),
    ("outer", "outer_diameter"),
    ("inner", "inner_diameter"),
    ("outside", "outer_diameter"),
    ("inside", "inner_diameter"),
    ("outer diameter", "outer_diameter"),
    ("outside diameter", "outer_diameter"),
    ("external diameter", "outer_diameter"),
    ("od", "outer_diameter"),
    ("wall thickness", "wall"),
    ("walls", "wall"),
    ("wall", "wall"),
    ("thick walls", "wall"),
    # "a 2 mm floor", "a 3 mm bottom" of a box; "bottom diameter" is a diameter.
    ("bottom diameter", "diameter"),
    ("base diameter", "diameter"),
    ("floor thickness", "floor"),
    ("floor", "floor"),
    ("bottom thickness", "floor"),
    ("thick floor", "floor"),
    ("thick bottom", "floor"),
    ("bottom", "floor"),
    ("inner radius", "inner_radius"),
    ("inside radius", "inner_radius"),
    ("outer radius", "radius"),
    ("radius", "radius"),
    ("radii", "radius"),
    ("diameter", "diameter"),
    ("dia", "diameter"),
    ("across", "diameter"),
    ("round shaft", "shaft"),
    ("round", "diameter"),
    ("hole spacing", "spacing"),
    ("hole centers", "spacing"),
    ("hole centres", "spacing"),
    ("center to center", "spacing"),
    ("centre to centre", "spacing"),
    ("centers", "spacing"),
    ("c c", "spacing"),
    ("cc", "spacing"),
    ("plant", "plant"),
    ("d shaft", "shaft"),
    ("shaft", "shaft"),
    ("spout", "spout"),
    ("rim", "rim"),
    ("tip", "tip"),
    ("thin end", "tip"),
    ("drain hole", "hole"),
    ("drainage hole", "hole"),
    ("drain", "hole"),
    ("holes", "hole"),
    ("hole", "hole"),
    ("bolt", "hole"),
    ("bolts", "hole"),
    ("screw", "hole"),
    ("screws", "hole"),
    ("apart", "spacing"),
    ("spacing", "spacing"),
    ("spaced", "spacing"),
    ("pitch", "spacing"),
    ("on center", "spacing"),
    ("on centers", "spacing"),
    ("centres", "spacing"),
    ("thick", "thickness"),
    ("thickness", "thickness"),
    ("tall", "height"),
    ("high", "height"),
    ("height", "height"),
    ("long", "length"),
    ("legs", "length"),
    ("length", "length"),
    ("wide", "width"),
    ("width", "width"),
    ("deep", "depth"),
    ("depth", "depth"),
    ("side", "side"),
    ("sides", "side"),
    ("edge", "side"),
    ("edges", "side"),
    ("cube", "side"),
    ("module", "module"),
    ("mod", "module"),
    ("face width", "thickness"),
    ("opening", "opening"),
    ("gap", "opening"),
    ("grip", "opening"),
    ("slot", "opening"),
    # "holes 5 mm in from the corners", "8 mm from the edge": where holes sit, not their size.
    ("in from", "inset"),
    ("inset", "inset"),
    ("from the edges", "inset"),
    ("from the edge", "inset"),
    ("from each edge", "inset"),
    ("from the corners", "inset"),
    ("from the corner", "inset"),
    ("from each corner", "inset"),
    ("from the sides", "inset"),
    ("from the ends", "inset"),
    ("from the end", "inset"),
    ("from each end", "inset"),
    ("from either end", "inset"),
    ("from both ends", "inset"),
    ("from the edges", "inset"),
    ("from the outside", "inset"),
    ("clearance", "clearance"),
    ("reach", "reach"),
    # "20 mm of room above the board": the free height above what it holds.
    ("of room", "height"),
    ("of space", "height"),
    ("room above", "height"),
    ("space above", "height"),
    ("clearance above", "height"),
    # "25 mm of headroom" above an enclosure's board is the height the enclosure reads.
    ("of headroom", "height"),
    ("headroom", "height"),
    ("head room", "height"),
    ("hook", "reach"),
    ("text", "text_height"),
    ("letters", "text_height"),
    ("font", "text_height"),
    ("rounded corners", "corner_radius"),
    ("corner radius", "corner_radius"),
    ("corners", "corner_radius"),
    ("fillet", "corner_radius"),
]
_SHORT = {
    "r": "radius",
    "h": "height",
    "d": "diameter",
    "l": "length",
    "w": "width",
    "t": "thickness",
    "m": "module",
    "od": "od",
    "id": "id",
}
_BEFORE_ONLY: set[str] = set()
_STOP = {",", ";", "and", "with", "plus", "but", "."}


@dataclass
class Quantity:
    mm: float
    text: str
    unit: str | None
    label: str | None = None
    start: int = 0

    def __repr__(self) -> str:
        return f"Q({self.mm:g} mm {self.label or '?'})"


class Tracked(dict[str, Any]):
    """A table that remembers which keys a family read: a count it looked at was used, one it
    never looked at is reported as not built."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def items(self) -> Any:
        self.read.update(self.keys())
        return super().items()

    def values(self) -> Any:
        self.read.update(self.keys())
        return super().values()


class TrackedList(list[Any]):
    """A list that remembers which of its items a family looked at (sizes like 20x30x10): a
    second size the family never reached ("a 20 x 10 cutout" on a 50x50x20 box) is not built."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: set[int] = set()

    @property
    def read(self) -> bool:
        return bool(self.seen)

    def __iter__(self) -> Any:
        # Items are marked as they are handed out: `next(t for t in triples if ...)` reads
        # the ones it passed over and the one it took, not the ones after it.
        for i in range(len(self)):
            self.seen.add(i)
            yield super().__getitem__(i)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            self.seen.update(range(len(self))[index])
        else:
            self.seen.add(range(len(self))[index])
        return super().__getitem__(index)


# Facts of the request whose reading by a family counts as using them.
_TRACKED_FACTS = frozenset({"screw", "bearing", "extrusion", "nema", "cells"})


@dataclass
class Scan:
    text: str
    raw: str = ""
    tokens: list[str | Quantity] = field(default_factory=list)
    triples: list[tuple[float, ...]] = field(default_factory=TrackedList)
    counts: dict[str, int] = field(default_factory=Tracked)
    screw: float | None = None  # the screw's diameter in mm: M3, #8, 1/4-20
    screw_name: str = ""
    quoted: list[str] = field(default_factory=list)
    assumed_mm: bool = False
    assumed_inch: bool = False  # a fraction without a unit ("3/8") was read as inches
    # Sizes written with a minus sign ("-20 x 10"): never silently read as positive.
    negatives: list[str] = field(default_factory=list)
    # "a 2x4 grid of holes", "3 x 2 compartments": (columns, rows) per counted noun.
    grids: dict[str, tuple[int, int]] = field(default_factory=Tracked)
    copies: int = 1  # "4 spacers", "a set of 6 coasters"
    # A ball bearing named by its series number ("a 608 bearing"): (name, bore, outer, width).
    bearing: tuple[str, float, float, float] | None = None
    # An aluminium profile named by its section ("2020 extrusion"): its side in mm.
    extrusion: float | None = None
    # Its other side: 40 for a 2040 profile (20 x 40 mm), the same as `extrusion` for a 2020.
    extrusion_long: float | None = None
    # A stepper motor by NEMA frame size ("nema 17"): the number is a name, not a length.
    nema: int | None = None
    # Battery cells named by size ("18650"): names, never lengths.
    cells: list[str] = field(default_factory=list)
    # Every length as scanned, before a family takes any out of `tokens`.
    scanned: list[Quantity] = field(default_factory=list)
    # Which of the tracked facts (_TRACKED_FACTS) a family read.
    facts_read: set[str] = field(default_factory=set)
    # Angles in degrees with where they were written ("60 degrees", "20 to 70 degrees").
    angles: list[tuple[float, str]] = field(default_factory=list)
    # Words read as a keyword they are one slip from ("pegbaord" -> "pegboard"), said back.
    corrected: list[tuple[str, str]] = field(default_factory=list)
    # Words two slips from a family's name ("pgeobard"): asked about, never guessed.
    unsure: list[tuple[str, str]] = field(default_factory=list)

    def __getattribute__(self, name: str) -> Any:
        if name in _TRACKED_FACTS:
            object.__getattribute__(self, "facts_read").add(name)
        return object.__getattribute__(self, name)

    def reset_reads(self) -> None:
        """Forget what the parser itself looked at; from here on reads are the family's."""
        self.counts.read.clear()  # type: ignore[attr-defined]
        self.grids.read.clear()  # type: ignore[attr-defined]
        self.triples.seen.clear()  # type: ignore[attr-defined]
        self.facts_read.clear()

    @property
    def quantities(self) -> list[Quantity]:
        return [t for t in self.tokens if isinstance(t, Quantity)]

    def first(self, *labels: str) -> Quantity | None:
        return next((q for q in self.quantities if q.label in labels), None)

    def all(self, *labels: str) -> list[Quantity]:
        return [q for q in self.quantities if q.label in labels]

    def unlabelled(self) -> list[Quantity]:
        return [q for q in self.quantities if q.label is None]


# "a couple", "a pair", "a dozen": counts said as words (text2num reads cardinals only).
_GROUP_WORDS = [
    (re.compile(r"\bhalf\s+a\s+dozen\b"), "6"),
    (re.compile(r"\b(?:a|one)\s+dozen(?:\s+of)?\b"), "12"),
    (re.compile(r"\ba\s+couple(?:\s+of)?\b"), "2"),
    (re.compile(r"\ba\s+pair\s+of\b"), "2"),
]
_ORDINAL = re.compile(
    r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|"
    r"twelfth|\w+teenth|\w+ieth)s?\b"
)
_UNIT_WORD = r"(?:inch(?:es)?|in\b|\"|cm|mm|centimet(?:er|re)s?|millimet(?:er|re)s?|foot|feet|ft\b)"
_FRACTION_NAMES = {"half": 0.5, "halves": 0.5, "quarter": 0.25, "third": 1 / 3, "eighth": 0.125}
# "five eighths of an inch", "three quarter inch": a count of fractions, only with a unit
# ("three quarters" alone may be coins).
_COUNTED_FRACTION = re.compile(
    rf"\b([a-z]+(?:[ -][a-z]+)?|\d+)\s+(quarter|eighth|third|sixteenth)s?\s+(?:of\s+an?\s+)?"
    rf"(?={_UNIT_WORD})"
)


def _cardinals(text: str) -> str:
    """Spelled cardinal numbers to digits with text2num (hyphens, hundreds, "point five"),
    leaving ordinals alone ("the second hole" is not "the 2nd hole")."""
    out, pos = [], 0
    for m in _ORDINAL.finditer(text):
        out.append(alpha2digit(text[pos : m.start()], "en", threshold=0) if m.start() > pos else "")
        out.append(m.group(0))
        pos = m.end()
    out.append(alpha2digit(text[pos:], "en", threshold=0) if pos < len(text) else "")
    return "".join(out)


def number_words_to_digits(text: str) -> str:
    """'twenty five' -> '25', 'one and a half' -> '1.5', 'half an inch' -> '0.5 inch',
    'a couple of' -> '2'."""
    t = text
    for pattern, digits in _GROUP_WORDS:
        t = pattern.sub(digits, t)

    def counted_fraction(m: re.Match[str]) -> str:
        n = _cardinals(m.group(1)).strip()
        if not re.fullmatch(r"\d+(?:\.\d+)?", n):
            return m.group(0)
        part = {"quarter": 0.25, "eighth": 0.125, "third": 1 / 3, "sixteenth": 0.0625}
        return f"{float(n) * part[m.group(2)]:g} "

    t = _COUNTED_FRACTION.sub(counted_fraction, t)
    # "the broken one on my amp", "a new one for the door": "one" standing for a thing is no
    # number (it was read as a 1 mm shaft); a word that is never a size takes its place.
    t = re.sub(
        r"\b((?:the|this|that|my|your|our|his|her|their|another|a|an)\s+(?:[a-z]+\s+){0,2}?)"
        # Not before "and a half", "or", "to", "in" (a number's company: "one and a half
        # inch", "one in long").
        r"one\b(?=\s*(?:$|[,.;!?)]|(?:on|for|from|with|that|which|i|we|you|was|but|it|so)\b))",
        r"\1item",
        t,
    )
    t = _cardinals(t)
    # "1 and a half", "2 and a quarter": what text2num leaves of a mixed number.
    t = re.sub(
        r"(\d+(?:\.\d+)?)\s+and\s+(?:a\s+)?(half|quarter)\b",
        lambda m: f"{float(m.group(1)) + _FRACTION_NAMES[m.group(2)]:g}",
        t,
    )
    # "half an inch", "half inch", "a quarter inch": a length; "half a sphere" is a shape.
    t = re.sub(
        rf"\b(?:an?\s+)?(half|quarter)\s+(?:an?\s+)?(?={_UNIT_WORD})",
        lambda m: f"{_FRACTION_NAMES[m.group(1)]:g} ",
        t,
    )
    # "a foot long", "an inch": one of the unit; "a foot for my shelf" is a part.
    t = re.sub(
        r"\ba\s+(?=(?:foot|meter|metre)\s+(?:long|tall|wide|high|deep|across|square)\b)",
        "1 ",
        t,
    )
    return re.sub(r"\b(?:an\s+(?=inch\b)|a\s+(?=centimet(?:er|re)\b))", "1 ", t)


_NUM = r"(?:\d+(?:\.\d+)?(?:[ -]\d+/\d+)?|\d+/\d+|\.\d+)"
# "in" is inches only where it is a unit: "220-250 in 5 degree steps", "1 to 10 mm in 1 mm
# steps", "4 pens in a row" use it as a preposition.
_IN_WORD = (
    r"in(?!\s+(?:\d|\.\d|(?:a|an|the|my|your|each|every|one|two|steps?|increments?|total|place|"
    r"line|rows?|between|order|it|them|half|of)\b))"
)
_UNIT_RE = "|".join(
    _IN_WORD if u == "in" else re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)
)
_QTY = re.compile(rf"(?<![\w.])({_NUM})\s*({_UNIT_RE})?(?![\w/])")
_TRIPLE = re.compile(
    rf"(?<![\w.])({_NUM})\s*({_UNIT_RE})?\s*(?:x|by|\*)\s*({_NUM})\s*({_UNIT_RE})?"
    rf"(?:\s*(?:x|by|\*)\s*({_NUM})\s*({_UNIT_RE})?)?(?![\w/])"
)
# Deep-groove ball bearings makers name by number: bore, outer diameter, width in mm (the
# ISO 15 dimension series every maker's catalogue lists). 608 is the skateboard bearing.
_BEARINGS = {
    "603": (3, 9, 5),
    "604": (4, 12, 4),
    "605": (5, 14, 5),
    "606": (6, 17, 6),
    "607": (7, 19, 6),
    "608": (8, 22, 7),
    "609": (9, 24, 7),
    "623": (3, 10, 4),
    "624": (4, 13, 5),
    "625": (5, 16, 5),
    "626": (6, 19, 6),
    "627": (7, 22, 7),
    "628": (8, 24, 8),
    "629": (9, 26, 8),
    "688": (8, 16, 5),
    "6000": (10, 26, 8),
    "6001": (12, 28, 8),
    "6002": (15, 32, 9),
    "6003": (17, 35, 10),
    "6200": (10, 30, 9),
    "6004": (20, 42, 12),
    "6005": (25, 47, 12),
    "6201": (12, 32, 10),
    "6202": (15, 35, 11),
    "6203": (17, 40, 12),
    "6204": (20, 47, 14),
    "6205": (25, 52, 15),
    "6800": (10, 19, 5),
    "6801": (12, 21, 5),
    "mr105": (5, 10, 4),
    "mr85": (5, 8, 2.5),
    "mr63": (3, 6, 2.5),
}
_BEARING = re.compile(
    r"\b((mr\d{2,3}|6\d{2,3})(?:[- ]?(?:zz|2rs|rs|2z|z))?)\s+(?:ball\s+)?bearings?\b"
    r"|\bskate(?:board)?\s+bearings?\b"
)
# "2020", "3030", "2040" V-slot: the section of an aluminium profile, 20 x 20 mm and so on.
_EXTRUSION = re.compile(
    r"\b([234]0)([2-8]0)\b(?=(?:\s+[a-z-]+){0,2}?\s+(?:extrusions?|profiles?|v-?slots?|"
    r"t-?slots?|alu(?:minium|minum)?|rails?)\b)|\b(?:v-?slot|t-?slot|extrusion|profile)\s+"
    r"([234]0)([2-8]0)\b"
)
# Cylindrical cells named by diameter and length in the name (18650: 18 x 65.0 mm).
_CELL = re.compile(
    r"\b(10440|14500|16340|18350|18500|18650|21700|26650|32700|lr44|cr2032|"
    r"cr2025|cr2016)(?=\s*(?:li-?ion\s+)?(?:batter(?:y|ies)|cells?|s)?\b)"
)
_SCREW = re.compile(r"\bm(\d+(?:\.\d+)?)\b")
# Unified (inch) screws: numbered gauges and fractional sizes, optionally with threads per inch.
_NUMBERED = {"#2": 2.18, "#4": 2.84, "#6": 3.51, "#8": 4.17, "#10": 4.83, "#12": 5.49}
_IMPERIAL_SCREW = re.compile(r"(#\d+)(?:\s*-\s*(\d+))?(?!\d)|(\d+/\d+)-(\d+)(?![\d/])")
# A minus sign before a number that is not a range ("10-20") or a fraction ("1-1/2").
_NEGATIVE = re.compile(r"(?:^|(?<=[\s(:=,x\-−–]))[-−–]\s*(\d+(?:\.\d+)?|\.\d+)")
_GRID = re.compile(
    r"(?<![\w.])(\d+)\s*(?:x|by)\s*(\d+)(?![\d.])\s*(?:-\s*)?(?:grid|array|pattern|matrix)?\s*"
    r"(?:of\s+)?(?:(?!(?:with|and|in|on|mm|cm|inch|inches|ft)\b)(?:m\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*"
    r'(?:mm|cm|inch|in|")?|[a-z]+)\s+)?(holes?|compartments?|cells?|slots?|sections?|bins?'
    r"|pockets?|dividers?)\b"
)
# "two 5 mm holes": a count, then the size of each.
_COUNT_OF_SIZED = re.compile(
    rf"(?<![\w.])(\d+)\s+(?=(?:{_NUM})\s*(?:mm|cm|inch|in|\"|m)?\s*(?:diameter\s+|dia\s+)?"
    r"(?:holes?|screws?|slots?|magnets?|pegs?)\b)"
)
# "two 50 mm legs", "3 10mm rods": a count, then the size of each (any plural noun).
_COUNT_OF_SIZED_ANY = re.compile(
    rf"(?<![\w.])(\d+)\s+(?={_NUM}\s*(?:mm|cm|inch(?:es)?|in|\"|m)?\s*(?:[a-z]+\s+)?"
    r"([a-z]{3,}s)\b)"
)
# "4 rows of 6": a grid counted in words.
_ROWS_OF = re.compile(r"(?<![\w.])(\d+)\s+rows?\s+of\s+(\d+)(?![\w.])")
# What a bare number before a word is not: the word names the length, not a thing counted.
_LENGTH_WORDS = frozenset(
    {"x", "by", "and", "or", "to", "with", "for", "on", "in", "at", "of", "from", "mm", "cm"}
)
_COUNTED = re.compile(
    r"(?<![\w.])(\d+)\s*(?:-\s*)?(?:x\s+)?(?:(?!(?:mm|cm|in|inch|inches|ft|m|with|and|a|an|the|on|at|of|for)\b)"
    r"[a-z][a-z0-9.]*\s+){0,2}?"
    r"(holes?|teeth|tooth|slots?|compartments?|sections?|cells?|pockets?|dividers?|"
    # "2 screw holes" counts holes: "screw" there says what the holes are for.
    r"screws?(?!\s+holes?\b)|sides?|points?|hooks?|legs?|pegs?|prongs?|fingers?|copies|pieces|parts|ports?|"
    r"gang|bay|way|channel|"
    # What a holder holds is counted, never a length: "for 5 cables", "4 AA batteries".
    r"cables|cards|batteries|cells|pens|pencils|brushes|toothbrushes|screwdrivers|markers|"
    r"bits|tools|bottles|spools|knives|spoons|forks|"
    r"corners)\b"
)


_COPIES = re.compile(
    r"^(?:(?:please|can|could|would|you|i|we|need|want|would like|'d like|like|make|print|"
    r"create|design|get|give|me|us|some|a set of|set of)\s+)*"
    r"(\d+)\s+(?:x\s+)?(?:identical\s+|copies of\s+|(?:an?\s+)?(?!(?:mm|cm|in|inch|inches|"
    r"ft|x|by)\b)[a-z0-9.\-/\"]+\s+){0,3}?([a-z]+s)\b"
)
_MORE_COPIES = re.compile(
    r"\b([a-z]+)\s*x\s*(\d{1,2})\s*[.!]?\s*$|(?:\bqty|\bquantity)\s*:?\s*(\d{1,2})\b"
    r"|(?<![\w.])(\d{1,2})\s*(?:pcs|off)\b|\b(?:set|pack|batch|lot)\s+of\s+(\d{1,2})\b"
    r"|(?<![\w.])(\d{1,2})\s+of\s+(?:them|these|those|each)\b"
)
_NOT_COPIES = {
    "teeth",
    "holes",
    "sides",
    "points",
    "ridges",
    "compartments",
    "slots",
    "mm",
    "inches",
    "degrees",
    "screws",
    "legs",
    "letters",
    "cms",
    "sections",
    "cells",
    "pockets",
}


def _to_float(raw: str) -> float:
    raw = raw.strip()
    if "/" in raw:
        whole, _, frac = raw.replace("-", " ").rpartition(" ")
        num, den = frac.split("/")
        value = float(num) / float(den) if float(den) else 0.0
        return value + (float(whole) if whole.strip() else 0.0)
    return float(raw)


_N = r"(\d+(?:\.\d+)?)"
_U = r"\s*(mm|cm|inch(?:es)?|in\b|\"|ft\b)?"
_SEP = r"\s*(?:x|by|\*)\s*"
# "W 80 x D 60 x H 40 mm" and "80W x 60D x 40H": sizes labelled by axis, in any order.
_AXIS_BEFORE = re.compile(
    rf"\b([lwdh])\s*[:=]?\s*{_N}{_U}{_SEP}([lwdh])\s*[:=]?\s*{_N}{_U}"
    rf"(?:{_SEP}([lwdh])\s*[:=]?\s*{_N}{_U})?"
)
_AXIS_AFTER = re.compile(
    rf"(?<![\w.]){_N}\s*([lwdh]){_U}{_SEP}{_N}\s*([lwdh]){_U}(?:{_SEP}{_N}\s*([lwdh]){_U})?\b"
)
_AXIS_ORDER = {"l": 0, "w": 1, "d": 2, "h": 3}


def _axis_sizes(m: re.Match[str], after: bool) -> str:
    """The labelled sizes as 'length x width x height' (the order every family reads)."""
    groups = m.groups()
    items = []
    for k in range(0, len(groups), 3):
        axis, num, unit = (groups[k + 1], groups[k], groups[k + 2]) if after else groups[k : k + 3]
        if axis is not None:
            items.append((_AXIS_ORDER[axis], num, unit or ""))
    if len({axis for axis, _, _ in items}) != len(items):
        return m.group(0)  # "w 10 x w 20": not axis labels after all
    items.sort()
    return " " + " x ".join(f"{num} {unit}".strip() for _, num, unit in items) + " "


def _normalise(text: str, slips: list[tuple[str, str, bool]] | None = None) -> str:
    t, fixed, unsure = read_spelling(text.lower())
    if slips is not None:
        # (word as typed, word read or guessed, sure): said back by the parser.
        slips += [(a, b, True) for a, b in fixed] + [(a, b, False) for a, b in unsure]
    t = t.replace("×", " x ").replace("⌀", "ø")
    t = _AXIS_BEFORE.sub(lambda m: _axis_sizes(m, after=False), t)
    t = _AXIS_AFTER.sub(lambda m: _axis_sizes(m, after=True), t)
    # "Ø20 x Ø8.5 x 1.5" (outside, hole, thickness) and "Ø10 x 15" (diameter, length): the
    # European drawing shorthand for round parts.
    t = re.sub(rf"ø\s*{_N}{_U}{_SEP}ø\s*{_N}{_U}", r" \1 \2 od, \3 \4 id ", t)
    t = re.sub(rf"( id\s*),?{_SEP}{_N}{_U}", r"\1, \2 \3 ", t)
    t = re.sub(rf"ø\s*{_N}{_U}{_SEP}{_N}{_U}", r" \1 \2 diameter, \3 \4 ", t)
    t = t.replace("ø", " diameter ")
    # "legs of 2 and 3 inches", "between 20 and 30 mm": one unit for both numbers.
    t = re.sub(
        rf"(?<![\w.]){_N}\s+(and|or|to)\s+{_N}\s*(mm|cm|inch(?:es)?|in\b(?!\s+(?:\d|a\b|an\b|the\b|each\b|every\b|steps?\b))|ft\b)",
        r"\1 \4 \2 \3 \4",
        t,
    )
    # "200 to 230 by 10": a range and its step, not a 230 x 10 size.
    t = re.sub(
        rf"(?<![\w.]){_N}(\s*(?:mm|cm|°c?)?\s*(?:to|-|–)\s*){_N}(\s*(?:mm|cm|°c?)?)\s+by\s+{_N}",
        r"\1\2\3\4 in steps of \5",
        t,
    )
    # "between 10 and 15 cm tall": the middle of the range.
    t = re.sub(
        rf"\bbetween\s+{_N}\s*(mm|cm|inch(?:es)?|in\b|ft\b)\s+and\s+{_N}\s*\2",
        lambda m: f"{(float(m.group(1)) + float(m.group(3))) / 2:g} {m.group(2)}",
        t,
    )
    # "a 3-inch vase", "a 10-mm hole": a hyphenated size is still a size.
    t = re.sub(r"(\d)\s*-\s*(mm|cm|inch|inches|in|ft|foot|feet)\b", r"\1 \2", t)
    # "r10 h30", "d20": short labels glued to the number ("d1 mini" is a board).
    # With dice in the request, "d6" and "d20" name a die by its faces: no 6 mm diameter.
    dice = re.search(r"\bdic?e\b", t) is not None
    t = re.sub(
        r"\b([rhdwt])(\d+(?:\.\d+)?)\b(?!\s*mini)",
        lambda m: (
            m.group(0)
            if dice and m.group(1) == "d" and m.group(2) in {"4", "6", "8", "10", "12", "20", "100"}
            else _SHORT[m.group(1)] + " " + m.group(2)
        ),
        t,
    )
    t = re.sub(r"(\d)\s*(?:''|”|“)", r'\1"', t)
    t = re.sub(r"(\d)x(\d)", r"\1 x \2", t)
    t = re.sub(r"(?<![\w.])(\d{1,2})x\s+(?=[a-z])", r"\1 x ", t)  # "4x M3 spacers"
    # "2,5 mm" is a decimal comma (most of Europe), "r=5", "m=1" are short labels.
    t = re.sub(r"(?<![\d,])(\d+),(\d{1,2})(?=\s*(?:mm|cm|in\b|inch|\"))", r"\1.\2", t)
    t = re.sub(r"\bz\s*=\s*(\d+)", r"\1 teeth", t)
    t = re.sub(r"\b([rhdlwtm]|od|id)\s*=\s*(?=[\d.])", lambda m: _SHORT[m.group(1)] + " ", t)
    t = re.sub(r"\b(\d+)(?:-tooth|\s?t)\b", r"\1 teeth", t)
    t = re.sub(r"\b(\d+)[- ]?sided\b", r"\1 sides", t)
    t = t.replace("millimeters", "mm").replace("millimetres", "mm")
    # "M3 x 10" is a screw size and a length, not a 2-D size.
    t = re.sub(r"\bm(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)\s*(?:mm)?", r"m\1, \2 mm long ", t)
    # Board names with number words in them must survive the word-to-digit pass.
    t = re.sub(r"\bpi\s+zero\b", "pizero", t)
    return number_words_to_digits(t)


# The label phrases compiled once: a phrase right after a length, and one right before it.
_AFTER = [
    (re.compile(rf"{re.escape(p)}\b"), label, len(p.split()))
    for p, label in _LABELS
    if label not in _BEFORE_ONLY
]
_BEFORE = [
    (re.compile(rf"\b{re.escape(p)}\s*(?:of|is|=|:|at|about)?\s*$"), label) for p, label in _LABELS
]


def _label_for(before: list[str], after: list[str], before_first: bool = False) -> str | None:
    after_text = " ".join(after)
    before_text = " ".join(before)
    if before_first and (label := _label_before(before_text)) is not None:
        return label
    for pattern, label, _ in _AFTER:
        if pattern.match(after_text):
            # "2 mm thick walls": the noun after "thick" decides.
            if label == "thickness" and re.match(
                r"thick\s+(?:walls?|band|rim|shell)\b", after_text
            ):
                return "wall"
            if label == "thickness" and re.search(r"\bwalls?\s*$", before_text):
                return "wall"
            if label in ("height", "thickness") and re.search(
                r"\b(letters?|text|font|characters?|lettering)\s*$", before_text
            ):
                return "text_height"  # "letters 30 mm high"
            if label == "hole" and re.search(r"\b(in|with|has)\s*$", before_text) is None:
                return "hole"
            return label
    return _label_before(before_text) or _head_label(after)


# Nouns that name what a length measures when they end the noun phrase after it: "8 mm cable
# opening" is an opening (the words between say what it is for), as "8 mm opening" is.
_HEAD_NOUNS = {
    "hole": "hole",
    "holes": "hole",
    "bore": "inner_diameter",
    "opening": "opening",
    "openings": "opening",
    "slot": "opening",
    "slots": "opening",
    "gap": "opening",
    "wall": "wall",
    "walls": "wall",
    "shaft": "shaft",
}
# Words that end a noun phrase: prepositions and joiners ("a 3 mm hole in a panel").
PHRASE_END_WORDS = frozenset(
    [
        "in",
        "on",
        "at",
        "for",
        "to",
        "of",
        "from",
        "with",
        "by",
        "through",
        "into",
        "onto",
        "over",
        "under",
        "and",
        "or",
        "but",
        "that",
        "which",
        "so",
        "as",
        "per",
        "each",
    ]
)


def _head_label(after: list[str]) -> str | None:
    """The label of the head noun of the phrase right after a length, when one or two words
    stand between them ("8 mm cable opening", "5 mm mounting holes"); None otherwise."""
    phrase: list[str] = []
    for word in after[:3]:
        if word in PHRASE_END_WORDS:
            break
        phrase.append(word)
    for k in range(1, len(phrase)):
        if phrase[k] in _HEAD_NOUNS and not any(w in _HEAD_NOUNS for w in phrase[:k]):
            return _HEAD_NOUNS[phrase[k]]
    return None


def _phrase_words(after: list[str]) -> int:
    """How many of the words `after` a length the label phrase that names it takes."""
    after_text = " ".join(after)
    for pattern, _, words in _AFTER:
        if pattern.match(after_text):
            return words
    return len(after)


def _label_before(before_text: str) -> str | None:
    for pattern, label in _BEFORE:
        if pattern.search(before_text):
            return label
    return None


def scan(text: str) -> Scan:
    """Every length in `text` in mm, labelled; triples like 20x30x10; counts; Mx screws."""
    spans = find_quotes(text)
    quoted = [content for _, _, content in spans]
    # Text in quotes goes on the part: its numbers are no sizes ("LAB 3" is not 3 inches).
    slips: list[tuple[str, str, bool]] = []
    t = _normalise(mask_quotes(text, spans), slips)
    out = Scan(text=t, raw=text, quoted=quoted)
    out.corrected = [(a, b) for a, b, sure in slips if sure]
    out.unsure = [(a, b) for a, b, sure in slips if not sure]
    for m in _SCREW.finditer(t):
        out.screw = float(m.group(1))
        out.screw_name = f"M{out.screw:g}"
        break
    imperial = _IMPERIAL_SCREW.search(t)
    if imperial and out.screw is None:
        size = imperial.group(1) or imperial.group(3)
        tpi = imperial.group(2) or imperial.group(4)
        out.screw = _NUMBERED.get(size) or round(_to_float(size) * 25.4, 2)
        out.screw_name = f"{size}{'-' + tpi if tpi else ''}"
        # The size is the screw's name, not a length of the part.
        t = t[: imperial.start()] + " " * (imperial.end() - imperial.start()) + t[imperial.end() :]
    bearing = _BEARING.search(t)
    if bearing is not None:
        name = bearing.group(2) or "608"
        if name in _BEARINGS:
            bore, outer, width = _BEARINGS[name]
            out.bearing = (name, float(bore), float(outer), float(width))
            if bearing.group(1):
                # Its number is a name, not a length ("608" is no 608 mm part).
                a, b = bearing.span(1)
                t = t[:a] + " " * (b - a) + t[b:]
    extrusion = _EXTRUSION.search(t)
    if extrusion is not None:
        a = 1 if extrusion.group(1) else 3
        out.extrusion = float(extrusion.group(a))
        out.extrusion_long = float(extrusion.group(a + 1))
        start, end = extrusion.start(a), extrusion.end(a + 1)
        t = t[:start] + " " * (end - start) + t[end:]
    nema = re.search(r"\bnema\s*-?\s*(8|11|14|17|23|34)\b", t)
    if nema is not None:
        out.nema = int(nema.group(1))
        t = t[: nema.start(1)] + " " * (nema.end(1) - nema.start(1)) + t[nema.end(1) :]
    board = board_name_span(t)
    if board is not None:
        # "a raspberry pi 4 case": the 4 names the board, it is no 4 mm length.
        a, b = board
        # Glue the numbers to the name ("pi4"): still the board's name, no longer a length.
        t = t[:a] + re.sub(r"\s+(?=\d)", "", t[a:b]) + t[b:]
    # Products named with a number ("my iPhone 13", "an Ender 3", "Prusa MK4", "Pixel 7",
    # "version 2"): the number is part of the name, no length. Glued on, the name stays
    # visible (in the requirement list's context) and is read as no size.
    t = re.sub(
        r"\b(iphone|ipad|galaxy|pixel|note|ender|prusa|mk|voron|bambu|creality|cr|kobra|neptune|"
        r"sovol|anycubic|elegoo|photon|mars|ps|playstation|xbox|series|gen|generation|version|"
        r"model|rev|revision|v|type|mark)\s*-?\s*(\d+(?:\.\d+)?)(?![\d.]|\s*(?:mm|cm|in\b|inch|\"|x\b))",
        lambda m: m.group(1) + m.group(2).replace(".", "p"),
        t,
    )
    # Character displays are named by their grid ("a 16x2 LCD"): not a size.
    t = re.sub(
        r"\b(?:16\s*x\s*2|20\s*x\s*4|1602|2004|128\s*x\s*64)(?=\s*(?:character\s+)?"
        r"(?:lcd|oled|display|screen))",
        lambda m: " " * len(m.group(0)),
        t,
    )
    for cell in _CELL.finditer(t):
        out.cells.append(cell.group(1))
        t = t[: cell.start()] + " " * (cell.end() - cell.start()) + t[cell.end() :]
    out.negatives = [m.group(0).replace(" ", "") for m in _NEGATIVE.finditer(t)]
    taken: list[tuple[int, int]] = []
    copies = _COPIES.match(t)
    if copies and copies.group(2) not in _NOT_COPIES and 2 <= int(copies.group(1)) <= 32:
        out.copies = int(copies.group(1))
        taken.append(copies.span(1))
    elif (more := _MORE_COPIES.search(t)) is not None and more.group(1) not in _UNITS:
        # "an M3 standoff x 4", "... qty 6", "... 4 pcs": how many, said at the end.
        group = next(g for g in (2, 3, 4, 5, 6) if more.group(g))
        if 2 <= int(more.group(group)) <= 32:
            out.copies = int(more.group(group))
            taken.append(more.span(group))
    for m in _GRID.finditer(t):
        if not m.group(3).endswith("s") and re.match(
            r"\s+(?:in|on|through|into|at|cut)\b", t[m.end() :]
        ):
            continue  # "a 40 x 10 slot in the back wall": one slot of that size, placed
        noun = _singular(m.group(3))
        cols, rows = int(m.group(1)), int(m.group(2))
        out.grids.setdefault(noun, (cols, rows))
        out.counts.setdefault(noun, cols * rows)
        taken.append((m.start(1), m.end(2)))
    for m in _COUNT_OF_SIZED.finditer(t):
        rest = t[m.end() :]
        noun = _singular(re.search(r"holes?|screws?|slots?|magnets?|pegs?", rest).group(0))  # type: ignore[union-attr]
        out.counts.setdefault("hole" if noun == "screw" else noun, int(m.group(1)))
        taken.append(m.span(1))
    for m in _COUNT_OF_SIZED_ANY.finditer(t):
        if any(a <= m.start() < b for a, b in taken) or m.group(2) in _UNITS:
            continue
        out.counts.setdefault(_singular(m.group(2)), int(m.group(1)))
        taken.append(m.span(1))
    for m in _ROWS_OF.finditer(t):
        rows, cols = int(m.group(1)), int(m.group(2))
        out.grids.setdefault("row", (cols, rows))
        out.counts.setdefault("row", rows)
        taken.append((m.start(1), m.end(2)))
    sizes = [m.span() for m in _TRIPLE.finditer(t)]
    for m in _COUNTED.finditer(t):
        if any(a <= m.start() < b for a, b in taken + sizes):
            continue
        noun = _singular(m.group(2))
        out.counts.setdefault(noun, int(m.group(1)))
    # Triples and pairs first; their numbers are then not read again as single lengths.
    for m in _TRIPLE.finditer(t):
        if any(a <= m.start() < b for a, b in taken):
            continue
        if re.match(r"\s*(?:compartments|grid|cells|holes?\b(?!\s*pattern)|array)", t[m.end() :]):
            continue  # "2 x 3 compartments" is a count, not a size
        nums = [m.group(i) for i in (1, 3, 5)]
        units = [m.group(i) for i in (2, 4, 6)]
        unit = next((u for u in reversed(units) if u), None)
        if unit is None and any(n and "/" in n for n in nums):
            unit = "in"
            out.assumed_inch = True
        if unit is None:
            out.assumed_mm = True
        values = tuple(
            _to_float(n) * _UNITS[u or unit or "mm"] for n, u in zip(nums, units, strict=True) if n
        )
        out.triples.append(values)
        taken.append(m.span())
    words = re.findall(r"\d+(?:\.\d+)?|[a-z]+|[,;.]", t)
    del words
    pieces: list[str | Quantity] = []
    pos = 0
    for m in _QTY.finditer(t):
        if any(a <= m.start() < b for a, b in taken):
            continue
        follows = t[m.end() : m.end() + 12]
        # A bare count ("4 holes", "20 teeth") is not a length.
        if m.group(2) is None and _COUNTED.match(t, m.start()):
            continue
        if m.group(2) is None and re.match(r"\s*(?:%|degrees?|°|x\b|by\b|-?tooth)", follows):
            continue
        if m.group(2) is None and (counted := _count_before_word(t, m)) is not None:
            # "1 end", "one M4 hole", "24 wires": a bare whole number before a thing is how
            # many of it, not a length in millimetres.
            out.counts.setdefault(*counted)
            continue
        pieces += _words(t[pos : m.start()])
        unit = m.group(2)
        if unit is None and "/" in m.group(1):
            # "3/8 inner": nobody writes millimetres as fractions.
            unit = "in"
            out.assumed_inch = True
        if unit is None:
            out.assumed_mm = True
        value = _to_float(m.group(1)) * _UNITS[unit or "mm"]
        pieces.append(Quantity(value, m.group(0), unit, start=m.start()))
        pos = m.end()
    pieces += _words(t[pos:])
    out.tokens = pieces
    out.scanned = [p for p in pieces if isinstance(p, Quantity)]
    out.angles = [
        (float(m.group(1)), m.group(0))
        for m in re.finditer(r"(\d+(?:\.\d+)?)\s*(?:degrees?|deg\b|°)", t)
    ]
    # For a length labelled by the words after it, how many of them its label used.
    owned: dict[int, int] = {}
    for i, piece in enumerate(pieces):
        if isinstance(piece, Quantity):
            after = _context(pieces, i, 1)
            nxt = i + 1 + len(after)
            # "radius 15 height 20": "height" belongs to the next number, not to 15.
            before = _context(pieces, i, -1)
            prev = i - 1 - len(before)
            if prev >= 0 and isinstance(pieces[prev], Quantity) and owned.get(prev):
                # "17 mm across flats 8 mm": "across flats" went to 17; but in "a 3 mm shaft,
                # module 0.5" only "shaft" did, and "module" is 0.5's.
                before = before[owned[prev] :] if len(before) > owned[prev] else []
            # "module 3 thickness 15 bore 8": every label comes before its number, so the
            # word between two numbers belongs to the second one.
            shared = (
                bool(after)
                and nxt < len(pieces)
                and isinstance(pieces[nxt], Quantity)
                and (prev < 0 or not isinstance(pieces[prev], Quantity) or not owned.get(prev))
            )
            piece.label = _label_for(before, after, before_first=shared)
            owned[i] = (
                _phrase_words(after)
                if piece.label is not None and piece.label == _label_for([], after)
                else 0
            )
    return out


def _label_start_words() -> frozenset[str]:
    return frozenset(p.split()[0] for p, _ in _LABELS) | frozenset(_SHORT)


_LABEL_STARTS = _label_start_words()


def _count_before_word(t: str, m: re.Match[str]) -> tuple[str, int] | None:
    """(noun, n) when the bare number of `m` counts the word after it."""
    raw = m.group(1)
    if not re.fullmatch(r"\d+", raw):
        return None
    n = int(raw)
    nxt = re.match(r"\s+([a-z][a-z0-9-]*)(?:\s+([a-z][a-z-]*))?", t[m.end() :])
    if nxt is None:
        return None
    word = nxt.group(1)
    second = nxt.group(2) or ""
    if (
        n > 1
        and not word.endswith("s")
        and second.endswith("s")
        and len(second) > 3
        and word not in _UNITS
        and word not in _LENGTH_WORDS
        and word not in _LABEL_STARTS
        and second not in _LABEL_STARTS
        and second.rstrip("s") not in _LABEL_STARTS
        and second not in _UNITS
    ):
        return _singular(second), n  # "80 hex keys", "6 round holes"
    if re.fullmatch(r"m\d+(?:\.\d+)?", word):
        return "screw", n  # "one M4 hole": one screw's hole
    if (
        word in _LENGTH_WORDS
        or word in _UNITS
        or word in _LABEL_STARTS
        or word.rstrip("s") in _LABEL_STARTS
        or len(word) < 3
    ):
        return None
    if n == 1 or (word.endswith("s") and n <= 500):
        return _singular(word), n
    return None


# Other words for a tray's compartments: "4 sections", "a 3 x 3 grid of cells".
_SAME_AS = {"section": "compartment", "cell": "compartment", "pocket": "compartment"}


def _singular(noun: str) -> str:
    if noun.endswith("ves") and noun not in ("grooves", "sleeves", "valves", "curves"):
        noun = noun[:-3] + "f"  # leaves, shelves
    if re.search(r"(?:sh|ch|x|ss|z)es$", noun):
        noun = noun[:-2]  # brushes, boxes, inches: "es" is the plural, not part of the word
    noun = noun.rstrip("s") if noun not in ("teeth",) else "tooth"
    noun = "tooth" if noun == "teeth" else noun
    return _SAME_AS.get(noun, noun)


def _words(chunk: str) -> list[str | Quantity]:
    return list(re.findall(r"[a-z]+|[,;.]", chunk))


def _context(pieces: list[str | Quantity], i: int, step: int, n: int = 4) -> list[str]:
    got: list[str] = []
    j = i + step
    while 0 <= j < len(pieces) and len(got) < n:
        p = pieces[j]
        if isinstance(p, Quantity) or p in _STOP:
            break
        got.append(p)
        j += step
    return got[::-1] if step < 0 else got
