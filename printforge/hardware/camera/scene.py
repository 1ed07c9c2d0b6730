"""What the virtual camera renders from: the job's mesh placed on the bed and cut at a height,
the print head, and the bed plate's texture. Runs in the render worker.

The mesh is the STL the job printed (never its G-code): placed as the slicers place it (the
footprint's centre at the bed's centre, standing on z = 0), simplified for drawing with
manifold3d, and cut into closed pieces with `trim_by_plane`, so the cut face of the current
layer is a real cap rather than a hole. Pieces are cached by their heights: a frame during a
layer costs no cutting.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from numpy.typing import NDArray

__all__ = ["PartMesh", "bed_texture", "head_mesh", "load_part"]

log = logging.getLogger(__name__)

# A Benchy-sized part drawn from ~9k triangles looks the same at 640x480 as from its 225k.
SIMPLIFY_TOLERANCE_MM = 0.05
_PIECE_CACHE = 24
_HEIGHT_DECIMALS = 3


@dataclass
class PartMesh:
    """A part on the bed, ready to be cut; heights are the part's own (0 = the bed)."""

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    solid: object | None  # manifold3d.Manifold, or None when the mesh is not a closed manifold
    top: float
    bounds: NDArray[np.float64]
    _pieces: OrderedDict[tuple[float, float], tuple[NDArray[np.float64], NDArray[np.int64]]] = (
        field(default_factory=OrderedDict)
    )

    def piece(self, z_lo: float, z_hi: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """The part between two heights as a closed mesh (vertices, faces); empty if none."""
        key = (
            round(max(z_lo, 0.0), _HEIGHT_DECIMALS),
            round(min(z_hi, self.top), _HEIGHT_DECIMALS),
        )
        cached = self._pieces.get(key)
        if cached is not None:
            self._pieces.move_to_end(key)
            return cached
        lo, hi = key
        if hi <= lo:
            out = (np.zeros((0, 3)), np.zeros((0, 3), np.int64))
        elif self.solid is not None:
            out = _trim(self.solid, lo, hi, self.top)
        else:
            out = _clip_open(self.vertices, self.faces, lo, hi)
        self._pieces[key] = out
        if len(self._pieces) > _PIECE_CACHE:
            self._pieces.popitem(last=False)
        return out


def _trim(
    solid: object, lo: float, hi: float, top: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    cut = solid
    if hi < top:
        cut = cut.trim_by_plane((0.0, 0.0, -1.0), -hi)  # type: ignore[attr-defined]
    if lo > 0:
        cut = cut.trim_by_plane((0.0, 0.0, 1.0), lo)  # type: ignore[attr-defined]
    mesh = cut.to_mesh()  # type: ignore[attr-defined]
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return verts, faces


def _clip_open(
    verts: NDArray[np.float64], faces: NDArray[np.int64], lo: float, hi: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Without a closed solid to cut: keep the faces that reach into [lo, hi], clipped by
    trimesh, with no cap (the renderer shades what shows through as the inside)."""
    mesh = trimesh.Trimesh(verts, faces, process=False)
    try:
        mesh = trimesh.intersections.slice_mesh_plane(mesh, [0, 0, -1], [0, 0, hi])
        if lo > 0:
            mesh = trimesh.intersections.slice_mesh_plane(mesh, [0, 0, 1], [0, 0, lo])
    except (ValueError, IndexError):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)


def load_part(path: Path, bed_center: tuple[float, float]) -> PartMesh:
    """Read an STL (or any mesh trimesh reads), place it on the bed and simplify it to draw."""
    import manifold3d

    loaded = trimesh.load(os.fspath(path), force="mesh", process=True)
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"{path.name} holds no triangles")
    lo, hi = loaded.bounds
    # Where every slicer printforge drives puts it: footprint centred, standing on the bed.
    offset = np.array(
        [bed_center[0] - (lo[0] + hi[0]) / 2, bed_center[1] - (lo[1] + hi[1]) / 2, -lo[2]]
    )
    verts = np.asarray(loaded.vertices, dtype=np.float64) + offset
    faces = np.asarray(loaded.faces, dtype=np.int64)
    solid = manifold3d.Manifold(
        manifold3d.Mesh(vert_properties=verts.astype(np.float32), tri_verts=faces.astype(np.uint32))
    )
    if solid.status() != manifold3d.Error.NoError or solid.is_empty():
        log.warning(
            "virtual camera: %s is not a closed manifold (%s); drawing it without cut faces",
            path.name,
            solid.status(),
        )
        return PartMesh(
            verts, faces, None, float(verts[:, 2].max()), np.array([lo + offset, hi + offset])
        )
    simple = solid.simplify(SIMPLIFY_TOLERANCE_MM)
    mesh = simple.to_mesh()
    sv = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    sf = np.asarray(mesh.tri_verts, dtype=np.int64)
    return PartMesh(
        sv, sf, simple, float(sv[:, 2].max()), np.array([sv.min(axis=0), sv.max(axis=0)])
    )


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> trimesh.Trimesh:
    extents = np.subtract(hi, lo)
    center = np.add(hi, lo) / 2
    return trimesh.creation.box(
        extents=extents, transform=trimesh.transformations.translation_matrix(center)
    )


def head_mesh() -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """A generic hot end and carriage with the nozzle tip at the origin, in mm.

    Returns vertices, faces and a per-face material (0 brass nozzle, 1 aluminium heater block,
    2 dark plastic carriage and fan shroud). Sized like an E3D-style hot end on a carriage.
    """
    nozzle = trimesh.creation.cone(radius=3.5, height=5.0, sections=8)
    nozzle.apply_transform(trimesh.transformations.rotation_matrix(np.pi, [1, 0, 0]))
    nozzle.apply_translation([0, 0, 5.0])  # tip at z = 0, opening upwards
    nozzle_hex = trimesh.creation.cylinder(radius=4.0, height=3.0, sections=6)
    nozzle_hex.apply_translation([0, 0, 6.5])
    block = _box((-8.0, -6.0, 8.0), (12.0, 6.0, 18.0))
    sink = trimesh.creation.cylinder(radius=11.0, height=26.0, sections=12)
    sink.apply_translation([0, 0, 31.0])
    shroud = _box((-22.0, -18.0, 22.0), (22.0, 14.0, 62.0))
    duct = _box((-20.0, -20.0, 10.0), (-12.0, -10.0, 24.0))
    carriage = _box((-30.0, 14.0, 30.0), (30.0, 26.0, 75.0))
    parts = [
        (nozzle, 0),
        (nozzle_hex, 0),
        (block, 1),
        (sink, 1),
        (shroud, 2),
        (duct, 2),
        (carriage, 2),
    ]
    verts, faces, material = [], [], []
    base = 0
    for mesh, mat in parts:
        verts.append(np.asarray(mesh.vertices, np.float64))
        faces.append(np.asarray(mesh.faces, np.int64) + base)
        material.append(np.full(len(mesh.faces), mat, np.int64))
        base += len(mesh.vertices)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(material)


def bed_texture(bed_x: float, bed_y: float, mm_per_texel: float = 0.5) -> NDArray[np.float32]:
    """A textured PEI sheet: warm gold with a powder-coat speckle, a faint grid of marks and a
    darker margin; linear RGB, rows along Y. Fixed (not seeded): it is the printer's."""
    nx, ny = int(np.ceil(bed_x / mm_per_texel)), int(np.ceil(bed_y / mm_per_texel))
    rng = np.random.default_rng(7)
    base = np.array([0.42, 0.30, 0.13], np.float32)
    speckle = rng.normal(1.0, 0.08, (ny, nx)).astype(np.float32)
    # Low-frequency mottling of the coating, from a coarse grid blown up.
    coarse = rng.normal(1.0, 0.05, (ny // 40 + 2, nx // 40 + 2)).astype(np.float32)
    cy, cx = np.arange(ny) / 40.0, np.arange(nx) / 40.0
    iy, ix = cy.astype(np.int64), cx.astype(np.int64)
    wy, wx = (cy - iy)[:, None], (cx - ix)[None, :]
    mottle = (
        coarse[iy][:, ix] * (1 - wy) * (1 - wx)
        + coarse[iy][:, ix + 1] * (1 - wy) * wx
        + coarse[iy + 1][:, ix] * wy * (1 - wx)
        + coarse[iy + 1][:, ix + 1] * wy * wx
    ).astype(np.float32)
    tex = base[None, None] * (speckle * mottle)[..., None]
    xs = np.arange(nx) * mm_per_texel
    ys = np.arange(ny) * mm_per_texel
    grid_x = (np.abs((xs + 25) % 50 - 25) < 0.4)[None, :]
    grid_y = (np.abs((ys + 25) % 50 - 25) < 0.4)[:, None]
    tex[grid_x | grid_y] *= 0.8
    margin = (xs[None] < 3) | (xs[None] > bed_x - 3) | (ys[:, None] < 3) | (ys[:, None] > bed_y - 3)
    tex[margin] *= 0.55
    return tex.astype(np.float32)
