"""The one definition of a layer.

A layer is a distinct height, rounded to 1 µm, at which the file extrudes: an XY move that
pushes filament (E grows). Travel moves, z-hops, lifts and retractions never make one. That is
PrusaSlicer's rule for its own layer count, so the figure matches what slicers report, and it is
the only definition that survives a z-hop: "each new highest Z starts a layer" (which the Marlin
driver's progress used to count) takes every hop for a layer, or misses layers when a hop is as
high as the next layer.

Each command belongs to the layer of the last extruding move at or before it; commands before
the first extrusion are in layer 0. Layers are numbered from 1 by height, so a file printed
object by object (sequential printing) reports the layer its current height is, not how many
layer changes have gone by.

Known gap: spiral vase files extrude at a new height on every move, so each move is a layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["HEIGHT_DECIMALS", "extruding", "is_extruding", "layer_numbers", "layers_of"]

HEIGHT_DECIMALS = 3


def is_extruding(prev: Sequence[float], point: Sequence[float]) -> bool:
    """Whether the move from `prev` to `point` (X Y Z E) extrudes: E grows along an XY move."""
    return point[3] > prev[3] and (point[0] != prev[0] or point[1] != prev[1])


def extruding(d: np.ndarray) -> np.ndarray:
    """Which moves extrude, from their (n, 4) X Y Z E deltas: E grows along an XY move."""
    pushing: np.ndarray = (d[:, 3] > 0) & ((d[:, 0] != 0) | (d[:, 1] != 0))
    return pushing


def layers_of(extrusion_z: np.ndarray) -> np.ndarray:
    """The distinct layer heights, sorted, from the end heights of the extruding moves."""
    return np.unique(np.round(extrusion_z, HEIGHT_DECIMALS))


def layer_numbers(current_z: Iterable[float]) -> tuple[list[int], int]:
    """Per command, its layer (1-based, 0 before the first extrusion) and the layer count.

    Args:
        current_z: per command, the height of the last extruding move at or before it (NaN
            before the first).
    """
    values = list(current_z)
    heights = sorted({round(z, HEIGHT_DECIMALS) for z in values if not math.isnan(z)})
    rank = {h: i + 1 for i, h in enumerate(heights)}
    return [0 if math.isnan(z) else rank[round(z, HEIGHT_DECIMALS)] for z in values], len(heights)
