"""What the camera can see of a printer at this moment, and where it learns it from.

The camera never reads G-code. It follows a printer as a camera pointed at it would: the head's
position, how high the part has grown, the layer the printer reports and the job on the bed.
Three sources: a virtual printer in this process (the head as its simulated machine holds it),
any printer driver by its status alone (height from the reported layer), and a clock that
prints a mesh by itself (the `virtual-camera` command with no printer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from printforge.hardware.base import PrinterDriver
from printforge.models.printer import PrinterState, PrinterStatus

__all__ = [
    "ClockSource",
    "DriverSource",
    "ManualSource",
    "PrintSource",
    "PrintView",
]

Vec3 = tuple[float, float, float]
# States in which the head may be laying plastic: height and layer advance only in these.
_WORKING = frozenset({PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.CANCELLING})


@dataclass(frozen=True)
class PrintView:
    """The printer as the camera sees it.

    `job` identifies the print on the bed (a new one means the bed was cleared); `height` is
    the top of the plastic laid so far, in mm above the bed; `layer` counts from 1.
    """

    job: str | None = None
    mesh: Path | None = None
    state: PrinterState = PrinterState.IDLE
    layer: int = 0
    layers_total: int | None = None
    height: float = 0.0
    head: Vec3 | None = None


class PrintSource(Protocol):
    def view(self) -> PrintView: ...


class ManualSource:
    """A view set by hand: tests, scripts, and the benchmark's own stepping."""

    def __init__(self, view: PrintView | None = None) -> None:
        self._view = view or PrintView()

    def set(self, **changes: object) -> PrintView:
        self._view = replace(self._view, **changes)  # type: ignore[arg-type]
        return self._view

    def view(self) -> PrintView:
        return self._view


class DriverSource:
    """Follows a printer driver in this process.

    With a virtual printer, the head is where its simulated machine is. The height comes from
    the Zs at which it was seen extruding (E grew since the last look), but one look can land
    on a Z-hop between two extrusions, which would put the part a hop too high. So a Z counts
    once a later look saw extrusion at the same Z or higher; and whenever the printer stops
    extruding (paused, finished, cancelled), the lowest Z not yet counted does, since hops
    and lifts only ever add. The height can lag the nozzle by a layer while printing.
    Other drivers only report a layer: the height is then the mesh's height times the share of
    layers done, and the head is drawn parked above it.

    Args:
        mesh_for_job: the STL a job printed, if there is one (printforge keeps `model.stl` in
            each job's folder).
    """

    def __init__(
        self,
        driver: PrinterDriver,
        mesh_for_job: Callable[[str], Path | None],
        mesh_height: Callable[[Path], float | None] | None = None,
    ) -> None:
        self.driver = driver
        self.mesh_for_job = mesh_for_job
        self.mesh_height = mesh_height
        self._job: str | None = None
        self._mesh: Path | None = None
        self._height = 0.0
        self._layer = 0
        self._layers_total: int | None = None
        self._last_e: float | None = None
        self._unconfirmed: list[float] = []  # Zs seen extruding, not yet counted

    def view(self) -> PrintView:
        status = self.driver.status()
        if status.job_id is not None and status.job_id != self._job:
            self._new_job(status.job_id)
        head = self._head()
        if status.job_id is not None and status.state in _WORKING:
            self._follow(status, head)
        else:
            self._after(status)
        if status.state is not PrinterState.PRINTING:
            self._settle()
        return PrintView(
            job=self._job,
            mesh=self._mesh,
            state=status.state,
            layer=self._layer,
            layers_total=self._layers_total,
            height=self._height,
            head=(head[0], head[1], head[2]) if head is not None else self._parked(),
        )

    def _new_job(self, job: str) -> None:
        self._job = job
        self._mesh = self.mesh_for_job(job)
        self._height = 0.0
        self._layer = 0
        self._layers_total = None
        self._last_e = None
        self._unconfirmed = []

    def _after(self, status: PrinterStatus) -> None:
        """The print is over (or not begun): its last progress report may have come with the
        state change."""
        progress = status.progress
        if (
            self._job is not None
            and progress is not None
            and progress.layer is not None
            and progress.layers_total == self._layers_total
        ):
            self._layer = max(self._layer, progress.layer)

    def _settle(self) -> None:
        """Nothing is being extruded now: hops, parking and the final lift only ever add, so
        the lowest Z not yet counted is the last layer laid."""
        if self._unconfirmed:
            self._height = max(self._height, min(self._unconfirmed))
            self._unconfirmed = []

    def _head(self) -> tuple[float, float, float, float] | None:
        machine = getattr(self.driver, "machine", None)
        pos = getattr(machine, "pos", None)
        if not isinstance(pos, dict):
            return None
        return (float(pos["X"]), float(pos["Y"]), float(pos["Z"]), float(pos["E"]))

    def _follow(
        self, status: PrinterStatus, head: tuple[float, float, float, float] | None
    ) -> None:
        progress = status.progress
        if progress is not None:
            if progress.layers_total:
                self._layers_total = progress.layers_total
            if progress.layer is not None:
                self._layer = max(self._layer, progress.layer)
        if head is not None:
            z, e = head[2], head[3]
            if self._last_e is not None and e > self._last_e + 1e-6 and z > 0:
                # Every earlier Z at or below this one was laid (or a hop no higher than a
                # layer laid since): it counts. Higher ones wait.
                counted = [u for u in self._unconfirmed if u <= z + 1e-6]
                if counted:
                    self._height = max(self._height, *counted)
                self._unconfirmed = [u for u in self._unconfirmed if u > z + 1e-6] + [z]
            self._last_e = e
        elif self._layers_total and self._mesh is not None and self.mesh_height is not None:
            top = self.mesh_height(self._mesh)
            if top:
                self._height = top * min(1.0, self._layer / self._layers_total)

    def _parked(self) -> Vec3:
        profile = self.driver.profile
        x0 = -profile.bed_x / 2 if profile.origin_center else 0.0
        y0 = -profile.bed_y / 2 if profile.origin_center else 0.0
        return (x0 + profile.bed_x * 0.5, y0 + profile.bed_y * 0.85, self._height + 15.0)


class ClockSource:
    """Prints a mesh by itself: one layer every `layer_s` seconds, the head tracing a loop
    around the part at the current height, then `finished` and a new print after `pause_s`."""

    def __init__(
        self,
        mesh: Path,
        top: float,
        center: tuple[float, float],
        half: tuple[float, float],
        *,
        layer_height: float = 0.2,
        layer_s: float = 1.0,
        pause_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mesh = mesh
        self.top = top
        self.center = center
        self.half = half
        self.layer_height = layer_height
        self.layer_s = layer_s
        self.pause_s = pause_s
        self.clock = clock
        self.layers_total = max(1, math.ceil(top / layer_height - 1e-6))
        self._t0 = clock()

    def view(self) -> PrintView:
        elapsed = self.clock() - self._t0
        cycle = self.layers_total * self.layer_s + self.pause_s
        number, into = divmod(elapsed, cycle)
        job = f"clock-{int(number) + 1}"
        layer = min(int(into / self.layer_s) + 1, self.layers_total)
        done = into >= self.layers_total * self.layer_s
        height = min(layer * self.layer_height, self.top)
        if done:
            return PrintView(
                job=job,
                mesh=self.mesh,
                state=PrinterState.FINISHED,
                layer=self.layers_total,
                layers_total=self.layers_total,
                height=self.top,
                head=(self.center[0], self.center[1] + self.half[1] + 60.0, self.top + 10.0),
            )
        # Around the footprint once per layer, a little inside it (where the walls are).
        phase = 2 * math.pi * ((into / self.layer_s) % 1.0)
        head = (
            self.center[0] + 0.8 * self.half[0] * math.cos(phase),
            self.center[1] + 0.8 * self.half[1] * math.sin(phase),
            height,
        )
        return PrintView(
            job=job,
            mesh=self.mesh,
            state=PrinterState.PRINTING,
            layer=layer,
            layers_total=self.layers_total,
            height=height,
            head=head,
        )
