"""Every part family builds a watertight mesh whose size is what was asked, within 0.1 mm.

Expected sizes are worked out here from the request, independently of the builder and of
bounds.py, whose pre-build estimate is checked against the built bodies as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from printforge.geometry import build_bodies, build_mesh
from printforge.geometry.bounds import part_body_sizes
from printforge.models.spec import FAMILY_KINDS, DesignSpec

TOL = 0.1

# kind, parameters, expected body sizes [x, y, z] (sorted by volume of the box, largest first)
CASES: list[tuple[str, dict[str, object], list[tuple[float, float, float]]]] = [
    (
        "box_with_lid",
        {"size": [60, 40, 30], "wall": 2, "lid_thickness": 2, "lip_height": 4},
        [(60, 40, 30), (60, 40, 6)],
    ),
    ("box_with_lid", {"size": [50, 50, 20], "corner_radius": 5}, [(50, 50, 20), (50, 50, 6)]),
    # Corners rounded by half the side: a round box and its round lid.
    ("box_with_lid", {"size": [60, 60, 40], "corner_radius": 30}, [(60, 60, 40), (60, 60, 6)]),
    ("box_with_lid", {"size": [80, 40, 30], "corner_radius": 20}, [(80, 40, 30), (80, 40, 6)]),
    ("tray", {"size": [100, 60, 25], "compartments_x": 3, "compartments_y": 2}, [(100, 60, 25)]),
    (
        "enclosure",
        {
            "board_size": [65, 30],
            "wall": 2,
            "gap": 1,
            "standoff_height": 5,
            "board_thickness": 1.6,
            "headroom": 15,
            "lip_height": 3,
        },
        [(71, 36, 23.6), (71, 36, 5)],
    ),
    (
        "l_bracket",
        {"width": 20, "leg_a": 40, "leg_b": 50, "thickness": 4, "holes_per_leg": 2},
        [(40, 20, 50)],
    ),
    ("shelf_bracket", {"width": 20, "leg_a": 120, "leg_b": 100}, [(120, 100, 20)]),
    ("wall_hook", {"width": 15, "back_height": 50, "reach": 30, "tip_height": 12}, [(30, 50, 15)]),
    (
        "cable_clip",
        {"cable_diameter": 6, "thickness": 2, "tab_length": 10, "width": 10},
        [(6 + 3 * 2 + 10, 6 + 2, 10)],
    ),
    (
        "pipe_clamp",
        {"pipe_diameter": 20, "thickness": 3, "flange_length": 12, "width": 15},
        [(20 + 2 * 3 + 2 * 12, 20 + 3, 15)],
    ),
    ("gear", {"module": 2, "teeth": 24, "thickness": 8, "bore": 5}, [(52, 52, 8)]),
    ("tube", {"outer_diameter": 20, "inner_diameter": 16, "height": 50}, [(20, 20, 50)]),
    ("washer", {"outer_diameter": 20, "inner_diameter": 8.4, "thickness": 1.5}, [(20, 20, 1.5)]),
    ("spacer", {"outer_diameter": 8, "hole_diameter": 3.4, "height": 10}, [(8, 8, 10)]),
    (
        "spacer",
        {"outer_diameter": 8, "hole_diameter": 3.4, "height": 10, "hexagonal": True},
        [(8, 8 * math.sqrt(3) / 2, 10)],
    ),
    (
        "standoffs",
        {"spacing": [58, 49], "height": 6, "outer_diameter": 6, "base_thickness": 2},
        [(64, 55, 8)],
    ),
    (
        "standoffs",
        {"spacing": [58, 49], "height": 6, "outer_diameter": 6, "base_thickness": 0},
        [(6, 6, 6)] * 4,
    ),
    (
        "plate",
        {
            "size": [80, 50],
            "thickness": 3,
            "hole_diameter": 4,
            "hole_columns": 3,
            "hole_rows": 2,
            "corner_radius": 3,
        },
        [(80, 50, 3)],
    ),
    ("vase", {"height": 120, "radii": [30, 40, 25, 30], "wall": 1.6}, [(80, 80, 120)]),
    ("plant_pot", {"height": 80, "top_diameter": 90, "bottom_diameter": 65}, [(90, 90, 80)]),
    (
        "plant_pot",
        {
            "height": 80,
            "top_diameter": 90,
            "bottom_diameter": 65,
            "sides": 6,
            "drain_hole_diameter": 0,
        },
        [(90, 90 * math.sqrt(3) / 2, 80)],
    ),
    ("vase", {"height": 100, "radii": [30, 40, 30], "sides": 8}, [(80, 80, 100)]),
    ("vase", {"height": 100, "radii": [60, 40, 30], "floor": 0}, [(120, 120, 100)]),
    (
        "nameplate",
        {"text": "Workshop", "size": [100, 30], "thickness": 3, "text_depth": 1},
        [(100, 30, 4)],
    ),
    (
        "nameplate",
        {"text": "Lab 2", "size": [80, 25], "thickness": 3, "text_depth": 1, "style": "engraved"},
        [(80, 25, 3)],
    ),
    (
        "cookie_cutter",
        # size is the whole cutter: the outline is 60 - 2 x (0.8 + 3) = 52.4 mm across.
        {"shape": "circle", "size": 60, "blade": 0.8, "flange_width": 3, "height": 15},
        [(60, 60, 15)],
    ),
    ("coaster", {"diameter": 95, "thickness": 3, "rim_height": 2}, [(95, 95, 5)]),
    ("coaster", {"diameter": 90, "thickness": 3, "rim_height": 2, "square": True}, [(90, 90, 5)]),
    ("knob", {"diameter": 30, "height": 18, "shaft_diameter": 6, "ridges": 20}, [(30, 30, 18)]),
    ("knob", {"diameter": 25, "height": 15, "ridges": 0, "d_flat": False}, [(25, 25, 15)]),
    (
        "drawer_handle",
        {"hole_spacing": 96, "clearance": 25, "thickness": 8, "width": 12},
        [(104, 33, 12)],
    ),
    (
        "funnel",
        {"top_diameter": 80, "spout_diameter": 12, "cone_height": 45, "spout_length": 25},
        [(80, 80, 70)],
    ),
    ("wedge", {"length": 120, "width": 40, "height": 25, "tip": 1}, [(120, 40, 25)]),
    # Pegboard hooks: pegs through the board and a catch behind it (x from the catch to the
    # arm's tip), the back plate carries both pegs.
    ("pegboard_hook", {"board": "pegboard", "reach": 40}, [(51.35, 37.8, 10)]),
    ("pegboard_hook", {"board": "skadis", "reach": 40}, [(50, 56, 10)]),
    ("fan_plate", {"fan": 120, "second_fan": 80}, [(120, 120, 3)]),
    ("fan_plate", {"fan": 40, "grill": True, "thickness": 2}, [(40, 40, 2)]),
    ("fan_duct", {"fan_in": 80, "fan_out": 120, "length": 50}, [(120, 120, 50)]),
    # Two interlocked leaves in one body, printed flat.
    ("pin_hinge", {"length": 40, "leaf_width": 20, "thickness": 2}, [(40, 40, 6)]),
    (
        "tool_holder",
        {"holes": [2, 2.5, 3, 4, 5, 6], "hex": True, "clearance": 0.4, "spacing": 4},
        [(54.9, 16.4, 25)],
    ),
    ("tool_holder", {"holes": [8] * 6, "clearance": 0, "wall_mount": True}, [(78, 22, 65)]),
    ("sliding_box", {"size": [80, 50, 30]}, [(80, 50, 30), (78.7, 47.4, 2)]),
    ("grommet", {"panel_hole": 25, "panel_thickness": 3, "bore": 12}, [(35, 35, 7)]),
    ("bag_clip", {"length": 100}, [(100, 12, 12)]),
    ("cable_comb", {"cable_diameter": 3, "columns": 6, "rows": 4}, [(39, 28, 4)]),
]


def _spec(kind: str, params: dict[str, object]) -> DesignSpec:
    return DesignSpec.model_validate({"name": kind, "parts": [{"kind": kind, **params}]})


def _sorted(sizes: list[tuple[float, float, float]]) -> np.ndarray:
    return np.array(sorted(sizes, key=lambda s: (-s[0] * s[1] * s[2], s)))


@pytest.mark.parametrize(
    ("kind", "params", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_family_builds_to_size(
    kind: str, params: dict[str, object], expected: list[tuple[float, float, float]]
) -> None:
    spec = _spec(kind, params)
    bodies = [mesh for _, _, mesh in build_bodies(spec)]
    for body in bodies:
        assert body.is_watertight and body.is_winding_consistent
        assert body.volume > 0
    built = _sorted([tuple(b.extents) for b in bodies])
    np.testing.assert_allclose(built, _sorted(expected), atol=TOL)
    estimated = _sorted(part_body_sizes(spec.parts[0]))
    np.testing.assert_allclose(estimated, built, atol=TOL)
    mesh = build_mesh(spec)
    assert mesh.is_watertight
    assert mesh.bounds[0][2] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(mesh.bounds.mean(axis=0)[:2], [0, 0], atol=1e-6)
    assert mesh.metadata["bodies"] == len(expected)


def test_every_family_has_a_case() -> None:
    covered = {kind for kind, _, _ in CASES} | {"phone_stand"}
    assert covered == set(FAMILY_KINDS)


def test_phone_stand_leans_at_its_angle() -> None:
    spec = _spec(
        "phone_stand",
        {"width": 70, "base_depth": 90, "back_height": 90, "angle": 65, "thickness": 5},
    )
    ((_, _, mesh),) = build_bodies(spec)
    assert mesh.is_watertight
    x, y, z = mesh.extents
    assert x == pytest.approx(90, abs=TOL) and z == pytest.approx(70, abs=TOL)
    rise = 90 * math.sin(math.radians(65))
    assert rise - TOL <= y <= rise + 2.5 * math.cos(math.radians(65)) + TOL


def test_holes_are_really_cut() -> None:
    plate = build_mesh(
        _spec("plate", {"size": [80, 50], "hole_diameter": 4, "hole_columns": 3, "hole_rows": 2})
    )
    assert plate.euler_number == 2 - 2 * 6  # six through-holes: genus 6
    washer = build_mesh(
        _spec("washer", {"outer_diameter": 20, "inner_diameter": 8, "thickness": 2})
    )
    assert washer.volume == pytest.approx(math.pi * (100 - 16) * 2, rel=0.01)


def test_twisted_vase_turns_its_top() -> None:
    spec = _spec("vase", {"height": 100, "radii": [30, 30], "sides": 4, "twist": 45})
    ((_, _, mesh),) = build_bodies(spec)
    assert mesh.is_watertight and mesh.extents[2] == pytest.approx(100, abs=TOL)
    top = mesh.vertices[mesh.vertices[:, 2] > 100 - 1e-6]
    bottom = mesh.vertices[mesh.vertices[:, 2] < 1e-6]
    # A square's corner starts on the X axis and ends 45° round.
    angle = np.degrees(np.arctan2(top[:, 1], top[:, 0]))
    r = np.hypot(top[:, 0], top[:, 1])
    assert np.any(np.isclose(angle[r > 29.9], 45, atol=0.5))
    assert np.abs(bottom[:, 1]).max() == pytest.approx(30, abs=TOL)


def test_twisted_square_vase_keeps_its_walls() -> None:
    # Twisting turns each cross-section, it never shrinks it: a straight square vase stored as
    # one row of facets used to collapse into a twisted ribbon (a full turn lost 96 % of it).
    for twist in (90, 360):
        straight = _spec("vase", {"height": 180, "radii": [40, 40], "sides": 4})
        turned = _spec("vase", {"height": 180, "radii": [40, 40], "sides": 4, "twist": twist})
        ((_, _, flat),) = build_bodies(straight)
        ((_, _, mesh),) = build_bodies(turned)
        assert mesh.is_watertight
        assert mesh.volume == pytest.approx(flat.volume, rel=0.01)
        # Halfway up, a corner has turned by half the twist and is still at full radius.
        section = mesh.section(plane_origin=[0, 0, 90], plane_normal=[0, 0, 1])
        pts = np.vstack(section.discrete)[:, :2]
        assert np.hypot(pts[:, 0], pts[:, 1]).max() == pytest.approx(40, abs=TOL)


def test_enclosure_port_opens_the_wall() -> None:
    plain = {"board_size": [60, 40], "wall": 2, "gap": 1}
    closed = build_mesh(_spec("enclosure", plain))
    ported = build_mesh(
        _spec(
            "enclosure",
            {
                **plain,
                "ports": [
                    {"kind": "port", "side": "front", "position": 10, "width": 12, "height": 6}
                ],
            },
        )
    )
    assert ported.is_watertight
    assert closed.volume - ported.volume == pytest.approx(12 * 6 * 2, rel=0.01)
    with pytest.raises(ValueError, match="runs past the corner"):
        _spec(
            "enclosure",
            {
                **plain,
                "ports": [
                    {"kind": "port", "side": "left", "position": 20, "width": 10, "height": 5}
                ],
            },
        )


def test_gear_tip_and_root_circles() -> None:
    mesh = build_mesh(_spec("gear", {"module": 1.5, "teeth": 17, "thickness": 5, "bore": 0}))
    r = np.hypot(mesh.vertices[:, 0], mesh.vertices[:, 1])
    assert r.max() == pytest.approx(1.5 * 19 / 2, abs=TOL)  # tip circle
    assert r.min() == pytest.approx(1.5 * (17 - 2.5) / 2, abs=TOL)  # root circle


def test_box_lid_lip_fits_inside_box() -> None:
    spec = _spec("box_with_lid", {"size": [60, 40, 30], "wall": 2, "clearance": 0.2})
    (_, _, box), (_, _, lid) = build_bodies(spec)
    lip = lid.slice_plane([0, 0, 2.5], [0, 0, 1])  # above the lid plate: only the lip
    section, _ = box.section(plane_origin=[0, 0, 15], plane_normal=[0, 0, 1]).to_2D()
    (wall,) = section.polygons_full
    (hole,) = wall.interiors
    x0, y0, x1, y1 = hole.bounds
    assert (x1 - x0, y1 - y0) == pytest.approx((56, 36), abs=TOL)
    # The lip is the opening less the clearance on every side.
    assert lip.extents[0] == pytest.approx(60 - 4 - 0.4, abs=TOL)
    assert lip.extents[1] == pytest.approx(40 - 4 - 0.4, abs=TOL)
