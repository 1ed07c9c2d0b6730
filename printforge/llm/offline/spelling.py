"""Typos in the words the parser keys on: "enclousre", "cilinder", "diamter", "compartmants".

People type fast into a chat box, and one slipped letter in the family name turned a clear
request into "understood nothing". A word is corrected only when it is not a word the parser
already knows, has at least five letters, and is one edit (a letter dropped, added, changed, or
two neighbours swapped) from exactly one word in a short list of the parser's own keywords.
Real words that happen to sit one edit from a keyword ("weight", "spaces", "hearing") are kept.
Four-letter family names ("gear", "tray", "hook") are corrected only for two swapped letters.
"""

from __future__ import annotations

import re

__all__ = ["correct_spelling", "read_spelling"]

# The keywords whose misspelling loses the request: family names and the labels of lengths.
# Kept to words of five letters or more, where one edit rarely lands on another real word.
_KEYWORD_TEXT = """
    enclosure cylinder cylindrical diameter compartment compartments thickness bracket
    brackets standoff standoffs millimeter millimeters millimetre millimetres centimeter
    centimeters centimetre centimetres container organizer organiser rectangular hexagon
    hexagonal octagon octagonal raspberry arduino headroom nameplate divider dividers height
    length width radius washer washers spacer spacers planter coaster coasters bearing
    inches cookie cutter outside inside square circle circular sphere module clamp funnel
    vase enclosures cylinders pegboard grommet grommets toothbrush pulley capsule shroud
    adapter reducer calibration temperature overhang bridging stringing handle hinge sliding
    holder wedge cable
"""
_KEYWORDS = tuple(_KEYWORD_TEXT.split())
# Real words one edit (or one delete each) from a keyword, and number words (read as numbers
# later: "eighty" is one delete from "height"): never "corrected".
_REAL_WORD_TEXT = """
    bearded bearings beating boaster butter circles clamps clasp cookies cramp cutler
    cutters cylinder divided dividend eight eighth funnels gearing gutter header headrest
    hearing heights inched inset insider insides inward lengths lengthy masher modular
    niches outsider planner planted radial radios rearing roaster rookie searing spaced
    spaces spacey sparer spheres spicer squared squares tearing though through toaster
    tunnel washed washes washing wearing weigh weight weights width widths
    dozen eighteen eighty eleven fifteen fifty forty fourteen hundred nineteen ninety
    quarter quarters seven seventeen seventy sixteen sixty thirteen thirty thousand three
    twelve twenty
    folder solder bolder older molder candle dandle handed binge singe tinge whinge hedge
    ledge sedge wedged table fable gable sable cabled shrouds adapted reduced reduces gliding
    slicing siding stinging springing pulled gulley bridges hinged holders handler
    handled contained contains reduce reduces perfboard heptagon pentagon caster casters
"""
_REAL_WORDS = frozenset(_REAL_WORD_TEXT.split())
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


# Four-letter keywords: only two swapped neighbours are corrected ("gaer", "tary"); a changed
# letter would turn "near" into "gear" and "hear" into "hook"'s neighbours.
_SHORT_KEYWORDS = frozenset(
    ("gear", "tray", "vase", "hook", "knob", "clip", "tube", "pipe", "cube", "ring", "case")
)


def _swapped(word: str) -> str | None:
    for i in range(len(word) - 1):
        guess = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if guess in _SHORT_KEYWORDS:
            return guess
    return None


def _correct(word: str) -> str:
    if len(word) == 4 and word not in _SHORT_KEYWORDS:
        return _swapped(word) or word
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
    return read_spelling(text)[0]


# Names of part families: a word two slips from one of these (its letters shuffled, or a long
# word whose ends match) is asked about ("did you mean pegboard?"), never guessed: two edits
# is too far to be sure, and
# building another family instead (the "hook" of "pgeobard hook") would be wrong in silence.
_FAMILY_NAMES = tuple(
    [
        "pegboard",
        "grommet",
        "enclosure",
        "organizer",
        "organiser",
        "container",
        "cylinder",
        "bracket",
        "standoff",
        "coaster",
        "nameplate",
        "toothbrush",
        "calibration",
        "temperature",
        "overhang",
        "capsule",
        "adapter",
        "reducer",
        "planter",
        "hexagon",
        "octagon",
        "sprocket",
    ]
)


def _edits2(a: str, b: str) -> bool:
    """True when `b` is two slips from `a` (letters dropped, added, changed or swapped)."""
    if abs(len(a) - len(b)) > 2:
        return False
    return any(_one_edit(x, b) for x in _neighbours(a))


def _neighbours(word: str) -> set[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = {word[:i] + word[i + 1 :] for i in range(len(word))}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    out |= {word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in letters}
    out |= {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in letters}
    return out


def _unsure(word: str) -> str | None:
    """The family name `word` may be a slip of, when it is two slips from exactly one and
    shares its letters' start or its letters; None when it is no such word."""
    singular = word[:-2] if re.search(r"(?:sh|ch|x|ss|z)es$", word) else word.rstrip("s")
    if len(word) < 6 or word in _KNOWN or singular in _FAMILY_NAMES:
        return None
    found = [
        k
        for k in _FAMILY_NAMES
        if _edits2(word, k)
        # Its own letters shuffled ("pgeobard"), or a long word kept at both ends: shorter
        # words two slips from a name are too often other words ("printer", "planter").
        and (sorted(k) == sorted(word) or (len(word) >= 8 and (k[0], k[-1]) == (word[0], word[-1])))
    ]
    return found[0] if len(found) == 1 else None


def read_spelling(text: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """`text` (lower case) with misspelt keywords replaced, the (typo, word) pairs replaced,
    and the (word, family name) pairs a word may be a slip of but is too far to replace."""
    fixed: list[tuple[str, str]] = []
    unsure: list[tuple[str, str]] = []

    def one(m: re.Match[str]) -> str:
        word = m.group(0)
        right = _correct(word)
        if right != word:
            fixed.append((word, right))
        elif (guess := _unsure(word)) is not None:
            unsure.append((word, guess))
        return right

    return re.sub(r"[a-z]+", one, text), fixed, unsure
