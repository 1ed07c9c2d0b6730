"""Checks on a built mesh: closed and manifold, fits the bed, overhangs, thin walls, specks."""

from __future__ import annotations

import numpy as np
import trimesh

from printforge.geometry.shells import solid_bodies
from printforge.models.printability import PrintabilityReport
from printforge.models.printer import PrinterProfile

__all__ = [
    "OVERHANG_DEG",
    "WALL_SAMPLE_MAX_FACES",
    "analyse",
    "overhang_area",
    "wall_samples",
]

OVERHANG_DEG = 45.0
_COS_LIMIT = -np.cos(np.radians(OVERHANG_DEG))  # a face normal below this z points too far down
_BED_TOLERANCE_MM = 0.5  # faces this close to the lowest point rest on the bed: not overhangs
# Wall sampling casts rays through an R-tree whose build time grows with the face count; past
# this many faces (fine scans, Benchy at 225k) it takes seconds, so the figure is left out.
WALL_SAMPLE_MAX_FACES = 60_000


def overhang_area(mesh: trimesh.Trimesh) -> float:
    """Area of downward faces steeper than 45° from vertical, excluding those on the bed."""
    normals = mesh.face_normals
    low = mesh.triangles[:, :, 2].max(axis=1) <= mesh.bounds[0][2] + _BED_TOLERANCE_MM
    mask = (normals[:, 2] < _COS_LIMIT) & ~low
    return float(mesh.area_faces[mask].sum())


def wall_samples(mesh: trimesh.Trimesh, count: int = 240) -> np.ndarray:
    """Local wall thickness at `count` surface points: the distance from each point straight
    into the part to the opposite surface (a fixed seed keeps reports reproducible)."""
    points, faces = trimesh.sample.sample_surface(mesh, count, seed=7)
    inward = -mesh.face_normals[faces]
    caster = trimesh.ray.ray_triangle.RayMeshIntersector(mesh)
    hits, rays, _ = caster.intersects_location(points + inward * 1e-4, inward, multiple_hits=False)
    out = np.full(len(points), np.inf)
    out[rays] = np.linalg.norm(hits - points[rays], axis=1)
    return out


def _manifold(mesh: trimesh.Trimesh) -> bool:
    """No edge joins more than two faces and neighbours agree on which side is out."""
    if not len(mesh.faces):
        return False
    return bool(np.bincount(mesh.edges_unique_inverse).max() <= 2 and mesh.is_winding_consistent)


def analyse(mesh: trimesh.Trimesh, profile: PrinterProfile) -> PrintabilityReport:
    """The printability report for `mesh` as it will sit on the bed."""
    problems: list[str] = []
    warnings: list[str] = []
    size = tuple(float(v) for v in mesh.extents) if len(mesh.faces) else (0.0, 0.0, 0.0)
    watertight = bool(mesh.is_watertight)
    manifold = _manifold(mesh)
    if not watertight:
        problems.append(
            "the mesh is not watertight: it has holes or open edges a slicer cannot fill reliably"
        )
    elif not manifold:
        problems.append("the mesh is not manifold: some edges join more than two faces")
    fits = size[0] <= profile.bed_x and size[1] <= profile.bed_y and size[2] <= profile.max_z
    if not fits:
        problems.append(
            f"the mesh is {size[0]:.1f} x {size[1]:.1f} x {size[2]:.1f} mm but printer"
            f" {profile.name!r} holds {profile.bed_x:.0f} x {profile.bed_y:.0f} x"
            f" {profile.max_z:.0f} mm; scale it down"
        )
    area = float(mesh.area)
    over = overhang_area(mesh) if len(mesh.faces) else 0.0
    frac = over / area if area > 0 else 0.0
    if frac > 0.05:
        warnings.append(
            f"{over:.0f} mm² ({frac:.0%} of the surface) overhangs more than {OVERHANG_DEG:.0f}°;"
            " enable supports or turn the part"
        )
    # Cavities stay with the solid around them: a hollow ball is one body, not two.
    pieces = solid_bodies(mesh) if len(mesh.faces) else []
    nozzle = profile.nozzle_diameter
    tiny = sum(1 for p in pieces if min(p.extents) < nozzle or abs(p.volume) < nozzle**3)
    if tiny:
        warnings.append(
            f"{tiny} piece(s) smaller than the {nozzle} mm nozzle will not print;"
            " remove them or make them larger"
        )
    min_wall = None
    if watertight and len(mesh.faces) > WALL_SAMPLE_MAX_FACES:
        warnings.append(
            f"wall thickness not sampled: {len(mesh.faces)} triangles is more than"
            f" the {WALL_SAMPLE_MAX_FACES} checked quickly"
        )
    elif watertight and len(mesh.faces):
        walls = wall_samples(mesh)
        walls = walls[np.isfinite(walls)]
        if len(walls):
            # The 2nd percentile ignores samples on sharp edges, where any wall is thin.
            min_wall = float(np.percentile(walls, 2))
            thin = float(np.mean(walls < nozzle))
            if thin > 0.02:
                warnings.append(
                    f"about {thin:.0%} of the surface is on walls thinner than the {nozzle} mm"
                    f" nozzle (thinnest {min_wall:.2f} mm); the slicer may drop them"
                )
    return PrintabilityReport(
        ok=not problems,
        problems=problems,
        warnings=warnings,
        watertight=watertight,
        manifold=manifold,
        bodies=len(pieces),
        triangles=len(mesh.faces),
        volume_mm3=float(mesh.volume) if watertight else 0.0,
        area_mm2=area,
        size_mm=size,  # type: ignore[arg-type]
        fits_bed=fits,
        overhang_area_mm2=over,
        overhang_fraction=min(1.0, frac),
        min_wall_mm=min_wall,
        tiny_features=tiny,
    )
