#!/usr/bin/env python3
"""The virtual camera's cost: CPU per frame, and what a camera does to its event loop.

1. CPU time of one 640x480 frame of 3DBenchy (cut at half height), clean and with each failure
   and nuisance, rendered in this process; the budget is 100 ms. Beside it, a reference
   workload measured in the same run (numpy sorting 1 M floats), so a loaded machine shows as
   a ratio that stays put.
2. Event-loop lag while a client pulls the MJPEG stream as fast as the camera serves it at
   --fps: a task wakes every 5 ms and records how late it woke. Rendered in the worker process
   (how the camera runs) against rendered on the loop itself (InlineRenderer), in the same run.

Usage: python scripts/bench_vcam.py [MODEL.stl] [--seconds S] [--fps N] [--json]
       e.g. python scripts/bench_vcam.py ../shared/models/3DBenchy.stl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from printforge.hardware.camera.client import CameraClient  # noqa: E402
from printforge.hardware.camera.compose import compose  # noqa: E402
from printforge.hardware.camera.config import (  # noqa: E402
    FAILURE_KINDS,
    NUISANCE_KINDS,
    VirtualCameraOptions,
)
from printforge.hardware.camera.events import Injection, draw_params  # noqa: E402
from printforge.hardware.camera.follow import ManualSource, PrintView  # noqa: E402
from printforge.hardware.camera.frame import Lens  # noqa: E402
from printforge.hardware.camera.render import render_frame  # noqa: E402
from printforge.hardware.camera.server import CameraServer  # noqa: E402
from printforge.hardware.camera.virtual import VirtualCamera, default_pose  # noqa: E402
from printforge.hardware.camera.worker import (  # noqa: E402
    InlineRenderer,
    Renderer,
    RenderPool,
    describe_part,
)
from printforge.models.printer import PrinterProfile, PrinterState  # noqa: E402

PROFILE = PrinterProfile(name="generic-220")
COLOR = (0.85, 0.33, 0.10)


def _default_model() -> Path:
    """3DBenchy from the shared models next to the checkout (or next to its worktree folder)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared/models/3DBenchy.stl").is_file():
            return base / "shared/models/3DBenchy.stl"
    return ROOT.parent / "shared/models/3DBenchy.stl"


def _reference_ms() -> float:
    data = np.random.default_rng(1).random(1_000_000)
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        np.sort(data)
        best = min(best, time.process_time() - t)
    return best * 1000


def frame_costs(model: Path, repeat: int) -> dict[str, float]:
    """CPU ms per frame (best of `repeat`), clean and with each event at its most visible."""
    part = describe_part(str(model), (110.0, 110.0))
    height = part.top / 2
    layer = round(height / 0.2)
    view = PrintView(
        job="bench",
        mesh=model,
        state=PrinterState.PRINTING,
        layer=layer,
        layers_total=round(part.top / 0.2),
        height=height,
        head=(part.center[0], part.center[1], height),
    )
    pose = default_pose(PROFILE, None)
    out: dict[str, float] = {}
    for kind in ("clean", *FAILURE_KINDS, *NUISANCE_KINDS):
        events = []
        if kind != "clean":
            rng = np.random.default_rng(3)
            params = draw_params(kind, rng, COLOR)
            start = max(1, layer - 30)
            events.append(
                Injection(1, kind, start, None, "request", 3, params, start, height * 0.5)
            )
        best = float("inf")
        for frame in range(repeat + 1):
            spec = compose(
                view,
                events,
                pose=pose,
                lens=Lens(),
                bed=(PROFILE.bed_x, PROFILE.bed_y, False),
                color=COLOR,
                seed=1,
                frame=frame,
                part=part,
            )
            t = time.process_time()
            render_frame(spec)
            if frame:  # the first warms the caches of this event
                best = min(best, time.process_time() - t)
        out[kind] = round(best * 1000, 1)
    return out


async def loop_lag(model: Path, renderer: Renderer, seconds: float, fps: float) -> dict[str, Any]:
    """Lateness of a 5 ms ticker while a stream client pulls frames."""
    part = await renderer.describe(str(model), (110.0, 110.0))
    source = ManualSource(
        PrintView(
            job="bench",
            mesh=model,
            state=PrinterState.PRINTING,
            layer=100,
            layers_total=240,
            height=part.top / 2,
            head=(part.center[0], part.center[1], part.top / 2),
        )
    )
    camera = VirtualCamera(
        "bench", source, PROFILE, renderer, options=VirtualCameraOptions(fps=fps)
    )
    server = CameraServer(camera)
    await server.start()
    frames = 0
    lags: list[float] = []
    try:
        async with CameraClient(stream_url=server.stream_url, timeout_s=120) as client:
            await client.next_frame()  # worker started, mesh loaded: measure the steady state
            loop = asyncio.get_running_loop()
            stop_at = loop.time() + seconds

            async def ticker() -> None:
                while loop.time() < stop_at:
                    due = loop.time() + 0.005
                    await asyncio.sleep(0.005)
                    lags.append(max(0.0, loop.time() - due))

            tick = asyncio.create_task(ticker())
            async for _ in client.frames():
                frames += 1
                if loop.time() >= stop_at:
                    break
            await tick
    finally:
        await server.stop()
    lags.sort()
    return {
        "frames_per_s": round(frames / seconds, 2),
        "lag_p50_ms": round(statistics.median(lags) * 1000, 2),
        "lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 2),
        "lag_max_ms": round(lags[-1] * 1000, 2),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    model = Path(args.model) if args.model else _default_model()
    if not model.is_file():
        raise SystemExit(f"no model at {model}; give one (e.g. 3DBenchy.stl)")
    result: dict[str, Any] = {"model": model.name, "reference_sort_ms": round(_reference_ms(), 1)}
    result["frame_cpu_ms"] = await asyncio.to_thread(frame_costs, model, args.repeat)
    pool = RenderPool()
    try:
        result["loop_worker"] = await loop_lag(model, pool, args.seconds, args.fps)
    finally:
        await pool.stop()
    result["loop_inline"] = await loop_lag(model, InlineRenderer(), args.seconds, args.fps)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("model", nargs="?", help="STL (default: 3DBenchy from the shared models)")
    ap.add_argument("--seconds", type=float, default=10.0, help="of streaming, per renderer")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3, help="frames per kind (best counts)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return
    costs = result["frame_cpu_ms"]
    ref = result["reference_sort_ms"]
    print(f"model {result['model']}, 640x480; reference (sort 1 M floats) {ref} ms CPU")
    for kind, ms in costs.items():
        print(f"  {kind:16s} {ms:6.1f} ms CPU per frame  ({ms / ref:.2f}x reference)")
    for name in ("loop_worker", "loop_inline"):
        r = result[name]
        print(
            f"{name}: {r['frames_per_s']} frames/s; loop lag p50 {r['lag_p50_ms']} ms,"
            f" p99 {r['lag_p99_ms']} ms, max {r['lag_max_ms']} ms"
        )
    worker, inline = result["loop_worker"], result["loop_inline"]
    print(
        f"lag p99 in the worker / on the loop: {worker['lag_p99_ms']} / {inline['lag_p99_ms']} ms"
        f" = {worker['lag_p99_ms'] / max(inline['lag_p99_ms'], 1e-9):.3f}"
    )


if __name__ == "__main__":
    main()
