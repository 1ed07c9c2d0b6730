"""Issue 13, items 5 and 6, on the built-in slicer's fill: skin and infill meet the inner
perimeter (`infill_overlap`, PrusaSlicer's setting and basis) so a top surface has no row of
pinholes along its walls, and sparse-infill links run a spacing from the walls instead of on
them. Strokes are rasterised with shapely at the widths their E gives (test_slicer_walls)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
import trimesh

from printforge.slicing.config import SlicerSettings
from printforge.slicing.prusaslicer import prusaslicer_ini
from printforge.slicing.toolpath import _covered
from tests.unit.test_slicer_walls import (
    GENERIC,
    PLA,
    Stroke,
    _box,
    _layer_cover,
    _params,
    _slice,
    _walk,
    _width,
)

# A 12 mm block centred on the generic-220 bed.
BLOCK = shapely.box(104, 104, 116, 116)


def _top_voids(strokes: list[Stroke], z: float) -> list[float]:
    """Areas of the uncovered specks of a layer, away from the outer surface (half a line in,
    where the outer loop's own edge is), of the quality benchmark's pinhole size or more. The
    square's corners are left out: a zigzag's turn there leaves a speck, as PrusaSlicer's does."""
    cover, _ = _layer_cover(strokes, z, 0.2)
    corners = shapely.MultiPoint(list(BLOCK.exterior.coords)).buffer(1.5)
    inside = BLOCK.buffer(-0.45).difference(corners)
    return [v.area for v in shapely.get_parts(shapely.difference(inside, cover)) if v.area >= 0.015]


def test_a_top_surface_meets_its_walls_without_pinholes(tmp_path: Path) -> None:
    # Skin lines stopped a whole spacing from the inner perimeter's centre: between two line
    # ends that are not linked a triangle stayed open at every other line, all round the top.
    strokes = _walk(_slice(tmp_path, _box(12, 12, 2), _params(skirt_loops=0)))
    for z in (1.8, 2.0):
        voids = _top_voids(strokes, z)
        assert not voids, f"z {z}: {len(voids)} pinholes, {sum(voids):.3f} mm²"


def test_no_overlap_brings_the_pinholes_back(tmp_path: Path) -> None:
    # The setting is what closes them: at 0 % the skin keeps a spacing from the wall. (On the
    # top layer itself the skin's gap fill closes most of them again; the layer under it has
    # none.)
    params = _params(SlicerSettings(infill_overlap=0), skirt_loops=0)
    strokes = _walk(_slice(tmp_path, _box(12, 12, 2), params))
    assert len(_top_voids(strokes, 1.8)) > 10


def test_the_overlap_reaches_prusaslicer_as_a_percentage() -> None:
    # Same name, same basis (the distance from the inner perimeter's centre line to the first
    # fill line's), so both engines get the same overlap.
    params = _params(SlicerSettings(infill_overlap=15))
    assert params.infill_overlap == 15
    assert "infill_overlap = 15%" in prusaslicer_ini(params, GENERIC, PLA, top_z=10).splitlines()


def test_sparse_links_are_not_laid_over_the_walls(tmp_path: Path) -> None:
    # Links along the boundary ran 0.1 mm from the inner perimeter's centre, most of each link
    # on the wall (12–14 % of the sparse lines' core over the perimeters' cores, 3 % of the
    # section laid twice).
    strokes = _walk(_slice(tmp_path, _box(20, 20, 6), _params(skirt_loops=0)))
    for z in (3.0, 3.2):
        mine = [s for s in strokes if abs(s.z - z) < 1e-6 and s.length > 1e-6]
        walls = _cores([s for s in mine if s.role in ("perimeter", "external")])
        infill = _cores([s for s in mine if s.role == "infill"])
        assert infill.area > 10
        on_walls = infill.intersection(walls).area / infill.area
        assert on_walls < 0.01, f"z {z}: {100 * on_walls:.1f} % of the infill over the walls"
        _, twice = _layer_cover(strokes, z, 0.2)
        assert twice / (20 * 20) < 0.01, f"z {z}: {100 * twice / 400:.1f} % laid twice"


def _cores(strokes: list[Stroke]) -> shapely.Geometry:
    lines = shapely.linestrings([[s.a, s.b] for s in strokes])
    widths = np.array([_width(s, 0.2) for s in strokes])
    return shapely.union_all(shapely.buffer(lines, widths / 2 - 0.025, cap_style="flat"))


def _solid_length(strokes: list[Stroke], z: float) -> float:
    return sum(s.length for s in strokes if abs(s.z - z) < 1e-6 and s.role == "solid")


def test_a_shallow_slope_gets_solid_skin_under_its_perimeters(tmp_path: Path) -> None:
    # A 45° cone: each layer's walls stand 0.2 mm inside the last's. The layers above covered
    # this one's outline, so it had no skin, but four layers up only their perimeters roof its
    # outer 0.8 mm of sparse infill (PrusaSlicer's "ensure vertical shell thickness" makes a
    # solid ring there; a sphere's shoulder was 37 % covered against its 51 %).
    cone = trimesh.creation.cone(radius=10, height=10, sections=96)
    strokes = _walk(_slice(tmp_path, cone, _params(skirt_loops=0)))
    for z in (4.0, 5.0, 6.0):
        assert _solid_length(strokes, z) > 20, f"z {z}: no solid ring under the slope"


def test_a_vertical_wall_gets_no_shell_skin(tmp_path: Path) -> None:
    # The infill areas of a prism's layers coincide: its middle stays sparse.
    strokes = _walk(_slice(tmp_path, _box(20, 20, 6), _params(skirt_loops=0)))
    assert _solid_length(strokes, 3.0) == 0


def test_skin_meets_a_round_hole_without_wedges(tmp_path: Path) -> None:
    # Straight skin lines meet a round wall at every angle: where they run nearly along it the
    # last line stands up to three quarters of a spacing off the wall, a wedge of daylight
    # on each side of the hole (the quality benchmark's cube with a hole: 10 pinholes against
    # PrusaSlicer's 8; a sphere's top: 4 against 0).
    block = _box(12, 12, 2)
    hole = trimesh.creation.cylinder(radius=3, height=6, sections=96)
    hole.apply_translation((6, 6, 1))
    strokes = _walk(_slice(tmp_path, block.difference(hole), _params(skirt_loops=0)))
    bore = shapely.Point(110, 110).buffer(3, quad_segs=24)
    corners = shapely.MultiPoint(list(BLOCK.exterior.coords)).buffer(1.5)
    inside = BLOCK.buffer(-0.45).difference(corners).difference(bore.buffer(0.45))
    for z in (2.0,):
        cover, _ = _layer_cover(strokes, z, 0.2)
        voids = [v.area for v in shapely.get_parts(inside.difference(cover)) if v.area >= 0.015]
        assert not voids, f"z {z}: {len(voids)} pinholes, {sum(voids):.3f} mm²"


def test_what_the_layers_above_and_below_hold_is_every_layers_intersection() -> None:
    # `_covered` builds its windows from shared runs (fewer overlays of the whole stack); it
    # must still be what each of the layers within reach holds, nothing beyond either end.
    rng = np.random.default_rng(1)
    areas = np.array(
        [shapely.Point(*rng.uniform(0, 3, 2)).buffer(rng.uniform(3, 6)) for _ in range(12)],
        dtype=object,
    )
    for count in range(6):
        runs: dict[int, np.ndarray] = {}
        for step in (1, -1):
            got = _covered(areas, count, step, runs)
            for i in range(len(areas)):
                window = [i + step * j for j in range(1, count + 1)]
                if count == 0:
                    want = areas[i]
                elif min(window) < 0 or max(window) >= len(areas):
                    want = shapely.Polygon()
                else:
                    want = shapely.intersection_all(areas[window])
                assert shapely.symmetric_difference(got[i], want).area < 1e-9
