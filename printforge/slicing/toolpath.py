"""From cross-sections to ordered toolpaths: perimeters, skins, infill, skirt, brim, support."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import substring

from printforge.slicing.bridges import Bridge, find_bridges, split_at_support
from printforge.slicing.gapfill import GapLine, centre_lines, skin_gaps
from printforge.slicing.infill import fill_lines
from printforge.slicing.objects import PlateObject, match_islands
from printforge.slicing.params import SliceParams

__all__ = ["Layer", "Path", "layer_heights", "plan_layers"]

# How far top and bottom skins extend under/over the sparse infill next to them, and how
# narrow (in line spacings) a sparse area may be before it is printed solid instead.
SKIN_MARGIN_MM = 1.0
NARROW_SPARSE_SPACINGS = 4.0
# Gaps between perimeters narrower than this are left alone, as the flow would be too small.
GAP_MIN_WIDTH_MM = 0.2
# Infill areas narrower than this many line spacings get one gap-fill line along their middle
# (as wide as the area) rather than solid lines, which need a spacing of room to exist at all
# and cross a narrow strip as short diagonals.
NARROW_FILL_SPACINGS = 2.0
THIN_WALL_MIN_AREA_MM2 = 0.05
# A core (see `_cores`) gets a loop along it when perimeter² > this × area: a strip about
# six times as long as it is wide (a square gives 16).
CORE_MIN_ASPECT = 32.0
# A slope's solid ring follows the offsets of several layers' outlines, each with every
# vertex of the mesh's cut; fill lines clip against it, so it is simplified this far first.
SHELL_SIMPLIFY_MM = 0.02
# A layer whose gap-fill strips are more than this share top face is a thin wall's rim.
RIM_SHARE = 0.5

_FILLS = ("bridge", "solid", "infill")
ROLES = (
    "skirt",
    "brim",
    "support",
    "perimeter",
    "external",
    "overhang",
    "gap",
    "bridge",
    "solid",
    "top",
    "infill",
)


@dataclass(slots=True)
class Path:
    role: str
    points: np.ndarray  # (n, 2); a closed loop repeats its first point at the end
    # The travel here stays inside the infill area, crossing no wall: no retraction needed.
    travel_inside: bool = False
    # Line width at each point (gap fill follows its strip); None: the layer's width.
    widths: np.ndarray | None = None
    # The plate object (`objects.PlateObject.index`) the path belongs to; -1: none (skirt,
    # brim, support), printed outside every object's label.
    obj: int = -1


@dataclass(slots=True)
class Layer:
    index: int
    z: float
    height: float
    width: float
    paths: list[Path] = field(default_factory=list)


def layer_heights(height: float, params: SliceParams) -> tuple[np.ndarray, np.ndarray]:
    """Top z of every layer and its thickness.

    A layer exists when its middle, where it is cut, is still inside the part: the rule
    PrusaSlicer follows too, so both give the same layer count (a 20 mm part at 0.25 mm ends
    at 19.95 mm; at 20.1 mm with 0.2 mm layers it ends at 20.2 mm).
    """
    first = params.first_layer_height
    h = params.layer_height
    n = 1 + max(0, math.floor((height - first + h / 2) / h + 1e-6))
    tops = first + np.arange(n) * h
    thick = np.full(n, h)
    thick[0] = first
    return tops, thick


def plan_layers(
    regions: list[MultiPolygon],
    tops: np.ndarray,
    thick: np.ndarray,
    params: SliceParams,
    bed: tuple[float, float, float, float] | None = None,
    objects: list[PlateObject] | None = None,
) -> list[Layer]:
    """Ordered toolpaths per layer. `regions[i]` is the part's cut at layer i's mid-height.
    With `objects`, each island's paths carry the index of the object it belongs to."""
    # GEOS reports degenerate slivers while offsetting through numpy's error state; they
    # simply come out empty.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _plan(regions, tops, thick, params, bed, objects)


def _plan(
    regions: list[MultiPolygon],
    tops: np.ndarray,
    thick: np.ndarray,
    params: SliceParams,
    bed: tuple[float, float, float, float] | None,
    objects: list[PlateObject] | None = None,
) -> list[Layer]:
    n = len(regions)
    widths = np.full(n, params.extrusion_width)
    widths[0] = params.first_layer_width
    spacings = np.array([params.spacing(w, t) for w, t in zip(widths, thick, strict=True)])
    per = params.perimeters
    regions_arr = np.array(regions, dtype=object)

    # Inward offsets, vectorised over layers: loop k's centre-line and the area left inside.
    loops_by_k = []
    for k in range(per):
        dist = -(widths / 2 + k * spacings)
        loops = shapely.buffer(regions_arr, dist, join_style="mitre", mitre_limit=3.0)
        # A loop around a strip thinner than a spacing would lay its two sides over each
        # other (an 0.8 mm stroke's outer loop: 0.1 mm of overlap); such strips are left to
        # gap fill, which lays them once, as wide as they are.
        loops = _opening(loops, spacings / 2)
        loops_by_k.append(loops)
    inner = shapely.buffer(
        regions_arr,
        -(widths / 2 + (per - 1) * spacings + spacings / 2),
        join_style="mitre",
        mitre_limit=3.0,
    )

    solid = _solid_areas(regions_arr, inner, params, spacings)
    narrow = _narrow(inner, spacings)
    cores, core_rest = _cores(inner, narrow, spacings)
    between = shapely.union(_gaps(regions_arr, loops_by_k, widths, spacings), narrow)
    between = shapely.union(between, core_rest)
    gap_lines = _gap_lines(between, _thin_walls(regions_arr, loops_by_k[0], widths), thick, widths)
    # Sparse lines reach a little past `inner` into the perimeters; travel that far is still
    # inside the walls.
    travel_area = shapely.buffer(inner, 0.75 * spacings, join_style="mitre")
    # Bridges take their area (gap plus anchors) out of both solid and sparse infill.
    bridges = find_bridges(regions_arr, inner, solid, widths)
    bridged = [k for k in range(n) if bridges[k]]
    sparse = shapely.difference(inner, solid)
    taken = shapely.union(narrow, cores)
    has_narrow = ~shapely.is_empty(taken)
    if has_narrow.any():
        solid = solid.copy()
        solid[has_narrow] = shapely.difference(solid[has_narrow], taken[has_narrow])
        sparse[has_narrow] = shapely.difference(sparse[has_narrow], taken[has_narrow])
    if bridged:
        taken_by = np.array(
            [shapely.union_all([b.area for b in bridges[k]]) for k in bridged], dtype=object
        )
        solid = solid.copy()  # at 100 % infill it is `inner` itself
        solid[bridged] = shapely.difference(solid[bridged], taken_by)
        sparse[bridged] = shapely.difference(sparse[bridged], taken_by)
    support = _support_areas(regions_arr, tops, thick, params, widths) if params.supports else None
    # What of each layer's infill area nothing above covers: its skin shows there.
    open_top = shapely.difference(inner, _shift(regions_arr, 1))
    # And of the whole layer: where most of a layer's gap-fill strips are top face (the rim
    # of a wall too thin for infill, not the edge of a slope's step), their corners show.
    top_face = shapely.difference(regions_arr, _shift(regions_arr, 1))
    strip_area = shapely.area(between)
    rims = (strip_area > 0) & (
        shapely.area(shapely.intersection(between, top_face)) > RIM_SHARE * strip_area
    )

    layers = []
    pos = np.array([0.0, 0.0])
    for i in range(n):
        layer = Layer(index=i, z=float(tops[i]), height=float(thick[i]), width=float(widths[i]))
        s = float(spacings[i])
        if i == 0:
            layer.paths += _skirt_and_brim(regions[0], params, float(widths[0]), s, bed)
        if layer.paths:
            pos = layer.paths[-1].points[-1]
        if support is not None and not support[i].is_empty:
            density = params.support_density / 100
            layer.paths += [
                Path("support", ln)
                for ln in fill_lines(
                    _multi(support[i]), s / density, "rectilinear", 0.0, tops[i], pos
                )
            ]
            if layer.paths:
                pos = layer.paths[-1].points[-1]
        loops = [_rings(loops_by_k[k][i]) for k in range(per)]
        core_loops = _rings(shapely.buffer(cores[i], -s / 2, join_style="mitre", mitre_limit=3.0))
        # What holds this layer's walls up: the layer below grown by half a line width. A
        # perimeter outside it has more than half its width over air (PrusaSlicer's rule).
        below = None
        if i > 0:
            below = regions[i - 1].buffer(float(widths[i]) / 2, join_style="mitre")
            if shapely.covered_by(loops_by_k[0][i], below):
                below = None  # every loop lies inside the outer one: no overhang this layer
        angle = params.infill_angle if i % 2 == 0 else -params.infill_angle
        islands = list(_multi(regions[i]).geoms)
        owners = match_islands(objects, islands) if objects else [-1] * len(islands)
        alone = len(islands) == 1
        while islands:
            # Nearest island next, so the nozzle does not criss-cross the layer.
            j = int(np.argmin([island.exterior.distance(Point(pos)) for island in islands]))
            island = islands.pop(j)
            owner = owners.pop(j)
            paths = _island_paths(
                island,
                loops,
                i,
                params,
                s,
                angle,
                float(tops[i]),
                solid[i],
                sparse[i],
                pos,
                alone,
                gap_lines[i],
                bridges[i],
                below,
                regions[i - 1] if bridges[i] else None,
                float(thick[i]),
                open_top[i],
                between[i] if rims[i] else None,
                top_face[i],
                core_loops,
            )
            _mark_inside_travel(paths, travel_area[i])
            for path in paths:
                path.obj = owner
            if paths:
                layer.paths += paths
                pos = paths[-1].points[-1]
        layers.append(layer)
    return layers


def _island_paths(
    island: Polygon,
    loops: list[list[tuple[np.ndarray, Polygon]]],
    i: int,
    params: SliceParams,
    s: float,
    angle: float,
    z: float,
    solid: shapely.Geometry,
    sparse: shapely.Geometry,
    pos: np.ndarray,
    alone: bool = False,
    gap: list[GapLine] | None = None,
    bridges: list[Bridge] | None = None,
    below: shapely.Geometry | None = None,
    support: shapely.Geometry | None = None,
    height: float = 0.0,
    open_top: shapely.Geometry | None = None,
    strips: shapely.Geometry | None = None,
    top_face: shapely.Geometry | None = None,
    core_loops: list[tuple[np.ndarray, Polygon]] | None = None,
) -> list[Path]:
    # Inner perimeters first, the visible external one last, then this island's infill, so the
    # nozzle finishes one island before travelling to the next.
    paths: list[Path] = []
    shapely.prepare(island)
    for k in reversed(range(len(loops))):
        role = "external" if k == 0 else "perimeter"
        for ring, _ in loops[k]:
            if shapely.contains_xy(island, ring[0, 0], ring[0, 1]):
                if below is None:
                    paths.append(Path(role, ring))
                else:
                    paths += _split_overhang(ring, role, below, params.extrusion_width)
    # A wall's core too narrow for infill lines gets a loop along it, like one more perimeter
    # (what is left in its middle is gap fill), where lines at the infill angle would cross
    # it as runs of short diagonals.
    for ring, _ in core_loops or ():
        if alone or shapely.contains_xy(island, ring[0, 0], ring[0, 1]):
            paths.append(Path("solid", ring))
    if gap:
        mine = gap if alone else [g for g in gap if shapely.contains_xy(island, *g.points[0])]
        start = paths[-1].points[-1] if paths else pos
        paths += _order_gap_lines(mine, start)
        if mine and strips is not None and top_face is not None and not top_face.is_empty:
            # On a top surface, what the gap lines' round corners leave in their strips' mitred
            # corners (a speck at each corner of a thin wall's rim).
            rest = skin_gaps(
                [g.points for g in mine],
                strips if alone else shapely.intersection(strips, island),
                top_face,
                s,
                height,
                2 * params.extrusion_width,
                widths=[g.widths for g in mine],
            )
            if rest:
                paths += _order_gap_lines(rest, paths[-1].points[-1])
    if paths:
        pos = paths[-1].points[-1]
    # Bridges right after the walls they anchor on, each in its own direction, every layer the
    # same way (no alternation): the strands must cross the gap, not run along it.
    d = params.bridge_diameter
    for bridge in bridges or ():
        if not alone:
            x, y = bridge.area.representative_point().coords[0]
            if not shapely.contains_xy(island, x, y):
                continue
        area = _multi(bridge.area.buffer(-d / 2, join_style="mitre"))
        strands = fill_lines(area, d, "rectilinear", bridge.angle, z, pos)
        paths += (
            _anchored(strands, support, d, height)
            if support is not None
            else [Path("bridge", ln) for ln in strands]
        )
        if paths:
            pos = paths[-1].points[-1]
    # A layer's only island owns all of its solid and sparse areas: no need to cut them out.
    mine_solid = _multi(solid if alone else shapely.intersection(solid, island))
    # `infill_overlap` brings fill lines closer to the inner perimeter than a spacing, so they
    # bond with it and leave no pinholes between their ends and the wall.
    reach = params.infill_overlap / 100 * s
    if not mine_solid.is_empty:
        role = "solid"
        lines = fill_lines(
            _multi(mine_solid.buffer(-s / 2 + reach, join_style="mitre")),
            s,
            "rectilinear",
            angle,
            z,
            pos,
            reach=reach,
        )
        paths += [Path(role, ln) for ln in lines]
        if paths:
            pos = paths[-1].points[-1]
        if open_top is not None and not open_top.is_empty:
            wedges = skin_gaps(lines, mine_solid, open_top, s, height, 2 * params.extrusion_width)
            if wedges:
                paths += _order_gap_lines(wedges, pos)
                pos = paths[-1].points[-1]
    density = params.infill_percent / 100
    if density > 0:
        mine_sparse = _multi(sparse if alone else shapely.intersection(sparse, island))
        if not mine_sparse.is_empty:
            # Like solid lines: links a spacing from the walls (they used to run 0.1 mm from
            # the inner perimeter's centre, three quarters of each link laid twice), free
            # ends into them by the overlap.
            area = _multi(mine_sparse.buffer(-s / 2, join_style="mitre"))
            pattern = params.infill_pattern
            dist = s / density * (2 if pattern == "grid" else 1)
            paths += [
                Path("infill", ln)
                for ln in fill_lines(area, dist, pattern, angle, z, pos, reach=reach)
            ]
    return paths


def _anchored(
    strands: list[np.ndarray], support: shapely.Geometry, d: float, h: float
) -> list[Path]:
    """Bridge strands cut where they leave the layer below: over air round strands of bridge
    flow, on their anchors lines as wide as the strands' pitch `d` in a layer `h` high (the
    flow of a solid line at that spacing), so the anchors are laid once."""
    shapely.prepare(support)
    flat = d + h * (1 - math.pi / 4)
    paths: list[Path] = []
    for ln in strands:
        for pts, air in split_at_support(ln, support):
            paths.append(Path("bridge", pts, widths=None if air else np.full(len(pts), flat)))
    return paths


def _split_overhang(ring: np.ndarray, role: str, below: shapely.Geometry, w: float) -> list[Path]:
    """A perimeter loop as runs in order along it: over `below` in `role`, over air as
    "overhang" (slower, fan up). A run over air shorter than a line width stays in `role`:
    a blip of speed and fan changes nothing but the finish."""
    line = shapely.linestrings(ring)
    if shapely.covered_by(line, below):
        return [Path(role, ring)]
    edge = shapely.intersection(line, shapely.boundary(below))
    cuts = shapely.line_locate_point(line, shapely.get_parts(shapely.extract_unique_points(edge)))
    total = line.length
    stops = np.unique(np.concatenate([[0.0, total], np.clip(cuts, 0.0, total)]))
    stops = stops[np.concatenate([[True], np.diff(stops) > 1e-6])]
    runs: list[tuple[str, np.ndarray]] = []
    for a, b in itertools.pairwise(stops):
        mid = shapely.line_interpolate_point(line, (a + b) / 2)
        air = b - a >= w and not shapely.covered_by(mid, below)
        kind = "overhang" if air else role
        piece = np.asarray(substring(line, a, b).coords)
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, np.vstack([runs[-1][1], piece[1:]]))
        else:
            runs.append((kind, piece))
    return [Path(kind, pts) for kind, pts in runs if len(pts) >= 2]


def _opening(geoms: np.ndarray, r: np.ndarray | float) -> np.ndarray:
    """`geoms` without the parts narrower than 2r."""
    shrunk = shapely.buffer(geoms, -r, join_style="mitre", mitre_limit=3.0)
    return shapely.buffer(shrunk, r, join_style="mitre", mitre_limit=3.0)


def _narrow(inner: np.ndarray, spacings: np.ndarray) -> np.ndarray:
    """Parts of the infill area narrower than NARROW_FILL_SPACINGS spacings (a 2 mm wall's
    core between its perimeters): solid lines need a spacing of room and would leave them
    empty or cross them as short diagonals, so they get gap fill."""
    opened = _opening(inner, NARROW_FILL_SPACINGS * spacings / 2)
    out = np.empty(len(inner), dtype=object)
    out[:] = [Polygon()] * len(inner)
    todo = shapely.area(inner) - shapely.area(opened) > GAP_MIN_WIDTH_MM**2
    if todo.any():
        rest = shapely.difference(inner[todo], opened[todo])
        # The corners a mitred opening does not restore are slivers, not strips.
        out[todo] = _opening(rest, GAP_MIN_WIDTH_MM / 4)
    return out


def _cores(
    inner: np.ndarray, narrow: np.ndarray, spacings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Parts of the infill area too wide for one gap-fill line but narrower than
    NARROW_SPARSE_SPACINGS spacings (a 3 mm wall's 1.3 mm core), and what a loop a half
    spacing inside each leaves in its middle (for gap fill).

    Solid lines at the infill angle cross such a core as runs of short diagonals; a loop
    along it (PrusaSlicer lays these along the core, or concentric) prints it in long moves.
    """
    r = NARROW_SPARSE_SPACINGS * spacings / 2
    wide = _opening(inner, r)
    cores = np.empty(len(inner), dtype=object)
    cores[:] = [Polygon()] * len(inner)
    rest = cores.copy()
    todo = shapely.area(inner) - shapely.area(wide) > GAP_MIN_WIDTH_MM**2
    if not todo.any():
        return cores, rest
    band = shapely.difference(shapely.difference(inner[todo], wide[todo]), narrow[todo])
    # Only what is at least a loop's band wide: the mitred opening's corner slivers are not.
    band = _opening(band, spacings[todo] / 2)
    # Only long cores: a 3 mm pin's square core is no run of diagonals, and a loop around it
    # would leave its corners and middle open.
    parts, index = shapely.get_parts(band, return_index=True)
    long = shapely.length(parts) ** 2 > CORE_MIN_ASPECT * shapely.area(parts)
    band = np.empty(len(band), dtype=object)
    band[:] = [Polygon()] * len(band)
    if long.any():
        kept = np.flatnonzero(long)
        for j in np.unique(index[kept]):
            band[j] = shapely.union_all(parts[kept[index[kept] == j]])
    cores[todo] = band
    rest[todo] = _opening(
        shapely.buffer(band, -spacings[todo], join_style="mitre", mitre_limit=3.0),
        GAP_MIN_WIDTH_MM / 4,
    )
    return cores, rest


def _gap_lines(
    between: np.ndarray, thin: np.ndarray, thick: np.ndarray, widths: np.ndarray
) -> list[list[GapLine]]:
    """Each layer's gap-fill centre-lines: strips between perimeters or inside them, and walls
    too thin for a loop."""
    n = len(between)
    # Between the bands of two lines the line overlaps them as neighbouring lines overlap; a
    # thin wall's line is as wide as the wall.
    extra = np.concatenate([thick * (1 - math.pi / 4), np.zeros(n)])
    lo = np.full(2 * n, GAP_MIN_WIDTH_MM)
    hi = np.concatenate([2 * widths, 2 * widths])
    lines = centre_lines(np.concatenate([between, thin]), extra, lo, hi)
    return [lines[i] + lines[n + i] for i in range(n)]


def _order_gap_lines(lines: list[GapLine], start: np.ndarray) -> list[Path]:
    """Nearest end first, each line turned to start there, to keep travel short."""
    paths: list[Path] = []
    todo = list(lines)
    pos = np.asarray(start, dtype=float)
    while todo:
        d0 = [float(np.hypot(*(g.points[0] - pos))) for g in todo]
        d1 = [float(np.hypot(*(g.points[-1] - pos))) for g in todo]
        j0, j1 = int(np.argmin(d0)), int(np.argmin(d1))
        if d0[j0] <= d1[j1]:
            g = todo.pop(j0)
            paths.append(Path("gap", g.points, widths=g.widths))
        else:
            g = todo.pop(j1)
            paths.append(Path("gap", g.points[::-1], widths=g.widths[::-1]))
        pos = paths[-1].points[-1]
    return paths


def _thin_walls(regions: np.ndarray, outer_loops: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Parts of the outline too thin for even the outer loop (fins, thin ribs): without them
    the feature would not be printed at all. They get the gap-fill zigzag."""
    reach = shapely.buffer(outer_loops, widths / 2, join_style="mitre", mitre_limit=3.0)
    todo = shapely.area(regions) - shapely.area(reach) > THIN_WALL_MIN_AREA_MM2
    out = np.empty(len(regions), dtype=object)
    out[:] = [Polygon()] * len(regions)
    if todo.any():
        thin = shapely.difference(regions[todo], reach[todo])
        r = GAP_MIN_WIDTH_MM / 2
        thin = shapely.buffer(shapely.buffer(thin, -r, join_style="mitre"), r, join_style="mitre")
        # Keep whole strips only, not the corners a mitred offset cannot restore.
        parts = [[g for g in shapely.get_parts(t) if g.area > THIN_WALL_MIN_AREA_MM2] for t in thin]
        out[todo] = [shapely.union_all(p) if p else Polygon() for p in parts]
    return out


def _gaps(
    regions: np.ndarray, loops_by_k: list[np.ndarray], widths: np.ndarray, spacings: np.ndarray
) -> np.ndarray:
    """Strips inside the walls that no perimeter covers: where a wall is too thin for the next
    perimeter but too thick for the ones it has (a 1.2 mm wall with two perimeters).

    Loop k's band reaches s/2 inside its centre-line; loop k+1's band reaches s/2 outside its
    own. What lies inside the first and outside the second is uncovered. The last loop's inside
    is the infill's.
    """
    gaps = np.empty(len(regions), dtype=object)
    gaps[:] = [Polygon()] * len(regions)
    half = spacings / 2
    for k in range(len(loops_by_k) - 1):
        inside_k = shapely.buffer(
            regions, -(widths / 2 + k * spacings + half), join_style="mitre", mitre_limit=3.0
        )
        reach_next = shapely.buffer(loops_by_k[k + 1], half, join_style="mitre", mitre_limit=3.0)
        # Only layers where the areas differ can have a gap; skip the exact work elsewhere.
        todo = shapely.area(inside_k) - shapely.area(reach_next) > GAP_MIN_WIDTH_MM**2
        if todo.any():
            gaps[todo] = shapely.union(
                gaps[todo], shapely.difference(inside_k[todo], reach_next[todo])
            )
    r = GAP_MIN_WIDTH_MM / 2
    return shapely.buffer(shapely.buffer(gaps, -r, join_style="mitre"), r, join_style="mitre")


def _mark_inside_travel(paths: list[Path], inner: shapely.Geometry) -> None:
    """Flag infill paths reached by a travel that never leaves the infill area."""
    fills = [
        k for k in range(1, len(paths)) if paths[k].role in _FILLS and paths[k - 1].role in _FILLS
    ]
    if not fills or inner.is_empty:
        return
    moves = shapely.linestrings(
        np.stack(
            [
                np.array([paths[k - 1].points[-1] for k in fills]),
                np.array([paths[k].points[0] for k in fills]),
            ],
            axis=1,
        )
    )
    shapely.prepare(inner)
    for k, inside in zip(fills, shapely.covered_by(moves, inner).tolist(), strict=True):
        paths[k].travel_inside = inside


def _solid_areas(
    regions: np.ndarray, inner: np.ndarray, params: SliceParams, spacings: np.ndarray
) -> np.ndarray:
    """Where a layer must be solid: within `top_layers` under an open top or `bottom_layers`
    above an open bottom, or everything when infill is 100 %.

    Also where the infill area of a layer within that reach does not cover this one's
    (PrusaSlicer's "ensure vertical shell thickness"): under a shallow slope each layer's
    perimeters stand a little further in than the last's, and the sparse infill under them
    would be roofed by those perimeters alone, a shell thinner than `top_layers` layers. On a
    vertical wall the infill areas coincide and nothing is added.
    """
    if params.infill_percent >= 100:
        return inner
    held: dict[int, np.ndarray] = {}
    exposed = shapely.union(
        shapely.difference(inner, _covered(regions, params.top_layers, 1, held)),
        shapely.difference(inner, _covered(regions, params.bottom_layers, -1, held)),
    )
    held = {}
    shell = shapely.difference(
        inner,
        shapely.intersection(
            _covered(inner, params.top_layers, 1, held),
            _covered(inner, params.bottom_layers, -1, held),
        ),
    )
    # Slivers narrower than a line (the step of a sloped wall) are the perimeters' business.
    r = spacings / 2
    opened = shapely.buffer(
        shapely.buffer(exposed, -r, join_style="mitre"), r + SKIN_MARGIN_MM, join_style="mitre"
    )
    # Skins reach SKIN_MARGIN_MM into the sparse area so their edges rest on infill; a slope's
    # ring does not (it would double the ring, where the next layers' own ring lies anyway).
    opened = shapely.union(opened, shapely.simplify(_opening(shell, r), SHELL_SIMPLIFY_MM))
    solid = shapely.intersection(opened, inner)
    # A sparse area too narrow for sparse lines to hold anything (thin walls) is filled solid.
    sparse = shapely.difference(inner, solid)
    n = NARROW_SPARSE_SPACINGS * spacings / 2
    wide = shapely.buffer(shapely.buffer(sparse, -n, join_style="mitre"), n, join_style="mitre")
    narrow = shapely.difference(sparse, wide)
    return shapely.union(solid, narrow)


def _covered(
    areas: np.ndarray, count: int, step: int, runs: dict[int, np.ndarray] | None = None
) -> np.ndarray:
    """What all of the `count` layers above (step 1) or below (step -1) hold of `areas`; with
    a count of 0 a layer counts as covered by itself.

    Args:
        runs: `_run`'s cache for these `areas`, shared by the calls for above and below.
    """
    if count == 0:
        return areas
    run = _run(areas, count, {} if runs is None else runs)
    return _shift(run, 1 if step > 0 else -count)


def _run(areas: np.ndarray, length: int, cache: dict[int, np.ndarray]) -> np.ndarray:
    """At index j, what layers j … j + length − 1 all hold (nothing past either end).

    Built from runs of powers of two (each one intersection of two shorter runs), so four
    layers above and three below cost three overlays of the whole stack instead of five.
    """
    if length in cache:
        return cache[length]
    if length == 1:
        out = areas
    else:
        half = 1 << (length.bit_length() - 1)
        if half == length:
            half //= 2
        out = shapely.intersection(
            _run(areas, half, cache), _shift(_run(areas, length - half, cache), half)
        )
    cache[length] = out
    return out


def _shift(regions: np.ndarray, j: int) -> np.ndarray:
    """regions[i + j] at index i; nothing beyond either end."""
    n = len(regions)
    out = np.empty(n, dtype=object)
    out[:] = [Polygon()] * n
    if j > 0 and j < n:
        out[: n - j] = regions[j:]
    elif j < 0 and -j < n:
        out[-j:] = regions[: n + j]
    return out


def _support_areas(
    regions: np.ndarray,
    tops: np.ndarray,
    thick: np.ndarray,
    params: SliceParams,
    widths: np.ndarray,
) -> list[shapely.Geometry]:
    """Columns under overhangs steeper than `support_angle`, one layer of air under the part."""
    n = len(regions)
    grow = np.tan(np.radians(params.support_angle)) * thick
    supported = shapely.buffer(regions, grow)
    out: list[shapely.Geometry] = [Polygon()] * n
    carry: shapely.Geometry = Polygon()
    for i in range(n - 2, -1, -1):
        # `carry` holds overhangs from two or more layers up: the layer right under an overhang
        # stays empty so the support breaks away.
        out[i] = shapely.difference(carry, shapely.buffer(regions[i], widths[i]))
        overhang = shapely.difference(regions[i + 1], supported[i])
        carry = shapely.difference(shapely.union(carry, overhang), regions[i])
    r = widths / 2
    opened = shapely.buffer(shapely.buffer(np.array(out, dtype=object), -r), r)
    return list(opened)


def _skirt_and_brim(
    first: MultiPolygon,
    params: SliceParams,
    w: float,
    s: float,
    bed: tuple[float, float, float, float] | None = None,
) -> list[Path]:
    """Brim rings (cut to the bed) and skirt loops (left out when they would leave the bed:
    a skirt only primes the nozzle, it is not worth refusing a big part for)."""
    paths: list[Path] = []
    if first.is_empty:
        return paths
    area = shapely.box(*bed).buffer(-w / 2) if bed is not None else None
    if params.brim_width > 0:
        rings = max(1, round(params.brim_width / s))
        outline = _multi(shapely.union_all([Polygon(p.exterior) for p in first.geoms]))
        for k in reversed(range(rings)):
            grown = outline.buffer(w / 2 + k * s, join_style="round", quad_segs=4)
            for ring, _ in _rings(grown, exteriors_only=True):
                if area is None or area.contains(shapely.linestrings(ring)):
                    paths.append(Path("brim", ring))
                    continue
                inside = shapely.get_parts(shapely.intersection(shapely.linestrings(ring), area))
                paths += [
                    Path("brim", np.asarray(part.coords))
                    for part in inside
                    if part.geom_type == "LineString" and part.length > w
                ]
    if params.skirt_loops > 0:
        reach = params.skirt_distance + w / 2 + (params.brim_width or 0)
        hull = first.convex_hull
        for k in reversed(range(params.skirt_loops)):
            grown = hull.buffer(reach + k * s, join_style="round", quad_segs=4)
            if area is not None and not area.contains(grown):
                continue
            paths = [Path("skirt", r) for r, _ in _rings(grown, exteriors_only=True)] + paths
    return paths


def _multi(geom: shapely.Geometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom]) if not geom.is_empty else MultiPolygon()
    return MultiPolygon(
        [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    )


def _rings(
    geom: shapely.Geometry, exteriors_only: bool = False
) -> list[tuple[np.ndarray, Polygon]]:
    """Closed loops of a (multi)polygon: outlines counter-clockwise, holes clockwise, each
    starting at its rearmost point so the seams line up from layer to layer."""
    out = []
    for poly in _multi(geom).geoms:
        poly = orient(poly, 1.0)
        rings = [poly.exterior] if exteriors_only else [poly.exterior, *poly.interiors]
        for ring in rings:
            pts = np.asarray(ring.coords)[:-1]
            if len(pts) < 3:
                continue
            start = int(np.argmax(pts[:, 1] - 1e-3 * pts[:, 0]))
            pts = np.roll(pts, -start, axis=0)
            out.append((np.vstack([pts, pts[:1]]), poly))
    return out
