"""Writing a built mesh to the files a job keeps: binary STL, 3MF and the OpenSCAD source."""

from __future__ import annotations

from pathlib import Path

import trimesh

from printforge.geometry.scad import to_scad
from printforge.geometry.shells import solid_bodies
from printforge.models.spec import DesignSpec

__all__ = ["solid_bodies", "write_3mf", "write_scad", "write_stl"]


def write_stl(mesh: trimesh.Trimesh, path: Path) -> Path:
    """Binary STL (what every slicer reads), millimetres."""
    path.write_bytes(trimesh.exchange.stl.export_stl(mesh))
    return path


def write_3mf(mesh: trimesh.Trimesh, path: Path) -> Path:
    """3MF: zipped XML with explicit millimetre units, one object per body."""
    pieces = solid_bodies(mesh) if mesh.metadata.get("bodies", 1) > 1 else [mesh]
    scene = trimesh.Scene()
    for i, piece in enumerate(pieces):
        scene.add_geometry(piece, geom_name=f"body_{i + 1}")
    path.write_bytes(trimesh.exchange.threemf.export_3MF(scene))
    return path


def write_scad(spec: DesignSpec, mesh: trimesh.Trimesh, path: Path) -> Path:
    """The OpenSCAD source of `spec`, each body placed where `mesh` has it."""
    path.write_text(to_scad(spec, mesh.metadata.get("placements")), encoding="utf-8")
    return path
