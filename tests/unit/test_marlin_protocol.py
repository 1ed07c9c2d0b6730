"""Table tests of the pure Marlin protocol functions."""

from __future__ import annotations

import pytest

from printforge.hardware.marlin import protocol as p


@pytest.mark.parametrize(
    ("number", "command", "expected"),
    [
        (0, "M110 N0", b"N0 M110 N0*125\n"),
        (1, "G1 X10", b"N1 G1 X10*" + str(p.checksum(b"N1 G1 X10")).encode() + b"\n"),
        (123, "M105", b"N123 M105*" + str(p.checksum(b"N123 M105")).encode() + b"\n"),
    ],
)
def test_frame(number: int, command: str, expected: bytes) -> None:
    assert p.frame(number, command) == expected


def test_checksum_is_xor_of_bytes() -> None:
    assert p.checksum(b"") == 0
    assert p.checksum(b"N1 G28") == (
        ord("N") ^ ord("1") ^ ord(" ") ^ ord("G") ^ ord("2") ^ ord("8")
    )


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (p.frame(7, "G1 X1 Y2"), (7, "G1 X1 Y2", True)),
        (b"N7 G1 X1 Y2*0\n", (7, "G1 X1 Y2", False)),
        (b"N7 G1 X1 Y2\n", (7, "G1 X1 Y2", False)),  # numbered but no checksum
        (b"G1 X1*12\n", (None, "G1 X1", False)),  # checksum without a number
        (b"M105\n", (None, "M105", True)),  # plain lines are accepted unchecked
        (b"N7 G1 X1 Y2*abc\n", (7, "G1 X1 Y2", False)),
    ],
)
def test_unframe(wire: bytes, expected: tuple[int | None, str, bool]) -> None:
    assert p.unframe(wire) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("G1 X10 ; move", "G1 X10"),
        ("  ; only a comment", ""),
        ("\tM104 S200  \r\n", "M104 S200"),
        ("", ""),
    ],
)
def test_strip_comment(raw: str, expected: str) -> None:
    assert p.strip_comment(raw) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ok", p.Ok()),
        ("ok N12 P15 B3", p.Ok(12, 15, 3)),
        (
            "ok T:20.1 /0.0 B:19.8 /0.0 @:0 B@:0",
            p.Ok(temperatures=p.Temperatures({"T": (20.1, 0.0), "B": (19.8, 0.0)})),
        ),
        ("Resend: 42", p.Resend(42)),
        ("Resend:42", p.Resend(42)),
        ("rs N42", p.Resend(42)),
        ("rs 42", p.Resend(42)),
        ("echo:busy: processing", p.Busy("processing")),  # as Marlin prints it
        ("echo:busy: paused for user", p.Busy("paused for user")),
        ("busy: processing", p.Busy("processing")),  # without echo: (older builds)
        ('echo:Unknown command: "G999"', p.Echo('Unknown command: "G999"')),
        (
            "Error:checksum mismatch, Last Line: 41",
            p.FirmwareError("checksum mismatch, Last Line: 41", False, 41),
        ),
        (
            "Error:Line Number is not Last Line Number+1, Last Line: 9",
            p.FirmwareError("Line Number is not Last Line Number+1, Last Line: 9", False, 9),
        ),
        (
            "Error:No Checksum with line number, Last Line: 3",
            p.FirmwareError("No Checksum with line number, Last Line: 3", False, 3),
        ),
        (
            "Error:Printer halted. kill() called!",
            p.FirmwareError("Printer halted. kill() called!", True),
        ),
        (
            "Error:Thermal Runaway, system stopped! Heater_ID: E0",
            p.FirmwareError("Thermal Runaway, system stopped! Heater_ID: E0", True),
        ),
        (
            "Error:MINTEMP triggered, system stopped! Heater_ID: bed",
            p.FirmwareError("MINTEMP triggered, system stopped! Heater_ID: bed", True),
        ),
        ("!! Printer halted", p.FirmwareError("Printer halted", True)),
        (
            "Printer stopped due to errors. Fix the error and use M999 to restart.",
            p.FirmwareError(
                "Printer stopped due to errors. Fix the error and use M999 to restart.", True
            ),
        ),
        (
            "T:210.00 /210.00 B:60.00 /60.00 @:127 B@:0",
            p.Temperatures({"T": (210.0, 210.0), "B": (60.0, 60.0)}),
        ),
        (
            " T:185.43 /210.00 B:60.00 /60.00 @:127 B@:0 W:?",
            p.Temperatures({"T": (185.43, 210.0), "B": (60.0, 60.0)}, wait="?"),
        ),
        (
            " T:200.0 /205.0 B:55.5 /60.0 T0:200.0 /205.0 T1:25.0 /0.0 @:0 B@:0",
            p.Temperatures(
                {"T": (200.0, 205.0), "B": (55.5, 60.0), "T0": (200.0, 205.0), "T1": (25.0, 0.0)}
            ),
        ),
        ("//action:pause", p.Action("pause")),
        ("//action:pause filament_runout 0", p.Action("pause", "filament_runout 0")),
        ("//action:paused", p.ActionNotice("paused")),
        ("//action:paused filament_runout 0", p.ActionNotice("paused", "filament_runout 0")),
        ("//action:resumed", p.ActionNotice("resumed")),
        ("// action:out_of_filament T0", p.Action("out_of_filament", "T0")),  # Repetier
        ("//action:out_of_filament T0", p.Action("out_of_filament", "T0")),
        ("//action:cancel", p.Action("cancel")),
        ("Cap:AUTOREPORT_TEMP:1", p.Capability("AUTOREPORT_TEMP", True)),
        ("Cap:EMERGENCY_PARSER:0", p.Capability("EMERGENCY_PARSER", False)),
        (
            "X:10.00 Y:20.00 Z:0.30 E:5.00 Count X:800 Y:1600 Z:120",
            p.Position({"X": 10.0, "Y": 20.0, "Z": 0.3, "E": 5.0}),
        ),
        ("start", p.Start()),
        ("wait", p.Other("wait")),
    ],
)
def test_parse_line(line: str, expected: p.Message) -> None:
    assert p.parse_line(line) == expected


def test_parse_firmware_info() -> None:
    msg = p.parse_line(
        "FIRMWARE_NAME:Marlin 2.1.2 (Jun 1 2024) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin"
        " PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 EXTRUDER_COUNT:1"
    )
    assert isinstance(msg, p.FirmwareInfo)
    assert msg.name == "Marlin 2.1.2 (Jun 1 2024)"
    assert msg.fields["MACHINE_TYPE"] == "Ender-3"
    assert msg.fields["EXTRUDER_COUNT"] == "1"


@pytest.mark.parametrize(
    ("temps", "status"),
    [
        (
            p.Temperatures({"T": (20.0, 0.0), "B": (21.0, 60.0)}),
            {"hotend": (20.0, 0.0), "bed": (21.0, 60.0)},
        ),
        (
            p.Temperatures(
                {"T": (20.0, 0.0), "T0": (20.0, 0.0), "T1": (30.0, 200.0), "B": (21.0, None)}
            ),
            {"hotend0": (20.0, 0.0), "hotend1": (30.0, 200.0), "bed": (21.0, 0.0)},
        ),
    ],
)
def test_temperatures_as_status(
    temps: p.Temperatures, status: dict[str, tuple[float, float]]
) -> None:
    assert temps.as_status() == status
