"""The virtual camera: it watches a (virtual) print and renders what a webcam would see, from
the job's mesh cut at the height printed so far, with the failures and nuisances it is asked
to inject or draws at random.

It is deliberately built apart from the failure detector's digital twin: it starts from the
mesh, never from the G-code, and shares no code with the twin, so the two cannot agree by
construction. Frames are rendered in a worker process (worker.py); on the loop the camera only
follows the printer, keeps its events and describes frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from printforge.hardware.camera.compose import PartInfo, compose, hex_rgb
from printforge.hardware.camera.config import (
    FAILURE_KINDS,
    NUISANCE_KINDS,
    CameraConfig,
    VirtualCameraOptions,
    parse_event_spec,
)
from printforge.hardware.camera.events import (
    DEFAULT_LAYERS,
    GroundTruthLog,
    Injection,
    category_of,
    draw_params,
)
from printforge.hardware.camera.follow import PrintSource, PrintView
from printforge.hardware.camera.frame import Lens, Pose
from printforge.hardware.camera.worker import Renderer
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime.errors import InputError

__all__ = ["VirtualCamera", "default_pose"]

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.02  # how often the printer is looked at (height, layer, events)
RECURRING_CHANCE = 1 / 12  # a nuisance named without a layer: chance per layer
_ENDED = frozenset({PrinterState.IDLE, PrinterState.FINISHED, PrinterState.FAULTED})


def default_pose(profile: PrinterProfile, config: CameraConfig | None) -> Pose:
    """The configured pose, or a webcam at the front of the bed looking at its middle."""
    width, height = config.resolution if config is not None else (640, 480)
    fov = config.fov_deg if config is not None else 60.0
    if config is not None and config.position is not None and config.look_at is not None:
        return Pose(config.position, config.look_at, fov, width, height)
    x0 = -profile.bed_x / 2 if profile.origin_center else 0.0
    y0 = -profile.bed_y / 2 if profile.origin_center else 0.0
    cx, cy = x0 + profile.bed_x / 2, y0 + profile.bed_y / 2
    position = (cx, y0 - 0.05 * profile.bed_y, 0.4 * profile.bed_y)
    return Pose(position, (cx, cy, 10.0), fov, width, height)


class VirtualCamera:
    """One virtual camera following one printer. `start()`/`stop()` are idempotent."""

    def __init__(
        self,
        name: str,
        source: PrintSource,
        profile: PrinterProfile,
        renderer: Renderer,
        *,
        options: VirtualCameraOptions | None = None,
        config: CameraConfig | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.profile = profile
        self.renderer = renderer
        self.options = options or VirtualCameraOptions()
        self.pose = default_pose(profile, config)
        self.lens = Lens(
            k1=self.options.k1,
            read_noise=self.options.noise,
            jpeg_quality=self.options.jpeg_quality,
        )
        self.color = hex_rgb(self.options.color)
        centred = profile.origin_center
        self.bed = (profile.bed_x, profile.bed_y, centred)
        self.bed_center = (0.0, 0.0) if centred else (profile.bed_x / 2, profile.bed_y / 2)
        path = self.options.ground_truth
        self.truth = GroundTruthLog(Path(path), name) if path else None
        self.frames = 0  # frames rendered so far: each one's number seeds its noise
        self.prints = 0
        self.view: PrintView = PrintView()
        self.events: list[Injection] = []
        self._pending: list[Injection] = []  # requested while no print was on the bed
        self._recurring = [parse_event_spec(n, NUISANCE_KINDS) for n in self.options.nuisances]
        self._next_id = 1
        self._job: str | None = None
        self._printing = False
        self._planned_random = False
        self._seen_layer = 0
        self._parts: dict[str, PartInfo | None] = {}
        self._part_tasks: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._render_lock = asyncio.Lock()
        self._last: tuple[float, tuple[Any, ...], bytes] | None = None

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self.sample()
            self._task = asyncio.create_task(self._sampler(), name=f"vcam-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._part_tasks.values()):
            pending.cancel()
        for pending in list(self._part_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        self._end_print("camera stopped")

    async def _sampler(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # a bug here must not end the camera; it is logged once a look
                log.exception("virtual camera %s: following the printer failed", self.name)
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    # following the print -------------------------------------------------------------------
    def sample(self) -> PrintView:
        """Look at the printer: a new job, a new layer, events due to start or end."""
        view = self.source.view()
        if view.job != self._job and view.job is not None:
            self._end_print("a new print started")
            self._begin_print(view)
        self.view = view
        if view.mesh is not None:
            self._want_part(str(view.mesh))
        if self._printing:
            if view.layers_total and not self._planned_random:
                self._plan_random(view.layers_total)
            for layer in range(self._seen_layer + 1, view.layer + 1):
                self._draw_recurring(layer)
            self._seen_layer = max(self._seen_layer, view.layer)
            self._advance(view)
            if view.state in _ENDED and view.layer > 0:
                self._end_print(f"printer {view.state.value}")
        return view

    def _begin_print(self, view: PrintView) -> None:
        self._job = view.job
        self._printing = True
        self.prints += 1
        self.events = []
        self._planned_random = False
        self._seen_layer = 0
        if self.truth is not None:
            self.truth.write(
                "print_start",
                print=self.prints,
                job_id=view.job,
                layers_total=view.layers_total,
                seed=self.options.seed,
            )
        for text in self.options.failures:
            kind, layer, layers = parse_event_spec(text, FAILURE_KINDS)
            self._add(kind, layer or 1, layers, "config")
        for kind, layer, layers in self._recurring:
            if layer is not None:
                self._add(kind, layer, layers, "config")
        pending, self._pending = self._pending, []
        for event in pending:
            self.events.append(event)

    def _end_print(self, reason: str) -> None:
        if not self._printing:
            return
        self._printing = False
        for event in self.events:
            if event.active:
                self._finish(event, reason)
        if self.truth is not None:
            self.truth.write(
                "print_end",
                print=self.prints,
                job_id=self._job,
                layer=self.view.layer,
                reason=reason,
            )

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng((self.options.seed & 0xFFFFFFFF, self.prints, *key))

    def _plan_random(self, layers_total: int) -> None:
        self._planned_random = True
        rng = self._rng(1)
        if rng.random() < self.options.failure_rate:
            kind = FAILURE_KINDS[int(rng.integers(len(FAILURE_KINDS)))]
            lo = max(2, round(0.15 * layers_total))
            hi = max(lo + 1, round(0.75 * layers_total))
            self._add(kind, int(rng.integers(lo, hi)), None, "random")

    def _draw_recurring(self, layer: int) -> None:
        rng = self._rng(2, layer)
        for kind, at, layers in self._recurring:
            # One draw per kind per layer, whether it fires or not: what happens at a layer
            # never depends on how often the camera looked before it.
            fires = rng.random() < RECURRING_CHANCE
            if at is None and fires and not self._ongoing(kind):
                self._add(kind, layer, layers, "random")
        if rng.random() < self.options.nuisance_rate:
            kind = NUISANCE_KINDS[int(rng.integers(len(NUISANCE_KINDS)))]
            if not self._ongoing(kind):
                self._add(kind, layer, None, "random")

    def _ongoing(self, kind: str) -> bool:
        return any(e.kind == kind and (e.active or e.started_layer is None) for e in self.events)

    def _add(
        self,
        kind: str,
        layer: int,
        layers: int | None,
        source: Any,
        params: dict[str, Any] | None = None,
    ) -> Injection:
        event_id = self._next_id
        seed = int(self._rng(3, event_id).integers(1 << 31))
        drawn = draw_params(kind, np.random.default_rng(seed), self.color)
        if params:
            drawn.update(_checked_params(kind, params, drawn))
        self._next_id += 1
        if layers is None and category_of(kind) == "nuisance":
            layers = DEFAULT_LAYERS[kind]
        event = Injection(
            id=event_id,
            kind=kind,
            layer=layer,
            layers=layers,
            source=source,
            seed=seed,
            params=drawn,
        )
        if self._printing:
            self.events.append(event)
        else:
            self._pending.append(event)
        return event

    def _advance(self, view: PrintView) -> None:
        for event in self.events:
            if event.started_layer is None and view.layer >= event.layer:
                event.started_layer = view.layer
                event.started_z = view.height
                self._log_event("start", event, view)
        for event in self.events:
            if event.due_to_end(view.layer):
                self._finish(event, "its layers are over")

    def _finish(self, event: Injection, reason: str) -> None:
        event.ended_layer = self.view.layer
        event.ended_z = self.view.height
        self._log_event("end", event, self.view, frames_shown=event.frames_shown, reason=reason)

    def _log_event(self, phase: str, event: Injection, view: PrintView, **extra: Any) -> None:
        log.info("virtual camera %s: %s %s at layer %d", self.name, event.kind, phase, view.layer)
        if self.truth is None:
            return
        self.truth.write(
            phase,
            print=self.prints,
            job_id=self._job,
            id=event.id,
            kind=event.kind,
            category=event.category,
            source=event.source,
            planned_layer=event.layer,
            layer=view.layer,
            z_mm=round(view.height, 3),
            frame=self.frames,
            params=event.params,
            **extra,
        )

    # injection -----------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        layer: int | None = None,
        layers: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> Injection:
        """A failure or nuisance from `layer` on (default: the current layer), for `layers`
        layers (a failure: to the end of the print). On an idle camera it waits for the next
        print. InputError for an unknown kind or a bad number."""
        try:
            category_of(kind)
        except ValueError as err:
            raise InputError(str(err)) from None
        if layer is not None and layer < 1:
            raise InputError("layer counts from 1")
        if layers is not None and layers < 1:
            raise InputError("an event lasts at least one layer")
        at = layer if layer is not None else max(self.view.layer, 1)
        event = self._add(kind, at, layers, "request", params)
        if self._printing:
            self._advance(self.view)
        return event

    # frames --------------------------------------------------------------------------------
    def _want_part(self, mesh: str) -> None:
        if mesh in self._parts or mesh in self._part_tasks:
            return
        self._part_tasks[mesh] = asyncio.get_running_loop().create_task(self._load_part(mesh))

    async def _load_part(self, mesh: str) -> None:
        try:
            self._parts[mesh] = await self.renderer.describe(mesh, self.bed_center)
        except Exception as err:
            # Without the part the camera still shows the bed and the head, and says why.
            log.warning("virtual camera %s: cannot draw %s: %s", self.name, Path(mesh).name, err)
            self._parts[mesh] = None
        finally:
            self._part_tasks.pop(mesh, None)

    async def part(self) -> PartInfo | None:
        """The current job's part as placed on the bed (waits for the worker to read it)."""
        mesh = self.view.mesh
        if mesh is None:
            return None
        self._want_part(str(mesh))
        task = self._part_tasks.get(str(mesh))
        if task is not None:
            await asyncio.shield(task)
        return self._parts.get(str(mesh))

    async def frame(self, max_age_s: float = 0.0) -> bytes:
        """A JPEG of now; a frame rendered less than `max_age_s` ago is given again (several
        viewers of one stream share frames; concurrent requests share one render)."""
        async with self._render_lock:
            view = self.sample()
            now = time.monotonic()
            # A frame is shared only while the print and its events are as they were: a new
            # layer or an injected event is never answered with an older picture.
            key = self._state_key(view)
            if self._last is not None and self._last[1] == key and now - self._last[0] <= max_age_s:
                return self._last[2]
            part = await self.part()
            self.frames += 1
            spec = compose(
                view if part is not None or view.mesh is None else _without_mesh(view),
                self.events,
                pose=self.pose,
                lens=self.lens,
                bed=self.bed,
                color=self.color,
                seed=self.options.seed,
                frame=self.frames,
                part=part,
            )
            for event in self.events:
                if event.active:
                    event.frames_shown += 1
            jpeg = await self.renderer.render(spec)
            self._last = (time.monotonic(), key, jpeg)
            return jpeg

    def _state_key(self, view: PrintView) -> tuple[Any, ...]:
        return (
            view.job,
            view.layer,
            round(view.height, 3),
            view.state,
            tuple((e.id, e.started_layer, e.ended_layer) for e in self.events),
        )

    def describe(self) -> dict[str, Any]:
        """The camera's state for its HTTP status page and for tests."""
        view = self.view
        return {
            "name": self.name,
            "print": self.prints,
            "job": view.job,
            "state": view.state.value,
            "layer": view.layer,
            "layers_total": view.layers_total,
            "height_mm": round(view.height, 3),
            "frames": self.frames,
            "seed": self.options.seed,
            "events": [e.public() for e in self.events + self._pending],
        }


def _checked_params(kind: str, given: dict[str, Any], drawn: dict[str, Any]) -> dict[str, Any]:
    """Parameters set by hand replace drawn ones of the same name and type."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in drawn:
            known = ", ".join(sorted(drawn)) or "none"
            raise InputError(f"{kind} has no parameter {key!r} (its parameters: {known})")
        if key == "color":
            if not (isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value)):
                raise InputError(f"color must be #rrggbb, not {value!r}")
        elif key == "tint":
            ok = isinstance(value, list) and len(value) == 3
            if not ok or not all(isinstance(v, int | float) and 0 < v < 4 for v in value):
                raise InputError("tint is three gains, e.g. [1.1, 1.0, 0.8]")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{kind} {key} must be a number")
        out[key] = value
    return out


def _without_mesh(view: PrintView) -> PrintView:
    from dataclasses import replace

    return replace(view, mesh=None)
