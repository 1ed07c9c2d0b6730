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

    With a virtual printer, the head is where its simulated machine is, and the height is the
    Z of the latest move the machine made laying plastic (extruding while moving in X or Y),
    which the machine itself records. The height is not paired from two looks (E grew since
    the last look, so plastic is at the Z seen now): a look comes every few hundred moves at
    a simulation's speed, and between two looks the head can finish a layer, retract, lift
    and park, which put the part at the parked height. Hops, lifts, a resume's
    unretract and a purge in place lay nothing on the part, so they never raise it.
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
        self._laid_mark = 0  # the machine's laying moves before this job began
        self._laid_seen = 0  # the machine's laying moves at the last look
        self._following = False  # the last look saw this job working

    def view(self) -> PrintView:
        status = self.driver.status()
        if status.job_id is not None and status.job_id != self._job:
            self._new_job(status.job_id)
        head = self._head()
        if status.job_id is not None and status.state in _WORKING:
            self._follow(status)
        else:
            self._after(status)
        laid = self._laid()
        self._laid_seen = laid[0] if laid is not None else 0
        return PrintView(
            job=self._job,
            mesh=self._mesh,
            state=status.state,
            layer=self._layer,
            layers_total=self._layers_total,
            height=self._height,
            head=head if head is not None else self._parked(),
        )

    def _new_job(self, job: str) -> None:
        self._job = job
        self._mesh = self.mesh_for_job(job)
        self._height = 0.0
        self._layer = 0
        self._layers_total = None
        # What was laid since the last look is this job's: the previous job's last moves were
        # taken by the look that saw it end (`_after`). A camera that starts watching in the
        # middle of a print takes what the machine laid last.
        self._laid_mark = self._laid_seen
        self._following = False

    def _after(self, status: PrinterStatus) -> None:
        """The print is over (or not begun): its last progress report may have come with the
        state change, and its last moves may have been queued after the last look that saw it
        working. Moves after that (by hand, on an idle printer) are not the print's."""
        progress = status.progress
        if (
            self._job is not None
            and progress is not None
            and progress.layer is not None
            and progress.layers_total == self._layers_total
        ):
            self._layer = max(self._layer, progress.layer)
        if self._following:
            self._following = False
            self._take_laid()

    def _laid(self) -> tuple[int, float | None] | None:
        """(laying moves so far, Z of the latest) of a simulated machine; None for others."""
        machine = getattr(self.driver, "machine", None)
        moves = getattr(machine, "laid_moves", None)
        if not isinstance(moves, int):
            return None
        z = getattr(machine, "laid_z", None)
        return moves, float(z) if z is not None else None

    def _take_laid(self) -> bool:
        """Raise the height to the latest layer laid in this job; False without a machine."""
        laid = self._laid()
        if laid is None:
            return False
        moves, z = laid
        if moves > self._laid_mark and z is not None:
            self._height = max(self._height, z)
        return True

    def _head(self) -> tuple[float, float, float] | None:
        machine = getattr(self.driver, "machine", None)
        pos = getattr(machine, "pos", None)
        if not isinstance(pos, dict):
            return None
        return (float(pos["X"]), float(pos["Y"]), float(pos["Z"]))

    def _follow(self, status: PrinterStatus) -> None:
        progress = status.progress
        if progress is not None:
            if progress.layers_total:
                self._layers_total = progress.layers_total
            if progress.layer is not None:
                self._layer = max(self._layer, progress.layer)
        self._following = True
        if self._take_laid():
            return
        if self._layers_total and self._mesh is not None and self.mesh_height is not None:
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
