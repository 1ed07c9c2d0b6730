"""The benchmark's test parts, built with manifold3d, plus the shared STL models.

Each part isolates one of issue 13's failures: walls from one line to seven lines thick (3 mm:
a 1.3 mm core between the perimeters), thin letter-like strokes (many small islands per
layer), a fin thinner than two lines, a sphere (shallow slopes near its top), a slab bridging
two pillars, a cube with a round hole, and a pin with a tiny layer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import manifold3d as m3d
import numpy as np
import trimesh

__all__ = ["BUILT", "SHARED", "build", "find_shared_models", "load_model"]

WALLS = (0.8, 1.2, 1.6, 2.0, 2.4, 3.0)


def _mesh(solid: m3d.Manifold) -> trimesh.Trimesh:
    m = solid.to_mesh()
    verts = np.asarray(m.vert_properties)[:, :3]
    return trimesh.Trimesh(verts, np.asarray(m.tri_verts), process=True)


def _cube(x: float, y: float, z: float, at: tuple[float, float, float] = (0, 0, 0)) -> m3d.Manifold:
    return m3d.Manifold.cube([x, y, z]).translate(list(at))


def open_box(wall: float) -> trimesh.Trimesh:
    """A 30 × 20 × 10 mm box without a lid: `wall` mm walls, 1 mm floor."""
    outer = _cube(30, 20, 10)
    inner = _cube(30 - 2 * wall, 20 - 2 * wall, 10, (wall, wall, 1.0))
    return _mesh(outer - inner)


def letters() -> trimesh.Trimesh:
    """Five letter-like shapes of 0.8 mm strokes, 3 mm tall, on a 40 × 12 × 1 mm plate."""
    s = 0.8
    strokes: list[tuple[float, float, float, float]] = []  # x, y, w, h in a 6 × 8 mm cell

    def cell(k: int, rects: list[tuple[float, float, float, float]]) -> None:
        ox = 2 + k * 7.5
        strokes.extend((ox + x, 2 + y, w, h) for x, y, w, h in rects)

    cell(0, [(0, 0, s, 8), (6 - s, 0, s, 8), (0, 4 - s / 2, 6, s)])  # H
    cell(1, [(0, 8 - s, 6, s), (3 - s / 2, 0, s, 8)])  # T
    cell(2, [(0, 0, s, 8), (0, 0, 6, s)])  # L
    cell(3, [(0, 0, s, 8), (0, 0, 6, s), (0, 4 - s / 2, 4.5, s), (0, 8 - s, 6, s)])  # E
    cell(4, [(0, 0, s, 8), (6 - s, 0, s, 8), (0, 0, 6, s), (0, 8 - s, 6, s)])  # O (square)
    # One 2-D union, extruded once: unions of touching 3-D boxes leave sliver faces that merge
    # into edges shared by four triangles.
    outline = m3d.CrossSection.batch_boolean(
        [m3d.CrossSection.square([w, h]).translate([x, y]) for x, y, w, h in strokes],
        m3d.OpType.Add,
    )
    raised = m3d.Manifold.extrude(outline, 3.0).translate([0, 0, 1.0])
    return _mesh(_cube(40, 12, 1.0) + raised)


def fin() -> trimesh.Trimesh:
    """A free-standing fin 0.8 mm thick, 20 mm long, 10 mm tall."""
    return _mesh(_cube(0.8, 20, 10))


def sphere() -> trimesh.Trimesh:
    """A 30 mm ball resting on the bed."""
    return _mesh(m3d.Manifold.sphere(15.0, 128).translate([0, 0, 15.0]))


def bridge() -> trimesh.Trimesh:
    """Two 10 × 10 × 10 mm pillars 20 mm apart carrying a 40 × 10 × 2 mm slab."""
    solid = _cube(10, 10, 10) + _cube(10, 10, 10, (30, 0, 0)) + _cube(40, 10, 2, (0, 0, 10))
    return _mesh(solid)


def cube_with_hole() -> trimesh.Trimesh:
    """A 20 mm cube with an 8 mm vertical hole through it."""
    hole = m3d.Manifold.cylinder(22, 4.0, 4.0, 96).translate([10, 10, -1])
    return _mesh(_cube(20, 20, 20) - hole)


def pin() -> trimesh.Trimesh:
    """A 3 × 3 × 40 mm pin: every layer is tiny."""
    return _mesh(_cube(3, 3, 40))


BUILT: dict[str, Callable[[], trimesh.Trimesh]] = {
    **{f"wall-{w}": (lambda w=w: open_box(w)) for w in WALLS},
    "text-0.8": letters,
    "fin-0.8": fin,
    "sphere-30": sphere,
    "bridge": bridge,
    "cube-hole": cube_with_hole,
    "pin-3x3x40": pin,
}
SHARED = {"benchy": "3DBenchy.stl", "xyz-cube": "XYZ-Cube.stl"}


def build(name: str) -> trimesh.Trimesh:
    return BUILT[name]()


def find_shared_models(repo: Path) -> Path | None:
    """`../shared/models` beside the repository, or beside its main checkout when `repo` is a
    git worktree elsewhere."""
    candidates = [repo.parent / "shared" / "models"]
    try:
        common = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--path-format=absolute", "--git-common-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        candidates.append(Path(common).parent.parent / "shared" / "models")
    except (OSError, subprocess.CalledProcessError):
        pass
    for c in candidates:
        if c.is_dir():
            return c
    return None


def load_model(path: Path) -> trimesh.Trimesh:
    mesh = trimesh.load(path, force="mesh")
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValueError(f"{path}: not a single mesh")
    return mesh
