"""The streaming reader: the modal state across lines, and the machine points each line reaches."""

from __future__ import annotations

import math

import pytest

from printforge.gcode.reader import MachineState, Reader, Step
from printforge.models.printer import PrinterProfile

PROFILE = PrinterProfile(name="box", bed_x=200, bed_y=150, max_z=100)


def run(text: str, state: MachineState | None = None) -> tuple[Reader, list[Step]]:
    reader = Reader(PROFILE, state)
    return reader, list(reader.steps(text))


def last_point(text: str) -> tuple[float, float, float, float]:
    _, steps = run(text)
    return [s for s in steps if s.points][-1].points[-1]


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("G1 X10 Y10 Z1 E1\n", (10, 10, 1, 1)),
        ("G91\nG1 X150\nG1 X150\n", (300, 0, 0, 0)),  # relative moves add up
        ("G1 X50\nG92 X0\nG1 X20\n", (70, 0, 0, 0)),  # G92 shifts the logical origin
        ("G92 X-500\nG1 X200\n", (700, 0, 0, 0)),
        ("M83\nG1 X1 E2\nG1 X2 E2\n", (2, 0, 0, 4)),  # relative extrusion only
        ("G1 E5\nG92 E0\nG1 X1 E1\n", (1, 0, 0, 6)),  # G92 E keeps the machine's E running
        ("G20\nG1 X2 Y1\n", (50.8, 25.4, 0, 0)),  # inches are converted
        ("G20\nG1 X1\nG21\nG1 Y1\n", (25.4, 1, 0, 0)),
        ("G1 X190\nG92 X0 Y0\nG28 X\nG1 X10\n", (10, 0, 0, 0)),  # homing clears the offset
        ("SET_GCODE_OFFSET Z=0.2\nG28\nG1 Z1\n", (0, 0, 1.2, 0)),  # Klipper keeps it over G28
        ("SET_GCODE_OFFSET X_ADJUST=5\nSET_GCODE_OFFSET X_ADJUST=5\nG1 X1\n", (11, 0, 0, 0)),
    ],
)
def test_modal_state_follows_the_lines(text: str, point: tuple[float, float, float, float]) -> None:
    assert last_point(text) == pytest.approx(point)


def test_a_full_circle_and_its_bounds() -> None:
    _, steps = run("G1 X100 Y50\nG2 X100 Y50 I0 J10 E2\n")
    arc = steps[-1].points
    xs, ys = [p[0] for p in arc], [p[1] for p in arc]
    assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((90, 110, 50, 70), abs=0.02)
    assert arc[-1][3] == pytest.approx(2)


def test_a_radius_too_short_for_its_chord_is_a_half_circle_as_marlin_draws_it() -> None:
    # Marlin's plan_arc: h = sqrt(max(r^2 - d^2/4, 0)), so the centre is the chord's middle.
    _, steps = run("G1 X100 Y50\nG2 X120 Y50 R2\n")
    ys = [p[1] for p in steps[-1].points]
    assert max(ys) == pytest.approx(60, abs=0.02)


def test_extra_turns_of_an_arc() -> None:
    _, steps = run("G1 X100 Y50\nG2 X100 Y60 I0 J5 P2\n")
    length = sum(
        math.dist(a[:2], b[:2])
        for a, b in zip(steps[-1].points, steps[-1].points[1:], strict=False)
    )
    assert length == pytest.approx(5 * math.pi * 5, rel=0.01)  # half a turn plus two


def test_an_arc_in_the_zx_plane() -> None:
    # G18: the arc is in Z and X (centre offsets K and I); Y is the linear axis.
    _, steps = run("G1 X50 Y20 Z10\nG18\nG2 X70 Z10 I10 K0\n")
    zs = [p[2] for p in steps[-1].points]
    assert steps[-1].points[-1][:3] == pytest.approx((70, 20, 10))
    # Centre Z10 X60: clockwise in (Z, X), as Marlin's plan_arc takes G18's axes, goes via Z0.
    assert min(zs) == pytest.approx(0, abs=0.02) and max(zs) == pytest.approx(10, abs=0.02)
    assert all(p[1] == pytest.approx(20) for p in steps[-1].points)


def test_a_bezier_bulges_past_its_end() -> None:
    _, steps = run("G1 X150 Y75\nG5 X190 Y75 I40 J0 P40 Q0\n")
    assert max(p[0] for p in steps[-1].points) == pytest.approx(206.5, abs=0.1)


def test_feed_acceleration_and_dwell() -> None:
    _, steps = run("M204 P800\nG1 X10 F600\nG4 P250\nG4 S1\nG1 X20 F0\n")
    assert steps[1].feed == pytest.approx(10) and steps[1].accel == 800
    assert steps[2].dwell_s == 0.25 and steps[3].dwell_s == 1
    assert steps[4].feed == pytest.approx(10)  # F0 is ignored, as Marlin does


def test_power_on_knows_where_it_is_and_unknown_does_not() -> None:
    _, steps = run("G91\nG1 X10\n")
    assert steps[-1].unknown == ""
    _, steps = run("G91\nG1 X10\nG28 X\nG1 X10 Y1\n", MachineState.unknown())
    assert steps[1].unknown == "X"
    assert steps[3].unknown == "Y"  # X is homed now, Y is not


def test_g92_on_an_unknown_axis_leaves_its_offset_unknown() -> None:
    _, steps = run("G90\nG92 X0\nG1 X10\nG28\nG92 X0\nG1 X10\n", MachineState.unknown())
    assert [s.unknown for s in steps if s.points and not s.home] == ["X", ""]


def test_probing_hands_the_position_to_the_firmware() -> None:
    # After G29 only the firmware knows where the head is: a relative move is unknown, an
    # absolute one makes the axis known again.
    _, steps = run("G28\nG29\nG91\nG1 Z5\nG90\nG1 Z5\nG91\nG1 Z1\n")
    moves = [s for s in steps if s.points and not s.home]
    assert [m.unknown for m in moves] == ["Z", "", ""]


def test_a_bare_g92_leaves_the_offsets_unknown() -> None:
    # Klipper zeroes every axis, Marlin does nothing: neither reading is safe to assume.
    _, steps = run("G1 X50\nG92\nG1 X10\n")
    assert steps[-1].unknown == "X"


def test_mode_unknown_makes_every_move_unknown() -> None:
    state = MachineState.unknown()
    state.known = [True, True, True]
    state.off_known = [True, True, True]
    _, steps = run("G1 X10\nG90\nG1 X10\n", state)
    assert [s.unknown for s in steps if s.points] == ["X", ""]
