"""printforge's own stroke font: each glyph is a few centre lines, thickened with shapely.

Why a font of our own: which fonts a machine has varies, while a nameplate must look the same
everywhere. A TrueType or OpenType file can be chosen instead (`--font FILE`, see
`outline_font.py`): `use_font` makes every text function below draw with it. Thick
round-capped strokes also print better than thin serifs at nameplate sizes. Glyphs sit on a
grid 4 units wide and 6 units tall (baseline y = 0); lower case is drawn as capitals, accents
are dropped (and said: `drawn_as`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from printforge.geometry.outline_font import OutlineFont

__all__ = [
    "STROKE_UNITS",
    "drawn_as",
    "font_in_use",
    "missing_chars",
    "text_extent",
    "text_shape",
    "use_font",
]

# The font file of the job being built. Text is drawn deep inside the part builders (name
# plates, signs, stencils, profiles, the OpenSCAD export); a context variable reaches them all,
# and threads started with asyncio.to_thread inherit it, without a font argument on every one.
_FONT: ContextVar[Path | None] = ContextVar("printforge_font", default=None)


@contextmanager
def use_font(path: Path | None) -> Iterator[None]:
    """Draw text with the font at `path` (None: the built-in stroke font) inside the block."""
    if path is not None:
        from printforge.geometry.outline_font import load_font

        load_font(path)  # a file that is not a font is refused here, before anything is built
    token = _FONT.set(path)
    try:
        yield
    finally:
        _FONT.reset(token)


def font_in_use() -> OutlineFont | None:
    path = _FONT.get()
    if path is None:
        return None
    from printforge.geometry.outline_font import load_font

    return load_font(path)


STROKE_UNITS = 0.9  # stroke width in grid units: bold enough for a 0.4 mm nozzle at 6 mm letters
_CAP = 6.0
_SPACE = 3.0  # advance of a blank
_GAP = 1.7  # between glyphs, in units, centre line to centre line beyond the glyph width

_O = "1,0 0,1 0,5 1,6 3,6 4,5 4,1 3,0 1,0"
_P = "0,0 0,6 3,6 4,5 4,4 3,3 0,3"
_GLYPHS: dict[str, str] = {
    "A": "0,0 0,4 2,6 4,4 4,0|0,3 4,3",
    "B": "0,0 0,6 3,6 4,5 4,4 3,3 0,3|3,3 4,2 4,1 3,0 0,0",
    "C": "4,5 3,6 1,6 0,5 0,1 1,0 3,0 4,1",
    "D": "0,0 0,6 2,6 4,4 4,2 2,0 0,0",
    "E": "4,6 0,6 0,0 4,0|0,3 3,3",
    "F": "4,6 0,6 0,0|0,3 3,3",
    "G": "4,5 3,6 1,6 0,5 0,1 1,0 3,0 4,1 4,3 2,3",
    "H": "0,0 0,6|4,0 4,6|0,3 4,3",
    "I": "0,6 2,6|1,6 1,0|0,0 2,0",
    "J": "4,6 4,1 3,0 1,0 0,1",
    "K": "0,6 0,0|4,6 0,2|1.4,3.4 4,0",
    "L": "0,6 0,0 4,0",
    "M": "0,0 0,6 2,3 4,6 4,0",
    "N": "0,0 0,6 4,0 4,6",
    "O": _O,
    "P": _P,
    "Q": _O + "|2.5,1.5 4,0",
    "R": _P + "|2,3 4,0",
    "S": "4,5 3,6 1,6 0,5 0,4 1,3 3,3 4,2 4,1 3,0 1,0 0,1",
    "T": "0,6 4,6|2,6 2,0",
    "U": "0,6 0,1 1,0 3,0 4,1 4,6",
    "V": "0,6 2,0 4,6",
    "W": "0,6 1,0 2,4 3,0 4,6",
    "X": "0,0 4,6|0,6 4,0",
    "Y": "0,6 2,3 4,6|2,3 2,0",
    "Z": "0,6 4,6 0,0 4,0",
    "0": _O + "|1,1.5 3,4.5",
    "1": "0,5 1,6 1,0|0,0 2,0",
    "2": "0,5 1,6 3,6 4,5 4,4 0,0 4,0",
    "3": "0,5 1,6 3,6 4,5 4,4 3,3 1.5,3|3,3 4,2 4,1 3,0 1,0 0,1",
    "4": "3,0 3,6 0,2 4,2",
    "5": "4,6 0,6 0,3 3,3 4,2 4,1 3,0 0,0",
    "6": "3,6 1,6 0,5 0,1 1,0 3,0 4,1 4,2 3,3 0,3",
    "7": "0,6 4,6 1,0",
    "8": "1,3 0,4 0,5 1,6 3,6 4,5 4,4 3,3 1,3 0,2 0,1 1,0 3,0 4,1 4,2 3,3",
    "9": "4,3 1,3 0,4 0,5 1,6 3,6 4,5 4,1 3,0 1,0",
    "-": "0,3 2,3",
    "+": "1,1.5 1,4.5|-0.5,3 2.5,3",
    "=": "0,2 3,2|0,4 3,4",
    ".": "0,0 0,0.05",
    ",": "0.3,0.4 0,-1",
    ":": "0,1 0,1.05|0,4 0,4.05",
    "!": "0,6 0,2|0,0 0,0.05",
    "?": "0,5 1,6 3,6 4,5 4,4 2,3 2,2|2,0 2,0.05",
    "'": "0,6 0,4.5",
    "/": "0,0 3,6",
    "(": "1.5,6 0,4.5 0,1.5 1.5,0",
    ")": "0,6 1.5,4.5 1.5,1.5 0,0",
    "#": "1,0 1.5,6|2.5,0 3,6|0,2 4,2|0,4 4,4",
    "&": "4,0 0.5,4.5 0.5,5.5 1,6 2,6 2.5,5.5 2.5,4.5 0,2 0,1 1,0 2.5,0 4,2",
    "*": "1.5,1.5 1.5,4.5|0,2.2 3,3.8|0,3.8 3,2.2",
    "_": "0,-0.5 4,-0.5",
}


def _normal(ch: str) -> str:
    base = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in base if not unicodedata.combining(c)).upper()[:1] or ch


def missing_chars(text: str) -> list[str]:
    """Characters the font cannot draw (blanks are fine)."""
    font = font_in_use()
    if font is not None:
        return font.missing(text)
    return sorted({c for c in text if not c.isspace() and _normal(c) not in _GLYPHS})


def drawn_as(text: str) -> list[tuple[str, str]]:
    """Characters drawn as another one, in order of first use: ("É", "E") for "JOSÉ".

    Lower case drawn as capitals is the font's design and is not listed; a dropped accent or
    a letter folded into another is, so that it can be said rather than silently built.
    """
    if font_in_use() is not None:
        return []  # a font file draws what it has; what it lacks is refused as missing
    out: dict[str, str] = {}
    for ch in text:
        if ch.isspace() or ch in out:
            continue
        drawn = _normal(ch)
        if drawn in _GLYPHS and drawn != ch.upper():
            out[ch] = drawn
    return list(out.items())


@lru_cache(maxsize=128)
def _glyph(ch: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    return tuple(
        tuple((float(x), float(y)) for x, y in (p.split(",") for p in line.split()))
        for line in _GLYPHS[ch].split("|")
    )


def _layout(text: str) -> tuple[list[list[tuple[float, float]]], float]:
    """Centre lines of the whole string in grid units, and the advance width."""
    lines: list[list[tuple[float, float]]] = []
    x = 0.0
    for raw in text:
        if raw.isspace():
            x += _SPACE
            continue
        ch = _normal(raw)
        if ch not in _GLYPHS:
            raise ValueError(f"the built-in font has no glyph for {raw!r}")
        strokes = _glyph(ch)
        lo = min(px for s in strokes for px, _ in s)
        hi = max(px for s in strokes for px, _ in s)
        lines += [[(px - lo + x, py) for px, py in s] for s in strokes]
        x += hi - lo + _GAP
    return lines, x - _GAP if lines else 0.0


def text_extent(text: str, size: float) -> tuple[float, float]:
    """Width and cap height in mm of `text` at cap height `size`, without drawing it."""
    font = font_in_use()
    if font is not None:
        return font.extent(text, size)
    _, advance = _layout(text)
    unit = size / (_CAP + STROKE_UNITS)
    return (advance + STROKE_UNITS) * unit, size


def text_shape(text: str, size: float) -> BaseGeometry:
    """The filled outline of `text`, capital height `size` mm, the left end of the baseline at
    the origin (the stroke's round caps included in both)."""
    font = font_in_use()
    if font is not None:
        return font.shape(text, size)
    lines, _ = _layout(text)
    if not lines:
        return Polygon()
    unit = size / (_CAP + STROKE_UNITS)
    half = STROKE_UNITS / 2
    strokes = [
        LineString([((px + half) * unit, (py + half) * unit) for px, py in line]).buffer(
            half * unit, quad_segs=4
        )
        for line in lines
    ]
    shape = shapely.union_all(strokes)
    if isinstance(shape, Polygon | MultiPolygon):
        return shape.simplify(unit * 0.02)
    return shape
