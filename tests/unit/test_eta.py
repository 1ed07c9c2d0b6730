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
from printforge.gcode.timeplan import PlanPoint, TimePlan, m73_lines, plan_text, with_m73
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
    assert plan.at_command(1) == PlanPoint(0.0, 0, 1, commands=1)
    # All of the start acknowledged: three waits finished, none running.
    start = plan.at_command(7)
    assert (start.waits_done, start.waits_started) == (3, 3)
    # Klipper's reader just past the M190 line: it may be waiting there.
    m190_end = int(plan.byte_end[1])
    assert plan.at_byte(m190_end) == PlanPoint(0.0, 0, 1, commands=1)
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


def test_a_sliced_file_gets_its_plan_as_m73_at_its_layer_changes() -> None:
    text = _part(12).replace("G1 Z", ";LAYER:\nG1 Z")
    ours = plan_text(text, PROFILE)
    marked = with_m73(text, PROFILE).splitlines()
    m73 = [i for i, line in enumerate(marked) if line.startswith("M73")]
    assert len(m73) > 5
    assert marked[m73[0]] == f"M73 P0 R{int(-(-ours.total_s // 60))}"
    assert marked[-1] == "M73 P100 R0"
    # Between the first and the last, only where a layer begins: no run of moves is split.
    assert all(marked[i + 1] == ";LAYER:" for i in m73[1:-1])
    again = plan_text("\n".join(marked) + "\n", PROFILE)
    assert again.source == "m73"
    assert [line for line in marked if not line.startswith("M73")] == text.splitlines()


def test_a_file_with_a_single_m73_keeps_our_estimate() -> None:
    plan = plan_text("M73 P0 R90\n" + _part(), PROFILE)
    assert plan.source == "estimate"


# the correction ---------------------------------------------------------------------------------


def _machine_trace(
    plan: TimePlan, pace: float, heat_s: float, cost_s: float = 0.0
) -> list[tuple[float, PlanPoint]]:
    """A machine `pace` times slower than the plan, `cost_s` more per command, heating for
    `heat_s` once the start's waits are reached, seen through acknowledged commands."""
    trace: list[tuple[float, PlanPoint]] = []
    elapsed = 0.0
    prev = 0.0
    for acked in range(1, len(plan) + 1):
        at = plan.at_command(acked)
        elapsed += (at.planned_s - prev) * pace + cost_s
        if trace and at.waits_done > trace[-1][1].waits_done:
            elapsed += heat_s
        prev = at.planned_s
        trace.append((elapsed, at))
    return trace


def test_a_steady_machine_slower_than_its_profile_is_read_right_after_the_first_layers() -> None:
    plan = plan_text(_part(20), PROFILE)
    trace = _machine_trace(plan, pace=1.25, heat_s=240.0)
    tracker = EtaTracker(plan.total_s, len(plan))
    total = trace[-1][0]
    for elapsed, at in trace:
        estimate = tracker.observe(elapsed, at)
        if at.planned_s > 0.25 * plan.total_s:
            assert estimate.remaining_s == pytest.approx(total - elapsed, rel=0.05, abs=1.0)
    # The four minutes of heating were not taken for slow printing.
    assert tracker.pace == pytest.approx(1.25, rel=0.03)
    # ... and no cost per command to speak of: the pace alone explains the print.
    assert tracker.command_cost_s * len(plan) < 0.02 * total


def test_a_cost_per_command_is_told_from_a_slow_pace() -> None:
    """Sparse layers, then dense ones: a machine that loses time on every short move is
    read right once it has shown some of each."""
    sparse = _part(8)
    dense = []
    e = 100.0
    for n in range(8, 24):
        dense.append(f"G1 Z{0.2 * (n + 1):.2f} F600")
        for k in range(200):  # a circle of 200 short moves
            e += 0.01
            x, y = 20 + 10 * np.cos(k / 200 * 2 * np.pi), 20 + 10 * np.sin(k / 200 * 2 * np.pi)
            dense.append(f"G1 X{x:.3f} Y{y:.3f} E{e:.4f} F1800")
    plan = plan_text(sparse.replace("M104 S0\nM140 S0\n", "") + "\n".join(dense) + "\n", PROFILE)
    trace = _machine_trace(plan, pace=1.1, heat_s=100.0, cost_s=0.02)
    tracker = EtaTracker(plan.total_s, len(plan), chunk_s=5.0)
    total = trace[-1][0]
    dense_from = next(at.planned_s for _, at in trace if at.commands > len(sparse.splitlines()))
    checked = 0
    for elapsed, at in trace:
        estimate = tracker.observe(elapsed, at)
        if at.planned_s > dense_from + 0.25 * (plan.total_s - dense_from):
            checked += 1
            assert estimate.remaining_s == pytest.approx(total - elapsed, rel=0.05, abs=1.0)
    assert checked
    assert (tracker.pace, tracker.command_cost_s) == pytest.approx((1.1, 0.02), rel=0.05)


def test_the_prior_pace_holds_until_moves_are_seen() -> None:
    tracker = EtaTracker(1000.0, 100, prior_pace=0.05)
    first = tracker.observe(0.0, PlanPoint(0.0, 0, 1, 0))
    assert first.remaining_s == pytest.approx(50.0)
    # A heat-up of 100 wall seconds ends: nothing is learnt from it.
    after = tracker.observe(100.0, PlanPoint(0.0, 1, 1, 1))
    assert after.pace == pytest.approx(0.05)
    assert after.remaining_s == pytest.approx(50.0)


def test_a_stall_stays_in_its_chunk_and_a_wait_ends_it() -> None:
    tracker = EtaTracker(1000.0, 0, prior_weight_s=1e-6, chunk_s=10.0)
    tracker.observe(0.0, PlanPoint(0.0, 0, 0))
    tracker.observe(5.0, PlanPoint(5.0, 0, 0))
    tracker.observe(20.0, PlanPoint(5.0, 0, 0))  # a long move: nothing acknowledged
    tracker.observe(25.0, PlanPoint(10.0, 0, 0))  # one chunk: 25 s of wall for 10 s of plan
    assert tracker.pace == pytest.approx(2.5, rel=1e-3)
    tracker.observe(26.0, PlanPoint(15.0, 0, 1))  # an M109 is next
    tracker.observe(300.0, PlanPoint(15.0, 1, 1))  # ... and done, after 274 s
    tracker.observe(315.0, PlanPoint(25.0, 1, 1))  # 15 s for 10 s: the heat-up is not in it
    assert tracker.pace == pytest.approx(40 / 20, rel=1e-3)


@pytest.mark.parametrize("trace", sorted(TRACES.glob("*.json")), ids=lambda p: p.stem)
def test_recorded_traces_are_read_far_better_than_the_linear_guess(trace: Path) -> None:
    """Real runs on the virtual printer whose true machine is 10-30 % off the profile.

    The bound is what these runs allow, not the 5 % aimed at: they were recorded on a shared
    2-core machine whose load made the host feed the simulated printer unevenly (the same
    stretch of walls took 1.29-1.48 times its plan), which no ETA can foresee (docs/farm.md,
    "ETA"). The linear guess was off by 23-400 % at the same points.
    """
    data = json.loads(trace.read_text())
    tracker = EtaTracker(
        data["planned_total_s"], data["commands_total"], prior_pace=data["prior_pace"]
    )
    total = data["total_s"]
    points = iter((0.25, 0.5, 0.75))
    point = next(points)
    checked = 0
    for elapsed, planned, waits_done, waits_started, fraction, commands in data["samples"]:
        at = PlanPoint(planned, waits_done, waits_started, commands)
        estimate = tracker.observe(elapsed, at)
        if fraction < point:
            continue
        remaining = total - elapsed
        error = abs(estimate.remaining_s - remaining) / remaining
        linear = abs(elapsed * (1 - fraction) / fraction - remaining) / remaining
        assert error <= 0.10, (point, error)
        assert error * 2 <= linear, (point, error, linear)
        checked += 1
        point = next(points, 2.0)
    assert checked == 3
