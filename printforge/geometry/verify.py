"""Holding a design to its requirement list: each `built` requirement that can be measured is
measured on the built mesh.

- `size`: an outside extent: one of a body's (or the whole part's) extents equals it.
- `hole`: a hole or bore diameter: some cross-section along X, Y or Z shows an opening of that
  size (area-equivalent diameter, or the narrow width of a slot or hexagon).
- `wall`: the distance from an outside outline to a cavity on a mid cross-section.
- `text`: the spec carries that text.

Everything else (a spacing, a clearance, a count) is checked against the spec path it names,
which must exist. A failure is a sentence for the person or the model that made the design.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import trimesh
from shapely.geometry import Polygon

from printforge.models.spec import DesignSpec

__all__ = ["check_mesh", "requirement_problems", "resolve"]

_STEP = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]")


def resolve(spec: DesignSpec, path: str) -> Any:
    """The value at `path` ('parts[0].size[2]') in the spec; KeyError when there is none."""
    node: Any = spec.model_dump(mode="json")
    pos = 0
    text = path.strip()
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or m.end() == pos:
            raise KeyError(path)
        if m.group(1) is not None:
            if not isinstance(node, dict) or m.group(1) not in node:
                raise KeyError(path)
            node = node[m.group(1)]
        else:
            i = int(m.group(2))
            if not isinstance(node, list) or i >= len(node):
                raise KeyError(path)
            node = node[i]
        pos = m.end()
    return node


def requirement_problems(spec: DesignSpec) -> list[str]:
    """What is wrong with the requirement list itself, without building anything."""
    out: list[str] = []
    for i, req in enumerate(spec.requirements):
        where = f"requirements[{i}] ({req.text!r})"
        if req.status == "built" and req.spec_path:
            try:
                resolve(spec, req.spec_path)
            except KeyError:
                out.append(f"{where}: spec_path {req.spec_path!r} names no field of the spec")
        if req.status == "not_built" and not (req.note or "").strip():
            out.append(f"{where}: a not_built requirement needs a note saying why")
        if req.status == "built" and req.role == "text" and not _has_text(spec, req.text):
            out.append(f"{where}: no text node or field of the spec carries {req.text!r}")
    return out


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "text" and isinstance(v, str)] + [
            t for k, v in node.items() if k != "requirements" for t in _texts(v)
        ]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().upper()


def _has_text(spec: DesignSpec, text: str) -> bool:
    texts = [_norm(t) for t in _texts(spec.model_dump(mode="json").get("parts"))]
    want = _norm(text.strip("\"'“”‘’"))
    return any(want in t for t in texts) or want in " ".join(texts)


class _Measure:
    """Extents and cross-section openings of a built mesh, computed once."""

    def __init__(self, mesh: trimesh.Trimesh) -> None:
        self.mesh = mesh
        pieces = mesh.split(only_watertight=False) if len(mesh.faces) else []
        self.bodies = [b for b in pieces if len(b.faces) >= 4] or [mesh]
        self._openings: dict[int, list[tuple[float, float]]] | None = None
        self._walls: list[float] | None = None

    def extents(self) -> list[float]:
        out = [float(v) for v in self.mesh.extents]
        for b in self.bodies:
            out += [float(v) for v in b.extents]
        return out

    def _sections(self, count: int) -> list[Any]:
        polys: list[Any] = []
        for body in self.bodies:
            lo, hi = body.bounds
            for axis in range(3):
                span = float(hi[axis] - lo[axis])
                if span <= 0:
                    continue
                normal = np.zeros(3)
                normal[axis] = 1.0
                heights = np.linspace(0.02 * span, 0.98 * span, count)
                if span > 1.0:
                    # Thin floors and lids (a pot's drain hole) lie near the ends.
                    heights = np.union1d(heights, [0.3, span - 0.3])
                try:
                    paths = body.section_multiplane(
                        plane_origin=lo, plane_normal=normal, heights=heights
                    )
                except (ValueError, IndexError):  # a degenerate slice: skip it
                    continue
                for p in paths:
                    if p is None:
                        continue
                    try:
                        polys += list(p.polygons_full)
                    except (ValueError, IndexError):
                        continue
        return polys

    def openings(self, fine: bool = False) -> list[tuple[float, float]]:
        """(area-equivalent diameter, narrowest width) of the enclosed openings seen on a few
        cross-sections per axis, or on many with `fine` (slower: asked only when a hole was
        not found on the few)."""
        level = 1 if fine else 0
        if self._openings is None:
            self._openings = {}
        if level not in self._openings:
            out = []
            for poly in self._sections(41 if fine else 9):
                for ring in poly.interiors:
                    hole = Polygon(ring)
                    if hole.area <= 0:
                        continue
                    rect = hole.minimum_rotated_rectangle
                    xs, ys = rect.exterior.coords.xy
                    sides = [math.dist((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(2)]
                    out.append((2 * math.sqrt(hole.area / math.pi), min(sides)))
            self._openings[level] = out
        return self._openings[level]

    def walls(self) -> list[float]:
        """Distances from the outside outline to each cavity on mid cross-sections."""
        if self._walls is None:
            out: list[float] = []
            for body in self.bodies:
                lo, hi = body.bounds
                for axis in range(3):
                    normal = np.zeros(3)
                    normal[axis] = 1.0
                    for f in (0.5, 0.3, 0.7):
                        origin = lo + (hi - lo) * f
                        try:
                            sec = body.section(plane_origin=origin, plane_normal=normal)
                            if sec is None:
                                continue
                            planar, _ = sec.to_2D()
                            polys = list(planar.polygons_full)
                        except (ValueError, IndexError):
                            continue
                        for poly in polys:
                            for ring in poly.interiors:
                                out.append(float(poly.exterior.distance(Polygon(ring))))
            self._walls = out
        return self._walls


def _tol(value: float, share: float, floor: float) -> float:
    return max(floor, share * abs(value))


def check_mesh(spec: DesignSpec, mesh: trimesh.Trimesh) -> list[str]:
    """Each measurable `built` requirement that the mesh does not meet, as a sentence."""
    out: list[str] = []
    m = _Measure(mesh)
    for req in spec.requirements:
        if req.status != "built" or req.value is None or req.value <= 0:
            continue
        v = req.value
        if req.role == "size":
            ext = m.extents()
            if not any(abs(e - v) <= _tol(v, 0.02, 0.3) for e in ext):
                size = " x ".join(f"{e:.1f}" for e in sorted(mesh.extents))
                out.append(
                    f"requirement {req.text!r} asks for an outside size of {v:g} mm, but the"
                    f" built part measures {size} mm"
                )
        elif req.role == "hole":
            tol = _tol(v, 0.04, 0.3)

            def seen(found: list[tuple[float, float]], v: float = v, tol: float = tol) -> bool:
                return any(abs(eq - v) <= tol or abs(w - v) <= tol for eq, w in found)

            found = m.openings()
            if not seen(found):
                found = m.openings(fine=True)
            if not seen(found):
                near = sorted({round(eq, 1) for eq, _ in found}, key=lambda d: abs(d - v))[:3]
                out.append(
                    f"requirement {req.text!r} asks for a {v:g} mm hole, but no opening of that"
                    f" size is in the built part"
                    + (f" (nearest: {', '.join(f'{d:g}' for d in near)} mm)" if near else "")
                )
        elif req.role == "wall":
            walls = m.walls()
            if walls and not any(abs(w - v) <= _tol(v, 0.1, 0.3) for w in walls):
                near = sorted({round(w, 2) for w in walls}, key=lambda d: abs(d - v))[:3]
                out.append(
                    f"requirement {req.text!r} asks for {v:g} mm walls, but the built walls are"
                    f" {', '.join(f'{w:g}' for w in near)} mm"
                )
    return out
