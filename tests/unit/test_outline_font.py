"""Text from a TrueType font (`--font FILE`, issue 18), with a real font file built here."""

from __future__ import annotations

from pathlib import Path

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

from printforge.geometry.font import drawn_as, missing_chars, text_extent, text_shape, use_font
from printforge.geometry.outline_font import FontError, load_font

CAP = 700


def _box(pen: TTGlyphPen, x0: float, y0: float, x1: float, y1: float, *, clockwise: bool) -> None:
    corners = [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]
    if not clockwise:
        corners.reverse()
    pen.moveTo(corners[0])
    for corner in corners[1:]:
        pen.lineTo(corner)
    pen.closePath()


def make_font(path: Path) -> Path:
    """J, O (with its counter), S and É (an E with an acute above the capitals), and a space."""
    names = [".notdef", "space", "J", "O", "S", "Eacute"]
    drawings = {
        "J": [(350, 0, 450, CAP)],
        "O": [(50, 0, 550, CAP), (150, 100, 450, CAP - 100)],
        "S": [(50, 0, 550, 100), (50, 300, 550, 400), (50, 600, 550, CAP)],
        "Eacute": [(50, 0, 150, CAP), (150, 0, 550, 100), (250, 780, 350, 880)],
    }
    glyphs = {}
    for name in names:
        pen = TTGlyphPen(None)
        for k, box in enumerate(drawings.get(name, [])):
            # The counter of O wound the other way, as TrueType fonts do.
            _box(pen, *box, clockwise=k == 0)
        glyphs[name] = pen.glyph()
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap(
        {32: "space", ord("J"): "J", ord("O"): "O", ord("S"): "S", ord("É"): "Eacute"}
    )
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (600, 0) for n in names})
    fb.setupHorizontalHeader(ascent=900, descent=-200)
    fb.setupNameTable({"familyName": "Printforge Test", "styleName": "Regular"})
    fb.setupOS2(sCapHeight=CAP, sTypoAscender=900, usWinAscent=900, usWinDescent=200)
    fb.setupPost()
    fb.save(str(path))
    return path


def test_the_built_in_font_says_what_it_draws_differently() -> None:
    assert drawn_as("JOSÉ") == [("É", "E")]
    assert drawn_as("jose") == []  # lower case as capitals is the font's design
    assert missing_chars("JOSÉ") == []


def test_a_truetype_font_draws_what_it_has(tmp_path: Path) -> None:
    font = make_font(tmp_path / "test.ttf")
    with use_font(font):
        assert drawn_as("JOSÉ") == []
        assert missing_chars("JOSÉ") == []
        assert missing_chars("JOSÉ?") == ["?"]
        o = text_shape("O", 10.0)
        assert len(o.geoms if hasattr(o, "geoms") else [o]) == 1
        assert len(o.interiors) == 1  # the counter is a hole, whichever way it is wound
        e = text_shape("É", 10.0)
        assert e.bounds[3] == pytest.approx(880 * 10 / CAP)  # the accent, above the capitals
        width, height = text_extent("JOSÉ", 10.0)
        assert width == pytest.approx(4 * 600 * 10 / CAP) and height == 10.0
    # Outside the block, the built-in font again.
    assert drawn_as("JOSÉ") == [("É", "E")]


def test_a_file_that_is_not_a_font_is_refused_in_words(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.ttf"
    bogus.write_text("not a font")
    with pytest.raises(FontError, match="is not a TrueType or OpenType font"):
        load_font(bogus)
