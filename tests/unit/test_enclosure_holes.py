"""Enclosure standoffs under a board's real mounting holes: the spec's `holes` list, the built
mesh, the OpenSCAD export and the offline parser's board table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import trimesh
from pydantic import ValidationError
from shapely.geometry import Polygon

from printforge.geometry import build_bodies, spec_problems
from printforge.geometry.scad import to_scad
from printforge.llm.offline.boards import BOARDS
from printforge.llm.offline.parser import parse_request
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec

PI4_HOLES = [[3.5, 3.5], [61.5, 3.5], [3.5, 52.5], [61.5, 52.5]]
PROFILE = PrinterProfile(name="generic-220")


def _spec(**fields: object) -> DesignSpec:
    node = {"kind": "enclosure", "board_size": [85, 56], "headroom": 20, **fields}
    return DesignSpec.model_validate({"name": "case", "parts": [node]})


def standoff_centres(box: trimesh.Trimesh, node: object) -> list[tuple[float, float]]:
    """Centres of the standoffs found in the mesh, in board coordinates.

    The box is cut at the standoffs' mid-height; every closed outline there smaller than a
    standoff's outside is one of its two circles (post and pilot hole), both centred on it. The
    board's front-left corner is the cavity's corner moved in by the gap.
    """
    wall, gap = node.wall, node.gap  # type: ignore[attr-defined]
    z = box.bounds[0][2] + wall + node.standoff_height / 2  # type: ignore[attr-defined]
    section = box.section(plane_origin=[0, 0, z], plane_normal=[0, 0, 1])
    assert section is not None
    corner = box.bounds[0][:2] + wall + gap
    od = node.standoff_diameter()  # type: ignore[attr-defined]
    centres: list[tuple[float, float]] = []
    for loop in section.discrete:
        poly = Polygon(np.asarray(loop)[:, :2])
        lo_x, lo_y, hi_x, hi_y = poly.bounds
        if max(hi_x - lo_x, hi_y - lo_y) > od + 0.5:
            continue  # the shell's outlines
        c = poly.centroid
        at = (c.x - corner[0], c.y - corner[1])
        if all(np.hypot(at[0] - x, at[1] - y) > 0.5 for x, y in centres):
            centres.append(at)
    return centres


def _assert_same_points(
    got: list[tuple[float, float]],
    want: list[list[float]] | list[tuple[float, float]],
    tol: float = 0.1,
) -> None:
    assert len(got) == len(want), f"found {len(got)} standoffs, want {len(want)}: {got}"
    for x, y in want:
        nearest = min(np.hypot(x - gx, y - gy) for gx, gy in got)
        assert nearest <= tol, f"no standoff within {tol} mm of hole ({x}, {y}): {got}"


def test_explicit_holes_put_the_standoffs_under_a_pi_4s_holes() -> None:
    spec = _spec(holes=PI4_HOLES)
    (_, node, box), _lid = build_bodies(spec)
    got = standoff_centres(box, node)
    _assert_same_points(got, PI4_HOLES)
    # The right-hand pair is 23.5 mm in from the right edge, not one inset.
    assert max(x for x, _ in got) == pytest.approx(85 - 23.5, abs=0.1)


def test_without_holes_the_uniform_inset_still_applies() -> None:
    spec = _spec(hole_inset=4.0)
    (_, node, box), _lid = build_bodies(spec)
    want = [[4.0, 4.0], [81.0, 4.0], [4.0, 52.0], [81.0, 52.0]]
    _assert_same_points(standoff_centres(box, node), want)


def test_an_irregular_pattern_of_three_holes_builds_three_standoffs() -> None:
    holes = [[10, 10], [70, 20], [40, 50]]
    spec = _spec(holes=holes)
    (_, node, box), _lid = build_bodies(spec)
    _assert_same_points(standoff_centres(box, node), holes)
    assert box.is_watertight


@pytest.mark.parametrize(
    ("holes", "says"),
    [
        ([[90, 10]], "hole 1 at [90, 10] is not on the 85 x 56 mm board"),
        ([[10, -1]], "not on the"),
        ([[1.4, 10]], "runs into the wall"),
        ([[10, 10], [13, 10]], "holes 1 and 2 are closer than one standoff"),
        ([[10, 10, 3]], "hole 1 must be [x, y]"),
    ],
)
def test_bad_hole_lists_are_refused_with_the_reason(holes: list[list[float]], says: str) -> None:
    with pytest.raises(ValidationError) as err:
        _spec(holes=holes)
    assert says in str(err.value)


def test_standoffs_less_than_a_nozzle_apart_are_refused_for_that_printer() -> None:
    # 5 mm standoffs 5 mm apart touch: no room for even one line of a 0.4 mm nozzle.
    spec = _spec(holes=[[10, 10], [15, 10]])
    problems = spec_problems(spec, PROFILE)
    assert any("standoffs under holes 1 and 2" in p and "0.4 mm nozzle" in p for p in problems)
    assert spec_problems(_spec(holes=[[10, 10], [15.5, 10]]), PROFILE) == []


def test_the_scad_export_places_the_posts_at_the_holes() -> None:
    text = to_scad(_spec(holes=PI4_HOLES))
    posts = re.findall(
        r"translate\(\[(-?[\d.]+), (-?[\d.]+), [\d.]+\]\) cylinder\(h = 5\.01, "
        r"r = 2\.5,",
        text,
    )
    # Board centred in the box: hole (x, y) -> (x - 42.5, y - 28).
    _assert_same_points([(float(x) + 42.5, float(y) + 28) for x, y in posts], PI4_HOLES, tol=1e-3)


def test_the_design_needs_grammar_for_one_body() -> None:
    big = DesignSpec.model_validate(
        {"name": "b", "parts": [{"kind": "box", "size": [300, 40, 30]}]}
    )
    problems = spec_problems(big, PROFILE)
    assert any(p.startswith("the design needs 300.0 x 40.0 mm of bed") for p in problems)


KNOWN = [(b.name, b) for _, b in BOARDS if b.holes is not None]


@pytest.mark.parametrize(("name", "board"), KNOWN, ids=[n for n, _ in KNOWN])
def test_offline_board_cases_put_standoffs_under_the_real_holes(name: str, board: object) -> None:
    spec = parse_request(f"a case for a {name}")
    node = spec.parts[0]
    assert node.board_size == pytest.approx(list(board.size))  # type: ignore[attr-defined]
    (_, built, box), _lid = build_bodies(spec)
    _assert_same_points(standoff_centres(box, built), board.holes)  # type: ignore[attr-defined]
    assert "check before screwing" not in spec.description
    assert spec_problems(spec, PROFILE) == []


def test_published_hole_figures() -> None:
    boards = {b.name: b for _, b in BOARDS}
    assert boards["Raspberry Pi 4"].holes == ((3.5, 3.5), (61.5, 3.5), (3.5, 52.5), (61.5, 52.5))
    assert boards["Raspberry Pi 4"].hole_spacing == (58.0, 49.0)
    assert boards["Raspberry Pi Pico"].hole_spacing == (47.0, 11.4)
    uno = boards["Arduino Uno"].holes
    assert uno is not None
    for (x, y), (px, py) in zip(
        uno, [(14.0, 2.5), (15.3, 50.7), (66.1, 7.6), (66.1, 35.5)], strict=True
    ):
        assert abs(x - px) < 0.1 and abs(y - py) < 0.1
    assert boards["Arduino Uno"].hole_spacing is None  # no standoffs frame for it


def test_boards_without_known_holes_keep_the_caveat() -> None:
    spec = parse_request("a case for an arduino nano")
    assert spec.parts[0].holes is None  # type: ignore[union-attr]
    assert "check before screwing" in spec.description


def test_an_empty_hole_list_means_the_uniform_inset() -> None:
    # Structured-output models fill every field; [] must not be an error or zero standoffs.
    spec = _spec(holes=[], hole_inset=4.0)
    (_, node, box), _lid = build_bodies(spec)
    want = [[4.0, 4.0], [81.0, 4.0], [4.0, 52.0], [81.0, 52.0]]
    _assert_same_points(standoff_centres(box, node), want)
