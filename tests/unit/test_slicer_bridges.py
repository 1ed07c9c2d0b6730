"""Bridge detection in the built-in slicer: which layers bridge, in which direction, and with
what speed, fan and flow; parts that need no bridge get none."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
import trimesh
from pydantic import ValidationError
from shapely.geometry import box

from printforge.gcode.gate import check_gcode
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import SliceOverrides
from printforge.runtime.errors import ConfigError
from printforge.settings import load_settings
from printforge.slicing.bridges import bridge_angle
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import SliceParams, resolve_params
from printforge.slicing.preview import BRIDGE_COLOUR, TILE, render_layers
from printforge.slicing.prusaslicer import prusaslicer_ini
from tests.unit.test_slicer_walls import FILAMENT_AREA, _walk

# Half fan for ordinary printing, so the bridge fan (100 % by default) is told apart.
PLA = MaterialProfile(
    name="PLA",
    hotend_temp=210,
    bed_temp=60,
    max_hotend_temp=235,
    fan_percent=50,
    fan_from_layer=2,
)
GENERIC = PrinterProfile(name="generic-220")
CENTRE = 110.0  # the part is centred on the 220 mm bed


@dataclass
class Move:
    role: str
    fan: int  # 0-255
    feed: float  # mm/min
    x0: float
    y0: float
    x1: float
    y1: float
    e: float

    @property
    def length(self) -> float:
        return math.hypot(self.x1 - self.x0, self.y1 - self.y0)


def _layers(text: str) -> list[list[Move]]:
    """Extruding moves of every layer, each with its feature type, fan and feedrate."""
    layers: list[list[Move]] = []
    role, fan, feed = "", 0, 0.0
    x = y = math.nan
    for line in text.splitlines():
        if line.startswith(";LAYER:"):
            layers.append([])
        elif line.startswith(";TYPE:"):
            role = line[6:]
        elif line.startswith("M106"):
            fan = int(line.split("S")[1])
        elif line.startswith("M107"):
            fan = 0
        elif line.startswith(("G0 ", "G1 ")):
            words = {w[0]: float(w[1:]) for w in line.split()[1:]}
            feed = words.get("F", feed)
            nx, ny = words.get("X", x), words.get("Y", y)
            if words.get("E", 0) > 0 and "X" in words and layers:
                layers[-1].append(Move(role, fan, feed, x, y, nx, ny, words["E"]))
            x, y = nx, ny
    return layers


def _params(**settings: object) -> SliceParams:
    return resolve_params(
        SlicerSettings(**settings),
        GENERIC,
        PLA,  # type: ignore[arg-type]
        SliceOverrides(skirt_loops=0),
    )


def _slice(
    tmp_path: Path, mesh: trimesh.Trimesh, params: SliceParams | None = None
) -> tuple[Path, str]:
    stl = tmp_path / "part.stl"
    mesh.export(stl)
    out = tmp_path / "out.gcode"
    slice_file(stl, out, params or _params(), GENERIC)
    return out, out.read_text()


def _box(x: float, y: float, z: float, at: tuple[float, float, float]) -> trimesh.Trimesh:
    b = trimesh.creation.box((x, y, z))
    b.apply_translation(at)
    return b


def _tunnel_block() -> trimesh.Trimesh:
    """40 x 20 x 10 mm with a tunnel 30 mm wide and 5 mm high through it along Y: the roof
    rests on 5 mm pillars at either end of X and hangs free along both open faces."""
    return _box(40, 20, 10, (0, 0, 5)).difference(_box(30, 40, 5, (0, 0, 2.5)))


def _closed_box() -> trimesh.Trimesh:
    """40 x 20 x 10 mm with a closed 30 x 12 x 5 mm cavity: a lid resting on walls all round."""
    return _box(40, 20, 10, (0, 0, 5)).difference(_box(30, 12, 5, (0, 0, 4.5)))


def _bridge_layers(layers: list[list[Move]]) -> list[int]:
    return [i for i, moves in enumerate(layers) if any(m.role == "bridge" for m in moves)]


def _strands(moves: list[Move]) -> list[Move]:
    """The bridge's long strokes, without the short links between them. A strand is cut where
    it leaves its anchors (thinner there): its consecutive runs in one direction are one."""
    joined: list[Move] = []
    for m in (m for m in moves if m.role == "bridge"):
        last = joined[-1] if joined else None
        if (
            last is not None
            and (last.x1, last.y1) == (m.x0, m.y0)
            and abs((last.x1 - last.x0) * (m.y1 - m.y0) - (last.y1 - last.y0) * (m.x1 - m.x0))
            < 1e-3 * last.length * m.length
            and (last.x1 - last.x0) * (m.x1 - m.x0) + (last.y1 - last.y0) * (m.y1 - m.y0) > 0
        ):
            joined[-1] = Move(m.role, m.fan, m.feed, last.x0, last.y0, m.x1, m.y1, last.e + m.e)
        else:
            joined.append(m)
    return [m for m in joined if m.length > 5]


def test_tunnel_roof_bridges_across_the_gap_at_bridge_speed_fan_and_flow(
    tmp_path: Path,
) -> None:
    params = _params()
    out, text = _slice(tmp_path, _tunnel_block(), params)
    layers = _layers(text)
    # The tunnel's top is at 5 mm; the first layer cut above it (5.0-5.2 mm) is the bridge.
    assert _bridge_layers(layers) == [25]
    strands = _strands(layers[25])
    assert len(strands) >= 20  # the 20 mm deep roof, strands 0.4 mm apart
    for m in strands:
        # Across the 30 mm gap along X (not along the shorter, unanchored 20 mm of Y), and
        # anchored beyond both edges of the gap onto the pillars.
        assert abs(m.y1 - m.y0) < 1e-3
        assert min(m.x0, m.x1) < CENTRE - 15 and max(m.x0, m.x1) > CENTRE + 15
        assert m.feed == pytest.approx(params.bridge_speed * 60)
        assert m.fan == 255
    # Over the gap, a round strand of bridge flow (its anchors are thinner: see below).
    over_gap = [m for m in layers[25] if m.role == "bridge" and m.length > 25]
    assert len(over_gap) == len(strands)
    for m in over_gap:
        assert m.e / m.length == pytest.approx(params.bridge_e_per_mm, rel=1e-3)
    # A bridge strand is a round one of nozzle diameter: more filament per mm than a line.
    assert params.bridge_e_per_mm > params.e_per_mm(params.extrusion_width, 0.2)
    # Back to the layer's own fan for everything that is not over air: the roof's walls along
    # the open faces hang free and print as overhang perimeters, with the bridge fan.
    others = [m for m in layers[25] if m.role not in ("bridge", "overhang")]
    assert others and {m.fan for m in others} == {128}
    assert {m.fan for m in layers[25] if m.role == "overhang"} == {255}
    assert check_gcode(out, GENERIC, PLA).layers == 50


def test_each_island_gets_its_own_bridge(tmp_path: Path) -> None:
    # Two tunnel blocks 6 mm apart, one turned a quarter: each roof crosses its own gap. The
    # pair spans x -20..46, so the gap between them (20..26) is centred 10 mm right of the bed.
    split = CENTRE + 10
    turned = _tunnel_block()
    turned.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (0, 0, 1)))
    turned.apply_translation((36, 0, 0))
    out, text = _slice(tmp_path, trimesh.util.concatenate([_tunnel_block(), turned]))
    strands = _strands(_layers(text)[25])
    left = [m for m in strands if max(m.x0, m.x1) < split]
    right = [m for m in strands if min(m.x0, m.x1) > split]
    assert left and right and len(left) + len(right) == len(strands)
    assert all(abs(m.y1 - m.y0) < 1e-3 and m.length > 30 for m in left)
    assert all(abs(m.x1 - m.x0) < 1e-3 and m.length > 30 for m in right)
    check_gcode(out, GENERIC, PLA)


def test_layer_over_a_bridge_stays_solid_and_is_no_bridge(tmp_path: Path) -> None:
    _, text = _slice(tmp_path, _tunnel_block())
    above = _layers(text)[26]
    assert not any(m.role == "bridge" for m in above)
    # Over the middle of the gap it is solid infill, not sparse.
    middle = [
        m
        for m in above
        if abs((m.x0 + m.x1) / 2 - CENTRE) < 3 and abs((m.y0 + m.y1) / 2 - CENTRE) < 3
    ]
    assert middle and {m.role for m in middle} == {"solid"}


def test_a_lid_anchored_all_round_spans_the_short_side(tmp_path: Path) -> None:
    out, text = _slice(tmp_path, _closed_box())
    layers = _layers(text)
    assert _bridge_layers(layers) == [35]  # the cavity's roof is at 7 mm
    strands = _strands(layers[35])
    assert strands
    # The 12 mm side (Y), not the 30 mm one.
    assert all(abs(m.x1 - m.x0) < 1e-3 for m in strands)
    assert all(min(m.y0, m.y1) < CENTRE - 6 and max(m.y0, m.y1) > CENTRE + 6 for m in strands)
    check_gcode(out, GENERIC, PLA)


@pytest.mark.parametrize(
    "make",
    [
        lambda: trimesh.creation.box((20, 20, 10)),
        lambda: trimesh.creation.cone(radius=10, height=12, sections=64),
        lambda: trimesh.creation.annulus(r_min=5, r_max=12, height=6, sections=64),
    ],
    ids=["cube", "cone", "tube"],
)
def test_parts_without_overhangs_have_no_bridges(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    # The cube's top skin rests on sparse infill, which holds it: no bridge there either.
    out, text = _slice(tmp_path, make())
    assert ";TYPE:bridge" not in text
    check_gcode(out, GENERIC, PLA)


def test_preview_draws_bridges_in_their_own_colour(tmp_path: Path) -> None:
    from PIL import Image

    out, _ = _slice(tmp_path, _tunnel_block())

    def bridge_pixels(layer: int) -> int:
        png = render_layers(out, tmp_path / f"l{layer}.png", GENERIC, [layer])
        with Image.open(png) as img:
            drawing = np.asarray(img.convert("RGB"))[:TILE]  # not the caption
        return int(np.all(drawing == BRIDGE_COLOUR, axis=-1).sum())

    assert bridge_pixels(25) > 1000  # the roof's strands
    assert bridge_pixels(26) == 0


def test_min_layer_time_does_not_slow_a_bridge(tmp_path: Path) -> None:
    params = _params(min_layer_time=200)  # the bridge alone takes ~70 s
    _, text = _slice(tmp_path, _tunnel_block(), params)
    layer = _layers(text)[25]
    assert {m.feed for m in _strands(layer)} == {params.bridge_speed * 60}
    # The rest of the layer is slowed down to make up the time.
    walls = [m for m in layer if m.role == "perimeter"]
    assert walls and max(m.feed for m in walls) < params.perimeter_speed * 60


def test_bridge_settings_reach_the_gcode_and_prusaslicer(tmp_path: Path) -> None:
    params = _params(bridge_speed=15, bridge_fan_percent=80, bridge_flow_ratio=0.8)
    _, text = _slice(tmp_path, _tunnel_block(), params)
    strands = _strands(_layers(text)[25])
    assert {m.feed for m in strands} == {900.0}
    assert {m.fan for m in strands} == {round(255 * 0.8)}
    area = math.pi * (0.4 / 2) ** 2 * 0.8 / (math.pi * (1.75 / 2) ** 2)
    over_gap = [m for m in _layers(text)[25] if m.role == "bridge" and m.length > 25]
    assert over_gap[0].e / over_gap[0].length == pytest.approx(area, rel=1e-3)
    # Strands of a thinner bridge lie closer: as far apart as they are thick.
    ys = sorted({round(m.y0, 3) for m in strands})
    assert np.diff(ys).min() == pytest.approx(0.4 * math.sqrt(0.8), abs=2e-3)
    ini = prusaslicer_ini(params, GENERIC, PLA, top_z=10)
    assert "bridge_speed = 15\n" in ini and "bridge_fan_speed = 80\n" in ini
    assert "bridge_flow_ratio = 0.8\n" in ini


def test_bridge_settings_are_declared_and_unknown_keys_refused() -> None:
    s = SlicerSettings()
    assert (s.bridge_speed, s.bridge_fan_percent, s.bridge_flow_ratio) == (25.0, 100, 1.0)
    with pytest.raises(ValidationError, match="bridge_sped"):
        SlicerSettings(bridge_sped=20)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SlicerSettings(bridge_fan_percent=120)
    fast = PrinterProfile(name="slow", max_feedrate_xy=20)
    assert resolve_params(SlicerSettings(), fast, PLA).bridge_speed == 20  # machine limit


def test_a_material_can_keep_its_bridge_fan_low(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("PRINTFORGE_")]:
        monkeypatch.delenv(var)
    abs_like = PLA.model_copy(update={"name": "ABS", "bridge_fan_percent": 30})
    assert resolve_params(SlicerSettings(), GENERIC, abs_like).bridge_fan_percent == 30
    # Unset on the material: the slicer's own setting.
    assert (
        resolve_params(SlicerSettings(bridge_fan_percent=90), GENERIC, PLA).bridge_fan_percent == 90
    )
    shipped = load_settings().materials
    assert shipped["ABS"].bridge_fan_percent == 30
    assert shipped["PLA"].bridge_fan_percent is None


def test_bridge_keys_in_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("PRINTFORGE_"):
            monkeypatch.delenv(var)
    good = tmp_path / "good.toml"
    good.write_text("[slicer]\nbridge_speed = 20\nbridge_fan_percent = 90\n")
    assert load_settings(good).slicer.bridge_speed == 20
    assert load_settings(good).slicer.bridge_fan_percent == 90
    bad = tmp_path / "bad.toml"
    bad.write_text("[slicer]\nbridge_speeed = 20\n")
    with pytest.raises(ConfigError, match=r"slicer\.bridge_speeed.*unknown key"):
        load_settings(bad)


@pytest.mark.parametrize(("free_ends", "expected"), [(False, 90.0), (True, 0.0)])
def test_direction_prefers_anchored_ends_then_the_shortest_span(
    free_ends: bool,
    expected: float,
) -> None:
    # A 30 x 12 gap with 2 mm of anchor around it: held all round, the strands cross the
    # 12 mm side; with the long sides open (a tunnel), they must cross the 30 mm one.
    area = box(-17, -8, 17, 8)
    gap = box(-15, -8, 15, 8) if free_ends else box(-15, -6, 15, 6)
    supported = area.difference(gap)
    assert bridge_angle(area, gap, supported) == pytest.approx(expected)


def test_a_flared_wall_is_no_bridge(tmp_path: Path) -> None:
    # Flaring out at 45 degrees, every layer overhangs the one below by a layer height only: a
    # sliver the perimeters carry, not a bridge.
    corners = np.array([(x, y) for x in (-1, 1) for y in (-1, 1)], dtype=float)
    points = np.vstack(
        [
            np.column_stack([corners * 5, np.zeros(4)]),
            np.column_stack([corners * 10, np.full(4, 5.0)]),
        ]
    )
    out, text = _slice(tmp_path, trimesh.convex.convex_hull(points))
    assert ";TYPE:bridge" not in text
    assert check_gcode(out, GENERIC, PLA).layers == 25


def _pocketed_plate() -> trimesh.Trimesh:
    """20 x 20 x 3 mm with a 10 x 10 x 0.4 mm pocket in its underside (3DBenchy's lettering):
    the layer at z 0.6 bridges the pocket and anchors on the solid bottom around it."""
    return _box(20, 20, 3, (0, 0, 1.5)).difference(_box(10, 10, 0.6, (0, 0, 0.1)))


def test_bridge_anchors_on_a_solid_layer_are_not_laid_twice(tmp_path: Path) -> None:
    # A round strand of nozzle diameter is 0.126 mm² of plastic: over air it hangs as a
    # cylinder, but where it rests on the layer below it is squashed into a 0.2 mm layer at
    # 0.4 mm pitch (room for 0.08 mm²), half as much again as there is room for. 3DBenchy's
    # bottom at z 0.6 was 35 % laid twice (PrusaSlicer 1.4 %) by the anchors around its
    # lettering.
    params = _params()
    _, text = _slice(tmp_path, _pocketed_plate(), params)
    strokes = [s for s in _walk(text) if abs(s.z - 0.6) < 1e-6 and s.length > 1e-6]
    assert any(s.role == "bridge" for s in strokes)
    pocket = box(CENTRE - 5, CENTRE - 5, CENTRE + 5, CENTRE + 5)
    # The anchors' band on the solid bottom: clear of the pocket's edge and of the strands'
    # turns at the anchors' far end (2 mm out).
    band = pocket.buffer(1.5, join_style="mitre").difference(pocket.buffer(0.3, join_style="mitre"))
    lines = shapely.linestrings([[s.a, s.b] for s in strokes])
    inside = shapely.length(shapely.intersection(lines, band))
    per_mm = np.array([s.e / s.length for s in strokes]) * FILAMENT_AREA
    fill = float(np.sum(inside * per_mm)) / (band.area * 0.2)
    assert fill == pytest.approx(1.0, abs=0.1), f"the anchors hold {fill:.2f}× the layer's room"
    # Over the pocket the strands keep the round strand's flow.
    over_air = [
        s
        for s in strokes
        if s.role == "bridge" and s.length > 5 and pocket.contains(shapely.linestrings([s.a, s.b]))
    ]
    assert over_air
    for s in over_air:
        assert s.e / s.length == pytest.approx(params.bridge_e_per_mm, rel=1e-3)


def test_a_gap_an_ordinary_line_spans_is_no_bridge(tmp_path: Path) -> None:
    # Letters 1.2 mm wide recessed 0.4 mm into a bottom (3DBenchy's): ordinary solid lines
    # cross them; round strands there lay most of their plastic on the edges (8 % of the
    # layer laid twice at 3DBenchy's z 0.6 once the anchors were right).
    plate = _box(20, 20, 3, (0, 0, 1.5))
    for x in (-4, 0, 4):
        plate = plate.difference(_box(1.2, 12, 0.6, (x, 0, 0.1)))
    _, text = _slice(tmp_path, plate)
    assert ";TYPE:bridge" not in text
    layer = _layers(text)[2]
    over = [m for m in layer if abs((m.x0 + m.x1) / 2 - CENTRE) < 0.3 and m.role == "solid"]
    assert over
