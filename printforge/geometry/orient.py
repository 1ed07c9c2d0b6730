"""Turn a part onto the resting pose with the least overhang.

Candidates are the stable resting poses: faces of the convex hull on which the part stands
without tipping (its centre of mass projects inside the face). trimesh's compute_stable_poses
finds the same set but also estimates each pose's probability by simulation, which takes
seconds on a fine mesh; only the geometry is needed here, so the largest hull facets are
tested directly.
"""

from __future__ import annotations

import numpy as np
import trimesh
from shapely.geometry import MultiPoint, Point

from printforge.geometry.printability import overhang_area
from printforge.models.printability import Orientation
from printforge.models.printer import PrinterProfile

__all__ = ["best_pose", "orient"]

_CANDIDATES = 24  # largest hull facets tried: small facets are poor, wobbly bases anyway
_GAIN = 0.10  # turn only if overhang drops by more than this fraction...
_MIN_GAIN_MM2 = 5.0  # ...and by more than this area


def _down(normal: np.ndarray) -> np.ndarray:
    """A rotation taking `normal` to -Z."""
    return trimesh.geometry.align_vectors(normal, np.array([0.0, 0.0, -1.0]))


def _stable(hull: trimesh.Trimesh, faces: np.ndarray, matrix: np.ndarray, com: np.ndarray) -> bool:
    pts = trimesh.transform_points(hull.vertices[np.unique(hull.faces[faces])], matrix)
    base = MultiPoint(pts[:, :2]).convex_hull
    c = trimesh.transform_points(com[None, :], matrix)[0]
    return bool(base.buffer(1e-6).contains(Point(c[0], c[1])))


def _fits(mesh: trimesh.Trimesh, matrix: np.ndarray, profile: PrinterProfile | None) -> bool:
    if profile is None:
        return True
    ext = np.ptp(trimesh.transform_points(mesh.vertices, matrix), axis=0)
    return bool(ext[0] <= profile.bed_x and ext[1] <= profile.bed_y and ext[2] <= profile.max_z)


def _overhang(mesh: trimesh.Trimesh, matrix: np.ndarray) -> float:
    turned = mesh.copy()
    turned.apply_transform(matrix)
    return overhang_area(turned)


def best_pose(
    mesh: trimesh.Trimesh, profile: PrinterProfile | None = None
) -> tuple[np.ndarray, Orientation]:
    """The 4x4 rotation to apply (identity to keep the pose) and what it gains."""
    identity = np.eye(4)
    before = overhang_area(mesh)
    record = Orientation(overhang_before_mm2=before, overhang_after_mm2=before)
    if before <= _MIN_GAIN_MM2 or len(mesh.faces) < 4:
        return identity, record
    hull = mesh.convex_hull
    com = mesh.center_mass if mesh.is_watertight else mesh.centroid
    groups = [np.asarray(f) for f in hull.facets] + [
        np.array([i])
        for i in np.setdiff1d(
            np.arange(len(hull.faces)), np.concatenate(hull.facets or [[]]).astype(int)
        )
    ]
    areas = np.array([hull.area_faces[g].sum() for g in groups])
    best, best_area, tried = identity, before, 0
    for gi in np.argsort(-areas)[:_CANDIDATES]:
        g = groups[gi]
        normal = hull.face_normals[g[0]]
        matrix = _down(normal)
        if not _stable(hull, g, matrix, com) or not _fits(mesh, matrix, profile):
            continue
        tried += 1
        area = _overhang(mesh, matrix)
        if area < best_area - 1e-6:
            best, best_area = matrix, area
    record.poses_considered = tried
    if before - best_area > max(_GAIN * before, _MIN_GAIN_MM2):
        record.rotated = True
        record.matrix = best.round(9).tolist()
        record.overhang_after_mm2 = best_area
        return best, record
    return identity, record


def orient(
    mesh: trimesh.Trimesh, profile: PrinterProfile | None = None
) -> tuple[trimesh.Trimesh, Orientation]:
    """`mesh` turned onto its best pose (a new mesh), and the record of what was done."""
    matrix, record = best_pose(mesh, profile)
    if not record.rotated:
        return mesh, record
    turned = mesh.copy()
    turned.apply_transform(matrix)
    return turned, record
