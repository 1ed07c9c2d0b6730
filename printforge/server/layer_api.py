"""`job.layer`: one layer's toolpaths of a job's G-code, for the dashboard's layer view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from printforge.models.printer import PrinterState
from printforge.runtime.errors import InputError
from printforge.runtime.workers import run_cpu
from printforge.server.rpc import CallContext, Endpoint, HandlerTable
from printforge.server.state import STATE_KEY
from printforge.server.views import artifact_file
from printforge.slicing.preview import layer_paths

__all__ = ["MAX_SEGMENTS", "register_layers"]

# A browser draws this many segments at once without stalling; a denser layer is thinned
# evenly and the answer says so (`"shown"` below `"segments_total"`).
MAX_SEGMENTS = 20_000
# States in which the printer streams a job's file; heating is its start G-code (layer 0).
_STREAMING = {PrinterState.HEATING, PrinterState.PRINTING, PrinterState.PAUSED}
# Parsed files kept per server: a farm watches a few prints at a time, not hundreds.
CACHE_SIZE = 4


class LayerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    layer: int | None = Field(
        None, ge=1, description="1-based; default: the layer printing now, else the top one"
    )


async def _layers(ctx: CallContext, job_id: str, path: Path, sha: str) -> Any:
    cache: dict[str, Any] = ctx.app[STATE_KEY].layer_cache
    key = f"{job_id}:{sha}"
    hit = cache.get(key)
    if hit is None:
        # Reading a whole file is CPU-bound Python: in the worker pool, off the printers' loop.
        heights, segments = await run_cpu(layer_paths, path)
        hit = (heights, segments, _bounds(segments))
        while len(cache) >= CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = hit
    return hit


def _bounds(segments: list[np.ndarray]) -> list[float]:
    """x0 y0 x1 y1 around every layer, so that the view keeps one scale from layer to layer."""
    if not segments:
        return [0.0, 0.0, 1.0, 1.0]
    xy = np.concatenate(segments).reshape(-1, 2)
    return [round(float(v), 2) for v in (*xy.min(axis=0), *xy.max(axis=0))]


def _printing_layer(ctx: CallContext, job_id: str, printer: str | None) -> int | None:
    """The layer the job's printer reports now, if it is printing this job."""
    if printer is None:
        return None
    for status in ctx.app[STATE_KEY].orch.printers.statuses():
        if status.id == printer and status.job_id == job_id and status.progress is not None:
            return status.progress.layer if status.state in _STREAMING else None
    return None


async def _handle_layer(ctx: CallContext, p: LayerParams) -> dict[str, Any]:
    state = ctx.app[STATE_KEY]
    job = await state.orch.get(p.job_id)
    path = artifact_file(job, state.orch.job_dir(job.id).parent, "gcode")
    if job.gcode is None or path is None:
        raise InputError(f"job {job.id} has no G-code yet", code="not_found")
    heights, segments, bounds = await _layers(ctx, job.id, path, job.gcode.sha256 or "")
    if not heights:
        raise InputError(f"the G-code of job {job.id} extrudes nothing: no layers to show")
    current = _printing_layer(ctx, job.id, job.printer)
    # Layer 0 is the start G-code before the first extrusion: show the first layer then.
    layer = p.layer or (max(current, 1) if current is not None else len(heights))
    if layer > len(heights):
        raise InputError(f"job {job.id} has {len(heights)} layers, not {layer}")
    segs = segments[layer - 1]
    total = len(segs)
    if total > MAX_SEGMENTS:
        segs = segs[:: -(-total // MAX_SEGMENTS)]
    return {
        "job_id": job.id,
        "layer": layer,
        "layers": len(heights),
        "z": heights[layer - 1],
        "current": current,
        "bounds": bounds,
        # x0 y0 x1 y1 per segment, flat: a quarter of the JSON of nested pairs
        # (float64 first: a float32 rounded to 0.01 prints as 96.77999877929688 in JSON)
        "segments": np.round(segs.astype(np.float64), 2).ravel().tolist(),
        "shown": len(segs),
        "segments_total": total,
    }


def register_layers(t: HandlerTable) -> None:
    t.register(
        Endpoint(
            "job.layer",
            _handle_layer,
            LayerParams,
            summary="One layer's extruding toolpaths of a job's G-code (the layer view)",
            http=("GET", "/api/jobs/{job_id}/layer"),
        )
    )
