"""Spec nodes to manifold3d solids. manifold3d keeps every result watertight by construction."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import manifold3d as mf
import numpy as np
import trimesh

from printforge.geometry import families
from printforge.geometry.layout import arrange, turns_to_fit
from printforge.geometry.profiles import cross_section
from printforge.geometry.solids import box, cylinder, rounded_rect, segments, to_trimesh, twisted
from printforge.models import spec as s
from printforge.models.printer import PrinterProfile

__all__ = [
    "TRANSFORMS",
    "build_bodies",
    "build_mesh",
    "node_matrix",
    "part_bodies",
    "place",
    "placements",
    "solid",
    "transform_matrix",
]

TRANSFORMS = ("translate", "rotate", "scale", "mirror")


def _merge(children: list[Any]) -> mf.Manifold:
    parts = [solid(c) for c in children]
    return parts[0] if len(parts) == 1 else mf.Manifold.batch_boolean(parts, mf.OpType.Add)


def _difference(n: s.Difference) -> mf.Manifold:
    parts = [solid(c) for c in n.children]
    return parts[0] if len(parts) == 1 else mf.Manifold.batch_boolean(parts, mf.OpType.Subtract)


def _intersection(n: s.Intersection) -> mf.Manifold:
    parts = [solid(c) for c in n.children]
    return parts[0] if len(parts) == 1 else mf.Manifold.batch_boolean(parts, mf.OpType.Intersect)


def _rounded_box(n: s.RoundedBox) -> mf.Manifold:
    x, y, z = n.size
    body = mf.Manifold.extrude(rounded_rect(x, y, n.radius), z)
    return body.translate((0, 0, -z / 2)) if n.center else body.translate((x / 2, y / 2, 0))


def _torus(n: s.Torus) -> mf.Manifold:
    ring = mf.CrossSection.circle(n.minor_radius, segments(n.minor_radius)).translate(
        (n.major_radius, 0)
    )
    return mf.Manifold.revolve(ring, segments(n.major_radius + n.minor_radius))


def _prism(n: s.PolygonPrism) -> mf.Manifold:
    return mf.Manifold.cylinder(n.height, n.radius, n.radius, n.sides, n.center)


def _extrude(n: s.LinearExtrude) -> mf.Manifold:
    shape = cross_section(n.profiles, n.cutouts)
    body = mf.Manifold.extrude(shape, n.height, 0, 0, (n.scale_top, n.scale_top))
    # OpenSCAD twists clockwise seen from above.
    body = twisted(body, -n.twist, n.height)
    return body.translate((0, 0, -n.height / 2)) if n.center else body


def _revolve(n: s.Revolve) -> mf.Manifold:
    shape = cross_section(n.profiles, n.cutouts)
    (_, _), (xmax, _) = _bounds2(shape)
    return mf.Manifold.revolve(shape, segments(max(xmax, 1.0)), n.angle)


def _bounds2(shape: mf.CrossSection) -> tuple[tuple[float, float], tuple[float, float]]:
    b = shape.bounds()
    return (b[0], b[1]), (b[2], b[3])


def _copies(body: mf.Manifold, matrices: list[np.ndarray]) -> mf.Manifold:
    return mf.Manifold.batch_boolean([body.transform(m[:3, :]) for m in matrices], mf.OpType.Add)


def _translation(v: list[float] | tuple[float, ...]) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = v
    return m


def _linear(n: s.LinearPattern) -> mf.Manifold:
    step = np.asarray(n.step, dtype=float)
    return _copies(_merge(n.children), [_translation(step * i) for i in range(n.count)])


def _grid(n: s.GridPattern) -> mf.Manifold:
    sx, sy = n.spacing
    ox = -(n.columns - 1) * sx / 2 if n.center else 0.0
    oy = -(n.rows - 1) * sy / 2 if n.center else 0.0
    mats = [
        _translation((ox + i * sx, oy + j * sy, 0.0))
        for i in range(n.columns)
        for j in range(n.rows)
    ]
    return _copies(_merge(n.children), mats)


def _circular(n: s.CircularPattern) -> mf.Manifold:
    # A full turn spreads copies over 360° without doubling the first; a partial arc ends on it.
    div = n.count if n.angle >= 360 else max(n.count - 1, 1)
    mats = [transform_matrix("rotate", [0.0, 0.0, n.angle * i / div]) for i in range(n.count)]
    return _copies(_merge(n.children), mats)


def transform_matrix(kind: str, value: list[float]) -> np.ndarray:
    """The 4x4 matrix of a translate / rotate (XYZ degrees) / scale / mirror node's vector."""
    if kind == "translate":
        return _translation(value)
    if kind == "scale":
        return np.diag([*value, 1.0])
    if kind == "mirror":
        nrm = np.asarray(value, dtype=float) / np.linalg.norm(value)
        m = np.eye(4)
        m[:3, :3] -= 2 * np.outer(nrm, nrm)
        return m
    ax, ay, az = (math.radians(a) for a in value)
    rx = trimesh.transformations.rotation_matrix(ax, (1, 0, 0))
    ry = trimesh.transformations.rotation_matrix(ay, (0, 1, 0))
    rz = trimesh.transformations.rotation_matrix(az, (0, 0, 1))
    return rz @ ry @ rx


_VECTOR_FIELD = {"translate": "offset", "rotate": "angles", "scale": "factors", "mirror": "normal"}


def node_matrix(n: Any) -> np.ndarray:
    """The 4x4 matrix of a transform node."""
    return transform_matrix(n.kind, list(getattr(n, _VECTOR_FIELD[n.kind])))


def _transformed(n: Any) -> mf.Manifold:
    return _merge(n.children).transform(node_matrix(n)[:3, :])


_SOLIDS: dict[str, Callable[[Any], mf.Manifold]] = {
    "box": lambda n: box(*n.size, center=n.center),
    "rounded_box": _rounded_box,
    "cylinder": lambda n: cylinder(n.height, n.radius, center=n.center),
    "cone": lambda n: cylinder(n.height, n.radius_bottom, n.radius_top, center=n.center),
    "sphere": lambda n: mf.Manifold.sphere(n.radius, segments(n.radius)),
    "torus": _torus,
    "polygon_prism": _prism,
    "linear_extrude": _extrude,
    "revolve": _revolve,
    "union": lambda n: _merge(n.children),
    "difference": _difference,
    "intersection": _intersection,
    "hull": lambda n: mf.Manifold.batch_hull([solid(c) for c in n.children]),
    "translate": _transformed,
    "rotate": _transformed,
    "scale": _transformed,
    "mirror": _transformed,
    "linear_pattern": _linear,
    "grid_pattern": _grid,
    "circular_pattern": _circular,
}


def solid(node: Any) -> mf.Manifold:
    """One node as one solid; a multi-body part family inside a tree is merged into one."""
    fn = _SOLIDS.get(node.kind)
    if fn is not None:
        return fn(node)
    bodies = families.bodies(node, solid)
    return bodies[0] if len(bodies) == 1 else mf.Manifold.batch_boolean(bodies, mf.OpType.Add)


def part_bodies(node: Any) -> list[mf.Manifold]:
    """The bodies one top-level part prints as (a box with lid is two)."""
    # Transforms around a multi-body family move each body; everything else is one body.
    if node.kind in TRANSFORMS and len(node.children) == 1:
        m = node_matrix(node)[:3, :]
        return [b.transform(m) for b in part_bodies(node.children[0])]
    if node.kind in _SOLIDS:
        return [solid(node)]
    return families.bodies(node, solid)


def build_bodies(spec: s.DesignSpec) -> list[tuple[int, Any, trimesh.Trimesh]]:
    """Every body of the spec as its own mesh in design coordinates, with the index of the part
    it comes from and that part."""
    out: list[tuple[int, Any, trimesh.Trimesh]] = []
    for index, part in enumerate(spec.parts):
        for body in part_bodies(part):
            if body.is_empty():
                raise ValueError(
                    f"part {index + 1} ({part.kind}) is empty after its booleans: the cuts"
                    " remove everything, or the intersected solids do not meet"
                )
            out.append((index, part, to_trimesh(body)))
    return out


def placements(bodies: list[trimesh.Trimesh], row_limit: float | None = None) -> list[np.ndarray]:
    """Per body, the translation putting it side by side with the others, resting on z = 0,
    the whole set centred on the origin."""
    sizes = [tuple(b.extents) for b in bodies]
    offsets = arrange(sizes, row_limit) if row_limit else arrange(sizes)
    return [
        _translation((ox - b.bounds[0][0], oy - b.bounds[0][1], -b.bounds[0][2]))
        for b, (ox, oy) in zip(bodies, offsets, strict=True)
    ]


def place(bodies: list[trimesh.Trimesh], row_limit: float | None = None) -> trimesh.Trimesh:
    """Bodies side by side without overlap, each resting on z = 0, centred on the origin."""
    placed = []
    for body, matrix in zip(bodies, placements(bodies, row_limit), strict=True):
        moved = body.copy()
        moved.apply_transform(matrix)
        placed.append(moved)
    mesh = placed[0] if len(placed) == 1 else trimesh.util.concatenate(placed)
    mesh.metadata["bodies"] = len(placed)
    return mesh


def _family(node: Any) -> bool:
    while node.kind in TRANSFORMS and len(node.children) == 1:
        node = node.children[0]
    return node.kind in s.FAMILY_KINDS


def build_mesh(spec: s.DesignSpec, profile: PrinterProfile | None = None) -> trimesh.Trimesh:
    """The whole design as one mesh: bodies side by side, resting on z = 0, centred in XY.

    With `spec.auto_orient`, free-form bodies are turned onto their stable pose with the least
    overhang (part families are designed in their print pose and keep it). What was turned is
    in `mesh.metadata["orientation"]`, the body count in `mesh.metadata["bodies"]`.

    Args:
        profile: the printer, when known: rows of bodies wrap at its bed width and turned
            poses must fit it.
    """
    from printforge.geometry.orient import best_pose

    meshes, records, poses = [], [], []
    for index, part, mesh in build_bodies(spec):
        pose = np.eye(4)
        if spec.auto_orient and not _family(part):
            pose, record = best_pose(mesh, profile)
            if record.rotated:
                mesh = mesh.copy()
                mesh.apply_transform(pose)
            records.append(record.model_dump(mode="json"))
        meshes.append(mesh)
        poses.append((index, pose))
    if profile is not None:
        turns = turns_to_fit([m.extents for m in meshes], profile.bed_x, profile.bed_y)
        quarter = transform_matrix("rotate", [0.0, 0.0, 90.0])
        for i, turn in enumerate(turns):
            if turn:
                meshes[i] = meshes[i].copy()
                meshes[i].apply_transform(quarter)
                poses[i] = (poses[i][0], quarter @ poses[i][1])
    row_limit = profile.bed_x if profile else None
    moves = placements(meshes, row_limit)
    out = place(meshes, row_limit)
    out.metadata["orientation"] = records
    # Part index and full 4x4 matrix per body: the .scad writer repeats exactly these moves.
    out.metadata["placements"] = [
        {"part": index, "matrix": (move @ pose).tolist()}
        for (index, pose), move in zip(poses, moves, strict=True)
    ]
    return out
