"""Quotation marks versus apostrophes and inch marks.

`"` and `'` do three jobs in a request: they quote text to put on a part (`a tag saying
"MILO"`), they mark inches and feet (`1/2"`, `3'`), and `'` is an apostrophe (`dog's`, `I'd`,
`doesn't`, `kids'`). Curly quotes (“ ” ‘ ’) say which is which when a phone typed them; straight
ones need the context: a quote opens before a word and closes after one, an apostrophe sits
inside a word or after its s, and a mark right after a number is a unit unless a quote is open.
"""

from __future__ import annotations

import re

__all__ = ["find_quotes", "mask_quotes"]

_OPEN = {'"': '"', "“": "”", "'": "'", "‘": "’", "«": "»", "„": "“"}
_CLOSERS = {'"', "”", "'", "’", "»", "“"}


def _is_apostrophe(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if before.isalpha() and after.isalpha():
        return True  # dog's, I'd, doesn't
    # kids' toys: an s then the mark then a space, with no quote open (checked by the caller).
    return before in "sS" and not after.isalnum()


def find_quotes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each quoted span; `end` is just past the closing mark."""
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch not in _OPEN:
            i += 1
            continue
        before = text[i - 1] if i > 0 else " "
        if ch in "'’" and _is_apostrophe(text, i):
            i += 1
            continue
        if before.isdigit() and ch in "\"'″′":
            i += 1  # 1/2", 3': a unit
            continue
        if before.isalnum() and ch in "\"'":
            i += 1  # a stray mark glued to a word is no opening quote
            continue
        closer = _OPEN[ch]
        j = i + 1
        end = -1
        while j < len(text):
            c = text[j]
            if c == closer or (ch in '"“”' and c in '"”“') or (ch in "'‘’" and c in "'’"):
                nxt = text[j + 1] if j + 1 < len(text) else " "
                if c in "'’" and _is_apostrophe(text, j) and nxt.isalpha():
                    j += 1
                    continue  # "Bob's Garage" inside double quotes, or 'Bob's' in single
                if not nxt.isalnum():
                    end = j
                    break
            j += 1
        if end > i + 1 and text[i + 1 : end].strip():
            out.append((i, end + 1, text[i + 1 : end]))
            i = end + 1
        else:
            i += 1
    return out


def mask_quotes(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with every quoted span replaced by the neutral word `quoted` (so numbers in a
    sign's text are not read as sizes)."""
    out, pos = [], 0
    for start, end, _ in spans:
        out.append(text[pos:start])
        out.append(" quoted ")
        pos = end
    out.append(text[pos:])
    return re.sub(r"[ \t]+", " ", "".join(out))
