"""The one print-time estimator: the whole-file planner and its online form agree."""

from __future__ import annotations

import numpy as np
import pytest

from printforge.gcode.timing import OnlinePlanner, estimate_time, trapezoid_time
from printforge.models.printer import PrinterProfile

PROFILE = PrinterProfile(name="p", max_acceleration=1500, max_jerk=10, max_feedrate_xy=300)


def test_one_move_is_the_trapezoid_formula() -> None:
    d = np.array([[100.0, 0.0, 0.0, 0.0]])
    whole = estimate_time(d, np.array([100.0]), np.array([1500.0]), PROFILE)
    assert whole[0] == pytest.approx(trapezoid_time(100.0, 100.0, 1500.0, 100.0, 100.0))
    seconds, saved = OnlinePlanner(PROFILE).add((100.0, 0.0, 0.0, 0.0), 100.0, 1500.0)
    assert (seconds, saved) == pytest.approx((whole[0], 0.0))


def test_the_online_planner_lands_near_the_whole_file_planner() -> None:
    # A zigzag of short and long segments with corners of every angle, as a slicer writes.
    rng = np.random.default_rng(7)
    angles = rng.uniform(0, 2 * np.pi, 2000)
    lengths = rng.choice([0.3, 2.0, 40.0], 2000)
    d = np.column_stack(
        [np.cos(angles) * lengths, np.sin(angles) * lengths, 0 * lengths, lengths * 0.03]
    )
    feed = rng.choice([30.0, 60.0, 150.0], 2000)
    whole = float(np.sum(estimate_time(d, feed, np.full(2000, 1500.0), PROFILE)))
    planner = OnlinePlanner(PROFILE)
    online = 0.0
    for row, f in zip(d, feed, strict=True):
        seconds, saved = planner.add(tuple(row), float(f), 1500.0)
        online += seconds - saved
    assert online == pytest.approx(whole, rel=0.03)
    assert online >= whole * 0.999  # a shorter look-ahead is never faster


def test_a_straight_line_cut_in_pieces_cruises_through_the_joints() -> None:
    planner = OnlinePlanner(PROFILE)
    total = 0.0
    for _ in range(10):
        seconds, saved = planner.add((10.0, 0.0, 0.0, 0.0), 100.0, 1500.0)
        total += seconds - saved
    assert total == pytest.approx(trapezoid_time(100.0, 100.0, 1500.0, 100.0, 100.0), rel=1e-6)
