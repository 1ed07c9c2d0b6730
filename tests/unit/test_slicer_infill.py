"""Straight infill lines clipped by scanlines (`infill._scan`) are the pieces GEOS's overlay
gives (`infill._clip`), on outlines that meet the lines at vertices and along edges."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity
from shapely.geometry import MultiPolygon, Polygon

from printforge.slicing.infill import _clip, _parallel, _scan


def _pieces(lines: list[np.ndarray]) -> list[tuple[float, ...]]:
    """Each piece as its two ends, lower end first, rounded: order and direction aside."""
    out = []
    for ln in lines:
        a, b = sorted(map(tuple, np.round(ln, 6).tolist()))
        out.append((*a, *b))
    return sorted(out)


SQUARE = Polygon([(0, 0), (4.1, 0), (4.1, 4.1), (0, 4.1)])  # edges on the 0.41 mm grid
RING = (
    shapely.Point(50, 50)
    .buffer(10, quad_segs=16)
    .difference(shapely.Point(52, 49).buffer(4, quad_segs=16))
)
COMB = shapely.union_all([shapely.box(x, 0, x + 1, 8) for x in np.arange(0, 10, 2)]).union(
    shapely.box(0, 0, 10, 1)
)


def _off(shape: Polygon) -> Polygon:
    """The shape moved off the grid: no edge lies along a line."""
    return shapely.affinity.translate(shape, 0.1234, 0.0567)


@pytest.mark.parametrize("shape", [SQUARE, RING, COMB], ids=["square", "ring", "comb"])
@pytest.mark.parametrize("angle", [0.0, 90.0, 45.0, -45.0, 17.3])
def test_scanlines_give_the_pieces_geos_gives(shape: Polygon, angle: float) -> None:
    region = _off(shape)
    region = MultiPolygon([region]) if isinstance(region, Polygon) else region
    expected = _clip(region, _parallel(region.bounds, 0.41, angle))
    got = _scan(region, 0.41, angle)
    assert len(got) == len(expected)
    assert np.allclose(_pieces(got), _pieces(expected), atol=1e-6)


@pytest.mark.parametrize(
    ("box", "spacing", "angle"),
    [((93.2, 100, 126.8, 120), 0.4, 90.0), ((123.0, 100, 127.1, 120), 0.41, -90.0)],
)
def test_scanlines_along_an_edge_stay_inside(
    box: tuple[float, float, float, float], spacing: float, angle: float
) -> None:
    # Edges on the lines' grid: a line along an edge crosses it 1e-15 off its direction, and
    # its crossing once sent a piece 15 mm outside the region (a bridge off a box's edge).
    region = MultiPolygon([shapely.box(*box)])
    got = _scan(region, spacing, angle)
    assert got
    grown = region.buffer(1e-6)
    assert all(grown.covers(shapely.LineString(ln)) for ln in got)
