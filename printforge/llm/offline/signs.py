"""Name plates, desk and door signs, key tags: which words are the text, and its style."""

from __future__ import annotations

import re

from printforge.llm.offline.reader import Draft, Reader, mm, spec_node

__all__ = ["nameplate", "sign_text"]

_END = r"(?=\s*(?:[,.;!]|$|\s\d|\s(?:with|and|in|on|at|for|that|which|raised|engraved|"\
       r"embossed|debossed|letters?|text)\b))"
# Strongest first: quotes, then "says X", then "the name X".
_TEXT = [
    re.compile(r"[\"“”'‘’]([^\"“”'‘’]{1,60})[\"“”'‘’]"),
    re.compile(r"\b(?:saying|says|say|reading|reads|read|spelling|spells|with the (?:text|name|"
               r"words?)|with text|text|inscribed|inscription)\s*:?\s+"
               rf"([^\W_][\w .!?&#+-]{{0,59}}?){_END}", re.IGNORECASE),
    re.compile(r"\b(?:plate|sign|tag|label|plaque|badge)\s*[:\-–]\s*"
               rf"([^\W_][\w .!?&#+-]{{0,59}}?){_END}", re.IGNORECASE),
    re.compile(r"\b(?:tag|plate|sign|label|plaque|key ?chain|key ?ring|badge)\s+"
               rf"([A-Z][A-Z0-9]*(?:\s+[A-Z0-9]+)*){_END}"),
    re.compile(r"\b(?:my name|the name|name is|named|for|of)\s+"
               rf"([A-Z][A-Za-z0-9]*(?:\s+[A-Z][A-Za-z0-9]*)*){_END}"),
]


def sign_text(raw: str) -> str | None:
    for pattern in _TEXT:
        m = pattern.search(raw)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return None


def nameplate(r: Reader) -> Draft:
    text = sign_text(r.s.raw)
    if text is None:
        raise r.missing("the text, in quotes (e.g. 'a name plate saying \"OFFICE\"')")
    r.note(f"text {text!r}")
    size = [0.0, 0.0]
    if r.s.triples:
        size = [r.s.triples[0][0], r.s.triples[0][1]]
        r.note(f"plate {mm(size[0])} x {mm(size[1])}")
    th = r.get("text_height", say="letters") or r.default(10.0, "letter height")
    t = (r.s.triples[0][2] if r.s.triples and len(r.s.triples[0]) == 3 else None) or r.get(
        "thickness", say="thickness") or r.default(3.0, "thickness")
    style = "engraved" if re.search(r"engrav|debossed|cut in|carved|recessed|sunken|inset",
                                    r.s.text) else "raised"
    r.note(f"{style} text")
    tag = re.search(r"key ?(ring|chain)|\btag\b|luggage|hang", r.s.text)
    hole = r.get("hole", say="hole") or (r.default(4.0, "key ring hole") if tag else 0.0)
    depth = min(1.0, round(t / 2, 2)) if style == "engraved" else 1.0
    node = spec_node("nameplate", text=text, size=size, thickness=t, text_height=th,
                     text_depth=depth, style=style, hole_diameter=hole)
    name = "key tag" if tag else "name plate"
    return r.draft("nameplate", name, [node])
