"""A light simulated printer for farm-scale mocks and the farm benchmark.

The virtual printer (`hardware/virtual`) models the serial wire and Marlin byte by byte, which
is what serial tests need and costs about 2 ms of CPU per printer-second; a farm of 500 of them
would measure the simulation, not the bus. This one reads the G-code once, works out how long
each move takes with the one print-time estimator, and advances through the file on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from printforge.gcode.reader import Reader
from printforge.gcode.source import split_lines
from printforge.gcode.syntax import parse_line
from printforge.gcode.timing import estimate_time
from printforge.hardware.base import DriverConfig, PrinterDriver
from printforge.models.printer import (
    MaterialProfile,
    PrinterProfile,
    PrinterState,
    PrintProgress,
    Temperature,
)
from printforge.runtime.errors import (
    InvalidTransition,
    PrintCancelled,
    PrinterDisconnected,
    PrinterFault,
)

__all__ = ["SimPrinter", "SimPrinterConfig", "move_durations"]

PROGRESS_INTERVAL_S = 0.5
AMBIENT_C = 22.0


class SimPrinterConfig(DriverConfig):
    sim_speed: float = Field(1.0, gt=0, description="times faster than real time")


def move_durations(lines: list[str], profile: PrinterProfile | None = None) -> list[float]:
    """Seconds each line takes, by the one print-time estimator (acceleration and junctions,
    the figure `gcode-info` gives); dwells count, anything else takes no time."""
    profile = profile or PrinterProfile(name="sim")
    reader = Reader(profile)
    points = [(*reader.state.machine(), reader.state.feed, reader.state.accel)]
    owner = [-1]  # the line index of each point
    dwell = [0.0] * len(lines)
    for index, raw in enumerate(lines):
        line = parse_line(raw, index + 1)
        if line is None:
            continue
        step = reader.step(line)
        dwell[index] = step.dwell_s
        for point in step.points:
            points.append((*point, step.feed, step.accel))
            owner.append(index)
    out = dwell
    if len(points) > 1:
        a = np.asarray(points)
        times = estimate_time(np.diff(a[:, :4], axis=0), a[1:, 4], a[1:, 5], profile)
        for index, seconds in zip(owner[1:], times.tolist(), strict=True):
            out[index] += seconds
    return out


class SimPrinter(PrinterDriver):
    kind: ClassVar[str] = "sim"
    simulated: ClassVar[bool] = True
    Config: ClassVar[type[SimPrinterConfig]] = SimPrinterConfig  # type: ignore[assignment]

    def __init__(
        self,
        name: str,
        config: SimPrinterConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        super().__init__(name, config, profile, material)
        self.cfg = config
        self._running = asyncio.Event()
        self._running.set()
        self._streaming = False
        self._cancelled = False  # cancel() at the "printer": the stream ends as PrintCancelled
        self.lines_sent: list[str] = []

    async def start(self) -> None:
        if not self.connected.is_set():
            self.connected.set()
            self._set_status(state=PrinterState.IDLE, temperatures=self._temps(0.0, 0.0))

    async def stop(self) -> None:
        self.connected.clear()
        self._set_status(state=PrinterState.OFFLINE)

    @staticmethod
    def _temps(hotend: float, bed: float) -> dict[str, Temperature]:
        return {
            "hotend": Temperature(actual=hotend or AMBIENT_C, target=hotend),
            "bed": Temperature(actual=bed or AMBIENT_C, target=bed),
        }

    def _require(self) -> None:
        if not self.connected.is_set():
            raise PrinterDisconnected(f"printer {self.name} is not started")
        if self._status.state is PrinterState.FAULTED:
            raise PrinterFault(f"printer {self.name} is faulted: {self._status.message}")

    async def send(self, line: str) -> None:
        self._require()
        self.lines_sent.append(line)

    async def stream(
        self, path: Path, *, job_id: str | None = None
    ) -> AsyncIterator[PrintProgress]:
        self._require()
        if self._streaming:
            raise InvalidTransition(f"printer {self.name} is already printing")
        text = await asyncio.to_thread(path.read_text)
        lines = split_lines(text)
        durations = await asyncio.to_thread(move_durations, lines, self.profile)
        sizes = [len(line.encode()) + 1 for line in lines]
        progress = PrintProgress(lines_total=len(lines), bytes_total=sum(sizes))
        heat = self.material.hotend_temp if self.material else 210.0
        bed = self.material.bed_temp if self.material else 60.0
        self._streaming = True
        self._cancelled = False
        self._set_status(
            state=PrinterState.PRINTING,
            job_id=job_id,
            progress=progress,
            temperatures=self._temps(heat, bed),
        )
        started = time.monotonic()
        owed = 0.0
        last_emit = started
        acked_bytes = 0
        try:
            for index, (seconds, size) in enumerate(zip(durations, sizes, strict=True), 1):
                await self._running.wait()
                owed += seconds / self.cfg.sim_speed
                if owed >= 0.25 or index == len(lines):  # sleep in slices, not per line
                    await asyncio.sleep(owed)
                    owed = 0.0
                if self._cancelled:
                    raise PrintCancelled(f"printer {self.name}: the print was cancelled")
                acked_bytes += size
                now = time.monotonic()
                if now - last_emit >= PROGRESS_INTERVAL_S or index == len(lines):
                    last_emit = now
                    progress = progress.model_copy(
                        update={
                            "lines_acked": index,
                            "bytes_acked": acked_bytes,
                            "elapsed_s": now - started,
                        }
                    )
                    self._set_status(progress=progress)
                    yield progress
            self._set_status(state=PrinterState.IDLE, job_id=None, temperatures=self._temps(0, 0))
        except (asyncio.CancelledError, PrintCancelled):
            self._set_status(state=PrinterState.IDLE, job_id=None, temperatures=self._temps(0, 0))
            raise
        finally:
            self._streaming = False
            self._cancelled = False
            self._running.set()

    async def pause(self) -> None:
        if not self._streaming or not self._running.is_set():
            raise InvalidTransition(f"printer {self.name} is not printing")
        self._running.clear()
        self._set_status(state=PrinterState.PAUSED)

    async def resume(self) -> None:
        if self._running.is_set():
            raise InvalidTransition(f"printer {self.name} is not paused")
        self._running.set()
        self._set_status(state=PrinterState.PRINTING)

    async def cancel(self) -> None:
        # Without the flag the status said idle while the stream went on to the end.
        if self._streaming:
            self._cancelled = True
        with contextlib.suppress(InvalidTransition):
            self._running.set()
        self._set_status(state=PrinterState.IDLE, job_id=None)

    async def emergency_stop(self) -> None:
        self._running.set()
        self._set_status(state=PrinterState.FAULTED, message="emergency stop (M112)")
