"""A live ETA: the file's time plan, corrected by the pace the print shows.

No estimate made on a profile knows the machine: its real acceleration and jerk, its firmware's
look-ahead, the host's link. The plan (`gcode.timeplan`) knows the *shape* of the print - which
layers are slow - and the print shows how the machine keeps to it. One pace (wall seconds per
planned second) is not enough: a machine whose jerk is lower than its profile's loses most on
dense stretches of short moves (curves, thin walls, small perimeters), and so does a host whose
link cannot feed lines as fast as the file wants them; long infill lines lose little. So the
print's time is fitted as

    wall seconds = pace x planned seconds + cost x commands

over chunks of the print seen so far (a least-squares fit of the two, each chunk weighed by
its planned length), and what is left of the print is the same sum over what is left of the
plan. A print whose layers change from sparse to dense is then read right once it has shown
some of each, and a uniform one reads its pace with a cost of about nothing.

Chunks holding a wait of unknown length (a heat-up, homing, a filament change) are left out:
they say nothing about how fast the machine moves. A chunk ends once it holds `chunk_s`
planned seconds, so acknowledgements that run ahead of the motion (the planner's queue) or
arrive in bursts even out. Before much is seen the fit leans on a prior pace (1.0, or a
simulator's 1/speed) worth `prior_weight_s` planned seconds, and no cost per command. Pure:
the drivers feed it samples and read the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from printforge.gcode.timeplan import PlanPoint

__all__ = ["EtaEstimate", "EtaTracker"]

# The prior pace counts as this many planned seconds (one layer of a small part), or as this
# share of a short print.
PRIOR_WEIGHT_S = 30.0
PRIOR_WEIGHT_SHARE = 0.02
# A chunk of the fit: this share of the plan, within these bounds (planned seconds).
CHUNK_SHARE = 0.02
CHUNK_MIN_S = 5.0
CHUNK_MAX_S = 120.0
# A whisper of a prior on the cost per command (wall seconds per command, squared weight):
# enough to keep the fit solvable before any commands are seen, too little to bias it.
COST_PRIOR_WEIGHT = 1e-3


@dataclass(frozen=True, slots=True)
class EtaEstimate:
    remaining_s: float
    pace: float  # wall seconds per planned second
    command_cost_s: float  # wall seconds each command adds beyond its planned time
    planned_done_s: float
    planned_total_s: float


class EtaTracker:
    """Follows one print: `observe` each progress sample, in order."""

    def __init__(
        self,
        planned_total_s: float,
        commands_total: int = 0,
        *,
        prior_pace: float = 1.0,
        prior_weight_s: float | None = None,
        chunk_s: float | None = None,
    ) -> None:
        self.planned_total_s = planned_total_s
        self.commands_total = commands_total
        self.prior_pace = prior_pace
        if prior_weight_s is None:
            prior_weight_s = min(PRIOR_WEIGHT_S, PRIOR_WEIGHT_SHARE * planned_total_s)
        self.prior_weight_s = max(prior_weight_s, 1e-6)
        if chunk_s is None:
            chunk_s = min(max(CHUNK_SHARE * planned_total_s, CHUNK_MIN_S), CHUNK_MAX_S)
        self.chunk_s = chunk_s
        # Normal equations of the fit: sums over chunks of x x^T / planned and x wall / planned,
        # x = (planned seconds, commands) of the chunk.
        self._pp = self._pc = self._cc = 0.0
        self._pw = self._cw = 0.0
        self._start: tuple[float, PlanPoint] | None = None  # where the open chunk began
        self.pace = prior_pace
        self.command_cost_s = 0.0

    def observe(self, elapsed_s: float, at: PlanPoint) -> EtaEstimate:
        """One sample: wall seconds since the print began and where it stands on the plan."""
        start = self._start
        if start is None or elapsed_s < start[0] or at.planned_s < start[1].planned_s:
            self._start = (elapsed_s, at)  # the first sample, or one out of order: start over
        elif at.waits_started != start[1].waits_done:
            self._start = (elapsed_s, at)  # a wait of unknown length may lie in this chunk
        elif at.planned_s - start[1].planned_s >= self.chunk_s:
            self._add_chunk(
                elapsed_s - start[0],
                at.planned_s - start[1].planned_s,
                max(at.commands - start[1].commands, 0),
            )
            self._start = (elapsed_s, at)
        planned_left = max(self.planned_total_s - at.planned_s, 0.0)
        commands_left = max(self.commands_total - at.commands, 0)
        remaining = self.pace * planned_left + self.command_cost_s * commands_left
        return EtaEstimate(
            remaining_s=remaining,
            pace=self.pace,
            command_cost_s=self.command_cost_s,
            planned_done_s=at.planned_s,
            planned_total_s=self.planned_total_s,
        )

    def _add_chunk(self, wall: float, planned: float, commands: int) -> None:
        self._pp += planned  # planned^2 / planned
        self._pc += commands
        self._cc += commands * commands / planned
        self._pw += wall
        self._cw += commands * wall / planned
        self.pace, self.command_cost_s = self._solve()

    def _solve(self) -> tuple[float, float]:
        """Least squares with the prior, neither coefficient below zero."""
        k = self.prior_weight_s
        pp, pc, cc = self._pp + k, self._pc, self._cc + COST_PRIOR_WEIGHT
        pw, cw = self._pw + k * self.prior_pace, self._cw
        det = pp * cc - pc * pc
        pace = (pw * cc - pc * cw) / det if det > 0 else -1.0
        cost = (pp * cw - pc * pw) / det if det > 0 else -1.0
        if pace >= 0 and cost >= 0:
            return pace, cost
        # One of them would go below zero: the other alone explains the print.
        if pace < 0 <= cost:
            return 0.0, max(cw / cc, 0.0)
        return max(pw / pp, 0.0), 0.0
