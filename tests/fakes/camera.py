"""Helpers for the virtual camera's tests: a part to print, a camera served on a free port,
and frames read back as pixels."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from numpy.typing import NDArray
from PIL import Image

from printforge.hardware.camera.client import CameraClient
from printforge.hardware.camera.config import VirtualCameraOptions
from printforge.hardware.camera.follow import ManualSource, PrintSource, PrintView
from printforge.hardware.camera.server import CameraServer
from printforge.hardware.camera.virtual import VirtualCamera
from printforge.hardware.camera.worker import Renderer
from printforge.models.printer import PrinterProfile, PrinterState

__all__ = [
    "BED_CENTER",
    "PROFILE",
    "box_stl",
    "changed",
    "pixels",
    "printing",
    "served",
]

PROFILE = PrinterProfile(name="generic-220")
BED_CENTER = (110.0, 110.0)
# The first frame waits for a worker process and the mesh; on a busy machine that is slow.
FIRST_FRAME_S = 90.0


def box_stl(folder: Path, size: tuple[float, float, float] = (30.0, 20.0, 16.0)) -> Path:
    path = folder / "box.stl"
    trimesh.creation.box(extents=size).export(path)
    return path


def printing(mesh: Path | None, layer: int, height: float, **more: Any) -> dict[str, Any]:
    """The fields of a PrintView mid-print (for ManualSource.set)."""
    return {
        "job": "job-1",
        "mesh": mesh,
        "state": PrinterState.PRINTING,
        "layer": layer,
        "layers_total": 80,
        "height": height,
        **more,
    }


def pixels(jpeg: bytes) -> NDArray[np.int16]:
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG"
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def changed(a: NDArray[np.int16], b: NDArray[np.int16], levels: int = 40) -> NDArray[np.bool_]:
    """Pixels that differ by more than sensor noise and JPEG blocking could make them, and
    that have two such neighbours: frames with different noise (different frame numbers)
    differ by a lone pixel now and then, while anything drawn is a line or an area."""
    raw = np.abs(a - b).max(axis=2) > levels
    padded = np.pad(raw, 1)
    neighbours = sum(
        padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx].astype(int)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    out: NDArray[np.bool_] = raw & (neighbours >= 2)
    return out


@asynccontextmanager
async def served(
    renderer: Renderer,
    source: PrintSource | None = None,
    **options: Any,
) -> AsyncIterator[tuple[VirtualCamera, CameraServer, CameraClient]]:
    """A virtual camera on a free loopback port, and the real client pointed at it."""
    camera = VirtualCamera(
        "test-cam",
        source or ManualSource(PrintView()),
        PROFILE,
        renderer,
        options=VirtualCameraOptions.model_validate(options),
    )
    server = CameraServer(camera, "127.0.0.1", 0)
    await server.start()
    try:
        async with CameraClient(
            server.snapshot_url, server.stream_url, timeout_s=FIRST_FRAME_S
        ) as client:
            yield camera, server, client
    finally:
        await server.stop()
