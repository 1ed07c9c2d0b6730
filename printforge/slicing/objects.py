"""The objects of a plate and how G-code labels them, so a farm can cancel one mid-print.

A body of the mesh that touches no other is an object: cancelling it leaves the others whole.
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
from shapely.geometry import MultiPoint, Polygon

from printforge.slicing.mesh import Mesh

__all__ = ["PlateObject", "end_label", "find_objects", "label_preamble", "start_label"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class PlateObject:
    index: int
    name: str
    # Convex outline of the object's footprint on the bed: what Klipper's POLYGON shows, and
    # where a layer's islands are matched to their object.
    outline: Polygon


def find_objects(mesh: Mesh, stem: str) -> list[PlateObject]:
    """The plate's objects (see the module docstring), in the order of their outline's
    left-front corner, named `<stem>_<n>` (one object: `<stem>`)."""
    labels = _components(mesh)
    xy = mesh.vertices[:, :2]
    hulls: list[Polygon] = []
    for label in np.unique(labels):
        hulls.append(MultiPoint(xy[labels == label]).convex_hull.buffer(0))
    # Merge bodies whose footprints overlap, until none do.
    merged = True
    while merged:
        merged = False
        for a in range(len(hulls)):
            for b in range(a + 1, len(hulls)):
                if hulls[a].intersects(hulls[b]):
                    hulls[a] = shapely.union(hulls[a], hulls.pop(b)).convex_hull
                    merged = True
                    break
            if merged:
                break
    hulls.sort(key=lambda h: (round(h.bounds[1], 3), round(h.bounds[0], 3)))
    base = _UNSAFE.sub("_", stem).strip("_") or "object"
    if len(hulls) == 1:
        return [PlateObject(0, base, hulls[0])]
    return [PlateObject(k, f"{base}_{k + 1}", h) for k, h in enumerate(hulls)]


def _components(mesh: Mesh) -> np.ndarray:
    """A label per vertex: vertices joined by faces share one (the smallest index among them).

    Label propagation over the faces with pointer jumping, all in numpy: a few dozen passes
    even on 3DBenchy, where a Python union-find would walk 225,000 faces one at a time.
    """
    faces = mesh.faces
    labels = np.arange(len(mesh.vertices))
    while True:
        low = labels[faces].min(axis=1)
        new = labels.copy()
        for k in range(3):
            np.minimum.at(new, faces[:, k], low)
        new = new[new]  # jump: a vertex takes its label's label
        if np.array_equal(new, labels):
            return labels
        labels = new


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
