"""Issue 13, memory: slicing an STL with the built-in slicer loads neither trimesh nor scipy.

On 3DBenchy the whole `printforge slice` process peaked at 3× PrusaSlicer's memory; a third of
it was trimesh and what it imports (scipy.spatial, networkx, PIL, lxml, rtree), pulled in by
the STL reader and by `printforge.geometry`'s package import, and a processed mesh's caches.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import trimesh

from printforge.slicing.mesh import load_mesh

PROBE = """
import sys
from pathlib import Path
from printforge.cli import main
code = main(["slice", sys.argv[1], "--out", sys.argv[2]])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"trimesh", "scipy", "networkx"})
print("heavy:", ",".join(heavy))
sys.exit(code)
"""


def test_slicing_an_stl_imports_no_mesh_library(tmp_path: Path) -> None:
    model = tmp_path / "cube.stl"
    trimesh.creation.box((10, 10, 4)).export(model)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(model), str(tmp_path / "cube.gcode")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: \n" in done.stdout, done.stdout


def test_the_stl_reader_matches_trimesh_on_a_mesh_with_degenerate_faces(tmp_path: Path) -> None:
    # Two boxes sharing an edge (edges of four faces) and two degenerate faces on one of the
    # box's edges (as 3DBenchy has): trimesh accepted both; the reader that replaced it must
    # too, with the same vertices and volume.
    a = trimesh.creation.box((10, 10, 10))
    b = trimesh.creation.box((10, 10, 10))
    b.apply_translation((10, 10, 0))
    both = trimesh.util.concatenate([a, b])
    p, q = both.vertices[both.faces[0][:2]]
    tri = np.vstack([both.vertices[both.faces], [[p, q, q], [q, q, p]]])
    path = tmp_path / "two.stl"
    trimesh.Trimesh(
        tri.reshape(-1, 3), np.arange(len(tri) * 3).reshape(-1, 3), process=False
    ).export(path)
    mesh = load_mesh(path)
    ref = trimesh.load(path, process=True)
    assert len(mesh.vertices) == len(ref.vertices) and len(mesh.faces) == len(ref.faces)
    corners = mesh.vertices[mesh.faces]
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum()
    assert abs(volume / 6 - 2000.0) < 1e-6
