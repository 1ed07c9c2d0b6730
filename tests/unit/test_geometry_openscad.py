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
from printforge.geometry.examples import EXAMPLES
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
    # The families written as generic nodes (geometry/expand.py), each from its example.
    **{
        kind: [EXAMPLES[kind]]
        for kind in (
            "pegboard_hook",
            "fan_plate",
            "fan_duct",
            "pin_hinge",
            "tool_holder",
            "sliding_box",
            "grommet",
            "bag_clip",
            "cable_comb",
        )
    },
    "plate_countersunk_slots": [
        {
            "kind": "plate",
            "size": [80, 40],
            "thickness": 5,
            "hole_diameter": 4.5,
            "hole_columns": 2,
            "hole_rows": 1,
            "hole_margin": 12,
            "hole_style": "countersunk",
            "slot_length": 8,
        }
    ],
    "plate_hex_pocket": [
        {
            "kind": "plate",
            "size": [30, 30],
            "thickness": 6,
            "hole_diameter": 3.4,
            "holes": [[0, 0]],
            "hole_style": "hex_pocket",
            "head_diameter": 5.7,
            "head_depth": 3,
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
