"""Flat decorative families: nameplates with text, and cookie cutters from an outline."""

from __future__ import annotations

import math

import manifold3d as mf
import numpy as np
from shapely import affinity
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from printforge.geometry.font import text_extent, text_shape
from printforge.geometry.profiles import from_shapely
from printforge.geometry.solids import EPS, cylinder, rounded_rect
from printforge.models import spec as s

__all__ = ["cookie_cutter", "cookie_outline", "nameplate", "nameplate_layout"]


def nameplate_layout(n: s.Nameplate) -> tuple[float, float, float, float]:
    """Plate x, y and where the text's left end and the hole's centre go (x only)."""
    tw, th = text_extent(n.text, n.text_height)
    margin = max(3.0, 0.4 * n.text_height)
    hole_room = n.hole_diameter + margin if n.hole_diameter else 0.0
    if n.size[0] > 0 and n.size[1] > 0:
        x, y = n.size
    else:
        x, y = tw + 2 * margin + hole_room, th + 2 * margin
    left = -x / 2 + hole_room
    text_x = left + (x / 2 - left - tw) / 2
    hole_x = -x / 2 + margin / 2 + n.hole_diameter / 2 + 0.5
    return x, y, text_x, hole_x


def nameplate(n: s.Nameplate) -> list[mf.Manifold]:
    x, y, text_x, hole_x = nameplate_layout(n)
    t = n.thickness
    plate = mf.Manifold.extrude(rounded_rect(x, y, n.corner_radius), t)
    _, th = text_extent(n.text, n.text_height)
    letters = from_shapely(text_shape(n.text, n.text_height)).translate((text_x, -th / 2))
    if n.style == "raised":
        body = plate + mf.Manifold.extrude(letters, n.text_depth + EPS).translate((0, 0, t - EPS))
    else:
        cut = mf.Manifold.extrude(letters, n.text_depth + 1).translate((0, 0, t - n.text_depth))
        body = plate - cut
    if n.hole_diameter:
        body = body - cylinder(t + n.text_depth + 2, n.hole_diameter / 2).translate((hole_x, 0, -1))
    return [body]


def _star(points: int = 5, inner: float = 0.45) -> BaseGeometry:
    pts = []
    for i in range(2 * points):
        r = 1.0 if i % 2 == 0 else inner
        a = math.pi / 2 + i * math.pi / points
        pts.append((r * math.cos(a), r * math.sin(a)))
    return Polygon(pts)


def _heart() -> BaseGeometry:
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return Polygon(np.column_stack([x, y]))


def cookie_outline(n: s.CookieCutter) -> BaseGeometry:
    """The cutting outline, centred on the origin, scaled so that the whole cutter (blade and
    flange around the outline) is `size` mm across its larger side."""
    if n.shape == "circle":
        shape: BaseGeometry = Point(0, 0).buffer(1.0, quad_segs=32)
    elif n.shape == "star":
        shape = _star()
    elif n.shape == "heart":
        shape = _heart()
    else:
        shape = Polygon(n.points).buffer(0)
    minx, miny, maxx, maxy = shape.bounds
    k = n.outline_size() / max(maxx - minx, maxy - miny)
    shape = affinity.scale(shape, k, k, origin=(0, 0))
    minx, miny, maxx, maxy = shape.bounds
    return affinity.translate(shape, -(minx + maxx) / 2, -(miny + maxy) / 2)


def cookie_cutter(n: s.CookieCutter) -> list[mf.Manifold]:
    outline = cookie_outline(n)
    blade_ring = outline.buffer(n.blade, quad_segs=8).difference(outline)
    blade = mf.Manifold.extrude(from_shapely(blade_ring), n.height)
    if n.flange_width <= 0 or n.flange_thickness <= 0:
        return [blade]
    flange_ring = outline.buffer(n.blade + n.flange_width, quad_segs=8).difference(outline)
    flange = mf.Manifold.extrude(from_shapely(flange_ring), n.flange_thickness)
    return [blade + flange]
