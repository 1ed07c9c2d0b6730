"""The live ETA every driver with progress shares: the file's time plan, corrected by pace.

A driver makes one `LiveEta` per print. The plan (`gcode.timeplan`: the file's M73 times, or
our estimator on the file) is worked out in the worker pool while the print starts, so the
first lines go out at once; until it is there the ETA is the linear guess from the share of
the file done. Then each progress sample goes through `gcode.eta.EtaTracker`, by whatever
position the driver knows: acknowledged commands, the byte the printer reads, or a percent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from printforge.gcode.eta import EtaTracker
from printforge.gcode.timeplan import PlanPoint, TimePlan, plan_file
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import PrintforgeError
from printforge.runtime.workers import run_cpu

__all__ = ["LiveEta", "finish_at", "linear_eta"]

log = logging.getLogger(__name__)


def linear_eta(elapsed_s: float, fraction: float) -> float | None:
    """Elapsed time scaled by the share done: right only if the print's pace never changes."""
    return elapsed_s * (1 - fraction) / fraction if fraction > 0 else None


class LiveEta:
    """One print's ETA. `start()` begins planning; `close()` (always) ends it.

    Args:
        prior_pace: wall seconds per planned second before any is observed (a simulator
            running `speed` times faster than real time: 1 / speed).
        commands: the number of commands the driver streams, when it numbers them: a plan of
            another length describes another file and is not used.
    """

    def __init__(
        self,
        path: Path,
        profile: PrinterProfile,
        *,
        prior_pace: float = 1.0,
        commands: int | None = None,
    ) -> None:
        self.path = path
        self.profile = profile
        self.prior_pace = prior_pace
        self.commands = commands
        self.plan: TimePlan | None = None
        self.tracker: EtaTracker | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._make_plan(), name=f"plan {self.path.name}")

    async def close(self) -> None:
        """Stop planning; never raises, so a driver's clean-up after it always runs."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _make_plan(self) -> None:
        try:
            plan = await run_cpu(plan_file, self.path, self.profile)
        except (PrintforgeError, OSError, ValueError, MemoryError) as err:
            # The print goes on without it; the ETA stays the linear guess and says so.
            log.warning("no time plan for %s: %s", self.path.name, err)
            return
        if self.commands is not None and len(plan) != self.commands:
            log.warning(
                "time plan of %s has %d commands, the stream %d: not used",
                self.path.name,
                len(plan),
                self.commands,
            )
            return
        self.plan = plan
        self.tracker = EtaTracker(plan.total_s, len(plan), prior_pace=self.prior_pace)

    # samples -------------------------------------------------------------------------------
    def at_command(self, acked: int, elapsed_s: float, fraction: float) -> dict[str, Any]:
        """The progress fields once `acked` commands are acknowledged."""
        plan = self.plan
        return self._update(plan.at_command(acked) if plan else None, elapsed_s, fraction)

    def at_byte(self, position: int, elapsed_s: float, fraction: float) -> dict[str, Any]:
        """The same once the printer's file reader is at byte `position`."""
        plan = self.plan
        return self._update(plan.at_byte(position) if plan else None, elapsed_s, fraction)

    def at_percent(self, percent: float, elapsed_s: float) -> dict[str, Any]:
        """The same from a percent of the planned time (the file's M73 P, as Bambu reports)."""
        plan = self.plan
        return self._update(plan.at_percent(percent) if plan else None, elapsed_s, percent / 100)

    def _update(self, at: PlanPoint | None, elapsed_s: float, fraction: float) -> dict[str, Any]:
        tracker, plan = self.tracker, self.plan
        if at is None or tracker is None or plan is None:
            eta = linear_eta(elapsed_s, fraction)
            return {"eta_s": eta, "eta_source": "linear", "finish_at": finish_at(eta)}
        estimate = tracker.observe(elapsed_s, at)
        return {
            "eta_s": round(estimate.remaining_s, 1),
            "eta_source": plan.source,
            "finish_at": finish_at(estimate.remaining_s),
            "planned_s": round(plan.total_s, 1),
            "pace": round(estimate.pace, 4),
            "command_cost_s": round(estimate.command_cost_s, 6),
        }


def finish_at(eta_s: float | None) -> datetime | None:
    """The wall-clock time an ETA points at (whole seconds, UTC)."""
    if eta_s is None:
        return None
    return (datetime.now(UTC) + timedelta(seconds=eta_s)).replace(microsecond=0)
