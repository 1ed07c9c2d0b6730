"""The reconnect backoff: exponential, jittered, and never above reconnect_max_s."""

from __future__ import annotations

import pytest

from printforge.hardware.marlin.driver import reconnect_wait


@pytest.mark.parametrize(
    ("delay", "jitter", "expected"),
    [
        (0.5, 0.0, 0.25),  # half the delay at the low end of the jitter
        (0.5, 0.999, 0.7495),
        (16.0, 0.5, 16.0),
        (30.0, 0.999, 30.0),  # was 44.97: the jitter went past the cap
        (30.0, 0.0, 15.0),
    ],
)
def test_reconnect_wait_is_jittered_and_capped(
    delay: float, jitter: float, expected: float
) -> None:
    assert reconnect_wait(delay, 30.0, jitter) == pytest.approx(expected)
