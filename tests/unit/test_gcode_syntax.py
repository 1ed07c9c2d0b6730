"""One G-code line as firmware reads it: a table of lines and their readings."""

from __future__ import annotations

import pytest

from printforge.gcode.syntax import checksum, parse_line


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        ("G1 X10 Y20.5 E.4 F1200", "G1", {"X": 10, "Y": 20.5, "E": 0.4, "F": 1200}),
        ("G1X10Y5E-1", "G1", {"X": 10, "Y": 5, "E": -1}),  # words run together
        ("G1 X 250", "G1", {"X": 250}),  # a blank between letter and value
        ("G1 X1E5", "G1", {"X": 1, "E": 5}),  # E starts a word, never an exponent
        ("G1 Y10E1.5", "G1", {"Y": 10, "E": 1.5}),
        ("g1 x10 y-2", "G1", {"X": 10, "Y": -2}),
        ("G01 X3", "G1", {"X": 3}),
        ("G 1 X3", "G1", {"X": 3}),
        ("N10 G1 X5*84", "G1", {"X": 5}),
        ("N7 M500 ; save", "M500", {}),
        ("G28 X Y", "G28", {"X": None, "Y": None}),
        ("G28 XY", "G28", {"X": None, "Y": None}),
        ("M84 XYE", "M84", {"X": None, "Y": None, "E": None}),
        ("G29.1 Z0.1", "G29.1", {"Z": 0.1}),
        ("M92 E400:420", "M92", {"E": 400}),  # RepRapFirmware list: the first value
        ("T1", "T1", {}),
        ("T?", "T?", {}),
        ("M104 S200 B260 F1", "M104", {"S": 200, "B": 260, "F": 1}),
        ("G1\tX4\tY5", "G1", {"X": 4, "Y": 5}),
    ],
)
def test_classic_lines(raw: str, code: str, words: dict[str, float | None]) -> None:
    line = parse_line(raw, 3)
    assert line is not None and line.error is None
    assert line.code == code
    assert line.words == words
    assert line.number == 3


@pytest.mark.parametrize("raw", ["", ";", "; a comment", "   ", "  ; indented comment", "N12"])
def test_blank_and_comment_lines_are_nothing(raw: str) -> None:
    assert parse_line(raw) is None


def test_a_line_number_and_checksum_frame_the_command() -> None:
    line = parse_line("N10 G1 X5*84")
    assert line is not None
    assert (line.line_number, line.command, line.code) == (10, "G1 X5", "G1")
    assert checksum(b"N10 G1 X5") == 84


@pytest.mark.parametrize(
    ("raw", "args"),
    [
        (
            "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200",
            {"HEATER": "extruder", "TARGET": "200"},
        ),
        ("set_gcode_offset z=0.05", {"Z": "0.05"}),
        ("PRINT_START BED=60 EXTRUDER='210'", {"BED": "60", "EXTRUDER": "210"}),
        ("BED_MESH_CALIBRATE # levels the bed", {}),
    ],
)
def test_klipper_extended_commands(raw: str, args: dict[str, str]) -> None:
    line = parse_line(raw)
    assert line is not None and line.error is None and line.extended
    assert line.args == args


@pytest.mark.parametrize(
    ("raw", "text"),
    [("M117 Printing layer 3", "Printing layer 3"), ("M23 part.gco", "part.gco")],
)
def test_message_and_file_commands_take_free_text(raw: str, text: str) -> None:
    line = parse_line(raw)
    assert line is not None and line.error is None and line.text == text


def test_quoted_strings_of_reprapfirmware() -> None:
    line = parse_line('M98 P"0:/macros/home all.g"')
    assert line is not None and line.error is None
    assert line.args == {"P": "0:/macros/home all.g"}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("M112 is fun", "not a G-code word"),
        ("Hello world", "KEY=VALUE"),
        ("# printforge", "does not start with a command"),
        ("| engine | what it is |", "does not start with a command"),
        ("G-code is parsed in five places", "does not start with a command"),
        ("G1 X10 X500", "gives X twice"),
        ("G1 X10 (Y500)", "parenthesis"),
        ("G1 X{move.axes[0].max}", "expression"),
        ("if move.axes[0].homed", "meta command"),
        ("G1 X1.2.3", "not a G-code word"),
        ("G1 X١٢", "not G-code outside a message"),  # digits firmware does not read as digits
        ("G1 XINF", "not a G-code word"),
    ],
)
def test_what_is_not_gcode_says_why(raw: str, why: str) -> None:
    line = parse_line(raw)
    assert line is not None
    assert line.error is not None and why in line.error
