"""The G-code state a pause must restore, read back from the commands already done."""

from __future__ import annotations

import pytest

from printforge.hardware.marlin.control import break_wait_attempts, modes_and_feed


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        ([], (True, True, 3000.0)),
        (["G90", "M83", "G1 X1 F1200"], (True, False, 1200.0)),
        (["G91", "G1 Z1"], (False, False, 3000.0)),
        (["G91", "M82", "G1 X1 F600", "G1 X2"], (False, True, 600.0)),
        (["G90", "G1 X1 f900 ; lower case", "M83"], (True, False, 900.0)),
        (["M83", "G90"], (True, True, 3000.0)),  # G90 sets E absolute too, as in Marlin
    ],
)
def test_modes_and_feed(done: list[str], expected: tuple[bool, bool, float]) -> None:
    assert modes_and_feed(done) == expected


@pytest.mark.parametrize(
    ("capabilities", "attempts"),
    [
        ({"EMERGENCY_PARSER": True}, 3),  # acts on arrival; retry in case it came too early
        ({"EMERGENCY_PARSER": False}, 0),  # would only be read after the wait: pointless
        ({}, 1),  # not reported: harmless either way, so once
        ({"AUTOREPORT_TEMP": True}, 1),
    ],
)
def test_how_often_a_heating_wait_may_be_broken(
    capabilities: dict[str, bool], attempts: int
) -> None:
    assert break_wait_attempts(capabilities) == attempts
