"""The Slicer agent: a mesh in, checked G-code and a layer picture out."""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path
from typing import Any

from printforge.agents.base import Agent, AgentContext
from printforge.gcode.analysis import Analysed, gcode_artifact
from printforge.gcode.gate import check_gcode
from printforge.models.artifact import GcodeArtifact, MeshArtifact
from printforge.runtime.health import HealthRecord, HealthState
from printforge.runtime.workers import run_cpu
from printforge.settings import Settings
from printforge.slicing.engine import pick_engine
from printforge.slicing.params import resolve_params

__all__ = ["SlicerAgent"]

log = logging.getLogger(__name__)

# One semaphore per event loop (normally one per process): slicers are CPU-bound and a small
# machine gains nothing from running more of them at once. Keyed by loop because an asyncio
# semaphore may only ever be awaited from one loop.
_SEMAPHORES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _semaphore(size: int) -> asyncio.Semaphore:
    per_size = _SEMAPHORES.setdefault(asyncio.get_running_loop(), {})
    if size not in per_size:
        per_size[size] = asyncio.Semaphore(size)
    return per_size[size]


class SlicerAgent(Agent[MeshArtifact | Path, GcodeArtifact]):
    """A mesh CAD made, or a user's model file as it is (`printforge slice`)."""

    name = "slicer"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, inp: MeshArtifact | Path, ctx: AgentContext) -> GcodeArtifact:
        from printforge.slicing.preview import render_layers

        model = inp if isinstance(inp, Path) else inp.path
        cfg = self.settings.slicer
        overrides = ctx.request.slice
        params = resolve_params(cfg, ctx.profile, ctx.material, overrides)
        engine = pick_engine(overrides.engine, cfg)
        out = ctx.job_dir / "model.gcode"
        png = ctx.job_dir / "layers.png"
        await asyncio.to_thread(ctx.job_dir.mkdir, parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()

        def progress(fraction: float, message: str) -> None:
            # Engines report from worker threads; the context's callback belongs to the loop.
            loop.call_soon_threadsafe(ctx.progress, 0.05 + 0.75 * fraction, message, None)

        ctx.progress(0.0, f"waiting for a slicer slot ({engine.name})", None)
        async with _semaphore(cfg.max_concurrent):
            ctx.progress(0.05, f"slicing with {engine.name}", None)
            result = await engine.slice(model, out, params, ctx.profile, ctx.material, progress)
            ctx.progress(0.85, "checking the G-code", None)
            analysis = await run_cpu(check_gcode, out, ctx.profile, ctx.material)
            ctx.progress(0.95, "drawing layers", None)
            preview = await run_cpu(render_layers, out, png, ctx.profile)
        artifact = await asyncio.to_thread(gcode_artifact, out, analysis, engine.name, preview)
        ctx.analysed = Analysed(artifact.sha256, ctx.profile, analysis)
        report: dict[str, Any] = {
            "engine": engine.name,
            "wall_s": result.wall_s,
            "layers": analysis.layers,
            "lines": analysis.lines,
            "estimated_time_s": analysis.estimated_time_s,
            "engine_estimate_s": result.engine_estimate_s,
            "filament_mm": analysis.filament_mm,
            "filament_g": analysis.filament_g,
            "max_hotend_temp": analysis.max_hotend_temp,
            "max_bed_temp": analysis.max_bed_temp,
            "bounds_min": analysis.extrude_min,
            "bounds_max": analysis.extrude_max,
            "settings": params.model_dump(),
        }
        ctx.report["slicer"] = report
        ctx.progress(
            1.0, f"{analysis.layers} layers, {analysis.estimated_time_s / 60:.0f} min", None
        )
        log.info("sliced %s with %s: %d layers", model.name, engine.name, analysis.layers)
        return artifact

    async def health(self) -> HealthRecord | None:
        """Which engines are installed; unhealthy when the configured one is missing."""
        from printforge.slicing.engine import ENGINES, make_engine

        cfg = self.settings.slicer
        installed = await asyncio.to_thread(
            lambda: {name: make_engine(name, cfg).available() for name in ENGINES}
        )
        wanted = cfg.engine
        ok = wanted == "auto" or installed.get(wanted, False)
        return HealthRecord(
            name=self.name,
            state=HealthState.HEALTHY if ok else HealthState.UNHEALTHY,
            last_error=None if ok else f"configured slicer engine {wanted!r} is not installed",
            detail={"engine": wanted, "installed": installed},
        )
