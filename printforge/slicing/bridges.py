"""Bridges: the parts of a layer's solid area with nothing under them, printed as straight,
parallel strands from one supported edge to the other instead of as ordinary solid infill.

A layer's solid area over the lower layer's cross-section is supported (by the lower layer's
perimeters, solid or sparse infill alike: sparse infill holds a skin, which is why a closed
cube's top is no bridge). What is left over air, once slivers narrower than two lines (the
step of a sloped wall), gaps an ordinary line spans (under BRIDGE_MIN_SPAN_MM) and specks are
dropped, is a bridge. It grows by `ANCHOR_MM` into the surrounding infill area so that every
strand starts and ends on something; where a strand lies on the layer below it is laid as a
line, not a round strand (`split_at_support`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiLineString, Polygon
from shapely.ops import substring

from printforge.slicing.infill import _parallel

__all__ = ["Bridge", "bridge_angle", "find_bridges", "split_at_support"]

# Unsupported areas smaller than this are specks (a rounded corner's tip), not bridges.
BRIDGE_MIN_AREA_MM2 = 2.0
# Gaps narrower than this are spanned by the layer's ordinary solid lines, which hold over that
# much air (3DBenchy's 1–1.2 mm lettering recessed into its bottom; PrusaSlicer bridges none of
# it): round strands there rest on the gap's edges for most of their width, squashed into a
# layer with half as much plastic again as it has room for.
BRIDGE_MIN_SPAN_MM = 2.0
# How far strands reach onto the supported side of a gap to anchor.
ANCHOR_MM = 2.0
# Directions tried besides the gap's own axes.
ANGLE_STEP_DEG = 15.0
# Scoring lines per direction across the gap's narrow side, at least.
SCORE_LINES = 24
# A strand's end lies on support when it is this close to it (float noise on shared edges).
END_TOLERANCE_MM = 0.05
# Sag grows with a strand's length over air, so a direction is as good as its longest strands;
# a high percentile rather than the maximum ignores a stray line through a notch. (The mean
# would favour a diagonal across a rectangle: its short corner chords pull the mean down
# although its middle strands are the longest.)
SPAN_PERCENTILE = 90.0
# Directions whose anchored fraction is within this of the best count as equally anchored;
# among those, the shortest span wins.
FRACTION_SLACK = 0.05


@dataclass(slots=True, frozen=True)
class Bridge:
    area: Polygon  # where the strands go, anchors included (not yet shrunk by half a strand)
    angle: float  # strand direction, degrees from +X


def find_bridges(
    regions: np.ndarray, inner: np.ndarray, solid: np.ndarray, widths: np.ndarray
) -> list[list[Bridge]]:
    """Bridges of each layer; `regions`, `inner` (inside the perimeters) and `solid` are
    per-layer arrays of geometries, `widths` the layers' line widths."""
    n = len(regions)
    out: list[list[Bridge]] = [[] for _ in range(n)]
    if n < 2:
        return out
    below = regions[:-1]
    # One vectorised difference finds the few candidate layers; the rest is per candidate.
    over_air = shapely.difference(solid[1:], below)
    candidates = np.flatnonzero(shapely.area(over_air) > BRIDGE_MIN_AREA_MM2) + 1
    for i in candidates.tolist():
        r = max(float(widths[i]), BRIDGE_MIN_SPAN_MM / 2)
        gap = shapely.buffer(
            shapely.buffer(over_air[i - 1], -r, join_style="mitre"), r, join_style="mitre"
        )
        parts = [g for g in shapely.get_parts(gap) if g.area > BRIDGE_MIN_AREA_MM2]
        if not parts:
            continue
        # Neighbouring gaps whose anchors overlap become one bridge with one direction.
        grown = shapely.union_all(shapely.buffer(parts, ANCHOR_MM, join_style="mitre"))
        areas = shapely.intersection(grown, inner[i])
        air = shapely.union_all(parts)
        for area in shapely.get_parts(areas):
            if not isinstance(area, Polygon) or area.area <= BRIDGE_MIN_AREA_MM2:
                continue
            unsupported = shapely.intersection(area, air)
            # An anchor reaching into a neighbouring island's infill is no bridge of its own.
            if unsupported.area <= BRIDGE_MIN_AREA_MM2:
                continue
            supported = shapely.intersection(area, below[i - 1])
            out[i].append(Bridge(area, bridge_angle(area, unsupported, supported)))
    return out


def bridge_angle(
    area: Polygon, unsupported: shapely.Geometry, supported: shapely.Geometry
) -> float:
    """The strand direction that crosses the gap the shortest way between supported edges.

    Each candidate direction (every ANGLE_STEP_DEG, plus the sides of the gap's minimum
    rotated rectangle, which catch a gap not aligned to the grid) is scored with sample lines
    clipped to the bridge area. What matters for a bridge is, first, that a strand is held at
    both ends: a strand with a free end droops (a cantilever), one with two free ends falls.
    So the direction keeps the largest share of line length anchored at both ends, then at one
    end at least; only among directions equally good at that does the shortest span over air
    (SPAN_PERCENTILE of the lines) win, since sag grows with the span. A box's lid is anchored
    all round, so the short side wins; a tunnel open at its ends is anchored only across, so
    the strands cross it even when its length is shorter than its width.
    """
    angles = [float(a) for a in np.arange(0.0, 180.0, ANGLE_STEP_DEG)]
    rect = shapely.minimum_rotated_rectangle(unsupported)
    if isinstance(rect, Polygon) and not rect.is_empty:
        c = np.asarray(rect.exterior.coords)
        for a, b in ((c[0], c[1]), (c[1], c[2])):
            angles.append(math.degrees(math.atan2(b[1] - a[1], b[0] - a[0])) % 180.0)
    x0, y0, x1, y1 = area.bounds
    step = max(min(x1 - x0, y1 - y0) / SCORE_LINES, 0.2)
    shapely.prepare(supported)
    scores = []
    for angle in angles:
        lines = _clipped(area, _parallel(area.bounds, step, angle))
        if len(lines) == 0:
            continue
        length = shapely.length(lines)
        total = float(length.sum())
        if total <= 0:
            continue
        starts = shapely.get_point(lines, 0)
        ends = shapely.get_point(lines, -1)
        a = shapely.dwithin(starts, supported, END_TOLERANCE_MM)
        b = shapely.dwithin(ends, supported, END_TOLERANCE_MM)
        span = shapely.length(shapely.intersection(lines, unsupported))
        both = float(length[a & b].sum()) / total
        one = float(length[a | b].sum()) / total
        over_air = span[span > 0]
        long_span = float(np.percentile(over_air, SPAN_PERCENTILE)) if len(over_air) else 0.0
        scores.append((both, one, long_span, angle))
    if not scores:
        return 0.0
    best_both = max(s[0] for s in scores)
    scores = [s for s in scores if s[0] >= best_both - FRACTION_SLACK]
    best_one = max(s[1] for s in scores)
    scores = [s for s in scores if s[1] >= best_one - FRACTION_SLACK]
    return round(min(scores, key=lambda s: s[2])[3], 3)


def _clipped(area: Polygon, lines: list[np.ndarray]) -> np.ndarray:
    """The sample lines' pieces inside `area`, as an array of LineStrings."""
    if not lines:
        return np.empty(0, dtype=object)
    parts = shapely.get_parts(shapely.intersection(MultiLineString(lines), area))
    return parts[shapely.get_type_id(parts) == 1]


def split_at_support(
    points: np.ndarray, support: shapely.Geometry
) -> list[tuple[np.ndarray, bool]]:
    """A strand's runs in order along it, each with whether it lies over air (True) or on
    `support`, the layer below's section (False).

    Only over air is a strand the round cylinder of bridge flow. On its anchors it lies on the
    layer below like any line: a round strand's plastic squashed into one layer height at the
    strands' pitch spreads half as wide again as that pitch, laying a third of the anchor twice.
    """
    line = shapely.linestrings(points)
    if not shapely.intersects(line, support):
        return [(points, True)]
    if shapely.covered_by(line, support):
        return [(points, False)]
    edge = shapely.intersection(line, shapely.boundary(support))
    cuts = shapely.line_locate_point(line, shapely.get_parts(shapely.extract_unique_points(edge)))
    total = line.length
    stops = np.unique(np.concatenate([[0.0, total], np.clip(cuts, 0.0, total)]))
    stops = stops[np.concatenate([[True], np.diff(stops) > 1e-6])]
    mids = shapely.line_interpolate_point(line, (stops[:-1] + stops[1:]) / 2)
    on = shapely.covered_by(mids, support)
    runs: list[tuple[np.ndarray, bool]] = []
    for a, b, held in zip(stops[:-1], stops[1:], on.tolist(), strict=True):
        piece = np.asarray(substring(line, a, b).coords)
        if runs and runs[-1][1] == (not held):
            runs[-1] = (np.vstack([runs[-1][0], piece[1:]]), not held)
        else:
            runs.append((piece, not held))
    return [(pts, air) for pts, air in runs if len(pts) >= 2]
