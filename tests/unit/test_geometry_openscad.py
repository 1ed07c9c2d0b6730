"""The .scad file describes the same part as the STL: OpenSCAD renders it to the same volume
and bounds. Skipped where no `openscad` binary is installed (scripts/setup installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh

from printforge.geometry import build_mesh
from printforge.geometry.exports import write_scad
from printforge.models.spec import DesignSpec

OPENSCAD = shutil.which("openscad")
pytestmark = pytest.mark.skipif(OPENSCAD is None, reason="openscad is not installed")

CASES = {
    # Two bodies placed side by side: the placements must match too.
    "box_with_lid": [{"kind": "box_with_lid", "size": [60, 40, 30], "corner_radius": 4}],
    "l_bracket": [{"kind": "l_bracket", "width": 25, "leg_a": 50, "leg_b": 40, "holes_per_leg": 2}],
    "gear": [{"kind": "gear", "module": 1.5, "teeth": 18, "thickness": 6, "bore": 5}],
    "twisted_bar": [
        {
            "kind": "linear_extrude",
            "height": 30,
            "twist": 90,
            "scale_top": 0.5,
            "profiles": [{"kind": "rectangle", "size": [20, 10], "center": True}],
        }
    ],
    # A free-form part the builder turns onto its best pose before writing it out.
    "tee": [
        {
            "kind": "union",
            "children": [
                {"kind": "box", "size": [10, 10, 30], "center": True},
                {
                    "kind": "translate",
                    "offset": [0, 0, 17.5],
                    "children": [{"kind": "box", "size": [40, 10, 5], "center": True}],
                },
            ],
        }
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_openscad_renders_the_same_part(tmp_path: Path, name: str) -> None:
    spec = DesignSpec.model_validate({"name": name, "parts": CASES[name]})
    mesh = build_mesh(spec)
    scad = write_scad(spec, mesh, tmp_path / "part.scad")
    out = tmp_path / "part.stl"
    assert OPENSCAD is not None
    done = subprocess.run(
        [OPENSCAD, "-o", str(out), str(scad)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rendered = trimesh.load(out, force="mesh")
    # Curves are faceted a little differently ($fa/$fs against the builder's chords).
    assert rendered.volume == pytest.approx(mesh.volume, rel=0.005)
    np.testing.assert_allclose(rendered.bounds, mesh.bounds, atol=0.1)
