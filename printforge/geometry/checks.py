"""Checks on a spec before anything is built: does it fit the bed, can the nozzle draw it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from shapely.geometry import Polygon as ShapelyPolygon

from printforge.geometry.bounds import part_body_sizes
from printforge.geometry.font import (
    STROKE_UNITS,
    drawn_as,
    font_in_use,
    missing_chars,
    text_extent,
)
from printforge.geometry.layout import footprint, turns_to_fit
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec

__all__ = ["MAX_SOLIDS", "font_substitutions", "solid_count", "spec_problems", "walk"]

# Wall-like thicknesses: each must be at least one extrusion wide.
_THIN_FIELDS = ("wall", "thickness", "floor", "lid_thickness", "blade", "base_thickness")
_STROKE_PER_SIZE = STROKE_UNITS / (6.0 + STROKE_UNITS)  # font stroke width / capital height
# Solids after patterns multiply: beyond this a build takes minutes and the mesh gets huge.
MAX_SOLIDS = 2000


def _copies(node: Any) -> int:
    if node.kind == "linear_pattern" or node.kind == "circular_pattern":
        return int(node.count)
    if node.kind == "grid_pattern":
        return int(node.columns * node.rows)
    return 1


def solid_count(node: Any) -> int:
    """How many solids the tree makes once every pattern is expanded."""
    kids = getattr(node, "children", None) or []
    inner = sum(solid_count(c) for c in kids) if kids else 1
    return _copies(node) * inner


def walk(node: Any) -> Iterator[Any]:
    """Every node of a tree, parents first (profiles of extrusions included)."""
    yield node
    for name in ("children", "profiles", "cutouts"):
        for child in getattr(node, name, None) or []:
            yield from walk(child)


def font_substitutions(spec: DesignSpec) -> list[str]:
    """What the built-in font draws differently from the spec's text, one sentence each."""
    out = []
    for node in (n for part in spec.parts for n in walk(part)):
        text = getattr(node, "text", None)
        if isinstance(text, str):
            for ch, drawn in drawn_as(text):
                out.append(
                    f"{ch} is not in the built-in font; built as {drawn} in {text!r}"
                    " — use --font FILE for a TrueType or OpenType font that has it"
                )
    return out


def spec_problems(spec: DesignSpec, profile: PrinterProfile) -> list[str]:
    """Readable reasons this spec cannot print on `profile`; empty when it can."""
    out: list[str] = []
    for i, part in enumerate(spec.parts):
        for node in walk(part):
            # A spec made with model_construct skipped validation; ask every node again.
            out += [f"part {i + 1} ({node.kind}): {p}" for p in node.problems()]
    if out:
        return out
    nozzle = profile.nozzle_diameter
    for i, part in enumerate(spec.parts):
        for node in walk(part):
            out += [f"part {i + 1} ({node.kind}): {p}" for p in _node_checks(node, nozzle)]
    total = sum(solid_count(p) for p in spec.parts)
    if total > MAX_SOLIDS:
        out.append(
            f"the patterns make {total} solids, more than the {MAX_SOLIDS} printforge"
            " builds; use fewer copies or fewer nested patterns"
        )
    if out:
        return out
    sizes = [sz for part in spec.parts for sz in part_body_sizes(part)]
    turns = turns_to_fit(sizes, profile.bed_x, profile.bed_y)
    sizes = [(y, x, z) if turn else (x, y, z) for (x, y, z), turn in zip(sizes, turns, strict=True)]
    fx, fy, fz = footprint(sizes, profile.bed_x)
    if fx > profile.bed_x or fy > profile.bed_y:
        many = len(sizes) > 1
        what = f"the {len(sizes)} bodies laid side by side need" if many else "the design needs"
        out.append(
            f"{what} {fx:.1f} x {fy:.1f} mm of bed but printer {profile.name!r} has"
            f" {profile.bed_x:.0f} x {profile.bed_y:.0f} mm; make it smaller"
            + (" or print the bodies as separate jobs" if many else "")
        )
    if fz > profile.max_z:
        out.append(
            f"the design is {fz:.1f} mm tall but printer {profile.name!r} prints at most"
            f" {profile.max_z:.0f} mm; make it lower or lay it on its side"
        )
    return out


_ROUND = ("cylinder", "sphere", "polygon_prism", "circle")


def _feature_checks(node: Any, nozzle: float) -> list[str]:
    """Solids, cutters and holes narrower than one extrusion: a slicer drops them."""
    widths: list[tuple[str, float]] = []
    if node.kind in ("box", "rounded_box", "rectangle", "rounded_rectangle"):
        widths.append(("size", min(node.size[:2])))
    elif node.kind in _ROUND:
        widths.append(("diameter (2 x radius)", 2 * node.radius))
    elif node.kind == "cone":
        widths.append(
            ("diameter (2 x radius_bottom)", 2 * max(node.radius_bottom, node.radius_top))
        )
    elif node.kind == "torus":
        widths.append(("tube diameter (2 x minor_radius)", 2 * node.minor_radius))
    for name in type(node).model_fields:
        if name.endswith("diameter"):
            widths.append((name, getattr(node, name)))
    return [
        f"{name} {value:g} mm is narrower than the {nozzle} mm nozzle can form; use at"
        f" least {nozzle} mm" + (" or 0 for none" if "hole" in name else "")
        for name, value in widths
        if 0 < value < nozzle
    ]


# Round parts whose wall is the gap between two diameters rather than a field of its own
# (spacers and standoffs already keep 0.4 mm of wall round their hole when validated).
_RING_WALLS = {
    "tube": ("outer_diameter", "inner_diameter"),
    "washer": ("outer_diameter", "inner_diameter"),
}


def _ring_wall(node: Any, nozzle: float) -> list[str]:
    """A tube 10 mm outside and 9.8 inside has a 0.1 mm wall: the slicer prints nothing."""
    if node.kind not in _RING_WALLS:
        return []
    outer_name, inner_name = _RING_WALLS[node.kind]
    outer, inner = getattr(node, outer_name), getattr(node, inner_name)
    wall = (outer - inner) / 2
    if inner <= 0 or wall >= nozzle:
        return []
    # Rounded down, so the size suggested passes this check itself.
    most = math.floor((outer - 2 * nozzle) * 10 + 1e-6) / 10
    return [
        f"the wall between {outer_name} {outer:g} mm and {inner_name} {inner:g} mm is"
        f" {wall:.2g} mm thick, thinner than the {nozzle} mm nozzle can print; make"
        f" {inner_name} at most {most:g} mm or {outer_name} larger"
    ]


def _node_checks(node: Any, nozzle: float) -> list[str]:
    out = _feature_checks(node, nozzle) + _ring_wall(node, nozzle)
    for name in _THIN_FIELDS:
        value = getattr(node, name, None)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < nozzle:
            out.append(
                f"{name} {value} mm is thinner than the {nozzle} mm nozzle can print;"
                f" use at least {nozzle} mm"
            )
    if node.kind in ("text", "nameplate"):
        out += _text_checks(node, nozzle)
    if node.kind == "enclosure" and node.holes:
        out += _standoff_gaps(node, nozzle)
    if node.kind == "polygon" or (node.kind == "cookie_cutter" and node.shape == "polygon"):
        poly = ShapelyPolygon(node.points)
        if not poly.is_valid:
            out.append("the outline crosses itself; list the points in order around the shape")
    return out


def _standoff_gaps(node: Any, nozzle: float) -> list[str]:
    # Two standoffs closer than one extrusion leave a sliver the slicer drops or smears.
    od = node.standoff_diameter()
    spots = node.hole_centres()
    out = []
    for i, (xa, ya) in enumerate(spots):
        for j in range(i + 1, len(spots)):
            gap = math.dist((xa, ya), spots[j]) - od
            if gap < nozzle:
                out.append(
                    f"the standoffs under holes {i + 1} and {j + 1} are {max(gap, 0):.2f}"
                    f" mm apart, less than the {nozzle} mm nozzle; move the holes at"
                    f" least {od + nozzle:.1f} mm apart (centre to centre)"
                )
    return out


def _text_checks(node: Any, nozzle: float) -> list[str]:
    out = []
    missing = missing_chars(node.text)
    if missing:
        font = font_in_use()
        out.append(
            f"the font {font.path.name} has no {' '.join(missing)}; give a font that has them"
            if font is not None
            else f"the built-in font cannot draw {' '.join(missing)}; use A-Z, 0-9 and"
            " . , - + = : ! ? ' / ( ) # & * _, or --font FILE (a TrueType or OpenType font)"
        )
        return out
    size = node.size if node.kind == "text" else node.text_height
    label = "size" if node.kind == "text" else "text_height"
    if size * _STROKE_PER_SIZE < nozzle:
        least = nozzle / _STROKE_PER_SIZE
        out.append(
            f"{label} {size} mm draws letters with strokes thinner than the {nozzle} mm"
            f" nozzle; use at least {least:.1f} mm"
        )
    if node.kind == "nameplate" and node.size[0] > 0 and node.size[1] > 0:
        width, height = text_extent(node.text, node.text_height)
        room = node.size[0] - (node.hole_diameter + 3 if node.hole_diameter else 0) - 2
        if width > room or height > node.size[1] - 2:
            out.append(
                f"the text needs {width:.0f} x {height:.0f} mm but the plate leaves"
                f" {room:.0f} x {node.size[1] - 2:.0f} mm; make the plate larger, the"
                " text_height smaller, or set size [0, 0] to fit the text"
            )
    return out
