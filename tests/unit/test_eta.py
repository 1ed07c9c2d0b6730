"""The live ETA: a file's time plan (M73 or our estimator) and its correction by the pace.

The traces are progress as drivers see it: (wall seconds, where the print stands on the plan).
`tests/data/eta/*.json` were recorded by `scripts/bench_eta.py --record` on the virtual printer
whose machine is not the profile's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from printforge.gcode.analysis import analyse_text
from printforge.gcode.eta import EtaTracker
from printforge.gcode.timeplan import PlanPoint, TimePlan, m73_lines, plan_text
from printforge.models.printer import PrinterProfile

PROFILE = PrinterProfile(name="p", max_acceleration=1000, max_jerk=8, max_feedrate_xy=200)
TRACES = Path(__file__).parents[1] / "data" / "eta"


def _part(layers: int = 6) -> str:
    """Heat, home, then square layers of growing size: layer times that differ."""
    out = ["M140 S60", "M190 S60", "M104 S210", "M109 S210", "G28", "G92 E0", "G1 F1800"]
    e = 0.0
    for n in range(layers):
        z = 0.2 * (n + 1)
        side = 10 + 8 * n
        out.append(f"G1 Z{z:.2f} F600")
        out.append("G1 F1800")
        for x, y in ((side, 0), (side, side), (0, side), (0, 0)):
            e += side * 0.05
            out.append(f"G1 X{x} Y{y} E{e:.4f}")
    out += ["M104 S0", "M140 S0"]
    return "\n".join(out) + "\n"


# the plan -------------------------------------------------------------------------------------


def test_the_plan_of_a_file_is_the_estimators_time_command_by_command() -> None:
    text = _part()
    plan = plan_text(text, PROFILE)
    analysis = analyse_text(text, Path("part.gcode"), PROFILE, size_bytes=len(text))
    assert plan.source == "estimate"
    assert len(plan) == len(text.splitlines())
    assert plan.total_s == pytest.approx(analysis.estimated_time_s, abs=0.01)
    assert np.all(np.diff(plan.done_s) >= 0)
    assert int(plan.byte_end[-1]) == len(text.encode())
    # M190, M109 and G28 last as long as the machine takes: counted as waits.
    assert plan.waits.tolist()[:6] == [0, 1, 1, 2, 3, 3]


def test_positions_on_the_plan_say_which_waits_may_be_running() -> None:
    plan = plan_text(_part(), PROFILE)
    # One command acknowledged (M140): M190, next, may be running; none is finished.
    assert plan.at_command(1) == PlanPoint(0.0, 0, 1)
    # All of the start acknowledged: three waits finished, none running.
    start = plan.at_command(7)
    assert (start.waits_done, start.waits_started) == (3, 3)
    # Klipper's reader just past the M190 line: it may be waiting there.
    m190_end = int(plan.byte_end[1])
    assert plan.at_byte(m190_end) == PlanPoint(0.0, 0, 1)
    # Half of the planned time, as a percent: the planned seconds are exact.
    assert plan.at_percent(50).planned_s == pytest.approx(plan.total_s / 2)
    assert plan.at_percent(0).waits_started >= 1  # the heat-up at 0 % may be running


def test_m73_lines_make_the_plan_the_slicers() -> None:
    text = _part(12)
    ours = plan_text(text, PROFILE)
    # A slicer whose machine is twice as slow: its M73 says so; the plan follows it.
    marks = dict(m73_lines(ours.done_s * 2))
    lines = text.splitlines()
    with_m73: list[str] = []
    for i, line in enumerate(lines):
        with_m73 += [marks[i], line] if i in marks else [line]
    theirs = plan_text("\n".join(with_m73) + "\n", PROFILE)
    assert theirs.source == "m73"
    assert theirs.total_s == pytest.approx(2 * ours.total_s, rel=0.02 + 60 / ours.total_s)
    # The same shape: each command's share of the whole, within the percent marks' step.
    commands = [i for i, line in enumerate(with_m73) if not line.startswith("M73")]
    share = theirs.done_s[commands] / theirs.total_s
    assert np.max(np.abs(share - ours.done_s / ours.total_s)) < 0.06


def test_m73_lines_round_down_the_percent_and_up_the_minutes() -> None:
    done = np.array([0.0, 30.0, 90.0, 150.0, 300.0])
    assert m73_lines(done) == [
        (0, "M73 P0 R5"),
        (2, "M73 P10 R5"),
        (3, "M73 P30 R4"),
        (4, "M73 P50 R3"),
    ]


def test_a_file_with_a_single_m73_keeps_our_estimate() -> None:
    plan = plan_text("M73 P0 R90\n" + _part(), PROFILE)
    assert plan.source == "estimate"


# the correction ---------------------------------------------------------------------------------


def _machine_trace(
    plan: TimePlan, pace: float, heat_s: float, step: int = 1
) -> list[tuple[float, PlanPoint]]:
    """A machine `pace` times slower than the plan, heating for `heat_s` at the start, seen
    through acknowledged commands every `step` commands."""
    trace = []
    elapsed = 0.0
    prev = 0.0
    for acked in range(1, len(plan) + 1, step):
        at = plan.at_command(acked)
        elapsed += (at.planned_s - prev) * pace
        if at.waits_done and not trace[-1][1].waits_done:
            elapsed += heat_s
        prev = at.planned_s
        trace.append((elapsed, at))
    return trace


def test_a_steady_machine_slower_than_its_profile_is_read_right_after_the_first_layers() -> None:
    plan = plan_text(_part(12), PROFILE)
    trace = _machine_trace(plan, pace=1.25, heat_s=240.0)
    tracker = EtaTracker(plan.total_s)
    total = trace[-1][0]
    for elapsed, at in trace:
        estimate = tracker.observe(elapsed, at)
        if at.planned_s > 0.25 * plan.total_s:
            assert estimate.remaining_s == pytest.approx(total - elapsed, rel=0.03, abs=1.0)
    # The four minutes of heating were not taken for slow printing.
    assert tracker.pace == pytest.approx(1.25, rel=0.03)


def test_the_prior_pace_holds_until_moves_are_seen() -> None:
    tracker = EtaTracker(1000.0, prior_pace=0.05)
    first = tracker.observe(0.0, PlanPoint(0.0, 0, 1))
    assert first.remaining_s == pytest.approx(50.0)
    # A heat-up of 100 wall seconds ends: nothing is learnt from it.
    after = tracker.observe(100.0, PlanPoint(0.0, 1, 1))
    assert after.pace == pytest.approx(0.05)


def test_a_stall_joins_the_next_stretch_and_a_wait_splits_it() -> None:
    tracker = EtaTracker(100.0, prior_weight_s=0.0001)
    tracker.observe(0.0, PlanPoint(0.0, 0, 0))
    tracker.observe(10.0, PlanPoint(10.0, 0, 0))
    tracker.observe(25.0, PlanPoint(10.0, 0, 0))  # a long move: nothing acknowledged
    tracker.observe(30.0, PlanPoint(20.0, 0, 0))  # 20 s of wall for 10 s of plan
    assert tracker.pace == pytest.approx(30 / 20, rel=1e-3)
    tracker.observe(31.0, PlanPoint(20.0, 0, 1))  # an M109 is next
    tracker.observe(300.0, PlanPoint(20.0, 1, 1))  # ... and done, after 269 s
    tracker.observe(310.0, PlanPoint(30.0, 1, 1))
    assert tracker.pace == pytest.approx(40 / 30, rel=1e-3)


@pytest.mark.parametrize("trace", sorted(TRACES.glob("*.json")), ids=lambda p: p.stem)
def test_recorded_traces_hold_within_five_percent_from_a_quarter_on(trace: Path) -> None:
    """Real runs on the virtual printer whose true machine is 10-30 % off the profile."""
    data = json.loads(trace.read_text())
    tracker = EtaTracker(data["planned_total_s"], prior_pace=data["prior_pace"])
    total = data["total_s"]
    worst = 0.0
    for elapsed, planned, waits_done, waits_started, fraction in data["samples"]:
        estimate = tracker.observe(elapsed, PlanPoint(planned, waits_done, waits_started))
        remaining = total - elapsed
        if fraction >= 0.25 and remaining > 0.02 * total:
            worst = max(worst, abs(estimate.remaining_s - remaining) / remaining)
    assert worst <= 0.05
