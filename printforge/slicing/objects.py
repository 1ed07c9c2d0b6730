"""The objects of a plate and how G-code labels them, so a farm can cancel one mid-print.

A body of the model that touches no other is an object: cancelling it leaves the others whole.
Bodies whose footprints overlap (a peg standing inside a ring, a part on a raft) are one object,
since the firmware skips an object's moves whatever lies above or below them.

Labels per firmware (`PrinterProfile.firmware`):
- Marlin and Prusa firmware (`M486`, CANCEL_OBJECTS): `M486 T<count>` and each object's index
  and name up front, then `M486 S<n>` before an object's paths in a layer and `M486 S-1` after.
  A build without CANCEL_OBJECTS answers `Unknown command` and goes on printing.
- Klipper (`[exclude_object]`): `EXCLUDE_OBJECT_DEFINE` with each object's centre and outline
  up front, then `EXCLUDE_OBJECT_START` / `EXCLUDE_OBJECT_END` around its paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

__all__ = ["PlateObject", "end_label", "find_objects", "label_preamble", "start_label"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME = 40


@dataclass(frozen=True, slots=True)
class PlateObject:
    index: int
    name: str
    # Convex outline of the object's footprint on the bed: what Klipper's POLYGON shows, and
    # where a layer's islands are matched to their object.
    outline: Polygon


def find_objects(regions: list[shapely.Geometry], stem: str) -> list[PlateObject]:
    """The plate's objects (see the module docstring) from every layer's cross-section, in
    the order of their outline's front-left corner, named `<stem>_<n>` (one object: `<stem>`).

    A body is connected, so its islands' convex hulls, layer after layer, form one chain of
    overlapping hulls; two bodies whose footprints are apart never share one. Working on the
    sections costs milliseconds where a walk over the mesh's faces took a second on 3DBenchy.
    """
    sections = np.array(regions, dtype=object)
    hulls = shapely.convex_hull(shapely.get_parts(sections))
    layer = np.repeat(np.arange(len(sections)), shapely.get_num_geometries(sections))
    keep = ~shapely.is_empty(hulls)
    hulls, layer = hulls[keep], layer[keep]
    if len(hulls) == 0:
        return []
    # A body's islands overlap the ones on the layer next to them, so only hulls on the same
    # or neighbouring layers are tested (3DBenchy: 10^3 pairs rather than 10^5, all of which
    # overlap); the outline merge below joins whatever that chain misses.
    a, b = shapely.STRtree(hulls).query(hulls)
    near = (a < b) & (np.abs(layer[a] - layer[b]) <= 1)
    a, b = a[near], b[near]
    touch = shapely.intersects(hulls[a], hulls[b])
    a, b = a[touch], b[touch]
    # Connected components of the overlap graph by label propagation with pointer jumping.
    labels = np.arange(len(hulls))
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, labels):
            break
        labels = new
    outlines = [
        shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(hulls[labels == k])))
        for k in np.unique(labels)
    ]
    # Objects whose outlines overlap (one body's hull reaching over another's) are one.
    merged = True
    while merged:
        merged = False
        for i in range(len(outlines)):
            for j in range(i + 1, len(outlines)):
                if outlines[i].intersects(outlines[j]):
                    outlines[i] = shapely.union(outlines[i], outlines.pop(j)).convex_hull
                    merged = True
                    break
            if merged:
                break
    outlines.sort(key=lambda h: (round(h.bounds[1], 3), round(h.bounds[0], 3)))
    # Short enough that `M486 A<name>_<n>` fits a serial line numbered and checksummed
    # (`max_line_bytes`, 96 by default) whatever the file was called.
    base = _UNSAFE.sub("_", stem).strip("_")[:MAX_NAME] or "object"
    if len(outlines) == 1:
        return [PlateObject(0, base, outlines[0])]
    return [PlateObject(k, f"{base}_{k + 1}", h) for k, h in enumerate(outlines)]


def match_islands(objects: list[PlateObject], islands: list[Polygon]) -> list[int]:
    """The object each of a layer's islands belongs to: the one whose outline holds a point
    of it, else the nearest."""
    if len(objects) == 1:
        return [0] * len(islands)
    out = []
    for island in islands:
        p = island.representative_point()
        inside = [o.index for o in objects if o.outline.contains(p)]
        out.append(inside[0] if inside else min(objects, key=lambda o: o.outline.distance(p)).index)
    return out


def label_preamble(objects: list[PlateObject], firmware: str) -> str:
    """What declares the objects before the first layer."""
    if not objects:
        return ""
    if firmware == "klipper":
        lines = []
        for o in objects:
            c = o.outline.centroid
            pts = ",".join(f"[{x:.3f},{y:.3f}]" for x, y in o.outline.exterior.coords[:-1])
            lines.append(
                f"EXCLUDE_OBJECT_DEFINE NAME={o.name} CENTER={c.x:.3f},{c.y:.3f} POLYGON=[{pts}]"
            )
        return "\n".join(lines) + "\n"
    lines = [f"M486 T{len(objects)}"]
    for o in objects:
        lines += [f"M486 S{o.index}", f"M486 A{o.name}"]
    lines.append("M486 S-1")
    return "\n".join(lines) + "\n"


def start_label(obj: PlateObject, firmware: str) -> str:
    if firmware == "klipper":
        return f"EXCLUDE_OBJECT_START NAME={obj.name}\n"
    return f"M486 S{obj.index}\n"


def end_label(obj: PlateObject, firmware: str) -> str:
    if firmware == "klipper":
        return f"EXCLUDE_OBJECT_END NAME={obj.name}\n"
    return "M486 S-1\n"


__all__ += ["match_islands"]
