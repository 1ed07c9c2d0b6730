"""The detector's own worker process: it keeps each watched print's twin and detector between
frames, so a frame costs one JPEG sent over a pipe, and the printer's event loop never waits
on numpy (house style: CPU-bound work runs in a process).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from printforge.runtime.errors import TransientError

__all__ = ["VisionWorker", "close_watch", "forget_object", "observe_frame", "open_watch"]

STOP_TIMEOUT_S = 10.0

# In the worker process: job id -> Detector.
_WATCHES: dict[str, Any] = {}


def open_watch(key: str, gcode: str, camera: dict[str, Any], config: dict[str, Any]) -> int:
    """Build the twin of a G-code file for a camera; returns the layer count."""
    from printforge.gcode.source import read_gcode_text
    from printforge.vision.detector import DetectionConfig, Detector
    from printforge.vision.toolpath import read_toolpath
    from printforge.vision.twin import Pinhole, Twin

    toolpath = read_toolpath(read_gcode_text(Path(gcode)))
    pinhole = Pinhole(
        tuple(camera["position"]),  # type: ignore[arg-type]
        tuple(camera["look_at"]),  # type: ignore[arg-type]
        float(camera["fov_deg"]),
        int(camera["resolution"][0]),
        int(camera["resolution"][1]),
    )
    _WATCHES[key] = Detector(Twin(toolpath, pinhole), DetectionConfig.model_validate(config))
    return toolpath.layers


def observe_frame(key: str, layer: int, jpeg: bytes, diagnosis: str | None) -> dict[str, Any]:
    """One frame after `layer` layers; with `diagnosis` (a PNG path), a stop writes the frame
    beside its twin there."""
    from printforge.vision.compare import decode
    from printforge.vision.diagnosis import write_diagnosis

    detector = _WATCHES[key]
    frame = decode(jpeg)
    if frame.shape[:2] != (detector.twin.camera.height, detector.twin.camera.width):
        from printforge.vision.compare import resized

        frame = resized(frame, detector.twin.camera.width, detector.twin.camera.height)
    verdict = detector.observe(layer, frame)
    out = {
        "layer": verdict.layer,
        "score": round(verdict.score, 4),
        "failing": verdict.failing,
        "stop": verdict.stop,
        "kind": verdict.kind,
        "detail": verdict.detail,
        "object": verdict.object,
    }
    if verdict.stop and diagnosis is not None and detector.last is not None:
        write_diagnosis(Path(diagnosis), detector, verdict)
        out["picture"] = Path(diagnosis).name
    return out


def forget_object(key: str, name: str) -> None:
    """A cancelled object of the plate is no longer expected."""
    detector = _WATCHES.get(key)
    if detector is not None:
        detector.forget_object(name)


def close_watch(key: str) -> None:
    _WATCHES.pop(key, None)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class VisionWorker:
    """One process holding the detectors of every watched print. Started on first use."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_init_worker
            )
        return self._executor

    async def call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), fn, *args)
        except BrokenProcessPool as err:
            self._executor = None
            raise TransientError(f"the detector's worker died: {err}") from err

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.to_thread(executor.shutdown, wait=True)
