"""The G-code state a pause must restore, read back from the commands already done."""

from __future__ import annotations

import pytest

from printforge.hardware.marlin.control import modes_and_feed


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
