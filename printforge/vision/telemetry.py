"""Telemetry rules: what the printer's own status says is wrong, beside what the camera sees.

Pure: feed `TelemetryRules.see(status, now)` every status the printer reports; it answers the
findings that are new. Each has a kind, a score on the detector's scale (1.0: certain) and
words for people.

- thermal: a heater that had reached its target drifts more than `THERMAL_DRIFT_C` from it,
  for `THERMAL_SAMPLES` reports in a row (a heater failing, a thermistor come loose);
- stalled: printing, and no line acknowledged for `stall_s`;
- resend storm: more than `resends_per_min` resends within a minute (a failing cable, noise);
- firmware: the firmware paused for a reason of its own (filament runout, M600) or said so.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from printforge.models.printer import PrinterState, PrinterStatus
from printforge.vision.config import DetectionConfig

__all__ = ["Finding", "TelemetryRules"]

THERMAL_DRIFT_C = 15.0
THERMAL_SAMPLES = 5
_FIRMWARE = re.compile(r"runout|out_of_filament|paused by firmware|thermal runaway", re.I)


@dataclass(frozen=True)
class Finding:
    kind: str  # thermal | stalled | resend_storm | firmware
    score: float
    message: str


class TelemetryRules:
    """The rules for one print; `see` each status in order."""

    def __init__(self, config: DetectionConfig | None = None) -> None:
        self.config = config or DetectionConfig()
        self._reached: set[str] = set()  # heaters that reached their target this print
        self._drift: dict[str, int] = {}
        self._acked: tuple[int, float] | None = None  # lines acked, since when
        self._resends: deque[tuple[float, int]] = deque()
        self._raised: set[str] = set()

    def see(self, status: PrinterStatus, now: float) -> list[Finding]:
        found: list[Finding] = []
        found += self._thermal(status)
        found += self._progress(status, now)
        if status.message and _FIRMWARE.search(status.message):
            found.append(Finding("firmware", 1.0, f"the printer says: {status.message}"))
        fresh = [f for f in found if f.kind not in self._raised]
        self._raised.update(f.kind for f in fresh)
        return fresh

    def _thermal(self, status: PrinterStatus) -> list[Finding]:
        out = []
        for heater, temp in status.temperatures.items():
            if temp.target <= 0:
                self._reached.discard(heater)
                continue
            if abs(temp.actual - temp.target) <= 3.0:
                self._reached.add(heater)
            if heater not in self._reached:
                continue  # still heating up
            if abs(temp.actual - temp.target) > THERMAL_DRIFT_C:
                self._drift[heater] = self._drift.get(heater, 0) + 1
            else:
                self._drift[heater] = 0
            if self._drift[heater] >= THERMAL_SAMPLES:
                out.append(
                    Finding(
                        "thermal",
                        1.0,
                        f"{heater} at {temp.actual:.0f} °C, set to {temp.target:.0f} °C,"
                        f" after it had reached it",
                    )
                )
        return out

    def _progress(self, status: PrinterStatus, now: float) -> list[Finding]:
        progress = status.progress
        if progress is None or status.state is not PrinterState.PRINTING:
            self._acked = None
            return []
        out = []
        if self._acked is None or progress.lines_acked != self._acked[0]:
            self._acked = (progress.lines_acked, now)
        elif now - self._acked[1] >= self.config.stall_s:
            out.append(
                Finding(
                    "stalled",
                    1.0,
                    f"no line acknowledged for {now - self._acked[1]:.0f} s while printing",
                )
            )
        self._resends.append((now, progress.resends))
        while self._resends and now - self._resends[0][0] > 60.0:
            self._resends.popleft()
        burst = progress.resends - self._resends[0][1]
        if burst > self.config.resends_per_min:
            out.append(Finding("resend_storm", 1.0, f"{burst} line resends within a minute"))
        return out
