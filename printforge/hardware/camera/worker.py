"""Frames are rendered in a worker process, never on the event loop.

A frame is tens of milliseconds of numpy holding the GIL much of the time; on the loop that
streams G-code, that starves a printer's planner (16 short moves last about 60 ms). One worker
process serves every virtual camera of this process: it keeps the meshes it has loaded, so a
camera pays for reading its STL once per job.

The worker comes from a forkserver (forking this process would copy locks its other threads
hold), ignores SIGINT (the owner decides what Ctrl-C means), runs at a lower priority than the
loop, and dies with its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

from printforge.hardware.camera.compose import PartInfo
from printforge.hardware.camera.frame import FrameSpec
from printforge.runtime.errors import BadArtifact, TransientError

__all__ = ["InlineRenderer", "RenderPool", "Renderer", "describe_part"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_NICENESS = 5
STOP_TIMEOUT_S = 10.0


class Renderer(Protocol):
    async def render(self, spec: FrameSpec) -> bytes: ...

    async def describe(self, mesh: str, bed_center: tuple[float, float]) -> PartInfo: ...


def describe_part(mesh: str, bed_center: tuple[float, float]) -> PartInfo:
    """Load (and keep) a mesh where the camera will draw it; its extent on the bed."""
    from printforge.hardware.camera.render import part_for

    try:
        part = part_for(mesh, bed_center)
    except OSError:
        raise
    except Exception as err:  # trimesh and manifold3d raise many kinds for a bad file
        raise ValueError(f"not a mesh it can draw ({type(err).__name__}: {err})") from None
    lo, hi = part.bounds
    return PartInfo(
        center=(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2),
        half=(float(hi[0] - lo[0]) / 2, float(hi[1] - lo[1]) / 2),
        top=part.top,
    )


def _render(spec: FrameSpec) -> bytes:
    from printforge.hardware.camera.render import render_frame

    return render_frame(spec)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class RenderPool:
    """Worker processes that render frames. Started on first use; `stop()` is bounded."""

    def __init__(self, processes: int = 1) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            # The fork server imports numpy, trimesh and the renderer once; a worker forked
            # from it (a first one, or one after a crash) starts without importing them again.
            context.set_forkserver_preload(["printforge.hardware.camera.render"])
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes, mp_context=context, initializer=_init_worker
            )
        return self._executor

    async def _call(self, fn: object, *args: object) -> object:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), fn, *args)  # type: ignore[arg-type]
        except BrokenProcessPool as err:
            # Killed (out of memory, by hand): the next frame gets a fresh worker.
            self._executor = None
            raise TransientError(f"the camera's render worker died: {err}") from err

    async def render(self, spec: FrameSpec) -> bytes:
        out = await self._call(_render, spec)
        assert isinstance(out, bytes)
        return out

    async def describe(self, mesh: str, bed_center: tuple[float, float]) -> PartInfo:
        try:
            out = await self._call(describe_part, mesh, bed_center)
        except (OSError, ValueError) as err:
            raise BadArtifact(f"virtual camera cannot read {Path(mesh).name}: {err}") from err
        assert isinstance(out, PartInfo)
        return out

    def shutdown(self) -> None:
        """Stop without an event loop (a test's module fixture): waits for a frame in hand."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        # The worker finishes the frame in hand and exits; waiting for it is bounded.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.to_thread(executor.shutdown, wait=True)


class InlineRenderer:
    """Renders on the calling thread: only for scripts that measure what the worker spares
    the event loop. Never for a camera that shares a loop with a printer."""

    async def render(self, spec: FrameSpec) -> bytes:
        return _render(spec)

    async def describe(self, mesh: str, bed_center: tuple[float, float]) -> PartInfo:
        try:
            return describe_part(mesh, bed_center)
        except (OSError, ValueError) as err:
            raise BadArtifact(f"virtual camera cannot read {Path(mesh).name}: {err}") from err

    async def stop(self) -> None:
        return None
