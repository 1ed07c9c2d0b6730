"""The printability report finds what stops or spoils a print, in words a person can act on."""

from __future__ import annotations

import pytest
import trimesh

from printforge.geometry import build_mesh
from printforge.geometry.printability import analyse, overhang_area
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec

PROFILE = PrinterProfile(name="p", bed_x=200, bed_y=200, max_z=200)


def _mesh(part: dict[str, object]) -> trimesh.Trimesh:
    return build_mesh(
        DesignSpec.model_validate({"name": "p", "parts": [part], "auto_orient": False})
    )


def test_a_clean_part_passes() -> None:
    report = analyse(_mesh({"kind": "box", "size": [20, 20, 20]}), PROFILE)
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.watertight and report.manifold and report.fits_bed
    assert report.size_mm == pytest.approx((20, 20, 20))
    assert report.volume_mm3 == pytest.approx(8000)
    assert report.min_wall_mm == pytest.approx(20, abs=0.01)


def test_overhang_of_a_t_shape() -> None:
    # A 40 x 10 bar on a 10 x 10 post: the bar's underside beside the post hangs in the air.
    mesh = _mesh(
        {
            "kind": "union",
            "children": [
                {"kind": "box", "size": [10, 10, 20]},
                {
                    "kind": "translate",
                    "offset": [-15, 0, 20],
                    "children": [{"kind": "box", "size": [40, 10, 5]}],
                },
            ],
        }
    )
    assert overhang_area(mesh) == pytest.approx(30 * 10, rel=1e-6)
    report = analyse(mesh, PROFILE)
    assert report.ok
    assert report.overhang_area_mm2 == pytest.approx(300, rel=1e-6)
    assert any("overhangs more than 45°" in w for w in report.warnings)


@pytest.mark.parametrize(("radius", "overhangs"), [(9.5, False), (10.5, True)])
def test_the_45_degree_limit(radius: float, overhangs: bool) -> None:
    # An upside-down cone 10 mm tall: its side is 43.5° or 46.4° from vertical.
    cone = _mesh(
        {
            "kind": "rotate",
            "angles": [180, 0, 0],
            "children": [{"kind": "cone", "height": 10, "radius_bottom": radius}],
        }
    )
    assert bool(overhang_area(cone) > 0.5 * cone.area) is overhangs


def test_too_big_for_the_bed_is_a_problem() -> None:
    report = analyse(_mesh({"kind": "box", "size": [250, 20, 5]}), PROFILE)
    assert not report.ok and not report.fits_bed
    assert "scale it down" in report.problems[0]


def test_open_mesh_is_a_problem() -> None:
    box = trimesh.creation.box((10, 10, 10))
    report = analyse(trimesh.Trimesh(box.vertices, box.faces[2:], process=False), PROFILE)
    assert not report.ok and not report.watertight
    assert "not watertight" in report.problems[0]


def test_thin_walls_and_specks_are_warned() -> None:
    sheet = _mesh(
        {
            "kind": "union",
            "children": [
                {"kind": "box", "size": [40, 40, 0.25]},
                {
                    "kind": "translate",
                    "offset": [60, 0, 0],
                    "children": [{"kind": "box", "size": [0.2, 0.2, 0.2]}],
                },
            ],
        }
    )
    report = analyse(sheet, PROFILE)
    assert report.ok
    assert report.min_wall_mm is not None and report.min_wall_mm < 0.4
    assert any("thinner than the 0.4 mm nozzle" in w for w in report.warnings)
    assert report.tiny_features >= 1
