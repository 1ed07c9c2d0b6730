"""Generic spec nodes build into watertight meshes of the requested size, laid out on the bed,
and spec_problems refuses what cannot print before anything is built."""

from __future__ import annotations

import math

import numpy as np
import pytest

from printforge.geometry import build_bodies, build_mesh, spec_problems
from printforge.geometry.bounds import part_body_sizes
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec

PROFILE = PrinterProfile(name="test-220")


def _spec(*parts: dict[str, object], auto_orient: bool = True) -> DesignSpec:
    return DesignSpec.model_validate(
        {"name": "t", "parts": list(parts), "auto_orient": auto_orient}
    )


def test_cube_builds_watertight_20mm() -> None:
    mesh = build_mesh(_spec({"kind": "box", "size": [20, 20, 20]}))
    assert mesh.is_watertight
    np.testing.assert_allclose(mesh.extents, [20, 20, 20], atol=0.1)
    assert mesh.bounds[0][2] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(mesh.bounds.mean(axis=0)[:2], [0, 0], atol=1e-9)
    assert mesh.volume == pytest.approx(8000, rel=1e-6)


@pytest.mark.parametrize(
    ("part", "size"),
    [
        ({"kind": "rounded_box", "size": [30, 20, 10], "radius": 4}, (30, 20, 10)),
        ({"kind": "cylinder", "height": 12, "radius": 7.5}, (15, 15, 12)),
        ({"kind": "cone", "height": 20, "radius_bottom": 10, "radius_top": 4}, (20, 20, 20)),
        ({"kind": "sphere", "radius": 12}, (24, 24, 24)),
        ({"kind": "torus", "major_radius": 20, "minor_radius": 5}, (50, 50, 10)),
        (
            {"kind": "polygon_prism", "sides": 6, "radius": 10, "height": 5},
            (20, 20 * math.sqrt(3) / 2, 5),
        ),
        (
            {
                "kind": "linear_extrude",
                "height": 4,
                "profiles": [
                    {"kind": "rounded_rectangle", "size": [40, 20], "radius": 3},
                    {"kind": "circle", "radius": 5, "position": [40, 10]},
                ],
                "cutouts": [
                    {"kind": "rectangle", "size": [4, 4], "center": True, "position": [20, 10]}
                ],
            },
            (45, 20, 4),
        ),
        (
            {
                "kind": "revolve",
                "profiles": [{"kind": "polygon", "points": [[0, 0], [15, 0], [10, 30], [0, 30]]}],
            },
            (30, 30, 30),
        ),
        (
            {
                "kind": "linear_extrude",
                "height": 2,
                "profiles": [{"kind": "text", "text": "AB", "size": 10}],
            },
            None,
        ),
    ],
)
def test_primitives_and_profiles(
    part: dict[str, object], size: tuple[float, float, float] | None
) -> None:
    spec = _spec(part, auto_orient=False)
    mesh = build_mesh(spec)
    assert mesh.is_watertight and mesh.volume > 0
    (estimated,) = part_body_sizes(spec.parts[0])
    if size is not None:
        np.testing.assert_allclose(mesh.extents, size, atol=0.1)
    else:
        assert mesh.extents[1] == pytest.approx(10, abs=0.1)  # a capital is `size` tall
    assert np.all(np.asarray(estimated) >= mesh.extents - 0.1)


def test_difference_cuts_a_hole() -> None:
    spec = _spec(
        {
            "kind": "difference",
            "children": [
                {"kind": "box", "size": [20, 20, 10], "center": True},
                {"kind": "cylinder", "height": 20, "radius": 4, "center": True},
            ],
        }
    )
    mesh = build_mesh(spec)
    assert mesh.is_watertight
    np.testing.assert_allclose(mesh.extents, [20, 20, 10], atol=0.1)
    assert mesh.volume == pytest.approx(4000 - np.pi * 16 * 10, rel=0.01)
    assert mesh.euler_number == 0  # one through-hole: genus 1


def test_patterns_make_every_copy() -> None:
    hole = {
        "kind": "translate",
        "offset": [0, 0, -3],
        "children": [{"kind": "cylinder", "height": 6, "radius": 1.5}],
    }
    grid = _spec(
        {
            "kind": "difference",
            "children": [
                {"kind": "box", "size": [50, 40, 3], "center": True},
                {
                    "kind": "grid_pattern",
                    "columns": 4,
                    "rows": 3,
                    "spacing": [10, 10],
                    "children": [hole],
                },
            ],
        }
    )
    assert build_mesh(grid).euler_number == 2 - 2 * 12
    ring = _spec(
        {
            "kind": "difference",
            "children": [
                {"kind": "cylinder", "height": 3, "radius": 30, "center": True},
                {
                    "kind": "circular_pattern",
                    "count": 8,
                    "children": [
                        {
                            "kind": "translate",
                            "offset": [20, 0, -3],
                            "children": [{"kind": "cylinder", "height": 6, "radius": 2}],
                        }
                    ],
                },
            ],
        }
    )
    assert build_mesh(ring).euler_number == 2 - 2 * 8
    row = build_mesh(
        _spec(
            {
                "kind": "linear_pattern",
                "count": 5,
                "step": [12, 0, 0],
                "children": [{"kind": "box", "size": [10, 10, 10]}],
            }
        )
    )
    assert len(row.split()) == 5
    np.testing.assert_allclose(row.extents, [58, 10, 10], atol=0.1)


def test_transforms() -> None:
    turned = build_mesh(
        _spec(
            {
                "kind": "rotate",
                "angles": [0, 0, 90],
                "children": [{"kind": "box", "size": [30, 10, 5]}],
            }
        )
    )
    np.testing.assert_allclose(turned.extents, [10, 30, 5], atol=0.1)
    scaled = build_mesh(
        _spec(
            {
                "kind": "scale",
                "factors": [2, 1, 0.5],
                "children": [{"kind": "sphere", "radius": 10}],
            },
            auto_orient=False,
        )
    )
    np.testing.assert_allclose(scaled.extents, [40, 20, 10], atol=0.1)
    mirrored = build_mesh(
        _spec(
            {
                "kind": "mirror",
                "normal": [1, 0, 0],
                "children": [{"kind": "cone", "height": 5, "radius_bottom": 5}],
            }
        )
    )
    assert mirrored.is_watertight and mirrored.volume > 0


def test_hull_wraps_its_children() -> None:
    # Four spheres at the corners of a square: their hull is a rounded slab.
    corners = [
        {"kind": "translate", "offset": [x, y, 0], "children": [{"kind": "sphere", "radius": 3}]}
        for x in (0, 20)
        for y in (0, 10)
    ]
    mesh = build_mesh(_spec({"kind": "hull", "children": corners}, auto_orient=False))
    assert mesh.is_watertight and len(mesh.split()) == 1
    np.testing.assert_allclose(mesh.extents, [26, 16, 6], atol=0.1)


def test_intersection_that_is_empty_is_reported() -> None:
    spec = _spec(
        {
            "kind": "intersection",
            "children": [
                {"kind": "box", "size": [5, 5, 5]},
                {
                    "kind": "translate",
                    "offset": [50, 0, 0],
                    "children": [{"kind": "box", "size": [5, 5, 5]}],
                },
            ],
        }
    )
    with pytest.raises(ValueError, match="empty"):
        build_mesh(spec)


def test_auto_orient_turns_an_upside_down_part_over() -> None:
    # A mushroom: wide cap on a thin stem. Standing on the stem, the cap's underside overhangs.
    part = {
        "kind": "union",
        "children": [
            {"kind": "cylinder", "height": 20, "radius": 3},
            {
                "kind": "translate",
                "offset": [0, 0, 20],
                "children": [{"kind": "cylinder", "height": 4, "radius": 15}],
            },
        ],
    }
    kept = build_mesh(_spec(part, auto_orient=False))
    turned = build_mesh(_spec(part))
    record = turned.metadata["orientation"][0]
    assert record["rotated"] is True
    assert record["overhang_after_mm2"] < 0.1 * record["overhang_before_mm2"]
    np.testing.assert_allclose(turned.extents, kept.extents, atol=0.1)
    # Now the cap lies on the bed: the widest slice is at the bottom.
    low = turned.slice_plane([0, 0, 1], [0, 0, -1])
    assert low.extents[0] == pytest.approx(30, abs=0.1)


def test_families_keep_their_print_pose() -> None:
    mesh = build_mesh(_spec({"kind": "l_bracket"}))
    assert mesh.metadata["orientation"] == []
    np.testing.assert_allclose(mesh.extents, [40, 20, 40], atol=0.1)


def test_box_with_lid_two_bodies_side_by_side() -> None:
    mesh = build_mesh(_spec({"kind": "box_with_lid", "size": [60, 40, 30], "wall": 2}))
    assert mesh.is_watertight
    parts = sorted(mesh.split(), key=lambda m: -m.extents[2])
    assert len(parts) == 2
    np.testing.assert_allclose(parts[0].extents, [60, 40, 30], atol=0.1)
    np.testing.assert_allclose(parts[1].extents, [60, 40, 6], atol=0.1)
    assert (
        parts[0].bounds[1][0] < parts[1].bounds[0][0]
        or parts[1].bounds[1][0] < parts[0].bounds[0][0]
    )
    for p in parts:
        assert p.bounds[0][2] == pytest.approx(0.0, abs=1e-9)


def test_many_bodies_wrap_into_rows_on_the_bed() -> None:
    small = PrinterProfile(name="small", bed_x=120, bed_y=120)
    spec = _spec(*[{"kind": "box", "size": [30, 30, 5]} for _ in range(6)])
    assert spec_problems(spec, small) == []
    mesh = build_mesh(spec, small)
    assert mesh.extents[0] <= 120 and mesh.extents[1] <= 120
    pieces = mesh.split()
    assert len(pieces) == 6
    boxes = [p.bounds for p in pieces]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a[1][0] <= b[0][0] or b[1][0] <= a[0][0] or a[1][1] <= b[0][1] or b[1][1] <= a[0][1]
            )
            assert apart


def test_a_part_that_fits_only_turned_is_turned() -> None:
    bed = PrinterProfile(name="mk3", bed_x=250, bed_y=210)
    spec = _spec({"kind": "plate", "size": [200, 240], "thickness": 3})
    assert spec_problems(spec, bed) == []
    mesh = build_mesh(spec, bed)
    np.testing.assert_allclose(mesh.extents, [240, 200, 3], atol=0.1)
    (placement,) = mesh.metadata["placements"]
    assert np.allclose(np.asarray(placement["matrix"])[:2, :2], [[0, -1], [1, 0]], atol=1e-9)


def test_spec_problems_bed_height_and_nozzle() -> None:
    big = _spec({"kind": "box", "size": [300, 20, 20]})
    (found,) = spec_problems(big, PROFILE)
    assert "300.0 x 20.0 mm of bed" in found and "make it smaller" in found
    tall = _spec({"kind": "cylinder", "height": 300, "radius": 5})
    assert "300.0 mm tall" in spec_problems(tall, PROFILE)[0]
    kit = _spec({"kind": "box_with_lid", "size": [150, 150, 40]})
    assert "2 bodies laid side by side" in spec_problems(kit, PROFILE)[0]
    thin = _spec({"kind": "box_with_lid", "size": [40, 40, 20], "wall": 0.2})
    assert any(
        "wall 0.2 mm is thinner than the 0.4 mm nozzle" in p for p in spec_problems(thin, PROFILE)
    )
    assert spec_problems(_spec({"kind": "box", "size": [20, 20, 20]}), PROFILE) == []
    pin = _spec(
        {
            "kind": "difference",
            "children": [
                {"kind": "box", "size": [20, 20, 5]},
                {"kind": "cylinder", "height": 10, "radius": 0.1},
            ],
        }
    )
    assert (
        "diameter (2 x radius) 0.2 mm is narrower than the 0.4 mm nozzle"
        in spec_problems(pin, PROFILE)[0]
    )
    plate = _spec({"kind": "plate", "size": [20, 20], "hole_diameter": 0.3, "holes": [[0, 0]]})
    assert "or 0 for none" in spec_problems(plate, PROFILE)[0]


def test_spec_problems_text_and_complexity() -> None:
    odd = _spec({"kind": "nameplate", "text": "Café ☕"})
    assert "cannot draw ☕" in spec_problems(odd, PROFILE)[0]
    tiny = _spec(
        {
            "kind": "linear_extrude",
            "height": 1,
            "profiles": [{"kind": "text", "text": "HI", "size": 1.5}],
        }
    )
    assert "strokes thinner" in spec_problems(tiny, PROFILE)[0]
    crowded = _spec({"kind": "nameplate", "text": "A LONG NAME HERE", "size": [30, 15]})
    assert "make the plate larger" in spec_problems(crowded, PROFILE)[0]
    many = _spec(
        {
            "kind": "grid_pattern",
            "columns": 60,
            "rows": 60,
            "spacing": [1, 1],
            "children": [{"kind": "sphere", "radius": 0.4}],
        }
    )
    assert "3600 solids" in spec_problems(many, PROFILE)[0]


def test_build_bodies_names_the_part() -> None:
    spec = _spec({"kind": "box", "size": [5, 5, 5]}, {"kind": "gear"})
    assert [(i, part.kind) for i, part, _ in build_bodies(spec)] == [(0, "box"), (1, "gear")]


def test_twisted_extrusion_keeps_its_cross_section() -> None:
    # A 20 x 10 mm bar twisted 90 degrees: every horizontal slice is still a 20 x 10 rectangle
    # (rotated), so its area stays 200 mm2; long flat sides used to sag 0.3 mm inwards.
    bar = {
        "kind": "linear_extrude",
        "height": 30,
        "twist": 90,
        "profiles": [{"kind": "rectangle", "size": [20, 10], "center": True}],
    }
    mesh = build_mesh(_spec(bar, auto_orient=False))
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(6000, rel=0.003)
    for z in np.linspace(1, 29, 15):
        section = mesh.section(plane_origin=[0, 0, z], plane_normal=[0, 0, 1])
        planar, _ = section.to_2D()
        assert planar.area == pytest.approx(200, rel=0.006)


@pytest.mark.parametrize(
    "part",
    [
        {"kind": "tube", "outer_diameter": 10, "inner_diameter": 9.8, "height": 20},
        {"kind": "washer", "outer_diameter": 10, "inner_diameter": 9.5},
        {"kind": "washer", "outer_diameter": 31.7, "inner_diameter": 31},
    ],
)
def test_wall_between_two_diameters_thinner_than_the_nozzle_is_refused(
    part: dict[str, object],
) -> None:
    # The slicer prints nothing of a 0.1 mm tube wall; it used to be built with only a warning.
    problems = spec_problems(_spec(part), PROFILE)
    assert len(problems) == 1 and "thinner than the 0.4 mm nozzle" in problems[0]
    suggested = float(problems[0].split("at most ")[1].split(" mm")[0])
    inner = "inner_diameter" if "inner_diameter" in part else "hole_diameter"
    assert spec_problems(_spec({**part, inner: suggested}), PROFILE) == []
