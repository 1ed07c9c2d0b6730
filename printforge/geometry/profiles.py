"""2-D profiles of the spec as manifold3d cross-sections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import manifold3d as mf
import numpy as np
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from printforge.geometry.font import text_extent, text_shape
from printforge.geometry.solids import rounded_rect, segments

__all__ = ["cross_section", "from_shapely", "profile", "text_offset"]


def from_shapely(shape: BaseGeometry) -> mf.CrossSection:
    """A shapely (multi)polygon as a cross-section; holes come from the even-odd rule."""
    polys = list(shape.geoms) if isinstance(shape, MultiPolygon) else [shape]
    contours: list[np.ndarray] = []
    for poly in polys:
        if not isinstance(poly, Polygon) or poly.is_empty:
            continue
        contours.append(np.asarray(poly.exterior.coords[:-1]))
        contours += [np.asarray(ring.coords[:-1]) for ring in poly.interiors]
    return mf.CrossSection(contours, mf.FillRule.EvenOdd)


def text_offset(n: Any) -> tuple[float, float]:
    """Where the drawn text's baseline-left corner goes for the node's alignment."""
    width, height = text_extent(n.text, n.size)
    dx = {"left": 0.0, "center": -width / 2, "right": -width}[n.halign]
    dy = {"baseline": 0.0, "center": -height / 2, "top": -height}[n.valign]
    return n.position[0] + dx, n.position[1] + dy


def profile(n: Any) -> mf.CrossSection:
    """One profile node as a cross-section in its final place."""
    if n.kind == "polygon":
        pts = np.asarray(n.points, dtype=float) + np.asarray(n.position, dtype=float)
        return mf.CrossSection([pts], mf.FillRule.NonZero)
    if n.kind == "circle":
        return mf.CrossSection.circle(n.radius, segments(n.radius)).translate(tuple(n.position))
    if n.kind == "rectangle":
        return mf.CrossSection.square(tuple(n.size), n.center).translate(tuple(n.position))
    if n.kind == "rounded_rectangle":
        x, y = n.size
        cs = rounded_rect(x, y, n.radius)
        shift = (0.0, 0.0) if n.center else (x / 2, y / 2)
        return cs.translate((shift[0] + n.position[0], shift[1] + n.position[1]))
    if n.kind == "text":
        return from_shapely(text_shape(n.text, n.size)).translate(text_offset(n))
    raise ValueError(f"{n.kind!r} is not a 2-D profile")


def cross_section(profiles: Sequence[Any], cutouts: Sequence[Any] = ()) -> mf.CrossSection:
    """The profiles merged, minus the cutouts."""
    shape = mf.CrossSection.batch_boolean([profile(p) for p in profiles], mf.OpType.Add)
    if cutouts:
        cut = mf.CrossSection.batch_boolean([profile(p) for p in cutouts], mf.OpType.Add)
        shape = shape - cut
    return shape
