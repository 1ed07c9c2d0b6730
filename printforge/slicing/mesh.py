"""Load a model for slicing and refuse the ones no slicer can print, with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from printforge.geometry.stl_framing import stl_framing_problem
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError

__all__ = ["bed_center", "check_fits", "load_mesh"]

# Below this a model is taken as empty: nothing a 0.4 mm nozzle could lay down.
MIN_EXTENT_MM = 0.1


def load_mesh(path: Path) -> trimesh.Trimesh:
    """The model as one watertight mesh standing on z = 0; InputError says why it cannot be."""
    if path.is_dir():
        raise InputError(f"model {path} is a folder; give the STL file inside it")
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"model {path.name} is empty (0 bytes)")
    if path.suffix.lower() == ".stl" and (problem := stl_framing_problem(path)):
        raise InputError(f"model {path.name} is not a readable STL: {problem}")
    try:
        loaded = trimesh.load(path, force="mesh", process=True)
    except Exception as err:
        raise InputError(f"model {path.name} cannot be read as a mesh: {err}") from err
    mesh = loaded if isinstance(loaded, trimesh.Trimesh) else None
    if mesh is None or len(mesh.faces) == 0:
        raise InputError(f"model {path.name} is empty: it has no triangles")
    extents = mesh.extents
    if extents is None or float(np.max(extents)) < MIN_EXTENT_MM:
        raise InputError(f"model {path.name} is empty: it has no size")
    mesh.remove_unreferenced_vertices()
    # Edges shared by four faces (two bodies touching along a line, as in 3DBenchy) still close
    # the surface and every slicer prints them; an edge with an odd count is a hole in it.
    open_edges = _open_edges(mesh)
    if open_edges:
        raise InputError(
            f"model {path.name} is not manifold: {open_edges} edges border an odd number of"
            " triangles, so the surface has holes; repair the model first"
        )
    if not mesh.is_winding_consistent:
        raise InputError(f"model {path.name} is not manifold: its triangles' windings disagree")
    if mesh.volume < 0:
        mesh.invert()
    if mesh.volume <= 0:
        raise InputError(f"model {path.name} is empty: it encloses no volume")
    return mesh


def _open_edges(mesh: trimesh.Trimesh) -> int:
    counts = np.bincount(mesh.edges_unique_inverse, minlength=len(mesh.edges_unique))
    return int(np.count_nonzero(counts % 2 == 1))


def bed_center(profile: PrinterProfile) -> tuple[float, float]:
    if profile.origin_center:
        return 0.0, 0.0
    return profile.bed_x / 2, profile.bed_y / 2


def check_fits(size: tuple[float, float, float], profile: PrinterProfile, name: str) -> None:
    """InputError when a model of `size` (mm) cannot fit the printer's volume."""
    x, y, z = size
    if x > profile.bed_x or y > profile.bed_y or z > profile.max_z:
        raise InputError(
            f"model {name} is {x:.1f} x {y:.1f} x {z:.1f} mm, larger than the"
            f" {profile.name} printer's {profile.bed_x:g} x {profile.bed_y:g} x"
            f" {profile.max_z:g} mm volume"
        )


def place_on_bed(mesh: trimesh.Trimesh, profile: PrinterProfile) -> trimesh.Trimesh:
    """Centre the model's footprint on the bed and stand it on z = 0."""
    lo, hi = mesh.bounds
    cx, cy = bed_center(profile)
    mesh.apply_translation([cx - (lo[0] + hi[0]) / 2, cy - (lo[1] + hi[1]) / 2, -lo[2]])
    return mesh


def validate_model(path: Path, profile: PrinterProfile) -> tuple[float, float, float]:
    """Load and check a model as every engine must (empty, non-manifold, too big); its size."""
    mesh = load_mesh(path)
    lo, hi = mesh.bounds
    size = (float(hi[0] - lo[0]), float(hi[1] - lo[1]), float(hi[2] - lo[2]))
    check_fits(size, profile, path.name)
    return size


__all__ += ["place_on_bed", "validate_model"]
