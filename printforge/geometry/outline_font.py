"""Text from a TrueType or OpenType font file (`--font FILE`), for letters the built-in stroke
font does not have (accents, other scripts) or a typeface a person wants.

fontTools reads the outlines (glyf quadratics or CFF cubics, composite glyphs such as É = E +
acute decomposed); each contour is flattened into a ring and the rings are combined by even-odd,
so a hole (O, A, É's counters) is a hole whatever the font's winding direction.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import shapely
import shapely.affinity
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTFont
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["FontError", "OutlineFont", "load_font"]

_CURVE_STEPS = 8  # segments per curve: smooth at nameplate sizes, few enough to slice quickly


class FontError(ValueError):
    """The file given as a font cannot be read as one."""


class _RingPen(BasePen):  # type: ignore[misc]
    """Collects a glyph's contours as lists of points, curves flattened."""

    def __init__(self, glyph_set: Any) -> None:
        super().__init__(glyph_set)  # the glyph set decomposes composite glyphs (É = E + ´)
        self.rings: list[list[tuple[float, float]]] = []
        self._ring: list[tuple[float, float]] = []

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self._ring = [pt]

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self._ring.append(pt)

    def _curveToOne(self, p1: Any, p2: Any, p3: Any) -> None:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self._getCurrentPoint(), p1, p2, p3
        for i in range(1, _CURVE_STEPS + 1):
            t = i / _CURVE_STEPS
            u = 1 - t
            self._ring.append(
                (
                    u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
                    u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3,
                )
            )

    def _qCurveToOne(self, p1: Any, p2: Any) -> None:
        (x0, y0), (x1, y1), (x2, y2) = self._getCurrentPoint(), p1, p2
        for i in range(1, _CURVE_STEPS + 1):
            t = i / _CURVE_STEPS
            u = 1 - t
            self._ring.append(
                (u * u * x0 + 2 * u * t * x1 + t * t * x2, u * u * y0 + 2 * u * t * y1 + t * t * y2)
            )

    def _closePath(self) -> None:
        if len(self._ring) >= 3:
            self.rings.append(self._ring)
        self._ring = []

    def _endPath(self) -> None:
        self._closePath()


class OutlineFont:
    """One font file: which characters it has, and text drawn with it in millimetres."""

    def __init__(self, path: Path) -> None:
        self.path = path
        font = TTFont(str(path))
        self._font = font
        self._cmap: dict[int, str] = font.getBestCmap() or {}
        self._glyphs = font.getGlyphSet()
        self._advance = {name: width for name, (width, _) in font["hmtx"].metrics.items()}
        self._cap = self._cap_height(font)
        self._space = self._advance.get(self._cmap.get(ord(" "), ""), font["head"].unitsPerEm / 4)

    def _cap_height(self, font: Any) -> float:
        """Font units of a capital's height: the size a person asks for is the capitals'."""
        cap = getattr(font.get("OS/2"), "sCapHeight", 0)
        if cap:
            return float(cap)
        h = self._outline(self._cmap[ord("H")]) if ord("H") in self._cmap else Polygon()
        return float(h.bounds[3]) if not h.is_empty else 0.7 * font["head"].unitsPerEm

    def missing(self, text: str) -> list[str]:
        return sorted({c for c in text if not c.isspace() and ord(c) not in self._cmap})

    @lru_cache(maxsize=256)  # noqa: B019 - one font object per file, kept for the process
    def _outline(self, name: str) -> BaseGeometry:
        pen = _RingPen(self._glyphs)
        self._glyphs[name].draw(pen)
        shape: BaseGeometry = Polygon()
        for ring in pen.rings:
            # Even-odd: a counter inside a bowl is cut out whichever way the font winds it.
            shape = shape.symmetric_difference(Polygon(ring).buffer(0))
        return shape

    def _advance_of(self, ch: str) -> float:
        if ch.isspace():
            return float(self._space)
        return float(self._advance.get(self._cmap[ord(ch)], 0))

    def extent(self, text: str, size: float) -> tuple[float, float]:
        """Width and cap height in mm of `text` at capital height `size`."""
        return sum(self._advance_of(c) for c in text) * size / self._cap, size

    def shape(self, text: str, size: float) -> BaseGeometry:
        """`text` filled, capital height `size` mm, the baseline's left end at the origin."""
        scale = size / self._cap
        pieces = []
        x = 0.0
        for ch in text:
            if not ch.isspace():
                glyph = self._outline(self._cmap[ord(ch)])
                if not glyph.is_empty:
                    pieces.append(shapely.affinity.translate(glyph, xoff=x))
            x += self._advance_of(ch)
        if not pieces:
            return Polygon()
        return shapely.affinity.scale(
            shapely.union_all(pieces), xfact=scale, yfact=scale, origin=(0, 0)
        )


@lru_cache(maxsize=8)
def load_font(path: Path) -> OutlineFont:
    """The font at `path`; FontError in words when it is not a font fontTools can read."""
    try:
        return OutlineFont(path)
    except Exception as err:
        # fontTools raises many kinds (TTLibError, struct.error, KeyError) for a bad file.
        raise FontError(f"{path} is not a TrueType or OpenType font ({err})") from err
