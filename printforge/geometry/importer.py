"""A user's own STL, 3MF or OBJ entering the pipeline: read, repaired where that is safe, or
refused with the reason.

Safe repairs change no intended shape: merging duplicate vertices, turning an inside-out
surface round, letting manifold3d split edges where two closed surfaces touch and drop
zero-area slivers, dropping duplicate triangles, making the winding consistent, and filling
holes of a few edges (a missing triangle or quad). Anything bigger would be guesswork about the
intended surface, so such a file is refused with what is wrong and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

import manifold3d as mf
import numpy as np
import trimesh

from printforge.geometry.exports import solid_bodies
from printforge.geometry.stl_framing import stl_framing_problem

__all__ = ["MAX_BYTES", "SUFFIXES", "ImportRefused", "import_mesh"]

SUFFIXES = {".stl": "stl", ".3mf": "3mf", ".obj": "obj"}
MAX_BYTES = 200 * 1024 * 1024


class ImportRefused(ValueError):
    """The file cannot be used; the message says why and what to do."""


def _read(path: Path) -> trimesh.Trimesh:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ImportRefused(
            f"{path.name}: unsupported file type {suffix or '(none)'}; give an STL, 3MF or OBJ file"
        )
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise ImportRefused(f"{path.name} is larger than {MAX_BYTES >> 20} MB; simplify it")
    if suffix == ".stl" and (problem := stl_framing_problem(path)):
        raise ImportRefused(f"{path.name} is not a readable STL: {problem}")
    try:
        loaded = trimesh.load(path, file_type=SUFFIXES[suffix], force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for broken files
        raise ImportRefused(f"{path.name} cannot be read as {suffix[1:].upper()}: {err}") from err
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ImportRefused(f"{path.name} contains no triangles")
    if not np.all(np.isfinite(loaded.vertices)):
        raise ImportRefused(f"{path.name} has vertices that are not numbers (NaN/inf)")
    return loaded


def _open_edges(mesh: trimesh.Trimesh) -> int:
    return len(trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1))


def _through_manifold(mesh: trimesh.Trimesh) -> trimesh.Trimesh | None:
    """The same surface rebuilt by manifold3d, or None if it is not a closed 2-manifold.

    manifold3d accepts a mesh whose only faults are zero-area slivers and edges where two
    closed surfaces touch (it splits such pinched edges), and its output is exactly watertight.
    """
    solid = mf.Manifold(
        mf.Mesh(
            np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.uint32)
        )
    )
    if solid.status() != mf.Error.NoError or solid.is_empty():
        return None
    out = solid.to_mesh()
    return trimesh.Trimesh(
        np.asarray(out.vert_properties, dtype=np.float64)[:, :3],
        np.asarray(out.tri_verts, dtype=np.int64),
        process=False,
    )


def _clean(mesh: trimesh.Trimesh) -> bool:
    # Shells cancelling to zero volume (one inside out over another) divide by zero in
    # trimesh's centre-of-mass step; the volume itself is still right.
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0)


def _repair(mesh: trimesh.Trimesh, name: str, repairs: list[str]) -> trimesh.Trimesh:
    """Repairs that keep the intended surface, in order of how little they change."""
    if _clean(mesh):
        return mesh
    if mesh.is_winding_consistent and mesh.is_watertight:
        # Every face reversed (an exporter's sign error): turning all of them round keeps a
        # cavity facing inwards, where turning each body outwards would fill it. A body that
        # was right before is put back by _orient_shells.
        mesh.invert()
        repairs.append("turned the inside-out surface the right way out")
        return mesh
    rebuilt = _through_manifold(mesh)
    if rebuilt is not None and _clean(rebuilt):
        repairs.append(
            f"rebuilt the surface with manifold3d ({len(mesh.faces)} ->"
            f" {len(rebuilt.faces)} triangles): split edges where surfaces touch"
            " and dropped zero-area slivers"
        )
        return rebuilt
    faces = len(mesh.faces)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) < faces:
        repairs.append(f"removed {faces - len(mesh.faces)} degenerate or duplicate triangles")
    if len(mesh.faces) < 4:
        raise ImportRefused(f"{name} has fewer than 4 usable triangles: it is not a solid")
    opened = _open_edges(mesh)
    if opened:
        before = len(mesh.faces)
        trimesh.repair.fill_holes(mesh)
        if not mesh.is_watertight:
            shared = int((np.bincount(mesh.edges_unique_inverse) > 2).sum())
            if shared:
                raise ImportRefused(
                    f"{name} is not a clean solid: {shared} edges join more than two triangles"
                    " (loose or overlapping faces) and the surface is open; repair it in your"
                    " CAD program and export it again"
                )
            raise ImportRefused(
                f"{name} is not closed: {_open_edges(mesh)} edges border a hole too big to"
                " fill safely; close the surface in your CAD program or a mesh repair tool"
                " and export it again"
            )
        repairs.append(
            f"filled small holes ({opened} open edges, {len(mesh.faces) - before} triangles added)"
        )
    if not mesh.is_winding_consistent or mesh.volume < 0:
        trimesh.repair.fix_winding(mesh)
        trimesh.repair.fix_inversion(mesh, multibody=True)
        repairs.append("made the triangle winding consistent with normals pointing outwards")
    rebuilt = _through_manifold(mesh) if not _clean(mesh) else mesh
    if rebuilt is None or not _clean(rebuilt):
        raise ImportRefused(
            f"{name} is not a clean solid: some edges join more than two triangles or the"
            " surface crosses itself; repair it in your CAD program and export it again"
        )
    return rebuilt


def _orient_shells(mesh: trimesh.Trimesh, repairs: list[str]) -> trimesh.Trimesh:
    """Bodies of a file with several that face inwards, with no shell around them, turned
    the right way out.

    Such a shell can only be a solid exported inside out: a cavity is always inside another
    shell. A body exported inside out next to correct ones used to pass, because the whole
    file's volume was still positive: the slicer would get a hole where the part is. A solid
    wholly inside another is left alone: it may be deliberate (an insert, a modifier volume)
    and slicers merge it like overlapping bodies.
    """
    shells = mesh.split(only_watertight=False)
    if len(shells) < 2 or len(shells) > 500 or not all(s.is_watertight for s in shells):
        return mesh
    flipped = 0
    for i, shell in enumerate(shells):
        if shell.volume >= 0:
            continue
        # Enclosed means wholly inside: overlapping bodies share some space but each still
        # has vertices outside the other.
        probe = shell.vertices[:: max(1, len(shell.vertices) // 32)]
        lo, hi = shell.bounds
        enclosed = any(
            j != i
            and bool(np.all(other.bounds[0] <= lo))
            and bool(np.all(hi <= other.bounds[1]))
            and bool(np.all(other.contains(probe)))
            for j, other in enumerate(shells)
        )
        if not enclosed:
            shell.invert()
            flipped += 1
    if not flipped:
        return mesh
    repairs.append(f"turned {flipped} of {len(shells)} bodies the right way out (inside out)")
    out = trimesh.util.concatenate(shells)
    out.metadata.update(mesh.metadata)
    return out


def _to_millimetres(mesh: trimesh.Trimesh, name: str, repairs: list[str]) -> None:
    """Scale a 3MF that declares another unit (Fusion 360 writes the document's: inch,
    centimetre) to millimetres; read as millimetres it came out 25.4 or 10 times too small.
    STL and OBJ carry no unit and are millimetres."""
    unit = getattr(mesh, "units", None)
    if not unit or unit.lower() in ("mm", "millimeter", "millimeters", "millimetre"):
        return
    try:
        factor = float(trimesh.units.unit_conversion(unit, "millimeters"))
    except (ValueError, KeyError) as err:
        raise ImportRefused(
            f"{name} declares its unit as {unit!r}, which printforge cannot convert; export"
            " it again in millimetres"
        ) from err
    mesh.apply_scale(factor)
    mesh.units = "millimeters"
    repairs.append(f"scaled from {unit} to millimetres (x {factor:g}) as the file declares")


def import_mesh(path: Path) -> tuple[trimesh.Trimesh, list[str]]:
    """The mesh resting on z = 0 and centred in XY, and the repairs made (readable)."""
    mesh = _read(path)
    repairs: list[str] = []
    _to_millimetres(mesh, path.name, repairs)
    verts = len(mesh.vertices)
    mesh.merge_vertices()
    # An STL stores every triangle's corners separately; merging them is reading, not repair.
    if len(mesh.vertices) < verts and path.suffix.lower() != ".stl":
        repairs.append(f"merged {verts - len(mesh.vertices)} duplicate vertices")
    mesh = _orient_shells(_repair(mesh, path.name, repairs), repairs)
    ext = mesh.extents
    if float(np.max(ext)) < 1.0:
        raise ImportRefused(
            f"{path.name} is only {np.max(ext):.3g} mm across; if it was exported in metres or"
            " inches, export it again in millimetres"
        )
    lo, hi = mesh.bounds
    mesh.apply_translation((-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]))
    # A cavity's inner surface is part of its body, not a body of its own.
    mesh.metadata["bodies"] = len(solid_bodies(mesh))
    return mesh, repairs
