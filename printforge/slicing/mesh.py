"""Load a model for slicing and refuse the ones no slicer can print, with the reason.

STL files, binary or ASCII, are read here with numpy: trimesh, with the libraries it imports
(scipy.spatial, networkx, PIL, lxml, rtree) and the caches it keeps on a processed mesh,
tripled the built-in slicer's peak memory on 3DBenchy. Other formats still go through trimesh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from printforge.geometry.stl_framing import stl_framing_problem
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError

__all__ = ["Mesh", "bed_center", "check_fits", "load_mesh"]

# Below this a model is taken as empty: nothing a 0.4 mm nozzle could lay down.
MIN_EXTENT_MM = 0.1
_FLOAT = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VERTEX = re.compile(rb"vertex\s+(" + _FLOAT + rb")\s+(" + _FLOAT + rb")\s+(" + _FLOAT + rb")")


@dataclass(slots=True)
class Mesh:
    """A closed triangle mesh: shared vertices, faces by vertex index, each face's edges."""

    vertices: np.ndarray  # (n, 3) float64
    faces: np.ndarray  # (m, 3) int64
    # Each face's edges 01, 12, 20 as indices of the mesh's unique edges.
    faces_unique_edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))

    @property
    def bounds(self) -> np.ndarray:
        return np.array([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @property
    def extents(self) -> np.ndarray:
        lo, hi = self.bounds
        return hi - lo

    def apply_translation(self, offset: list[float] | np.ndarray) -> None:
        self.vertices += np.asarray(offset, dtype=np.float64)

    def export_stl(self, path: Path) -> None:
        """Write the mesh as a binary STL."""
        tri = self.vertices[self.faces]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
        rec = np.zeros(len(tri), dtype=_STL_RECORD)
        rec["normal"] = normals
        rec["tri"] = tri
        with path.open("wb") as f:
            f.write(b"printforge".ljust(80, b" "))
            f.write(np.uint32(len(tri)).tobytes())
            f.write(rec.tobytes())


_STL_RECORD = np.dtype(
    [("normal", "<f4", (3,)), ("tri", "<f4", (3, 3)), ("attr", "<u2")], align=False
)


def load_mesh(path: Path) -> Mesh:
    """The model as one closed mesh; InputError says why it cannot be."""
    if path.is_dir():
        raise InputError(f"model {path} is a folder; give the STL file inside it")
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"model {path.name} is empty (0 bytes)")
    is_stl = path.suffix.lower() == ".stl"
    if is_stl and (problem := stl_framing_problem(path)):
        raise InputError(f"model {path.name} is not a readable STL: {problem}")
    try:
        tri = _read_stl(path) if is_stl else _read_other(path)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"model {path.name} cannot be read as a mesh: {err}") from err
    if len(tri) == 0:
        raise InputError(f"model {path.name} is empty: it has no triangles")
    if not np.isfinite(tri).all():
        raise InputError(f"model {path.name} cannot be read as a mesh: it has NaN coordinates")
    extents = tri.reshape(-1, 3).max(axis=0) - tri.reshape(-1, 3).min(axis=0)
    if float(np.max(extents)) < MIN_EXTENT_MM:
        raise InputError(f"model {path.name} is empty: it has no size")
    mesh = _index(tri)
    # Edges shared by four faces (two bodies touching along a line, as in 3DBenchy) still close
    # the surface and every slicer prints them; an edge with an odd count is a hole in it.
    open_edges, consistent = _edges(mesh)
    if open_edges:
        raise InputError(
            f"model {path.name} is not manifold: {open_edges} edges border an odd number of"
            " triangles, so the surface has holes; repair the model first"
        )
    if not consistent:
        raise InputError(f"model {path.name} is not manifold: its triangles' windings disagree")
    volume = _volume(mesh)
    if volume < 0:
        mesh.faces = mesh.faces[:, ::-1].copy()
        mesh.faces_unique_edges = mesh.faces_unique_edges[:, [1, 0, 2]].copy()
        volume = -volume
    if volume <= 0:
        raise InputError(f"model {path.name} is empty: it encloses no volume")
    return mesh


def _read_stl(path: Path) -> np.ndarray:
    """(m, 3, 3) triangle corners of a binary or ASCII STL whose framing was checked."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(84)
        count = int.from_bytes(head[80:84], "little") if size >= 84 else -1
        if count >= 0 and 84 + 50 * count == size:
            rec = np.fromfile(f, dtype=_STL_RECORD, count=count)
            return rec["tri"].astype(np.float64)
        f.seek(0)
        text = f.read()
    corners = np.array(_VERTEX.findall(text), dtype=np.float64)
    if len(corners) % 3:
        raise InputError(f"model {path.name} cannot be read as a mesh: a facet lacks a vertex")
    return corners.reshape(-1, 3, 3)


def _read_other(path: Path) -> np.ndarray:
    # Formats other than STL are rare here (the CAD stage writes STL); trimesh reads them.
    import trimesh

    loaded = trimesh.load(path, force="mesh", process=True)
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        return np.zeros((0, 3, 3))
    return np.asarray(loaded.vertices, dtype=np.float64)[np.asarray(loaded.faces)]


def _index(tri: np.ndarray) -> Mesh:
    """Shared vertices (corners at the same coordinates are one vertex) and unique edges."""
    corners = tri.reshape(-1, 3) + 0.0  # -0.0 becomes 0.0, so it matches 0.0
    order = np.lexsort(corners.T[::-1])
    c = corners[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = np.any(c[1:] != c[:-1], axis=1)
    vid = np.empty(len(c), dtype=np.int64)
    vid[order] = np.cumsum(new) - 1
    vertices = c[new]
    faces = vid.reshape(-1, 3)
    a = faces
    b = faces[:, [1, 2, 0]]
    keys = np.minimum(a, b) * len(vertices) + np.maximum(a, b)
    _, inverse = np.unique(keys.ravel(), return_inverse=True)
    return Mesh(vertices, faces, inverse.reshape(-1, 3).astype(np.int64))


def _edges(mesh: Mesh) -> tuple[int, bool]:
    """(edges bordering an odd number of faces, whether every edge between two faces is
    walked once each way: the two faces' windings agree)."""
    edge = mesh.faces_unique_edges.ravel()
    n = int(edge.max()) + 1
    counts = np.bincount(edge, minlength=n)
    a = mesh.faces.ravel()
    b = mesh.faces[:, [1, 2, 0]].ravel()
    # A degenerate face (two corners at one point, as 3DBenchy has) has an edge of no length
    # and no direction.
    direction = np.bincount(edge, weights=np.sign(b - a).astype(np.float64), minlength=n)
    # Only edges between two faces can say: around an edge of four (bodies touching) the
    # pairing is ambiguous, and trimesh, which this check replaces, skipped them too.
    return int(np.count_nonzero(counts % 2 == 1)), not np.any(direction[counts == 2])


def _volume(mesh: Mesh) -> float:
    tri = mesh.vertices[mesh.faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6)


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


def place_on_bed(mesh: Mesh, profile: PrinterProfile) -> Mesh:
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
