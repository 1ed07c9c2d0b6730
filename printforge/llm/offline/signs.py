"""Name plates, desk and door signs, key tags: which words are the text, and its style."""

from __future__ import annotations

import math
import re

from printforge.llm.offline.quotes import find_quotes
from printforge.llm.offline.reader import Draft, Reader, mm, spec_node

__all__ = ["nameplate", "sign_text"]

# The text ends at punctuation, a connecting word, or a number that is a size ("OFFICE 100 x
# 30 mm", "BOB 3 mm thick"); a number that is not a size is part of it ("ROOM 12").
_SIZE_AHEAD = r"\s\d+(?:[.,]\d+)?\s*(?:mm|cm|in|inch|inches|\"|x|×|by|wide|long|tall|high)\b"
_END = (
    r"(?=\s*(?:[,.;!](?!\d)|$|" + _SIZE_AHEAD + r"|\s(?:with|and|in|on|at|for|that|which|"
    r"raised|engraved|embossed|debossed|letters?|text)\b))"
)
# Strongest first: quotes, then "says X", then "the name X".
_TEXT = [
    re.compile(r"[\"“”'‘’]([^\"“”'‘’]{1,60})[\"“”'‘’]"),
    re.compile(
        r"\b(?:saying|says|say|reading|reads|read|spelling|spells|with the (?:text|name|"
        r"words?)|with text|text|inscribed|inscription)\s*:?\s+"
        rf"([^\W_][\w .!?&#+<>=:/()*@$%-]{{0,59}}?){_END}",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:plate|sign|tag|label|plaque|badge)\s*[:\-–]\s*"
        rf"([^\W_][\w .!?&#+<>=:/()*@$%-]{{0,59}}?){_END}",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:tag|plate|sign|label|plaque|key ?chain|key ?ring|badge)\s+"
        rf"([A-Z][A-Z0-9]*(?:\s+[A-Z0-9]+)*){_END}"
    ),
    re.compile(
        r"\b(?:my name|the name|name is|named|called|name|for|of)\s+"
        rf"([A-Z][A-Za-z0-9]*(?:\s+[A-Z][A-Za-z0-9]*)*){_END}"
    ),
    # "a tag for my dog Buddy": the capitalised name after who it is for.
    re.compile(
        r"\b(?:for|of)\s+(?:my|our|the|a)\s+[a-z]+\s+"
        rf"([A-Z][A-Za-z0-9]*(?:\s+[A-Z][A-Za-z0-9]*)*){_END}"
    ),
]


def sign_text(raw: str) -> str | None:
    quotes = find_quotes(raw)
    if quotes:
        return " ".join(content.strip() for _, _, content in quotes)
    for pattern in _TEXT[1:]:
        m = pattern.search(raw)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return None


def _fitting_letters(text: str, x: float, y: float) -> float:
    """The largest letter height (to 0.5 mm) at which `text` fits `x` mm of plate length and a
    plate `y` mm high with the margins the builder leaves (0.4 of the letter height, at least
    3 mm, each side)."""
    from printforge.geometry.font import missing_chars, text_extent  # geometry loads on demand

    if missing_chars(text):
        return 10.0  # the printer check names the characters the font cannot draw
    per_mm = text_extent(text, 10.0)[0] / 10.0  # text width per mm of letter height
    across = (x - 6.0) / per_mm / 1.1 if per_mm > 0 else y  # a tenth spare along
    return max(0.5, math.floor(2 * min(across, y / 1.8, y - 6.0)) / 2)


def nameplate(r: Reader) -> Draft:
    text = sign_text(r.s.raw)
    if text is None:
        raise r.missing("the text, in quotes (e.g. 'a name plate saying \"OFFICE\"')")
    r.note(f"text {text!r}")
    size = [0.0, 0.0]
    if r.s.triples:
        size = [r.s.triples[0][0], r.s.triples[0][1]]
        r.note(f"plate {mm(size[0])} x {mm(size[1])}")
    elif (length := r.get("length", "width", say="length")) is not None:
        # "a name plate 150 mm long": that long, and a third of it high (at least 20 mm).
        size = [length, r.default(round(max(20.0, length / 3), 1), "plate height")]
    tag = re.search(r"key ?(ring|chain)|\btag\b|luggage|hang", r.s.text)
    hole = r.get("hole", say="hole") or (r.default(4.0, "key ring hole") if tag else 0.0)
    th = r.get("text_height", say="letters")
    if th is None and size[0] > 0:
        room = size[0] - (hole + 3.0 if hole else 0.0)
        th = r.default(_fitting_letters(text, room, size[1]), "letter height (to fit)")
    if th is None:
        th = r.default(10.0, "letter height")
    t = (
        (r.s.triples[0][2] if r.s.triples and len(r.s.triples[0]) == 3 else None)
        or r.get("thickness", say="thickness")
        or r.default(3.0, "thickness")
    )
    style = (
        "engraved"
        if re.search(r"engrav|debossed|cut in|carved|recessed|sunken|inset", r.s.text)
        else "raised"
    )
    r.note(f"{style} text")
    depth = min(1.0, round(t / 2, 2)) if style == "engraved" else 1.0
    node = spec_node(
        "nameplate",
        text=text,
        size=size,
        thickness=t,
        text_height=th,
        text_depth=depth,
        style=style,
        hole_diameter=hole,
    )
    name = "key tag" if tag else "name plate"
    return r.draft("nameplate", name, [node])
