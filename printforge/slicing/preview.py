"""A PNG of the toolpaths: chosen layers side by side, or every layer stacked from above."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from printforge.gcode.layers import HEIGHT_DECIMALS, is_extruding
from printforge.gcode.reader import Reader
from printforge.gcode.source import read_gcode_text, split_lines
from printforge.gcode.syntax import parse_line
from printforge.models.printer import PrinterProfile

__all__ = ["extrusion_segments", "layer_paths", "render_layers"]

TILE = 360
MARGIN = 12


# Single layers are drawn in blue with their bridges in orange; the stacked view ramps by
# height instead.
LAYER_COLOUR = (20, 90, 200)
BRIDGE_COLOUR = (235, 120, 20)


def extrusion_segments(text: str) -> dict[float, np.ndarray]:
    """Extruding XY segments per layer z: {z: (n, 4) array of x0 y0 x1 y1}."""
    return {z: segs for z, (segs, _) in _segments(text).items()}


def layer_paths(gcode: Path) -> tuple[list[float], list[np.ndarray]]:
    """Every layer's extruding XY segments, for the dashboard's layer view: (heights, per layer
    an (n, 4) float32 array of x0 y0 x1 y1). Layer k (1-based, as printers report it) is index
    k - 1: the layer model's numbering, distinct extruding heights from the bottom."""
    per_layer = extrusion_segments(read_gcode_text(gcode))
    return list(per_layer), [segs.astype(np.float32) for segs in per_layer.values()]


def _segments(text: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per layer z, the extruding segments and which of them are bridges: the built-in
    slicer's `;TYPE:bridge` and PrusaSlicer's `;TYPE:Bridge infill` feature comments.

    The moves are the reader's (offsets, relative moves and arcs as chords); a segment is
    extruding by the layer model's rule, and keyed by its end height as layers are."""
    reader = Reader(PrinterProfile(name="preview"))
    prev = reader.state.machine()
    bridge = False
    segs: dict[float, list[tuple[float, float, float, float]]] = {}
    kinds: dict[float, list[bool]] = {}
    for number, raw in enumerate(split_lines(text), 1):
        if raw.startswith(";TYPE:"):
            bridge = "bridge" in raw.lower()
            continue
        line = parse_line(raw, number)
        if line is None:
            continue
        for point in reader.step(line).points:
            if is_extruding(prev, point):
                key = round(point[2], HEIGHT_DECIMALS)
                segs.setdefault(key, []).append((prev[0], prev[1], point[0], point[1]))
                kinds.setdefault(key, []).append(bridge)
            prev = point
    return {k: (np.asarray(v), np.asarray(kinds[k], dtype=bool)) for k, v in sorted(segs.items())}


def render_layers(
    gcode: Path, png: Path, profile: PrinterProfile, layers: list[int | None] | None = None
) -> Path:
    """Draw `layers` as tiles and save a PNG.

    Args:
        layers: indices (negative counts from the top; None draws every layer stacked). By
            default the first layer, the middle, the top and all layers stacked.
    """
    typed = _segments(read_gcode_text(gcode))
    per_layer = {z: segs for z, (segs, _) in typed.items()}
    zs = list(per_layer)
    if not zs:
        Image.new("RGB", (TILE, TILE), "white").save(png)
        return png
    all_segs = np.concatenate(list(per_layer.values()))
    lo = np.minimum(all_segs[:, [0, 1]].min(axis=0), all_segs[:, [2, 3]].min(axis=0))
    hi = np.maximum(all_segs[:, [0, 1]].max(axis=0), all_segs[:, [2, 3]].max(axis=0))
    if layers is None:
        picks: list[int | None] = [0, len(zs) // 2, len(zs) - 1, None]
    else:
        picks = [None if i is None else i if i >= 0 else len(zs) + i for i in layers]
        picks = [i for i in picks if i is None or 0 <= i < len(zs)] or [0]
    cols = min(len(picks), 4)
    rows = math.ceil(len(picks) / cols)
    img = Image.new("RGB", (cols * TILE, rows * (TILE + 18)), "white")
    draw = ImageDraw.Draw(img)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-3))
    scale = (TILE - 2 * MARGIN) / span
    lo = (lo + hi) / 2 - span / 2  # centre the part in its tile
    for n, pick in enumerate(picks):
        ox, oy = (n % cols) * TILE, (n // cols) * (TILE + 18)
        if pick is None:
            title = f"all {len(zs)} layers"
            for k, z in enumerate(zs):
                _draw(draw, per_layer[z], lo, scale, ox, oy, _ramp(k / max(len(zs) - 1, 1)))
        else:
            title = f"layer {pick + 1}/{len(zs)}  z={zs[pick]:.2f}"
            segs, bridge = typed[zs[pick]]
            _draw(draw, segs[~bridge], lo, scale, ox, oy, LAYER_COLOUR)
            _draw(draw, segs[bridge], lo, scale, ox, oy, BRIDGE_COLOUR)
        draw.text((ox + MARGIN, oy + TILE), title, fill=(0, 0, 0))
        if pick is not None and typed[zs[pick]][1].any():
            after = ox + MARGIN + draw.textlength(title) + 8
            draw.text((after, oy + TILE), "bridges", fill=BRIDGE_COLOUR)
    img.save(png)
    return png


def _draw(
    draw: ImageDraw.ImageDraw,
    segs: np.ndarray,
    lo: np.ndarray,
    scale: float,
    ox: int,
    oy: int,
    colour: tuple[int, int, int],
) -> None:
    px = (segs[:, [0, 2]] - lo[0]) * scale + ox + MARGIN
    py = oy + TILE - MARGIN - (segs[:, [1, 3]] - lo[1]) * scale  # y up
    for x0, x1, y0, y1 in zip(px[:, 0], px[:, 1], py[:, 0], py[:, 1], strict=True):
        draw.line((x0, y0, x1, y1), fill=colour, width=1)


def _ramp(t: float) -> tuple[int, int, int]:
    return (int(40 + 200 * t), int(90 + 60 * (1 - abs(2 * t - 1))), int(220 - 180 * t))
