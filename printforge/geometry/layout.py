"""Lay several bodies out on the bed side by side, without overlap, centred on the origin."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GAP_MM", "arrange", "footprint", "turns_to_fit"]

GAP_MM = 5.0  # between bodies: enough for a skirt line and to pick them apart
ROW_LIMIT_MM = 200.0  # start a new row past this width so a kit stays roughly square


def arrange(
    sizes: Sequence[Sequence[float]], row_limit: float = ROW_LIMIT_MM
) -> list[tuple[float, float]]:
    """Min-corner XY position for each body (shelf packing in input order), centred overall."""
    pos: list[tuple[float, float]] = []
    x = y = row_depth = 0.0
    for sx, sy, *_ in sizes:
        if pos and x > 0 and x + sx > row_limit:
            x, y, row_depth = 0.0, y + row_depth + GAP_MM, 0.0
        pos.append((x, y))
        x += sx + GAP_MM
        row_depth = max(row_depth, sy)
    width = max(p[0] + s[0] for p, s in zip(pos, sizes, strict=True))
    depth = max(p[1] + s[1] for p, s in zip(pos, sizes, strict=True))
    return [(px - width / 2, py - depth / 2) for px, py in pos]


def footprint(
    sizes: Sequence[Sequence[float]], row_limit: float = ROW_LIMIT_MM
) -> tuple[float, float, float]:
    """Overall [x, y, z] of the arranged bodies."""
    pos = arrange(sizes, row_limit)
    xs = [p[0] + s[0] for p, s in zip(pos, sizes, strict=True)]
    ys = [p[1] + s[1] for p, s in zip(pos, sizes, strict=True)]
    return (
        max(xs) - min(p[0] for p in pos),
        max(ys) - min(p[1] for p in pos),
        max(s[2] for s in sizes),
    )


def turns_to_fit(sizes: Sequence[Sequence[float]], bed_x: float, bed_y: float) -> list[bool]:
    """Per body, whether a quarter turn about Z makes it fit a bed it does not fit as it is
    (a 240 x 200 mm part on a 250 x 210 mm bed, designed the other way round)."""
    return [(sx > bed_x or sy > bed_y) and sy <= bed_x and sx <= bed_y for sx, sy, *_ in sizes]
