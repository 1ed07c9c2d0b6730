"""The stroke font draws every glyph it claims, at the size it reports."""

from __future__ import annotations

import pytest
from shapely.geometry import MultiPolygon, Polygon

from printforge.geometry.font import _GLYPHS, missing_chars, text_extent, text_shape


@pytest.mark.parametrize("ch", sorted(_GLYPHS))
def test_every_glyph_is_a_valid_filled_shape(ch: str) -> None:
    shape = text_shape(ch, 10)
    assert isinstance(shape, Polygon | MultiPolygon) and shape.is_valid
    assert shape.area > 1.0


@pytest.mark.parametrize("text", ["HELLO", "Lab 42", "A-B/C", "WWW", "i.l"])
def test_extent_matches_the_drawing(text: str) -> None:
    width, height = text_extent(text, 12)
    x0, y0, x1, y1 = text_shape(text, 12).bounds
    assert x0 == pytest.approx(0, abs=0.05) and x1 == pytest.approx(width, abs=0.05)
    assert height == 12
    assert y0 == pytest.approx(0, abs=0.05)  # sitting on the baseline
    assert y1 == pytest.approx(12, abs=0.05)  # capitals are exactly `size` tall


def test_lower_case_and_accents_map_to_capitals() -> None:
    assert text_shape("café", 10).equals_exact(text_shape("CAFE", 10), 1e-9)
    assert missing_chars("Olá, mundo!") == []
    assert missing_chars("I ♥ NY") == ["♥"]


def test_unknown_glyph_is_an_error_not_a_gap() -> None:
    with pytest.raises(ValueError, match="no glyph for '♥'"):
        text_shape("I ♥ NY", 10)
