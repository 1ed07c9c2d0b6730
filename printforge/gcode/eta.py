"""A live ETA: the file's time plan, corrected by the pace the print shows.

No estimate made on a profile knows the machine: its real acceleration and jerk, its firmware's
look-ahead, the host's link. The plan (`gcode.timeplan`) knows the *shape* of the print - which
layers are slow - and the print itself shows the machine's pace: wall seconds per planned
second. Remaining = planned seconds still to go x that pace.

The pace is measured only over stretches of the print with no wait of unknown length in them (a
heat-up, homing, a filament change): those say nothing about how fast the machine moves. A
stretch where nothing got done (a long move, a pause) is not a stretch yet: it joins the next
one that does something. Before much is observed the pace leans on a prior (1.0, or a
simulator's 1/speed) worth `prior_weight_s` planned seconds, so the first few moves cannot swing
the ETA. Pure: the drivers feed it samples and read the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from printforge.gcode.timeplan import PlanPoint

__all__ = ["PRIOR_WEIGHT_S", "EtaEstimate", "EtaTracker"]

# How many planned seconds the prior pace counts as: about one layer of a small part, or a
# fiftieth of a short print.
PRIOR_WEIGHT_S = 30.0
PRIOR_WEIGHT_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class EtaEstimate:
    remaining_s: float
    pace: float  # wall seconds per planned second, as observed (or the prior)
    planned_done_s: float
    planned_total_s: float


class EtaTracker:
    """Follows one print: `observe` each progress sample, in order."""

    def __init__(
        self,
        planned_total_s: float,
        *,
        prior_pace: float = 1.0,
        prior_weight_s: float | None = None,
    ) -> None:
        self.planned_total_s = planned_total_s
        self.prior_pace = prior_pace
        if prior_weight_s is None:
            prior_weight_s = min(PRIOR_WEIGHT_S, PRIOR_WEIGHT_SHARE * planned_total_s)
        self.prior_weight_s = max(prior_weight_s, 1e-6)
        self._wall = 0.0  # wall seconds over the clean stretches
        self._planned = 0.0  # planned seconds over the same stretches
        self._last: tuple[float, PlanPoint] | None = None

    @property
    def pace(self) -> float:
        k = self.prior_weight_s
        return (self.prior_pace * k + self._wall) / (k + self._planned)

    def observe(self, elapsed_s: float, at: PlanPoint) -> EtaEstimate:
        """One sample: wall seconds since the print began and where it stands on the plan."""
        last = self._last
        if last is None or elapsed_s < last[0] or at.planned_s < last[1].planned_s:
            self._last = (elapsed_s, at)  # the first sample, or one out of order: start over
        elif at.waits_started != last[1].waits_done:
            self._last = (elapsed_s, at)  # a wait of unknown length may lie in this stretch
        elif at.planned_s > last[1].planned_s:
            self._wall += elapsed_s - last[0]
            self._planned += at.planned_s - last[1].planned_s
            self._last = (elapsed_s, at)
        remaining = max(self.planned_total_s - at.planned_s, 0.0) * self.pace
        return EtaEstimate(
            remaining_s=remaining,
            pace=self.pace,
            planned_done_s=at.planned_s,
            planned_total_s=self.planned_total_s,
        )
