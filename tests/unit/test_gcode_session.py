"""The stateful gate for lines sent by hand: what it learns across lines, and what it forgets."""

from __future__ import annotations

import pytest

from printforge.gcode.gate import SessionGate
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import UnsafeGcode

PRINTER = PrinterProfile(name="box", bed_x=220, bed_y=220, max_z=250, max_hotend_temp=280)
PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)


def sent(gate: SessionGate, *lines: str) -> None:
    for line in lines:
        gate.check(line, PLA)


def test_relative_moves_add_up_across_lines() -> None:
    gate = SessionGate(PRINTER)
    sent(gate, "G28", "G91", "G1 X150")
    with pytest.raises(UnsafeGcode, match=r"`G1 X150` moves X to 300\.000 mm"):
        gate.check("G1 X150", PLA)


def test_a_g92_offset_makes_x200_a_move_to_700() -> None:
    gate = SessionGate(PRINTER)
    sent(gate, "G90", "G28", "G92 X-500")
    with pytest.raises(UnsafeGcode, match=r"moves X to 700\.000"):
        gate.check("G1 X200", PLA)
    gate.check("G1 X-450", PLA)  # machine X 50


def test_nothing_moves_before_a_home() -> None:
    # Absolute moves too: an earlier job or host may have left offsets nobody here saw.
    for line in ("G1 X10", "G0 Z5", "G2 X10 Y10 I5 J0", "G5 X1 Y1 I1 J0 P0 Q1"):
        gate = SessionGate(PRINTER)
        with pytest.raises(UnsafeGcode, match=r"not known: home first \(G28\)"):
            gate.check(line, PLA)
    gate = SessionGate(PRINTER)
    sent(gate, "G28 X", "G90", "G1 X100")  # X is homed: X may move, Y may not
    with pytest.raises(UnsafeGcode, match=r"moves Y, whose position"):
        gate.check("G1 Y10", PLA)
    sent(gate, "G1 E5", "M104 S200", "M140 S60")  # no position needed


def test_while_g90_g91_is_unknown_both_readings_must_be_safe() -> None:
    gate = SessionGate(PRINTER)
    sent(gate, "G28", "G1 X100")  # X100 either way, from 0
    with pytest.raises(UnsafeGcode, match=r"relative \(G91\) mode"):
        gate.check("G1 X150", PLA)  # absolute X150 is fine, relative 250 is not
    gate.check("G90", PLA)
    gate.check("G1 X150", PLA)


def test_a_refused_line_changes_nothing() -> None:
    gate = SessionGate(PRINTER)
    sent(gate, "G28", "G91", "G1 X100")
    with pytest.raises(UnsafeGcode):
        gate.check("G1 X200", PLA)
    gate.check("G1 X100", PLA)  # from 100, not from 300


def test_a_reconnect_forgets_what_was_known() -> None:
    gate = SessionGate(PRINTER)
    sent(gate, "G90", "G28")
    assert gate.homed
    gate.forget()
    assert not gate.homed
    with pytest.raises(UnsafeGcode, match="home first"):
        gate.check("G1 X10", PLA)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("M104 S300", r"hotend to 300 °C, above the material 'PLA' limit of 235"),
        ("M140 S200", r"bed to 200 °C"),
        ("SET_HEATER_TEMPERATURE HEATER=extruder TARGET=260", r"hotend to 260"),
        ("M104 I1", r"preheat preset"),
        ("M500", r"saves settings to EEPROM"),
        ("M999", r"restarts the firmware"),
        ("G20", r"inches"),
        ("hello printer", r"not G-code: `hello printer`"),
        ("M112 is fun", r"not G-code"),
    ],
)
def test_lines_refused_without_any_position(line: str, match: str) -> None:
    with pytest.raises(UnsafeGcode, match=match):
        SessionGate(PRINTER).check(line, PLA)


def test_stopping_is_never_refused_by_hand() -> None:
    # M112 and M410 are the stop button; in a job file they are refused (test_gcode_gate).
    gate = SessionGate(PRINTER)
    sent(gate, "M112", "M410", "; just a comment", "")


def test_one_line_at_a_time() -> None:
    with pytest.raises(UnsafeGcode, match="one line at a time"):
        SessionGate(PRINTER).check("G28\nM104 S999", PLA)


def test_an_allowed_command_passes() -> None:
    profile = PRINTER.model_copy(update={"allowed_config_commands": ["M500"]})
    SessionGate(profile).check("M500", PLA)
