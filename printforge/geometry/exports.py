"""Writing a built mesh to the files a job keeps: binary STL, 3MF and the OpenSCAD source."""

from __future__ import annotations

from pathlib import Path

import trimesh

from printforge.geometry.scad import to_scad
from printforge.models.spec import DesignSpec

__all__ = ["solid_bodies", "write_3mf", "write_scad", "write_stl"]


def write_stl(mesh: trimesh.Trimesh, path: Path) -> Path:
    """Binary STL (what every slicer reads), millimetres."""
    path.write_bytes(trimesh.exchange.stl.export_stl(mesh))
    return path


def solid_bodies(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    """The separate solids of `mesh`, each with the cavities inside it.

    Splitting by connected faces alone makes a closed cavity (a hollow ball's inner surface,
    facing inwards) a body of its own: written as a 3MF object it is an inside-out solid,
    which a slicer turns round and prints as a filled ball inside the hollow one.
    """
    shells = mesh.split(only_watertight=False)
    if len(shells) < 2:
        return [mesh]
    solids = [s for s in shells if s.volume >= 0]
    cavities: dict[int, list[trimesh.Trimesh]] = {i: [] for i in range(len(solids))}
    for shell in shells:
        if shell.volume >= 0:
            continue
        lo, hi = shell.bounds
        around = [
            i
            for i, s in enumerate(solids)
            if (s.bounds[0] <= lo).all() and (hi <= s.bounds[1]).all()
        ]
        if around:
            cavities[min(around, key=lambda i: solids[i].volume)].append(shell)
        else:  # not inside anything: keep it rather than lose faces
            solids.append(shell)
            cavities[len(solids) - 1] = []
    return [
        trimesh.util.concatenate([s, *cavities[i]]) if cavities[i] else s
        for i, s in enumerate(solids)
    ]


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
