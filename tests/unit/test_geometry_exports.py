"""Exports round-trip: STL and 3MF reload as the same solid, the .scad holds the same spec."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import trimesh

from printforge.geometry import build_mesh
from printforge.geometry.exports import write_3mf, write_scad, write_stl
from printforge.geometry.scad import to_scad
from printforge.models.spec import FAMILY_KINDS, DesignSpec
from tests.unit.test_geometry_families import CASES


def _spec(*parts: dict[str, object]) -> DesignSpec:
    return DesignSpec.model_validate({"name": "t", "parts": list(parts)})


@pytest.fixture
def kit() -> tuple[DesignSpec, trimesh.Trimesh]:
    spec = _spec({"kind": "box_with_lid", "size": [60, 40, 30]})
    return spec, build_mesh(spec)


def test_stl_is_binary_and_reloads(tmp_path: Path, kit: tuple[DesignSpec, trimesh.Trimesh]) -> None:
    _, mesh = kit
    path = write_stl(mesh, tmp_path / "m.stl")
    data = path.read_bytes()
    assert len(data) == 84 + 50 * len(mesh.faces)  # binary STL: header, count, 50 B/triangle
    again = trimesh.load(path, force="mesh")
    assert again.is_watertight
    np.testing.assert_allclose(again.extents, mesh.extents, atol=1e-3)
    assert again.volume == pytest.approx(mesh.volume, rel=1e-5)


def test_3mf_reloads_with_each_body(
    tmp_path: Path, kit: tuple[DesignSpec, trimesh.Trimesh]
) -> None:
    _, mesh = kit
    path = write_3mf(mesh, tmp_path / "m.3mf")
    scene = trimesh.load(path)
    assert isinstance(scene, trimesh.Scene) and len(scene.geometry) == 2
    merged = scene.to_mesh()
    assert merged.is_watertight
    np.testing.assert_allclose(merged.bounds, mesh.bounds, atol=1e-3)


def test_3mf_keeps_a_cavity_inside_its_body(tmp_path: Path) -> None:
    # A hollow ball beside a washer: two bodies. The ball's inner surface used to become a
    # third, inside-out object that a slicer would fill in.
    from printforge.geometry.printability import analyse
    from printforge.models.printer import PrinterProfile

    hollow = {
        "kind": "difference",
        "children": [{"kind": "sphere", "radius": 10}, {"kind": "sphere", "radius": 5}],
    }
    spec = _spec(hollow, {"kind": "washer", "outer_diameter": 20, "inner_diameter": 8})
    mesh = build_mesh(spec)
    scene = trimesh.load(write_3mf(mesh, tmp_path / "m.3mf"))
    assert isinstance(scene, trimesh.Scene) and len(scene.geometry) == 2
    assert all(g.volume > 0 for g in scene.geometry.values())
    assert sum(g.volume for g in scene.geometry.values()) == pytest.approx(mesh.volume)
    assert analyse(mesh, PrinterProfile(name="p")).bodies == 2


def test_scad_has_the_primitives_and_placements() -> None:
    spec = _spec(
        {
            "kind": "difference",
            "children": [
                {"kind": "box", "size": [20, 20, 10]},
                {
                    "kind": "translate",
                    "offset": [10, 10, -1],
                    "children": [{"kind": "cylinder", "height": 12, "radius": 3}],
                },
                {
                    "kind": "circular_pattern",
                    "count": 4,
                    "children": [
                        {
                            "kind": "translate",
                            "offset": [6, 0, 8],
                            "children": [{"kind": "sphere", "radius": 1}],
                        }
                    ],
                },
            ],
        }
    )
    mesh = build_mesh(spec)
    text = to_scad(spec, mesh.metadata["placements"])
    for fragment in (
        "difference() {",
        "cube([20, 20, 10], center = false);",
        "translate([10, 10, -1]) {",
        "cylinder(h = 12, r = 3, center = false);",
        "for (i = [0 : 3]) rotate([0, 0, i * 360 / 4])",
        "sphere(r = 1);",
        "multmatrix(",
        "body_1();",
    ):
        assert fragment in text, fragment
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize("kind", FAMILY_KINDS)
def test_scad_for_every_family_is_balanced(tmp_path: Path, kind: str) -> None:
    params = next((p for k, p, _ in CASES if k == kind), {})
    spec = _spec({"kind": kind, **params})
    mesh = build_mesh(spec)
    path = write_scad(spec, mesh, tmp_path / "m.scad")
    text = path.read_text()
    assert text.count("{") == text.count("}") and text.count("(") == text.count(")")
    assert text.count("[") == text.count("]")
    bodies = mesh.metadata["bodies"]
    assert len(re.findall(r"^module body_\d+\(\)", text, flags=re.M)) == bodies
    assert len(re.findall(r"^multmatrix\(", text, flags=re.M)) == bodies
    assert f'"kind": "{kind}"' in text  # the parameters travel as a comment
