"""Typos in the words the parser keys on: "enclousre", "cilinder", "diamter", "compartmants".

People type fast into a chat box, and one slipped letter in the family name turned a clear
request into "understood nothing". A word is corrected only when it is not a word the parser
already knows, has at least five letters, and is one edit (a letter dropped, added, changed, or
two neighbours swapped) from exactly one word in a short list of the parser's own keywords.
Real words that happen to sit one edit from a keyword ("weight", "spaces", "hearing") are kept.
"""

from __future__ import annotations

import re

__all__ = ["correct_spelling"]

# The keywords whose misspelling loses the request: family names and the labels of lengths.
# Kept to words of five letters or more, where one edit rarely lands on another real word.
_KEYWORDS = (
    "enclosure",
    "cylinder",
    "cylindrical",
    "diameter",
    "compartment",
    "compartments",
    "thickness",
    "bracket",
    "brackets",
    "standoff",
    "standoffs",
    "millimeter",
    "millimeters",
    "millimetre",
    "millimetres",
    "centimeter",
    "centimeters",
    "centimetre",
    "centimetres",
    "container",
    "organizer",
    "organiser",
    "rectangular",
    "hexagon",
    "hexagonal",
    "octagon",
    "octagonal",
    "raspberry",
    "arduino",
    "headroom",
    "nameplate",
    "divider",
    "dividers",
    "height",
    "length",
    "width",
    "radius",
    "washer",
    "washers",
    "spacer",
    "spacers",
    "planter",
    "coaster",
    "coasters",
    "bearing",
    "inches",
    "cookie",
    "cutter",
    "outside",
    "inside",
    "square",
    "circle",
    "circular",
    "sphere",
    "module",
    "clamp",
    "bracket",
    "funnel",
    "vase",
    "enclosures",
    "cylinders",
)
# Real words one edit (or one delete each) from a keyword: never "corrected".
_REAL_WORDS = frozenset(
    (
        "weight",
        "weights",
        "eight",
        "eighth",
        "heights",
        "spaces",
        "spaced",
        "spacey",
        "washed",
        "washes",
        "masher",
        "toaster",
        "roaster",
        "boaster",
        "planner",
        "planted",
        "hearing",
        "wearing",
        "tearing",
        "gearing",
        "searing",
        "rearing",
        "niches",
        "butter",
        "gutter",
        "cutler",
        "rookie",
        "tunnel",
        "module",
        "modular",
        "circles",
        "squared",
        "squares",
        "widths",
        "lengths",
        "lengthy",
        "outsider",
        "insider",
        "insides",
        "inset",
        "inward",
        "cramp",
        "clamps",
        "clasp",
        "cylinder",
        "inched",
        "bearings",
        "radial",
        "radios",
        "funnels",
        "spheres",
        "cookies",
        "cutters",
        "beating",
        "bearded",
        "sparer",
        "spicer",
        "divided",
        "dividend",
        "header",
        "headrest",
        "washing",
        "though",
        "through",
        "weigh",
        "width",
        # Number words are read as numbers later ("eighty" is one delete from "height").
        "three",
        "seven",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "quarter",
        "quarters",
        "dozen",
    )
)
_KNOWN = frozenset(_KEYWORDS) | _REAL_WORDS


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


# Each keyword and every way of dropping one of its letters: a typo with one edit shares a
# deletion with its keyword (symmetric delete), which makes the lookup a few set probes; each
# candidate is then checked to be really one edit away.
_INDEX: dict[str, set[str]] = {}
for _word in _KEYWORDS:
    for _key in _deletes(_word) | {_word}:
        _INDEX.setdefault(_key, set()).add(_word)


def _one_edit(a: str, b: str) -> bool:
    """True when `b` is `a` with one letter dropped, added or changed, or two neighbours
    swapped. Sharing a deletion is not enough: "saucer" and "spacer" share "sacer"."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) > len(b):
        a, b = b, a
    i = next((k for k in range(len(a)) if a[k] != b[k]), len(a))
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    return a[i + 1 :] == b[i + 1 :] or (
        i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    )


def _correct(word: str) -> str:
    if len(word) < 5 or word in _KNOWN:
        return word
    found: set[str] = set()
    for key in _deletes(word) | {word}:
        found |= _INDEX.get(key, set())
    # Plurals and the singular of a keyword are not typos ("cutters", "height" for "heights").
    found = {k for k in found if word not in (k + "s", k + "es") and _one_edit(word, k)}
    if len({k.rstrip("s") for k in found}) != 1:
        return word  # no keyword, or two different ones: leave it alone
    # A keyword and its plural both one edit away: the one with the word's length.
    return min(found, key=lambda k: (abs(len(k) - len(word)), k))


def correct_spelling(text: str) -> str:
    """`text` (lower case) with misspelt keywords replaced; everything else is left as it was."""
    return re.sub(r"[a-z]+", lambda m: _correct(m.group(0)), text)
