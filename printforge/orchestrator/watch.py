"""Watching a print through its printer's camera (issue 17): a snapshot per layer change in
the job's folder, the detector on each (printforge/vision/, in its own worker process), and
the reaction when a failure is seen: pause, record the diagnosis, tell people, decide how to
recover. A timelapse is made of the snapshots when the print ends.

The watch never stops a print because the camera is away: a snapshot that fails is logged and
the print goes on unwatched for that layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from printforge.hardware.base import PrinterDriver
from printforge.hardware.camera.client import CameraClient
from printforge.hardware.camera.config import CameraConfig
from printforge.models.job import Job
from printforge.models.printer import PrinterState, PrinterStatus
from printforge.runtime.errors import PrintforgeError
from printforge.vision.config import DetectionConfig
from printforge.vision.recovery import Decision, decide
from printforge.vision.telemetry import TelemetryRules
from printforge.vision.worker import (
    VisionWorker,
    close_watch,
    forget_object,
    observe_frame,
    open_watch,
)

__all__ = ["SNAPSHOT_DIR", "PrintWatch", "list_snapshots"]

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshots"
DIAGNOSIS_DIR = "diagnosis"
STOP_TIMEOUT_S = 15.0
Emit = Callable[[str, str | None, dict[str, Any]], None]


def list_snapshots(folder: Path) -> list[dict[str, Any]]:
    """A job folder's snapshots, oldest layer first: `[{layer, file, bytes}]`."""
    out = []
    for path in sorted((folder / SNAPSHOT_DIR).glob("layer-*.jpg")):
        with contextlib.suppress(ValueError, OSError):
            layer = int(path.stem.removeprefix("layer-"))
            size = path.stat().st_size
            out.append({"layer": layer, "file": f"{SNAPSHOT_DIR}/{path.name}", "bytes": size})
    return out


class PrintWatch:
    """One job's print seen by one camera. `start()` before streaming, `stop()` after."""

    def __init__(
        self,
        job: Job,
        driver: PrinterDriver,
        camera: CameraConfig,
        detection: DetectionConfig | None,
        gcode: Path,
        folder: Path,
        emit: Emit,
        vision: Callable[[], VisionWorker] | None,
        failures_before: int = 0,
    ) -> None:
        self.job = job
        self.driver = driver
        self.camera = camera
        self.detection = detection if detection is not None and detection.enabled else None
        self.gcode = gcode
        self.folder = folder
        self.emit = emit
        self._vision = vision
        self.failures_before = failures_before
        self.rules = TelemetryRules(self.detection)
        self.diagnosis: dict[str, Any] | None = None
        self.decision: Decision | None = None
        self._layer = 0
        self._seen = -1
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._watching = False
        self._pending: list[dict[str, Any]] = []  # telemetry findings not yet acted on
        self.snapshots = 0

    @property
    def detected(self) -> bool:
        return self.diagnosis is not None

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        (self.folder / SNAPSHOT_DIR).mkdir(parents=True, exist_ok=True)
        self._unsubscribe = self.driver.add_listener(self._on_status)
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.job.id}")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await task
        if self._watching and self._vision is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await self._vision().call(close_watch, self.job.id)
        if self.snapshots >= 2:
            await self._timelapse()

    # the printer -------------------------------------------------------------------------
    def _on_status(self, status: PrinterStatus) -> None:
        if status.job_id not in (None, self.job.id):
            return
        if self.detection is not None and not self.detected:
            for finding in self.rules.see(status, time.monotonic()):
                self._pending.append(
                    {"kind": finding.kind, "score": finding.score, "message": finding.message}
                )
                self._wake.set()
        layer = status.progress.layer if status.progress is not None else None
        if layer is not None and layer > self._layer:
            self._layer = layer
            self._wake.set()

    # the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._watch()
        except Exception:  # a bug here must not touch the print; it is logged
            log.exception("job %s: watching the print failed", self.job.id)

    async def _watch(self) -> None:
        async with CameraClient.from_config(self.camera) as client:
            await self._open()
            await self._take(client, 0)  # the bed before the part: the detector's reference
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._pending and not self.detected:
                    finding = self._pending.pop(0)
                    await self._react(self._layer, finding, None)
                if self._layer > self._seen:
                    await self._take(client, self._layer)

    async def _open(self) -> None:
        camera = self.camera
        if self.detection is None or self._vision is None:
            return
        if camera.position is None or camera.look_at is None:
            log.warning(
                "job %s: the camera of %s has no position/look_at: snapshots only, no"
                " comparison with the twin",
                self.job.id,
                self.driver.name,
            )
            return
        pose = {
            "position": camera.position,
            "look_at": camera.look_at,
            "fov_deg": camera.fov_deg,
            "resolution": camera.resolution,
        }
        try:
            layers = await self._vision().call(
                open_watch, self.job.id, str(self.gcode), pose, self.detection.model_dump()
            )
        except Exception as err:  # the print goes on unwatched, and says so
            log.warning("job %s: no twin for %s: %s", self.job.id, self.gcode.name, err)
            return
        self._watching = True
        self.emit("log", f"watching the print: a twin of {layers} layers", {"layers": layers})

    async def _take(self, client: CameraClient, layer: int) -> None:
        self._seen = layer
        try:
            jpeg = await client.snapshot()
        except PrintforgeError as err:
            log.warning("job %s: no snapshot at layer %d: %s", self.job.id, layer, err)
            return
        name = f"layer-{layer:04d}.jpg"
        path = self.folder / SNAPSHOT_DIR / name
        await asyncio.to_thread(path.write_bytes, jpeg)
        self.snapshots += 1
        data: dict[str, Any] = {"layer": layer, "snapshot": f"{SNAPSHOT_DIR}/{name}"}
        if self._watching and not self.detected and self._vision is not None:
            picture = self.folder / DIAGNOSIS_DIR / f"layer-{layer:04d}.png"
            try:
                verdict = await self._vision().call(
                    observe_frame, self.job.id, layer, jpeg, str(picture)
                )
            except Exception as err:
                log.warning("job %s: detector failed at layer %d: %s", self.job.id, layer, err)
            else:
                data.update(score=verdict["score"], failing=verdict["failing"])
                if verdict["stop"]:
                    finding = {
                        "kind": verdict["kind"] or "failure",
                        "score": verdict["score"],
                        "message": "the camera does not match the twin",
                        "detail": verdict["detail"],
                        "object": verdict.get("object"),
                    }
                    pic = f"{DIAGNOSIS_DIR}/{picture.name}" if verdict.get("picture") else None
                    self.emit("snapshot", None, data)
                    await self._react(layer, finding, pic)
                    return
        self.emit("snapshot", None, data)

    # the reaction ------------------------------------------------------------------------
    async def _react(self, layer: int, finding: dict[str, Any], picture: str | None) -> None:
        assert self.detection is not None
        diagnosis = {
            "layer": layer,
            "kind": finding["kind"],
            "score": finding["score"],
            "threshold": self.detection.threshold,
            "message": finding["message"],
            "picture": picture,
            "printer": self.driver.name,
            "detail": finding.get("detail", {}),
        }
        self.diagnosis = diagnosis
        paused = False
        if self.detection.action == "pause":
            state = self.driver.status().state
            if state in (PrinterState.PRINTING, PrinterState.HEATING):
                try:
                    await self.driver.pause()
                    paused = True
                except Exception as err:
                    log.warning("job %s: cannot pause %s: %s", self.job.id, self.driver.name, err)
        diagnosis["paused"] = paused
        objects = [o.name for o in self.driver.status().objects if not o.cancelled]
        self.decision = decide(
            finding["kind"],
            failures=self.failures_before + 1,
            max_attempts=self.detection.max_retries + 2,
            objects=objects,
            failed_object=finding.get("object"),
        )
        diagnosis["object"] = finding.get("object")
        diagnosis["recovery"] = self.decision.as_dict()
        vision = self.job.report.setdefault("vision", {})
        words = f"{finding['kind']} at layer {layer} (score {finding['score']:.2f})"
        if self.decision.action == "cancel_object" and paused:
            if await self._cancel_object(self.decision.object or ""):
                # The rest of the plate prints on, still watched; the job is not failed.
                vision.setdefault("cancelled_objects", []).append(diagnosis)
                self.emit("diagnosis", f"failure detected: {words}", diagnosis)
                self.diagnosis = None
                return
            diagnosis["recovery"] = decide(
                finding["kind"],
                failures=self.failures_before + 1,
                max_attempts=self.detection.max_retries + 2,
            ).as_dict()
        vision["diagnosis"] = diagnosis
        self.emit("diagnosis", f"failure detected: {words}", diagnosis)
        if paused and self.decision.action in ("retry", "reslice", "give_up"):
            # The print cannot be saved: stop it (heaters off, head parked) so the bed can be
            # cleared; the job then ends and the recovery, if any, is a new job.
            try:
                await self.driver.cancel()
            except Exception as err:
                log.warning("job %s: cannot stop %s: %s", self.job.id, self.driver.name, err)

    async def _cancel_object(self, name: str) -> bool:
        """Cancel the failed object, stop expecting it, resume the plate. False if it could not
        be cancelled (the driver cannot, or the printer refused)."""
        try:
            await self.driver.cancel_object(name)
            if self._vision is not None:
                await self._vision().call(forget_object, self.job.id, name)
            await self.driver.resume()
        except Exception as err:
            log.warning("job %s: cannot cancel object %s: %s", self.job.id, name, err)
            return False
        return True

    async def _timelapse(self) -> None:
        try:
            await asyncio.to_thread(make_timelapse, self.folder / SNAPSHOT_DIR, self.folder)
        except Exception as err:  # no ffmpeg is no reason to fail a print
            log.warning("job %s: no timelapse: %s", self.job.id, err)


def make_timelapse(snapshots: Path, out_dir: Path, fps: int = 10) -> Path | None:
    """`timelapse.mp4` of the snapshots, through the ffmpeg that imageio-ffmpeg ships."""
    import subprocess

    frames = sorted(snapshots.glob("layer-*.jpg"))
    if len(frames) < 2:
        return None
    try:
        import imageio_ffmpeg
    except ImportError:
        log.info("imageio-ffmpeg is not installed: no timelapse")
        return None
    listing = snapshots / "frames.txt"
    listing.write_text("".join(f"file '{f.name}'\nduration {1 / fps:.3f}\n" for f in frames))
    out = out_dir / "timelapse.mp4"
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p", "-c:v", "libx264",
        "-r", str(fps), str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=300, capture_output=True)
    listing.unlink(missing_ok=True)
    return out
