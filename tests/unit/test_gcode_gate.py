"""The G-code analysis and safety gate on crafted files: modes, offsets, limits, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.gcode.analysis import analyse_gcode, parse_duration
from printforge.gcode.gate import check_gcode
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import BadArtifact, InputError, UnsafeGcode

PRINTER = PrinterProfile(
    name="box",
    bed_x=200,
    bed_y=150,
    max_z=100,
    max_hotend_temp=280,
    max_bed_temp=100,
    max_acceleration=1500,
    max_jerk=10,
)
PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.gcode"
    path.write_text(text)
    return path


SAFE_HEAD = "M140 S60\nM104 S210\nM190 S60\nM109 S210\nG28\nG90\nM82\nG92 E0\n"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("G1 X201 Y10 F3000\n", r"line 9: moves X to 201\.000 mm.*X from 0 to 200"),
        ("G1 Y-1 F3000\n", r"line 9: moves Y to -1\.000"),
        ("G1 Z100.5\n", r"moves Z to 100\.500"),
        ("G91\nG1 X150\nG1 X60\n", r"line 11: moves X to 210\.000"),
        ("G1 X190\nG92 X0\nG1 X20\n", r"line 11: moves X to 210\.000"),
        ("M104 S240\n", r"line 9: `M104 S240` sets the hotend to 240 °C.*material 'PLA'.*235"),
        ("M109 R250 ; wait\n", r"hotend to 250 °C"),
        ("M104 S200 B260 F1\n", r"`M104 S200 B260 F1` sets the hotend to 260 °C"),
        ("M190 S105\n", r"bed to 105 °C.*printer 'box' limit of 100"),
        ("M500 ; save\n", r"line 9: `M500 ; save` saves settings to EEPROM.*'box' does not allow"),
        ("M502\n", r"factory defaults"),
        ("M92 E400\n", r"steps per mm"),
        ("G20\nG1 X1\n", r"inches"),
    ],
    ids=[
        "x-over",
        "y-under",
        "z-over",
        "relative",
        "g92-offset",
        "hot-material",
        "hot-r",
        "autotemp-b",
        "bed",
        "m500",
        "m502",
        "m92",
        "inches",
    ],
)
def test_unsafe_files_are_refused_with_line_and_limit(
    tmp_path: Path, body: str, match: str
) -> None:
    with pytest.raises(UnsafeGcode, match=match):
        check_gcode(_write(tmp_path, SAFE_HEAD + body), PRINTER, PLA)


def test_every_broken_limit_is_named_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, SAFE_HEAD + "M104 S300\nM500\nG1 X250 Y10\nG1 Z150\n")
    with pytest.raises(UnsafeGcode) as refused:
        check_gcode(path, PRINTER, PLA)
    message = refused.value.message
    assert message.startswith("t.gcode line 10: `M500`")
    for words in ("line 9: `M104 S300`", "line 11: moves X to 250.000", "line 12: moves Z"):
        assert f"; also {words}" in message
    assert message.count("t.gcode") == 1


def test_printer_limit_applies_without_a_material(tmp_path: Path) -> None:
    path = _write(tmp_path, SAFE_HEAD + "M104 S250\n")
    assert check_gcode(path, PRINTER).max_hotend_temp == 250
    with pytest.raises(UnsafeGcode, match="printer 'box' limit of 280"):
        check_gcode(_write(tmp_path, SAFE_HEAD + "M104 S290\n"), PRINTER)


def test_allowed_config_commands_pass(tmp_path: Path) -> None:
    profile = PRINTER.model_copy(update={"allowed_config_commands": ["M92", "m500"]})
    a = check_gcode(_write(tmp_path, SAFE_HEAD + "M92 E400\nM500\n"), profile, PLA)
    assert [f.command for f in a.config_commands] == ["M92 E400", "M500"]


def test_homing_resets_offsets_and_relative_moves_stay_inside(tmp_path: Path) -> None:
    text = SAFE_HEAD + (
        "G1 X190 Y140\nG92 X0 Y0\nG28 X Y\n"  # homing forgets the G92 offset
        "G91\nG1 X100 Y100\nG1 X50\nG90\nG1 Z10\n"
    )
    a = check_gcode(_write(tmp_path, text), PRINTER, PLA)
    assert a.move_max == (190.0, 140.0, 10.0)
    assert a.relative_moves and a.homed


def test_filament_absolute_relative_and_g92(tmp_path: Path) -> None:
    absolute = (
        SAFE_HEAD + "G1 Z0.2\nG1 X10 Y10 E1\nG1 X20 E2\nG1 E1.2\nG1 E2\nG92 E0\nG1 X30 E0.5\n"
    )
    a = check_gcode(_write(tmp_path, absolute), PRINTER, PLA)
    assert a.filament_mm == pytest.approx(2.5)  # retract and unretract are not extrusion
    relative = (
        SAFE_HEAD + "M83\nG1 Z0.2\nG1 X10 Y10 E1\nG1 X20 E1\nG1 E-0.8\nG1 E0.8\nG1 X30 E0.5\n"
    )
    b = check_gcode(_write(tmp_path, relative), PRINTER, PLA)
    assert b.filament_mm == pytest.approx(2.5)
    assert b.filament_g == pytest.approx(2.5 * 3.14159265 * 0.875**2 * 1.24 / 1000, abs=1e-4)


def test_layers_and_extruded_bounds(tmp_path: Path) -> None:
    text = (
        SAFE_HEAD
        + "M83\n"
        + "".join(
            f"G1 Z{z:.1f} F600\nG0 X10 Y10\nG1 X50 Y10 E2\nG1 X50 Y40 E1.5\nG1 Z{z + 0.4:.1f}\n"
            for z in (0.2, 0.4, 0.6)
        )
        + "G0 X150 Y120 Z20\n"
    )
    a = check_gcode(_write(tmp_path, text), PRINTER, PLA)
    assert a.layers == 3
    assert a.layer_heights == [0.2, 0.4, 0.6]
    assert a.extrude_min == (10.0, 10.0, 0.2)
    assert a.extrude_max == (50.0, 40.0, 0.6)
    assert a.move_max == (150.0, 120.0, 20.0)


def test_time_of_one_move_is_a_jerk_limited_trapezoid(tmp_path: Path) -> None:
    a = analyse_gcode(_write(tmp_path, "G90\nG1 X100 F6000\n"), PRINTER)
    v, v0, acc = 100.0, 10.0, 1500.0  # F6000 = 100 mm/s, starting and ending at jerk speed
    ramp = (v**2 - v0**2) / (2 * acc)
    expected = 2 * (v - v0) / acc + (100 - 2 * ramp) / v
    assert a.estimated_time_s == pytest.approx(expected, abs=0.01)


def test_dwell_and_m204_count(tmp_path: Path) -> None:
    slow = analyse_gcode(_write(tmp_path, "M204 S100\nG1 X100 F6000\nG4 S2\n"), PRINTER)
    fast = analyse_gcode(_write(tmp_path, "G1 X100 F6000\n"), PRINTER)
    assert slow.estimated_time_s > fast.estimated_time_s + 2.5


def test_line_numbers_checksums_and_lowercase(tmp_path: Path) -> None:
    text = "N1 G28*18\nn2 g1 x250 f3000*99\n"
    with pytest.raises(UnsafeGcode, match="line 2: moves X to 250"):
        check_gcode(_write(tmp_path, text), PRINTER, PLA)


def test_binary_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "b.gcode"
    binary.write_bytes(b"G28\n\x00\x01\x02\xff")
    with pytest.raises(BadArtifact, match="not a text G-code"):
        check_gcode(binary, PRINTER)
    bgcode = tmp_path / "c.bgcode"
    bgcode.write_bytes(b"GCDE\x01\x00\x00\x00")
    with pytest.raises(BadArtifact, match="binary G-code"):
        check_gcode(bgcode, PRINTER)
    with pytest.raises(InputError, match="does not exist"):
        check_gcode(tmp_path / "none.gcode", PRINTER)
    with pytest.raises(BadArtifact, match="no G-code commands"):
        check_gcode(_write(tmp_path, "; only a comment\n\n"), PRINTER)


def test_origin_centre_printers(tmp_path: Path) -> None:
    delta = PRINTER.model_copy(update={"origin_center": True})
    ok = check_gcode(_write(tmp_path, "G28\nG1 X-90 Y-70 Z5\n"), delta, PLA)
    assert ok.move_min == (-90.0, -70.0, 0.0)
    with pytest.raises(UnsafeGcode, match="X to 110"):
        check_gcode(_write(tmp_path, "G28\nG1 X110\n"), delta, PLA)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h 20m 39s", 4839), ("2d 0h 1m 0s", 172860), ("45s", 45), ("3m 7s", 187)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_slicer_comments_are_read(tmp_path: Path) -> None:
    text = (
        "; generated by PrusaSlicer 2.5.0\nG28\nG1 X1 E1\n"
        "; filament used [mm] = 123.45\n; estimated printing time (normal mode) = 1h 2m 3s\n"
    )
    a = analyse_gcode(_write(tmp_path, text), PRINTER)
    assert a.generator == "prusaslicer"
    assert a.slicer_estimate_s == 3723
    assert a.slicer_filament_mm == 123.45


def test_words_without_spaces_are_read(tmp_path: Path) -> None:
    a = check_gcode(_write(tmp_path, "G28\nG1X10Y20Z0.3F600\nG1 X20 Y20 E1\n"), PRINTER, PLA)
    assert a.extrude_min == (10.0, 20.0, 0.3)
    assert a.extrude_max == (20.0, 20.0, 0.3)


@pytest.mark.parametrize(
    ("arc", "box"),
    [
        # from (100, 50): a full clockwise circle round (100, 60)
        ("G2 X100 Y50 I0 J10\n", (90.0, 110.0, 50.0, 70.0)),
        # the lower half circle round (110, 50), counter-clockwise
        ("G3 X120 Y50 I10 J0\n", (100.0, 120.0, 40.0, 50.0)),
        # the upper half, clockwise, given by its radius
        ("G2 X120 Y50 R10\n", (100.0, 120.0, 50.0, 60.0)),
    ],
    ids=["full-circle", "ccw-half", "radius"],
)
def test_arcs_bulge_into_bounds(
    tmp_path: Path, arc: str, box: tuple[float, float, float, float]
) -> None:
    text = SAFE_HEAD + "M83\nG1 X100 Y50 Z0.2 F3000\n" + arc.replace("\n", " E2\n")
    a = check_gcode(_write(tmp_path, text), PRINTER, PLA)
    lo, hi = a.extrude_min, a.extrude_max
    assert (lo[0], hi[0], lo[1], hi[1]) == pytest.approx(box, abs=0.02)
    assert a.filament_mm == pytest.approx(2.0)


def test_an_arc_leaving_the_bed_is_refused(tmp_path: Path) -> None:
    text = SAFE_HEAD + "G1 X190 Y75 Z1\nG3 X190 Y75 I10 J0 E1\n"  # circle to x = 210
    with pytest.raises(UnsafeGcode, match=r"line 10: moves X to 2(09|10)\.\d+"):
        check_gcode(_write(tmp_path, text), PRINTER, PLA)


def test_config_command_with_line_number_and_checksum(tmp_path: Path) -> None:
    with pytest.raises(UnsafeGcode, match=r"line 2: `N2 M500\*33` saves settings"):
        check_gcode(_write(tmp_path, "N1 G28*18\nN2 M500*33\n"), PRINTER, PLA)


@pytest.mark.parametrize(
    ("move", "match"),
    [
        ("G1 X 250 Y10\n", r"moves X to 250\.000"),
        ("G0 Z 150\n", r"moves Z to 150\.000"),
        ("G1 X10 Y 160 E1\n", r"moves Y to 160\.000"),
    ],
    ids=["x", "z", "y-after-x"],
)
def test_a_space_between_letter_and_number_is_still_read(
    tmp_path: Path, move: str, match: str
) -> None:
    # Marlin, Prusa firmware and Klipper all skip blanks between a word's letter and its
    # value, so `G1 X 250` moves to 250 and must not slip past the volume check.
    with pytest.raises(UnsafeGcode, match=match):
        check_gcode(_write(tmp_path, SAFE_HEAD + move), PRINTER, PLA)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("SAVE_CONFIG\n", r"line 9: `SAVE_CONFIG` rewrites Klipper's printer.cfg"),
        ("set_kinematic_position X=0\n", r"defeating its limits"),
        ("FORCE_MOVE STEPPER=stepper_x DISTANCE=300 VELOCITY=50\n", r"ignoring the printer"),
        ("PID_CALIBRATE HEATER=extruder TARGET=210\n", r"PID autotune"),
        ("Z_OFFSET_APPLY_PROBE\n", r"probe Z offset"),
        (
            "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=300\n",
            r"`SET_HEATER_TEMPERATURE HEATER=extruder TARGET=300` sets the hotend to 300 °C",
        ),
        ("SET_HEATER_TEMPERATURE HEATER=heater_bed TARGET=120\n", r"bed to 120 °C"),
        ("SET_GCODE_OFFSET Z=150\nG1 Z1\n", r"line 10: moves Z to 151\.000"),
        ("SET_GCODE_OFFSET X_ADJUST=30\nG28\nG1 X190\n", r"line 11: moves X to 220\.000"),
    ],
    ids=[
        "save-config",
        "kinematic-position",
        "force-move",
        "pid",
        "z-offset-probe",
        "hotend",
        "bed",
        "gcode-offset",
        "offset-kept-by-g28",
    ],
)
def test_klipper_extended_commands_are_checked(tmp_path: Path, body: str, match: str) -> None:
    # Moonraker printers (and Klipper's serial port) run these as readily as G-code.
    with pytest.raises(UnsafeGcode, match=match):
        check_gcode(_write(tmp_path, SAFE_HEAD + body), PRINTER, PLA)


def test_klipper_macros_and_safe_extended_commands_pass(tmp_path: Path) -> None:
    text = (
        "PRINT_START BED=60 EXTRUDER=210\nSET_HEATER_TEMPERATURE HEATER=extruder TARGET=215\n"
        "SET_GCODE_OFFSET Z=0.05\nG28\nG1 X100 Y100 Z0.2 F3000\nG1 X120 E1\nSAVE_CONFIG\n"
    )
    profile = PRINTER.model_copy(update={"allowed_config_commands": ["save_config"]})
    a = check_gcode(_write(tmp_path, text), profile, PLA)
    assert a.max_hotend_temp == 215
    assert a.extrude_max == pytest.approx((120.0, 100.0, 0.25))


def test_a_bezier_leaving_the_bed_is_refused(tmp_path: Path) -> None:
    # Marlin's G5: the end point alone (X250) or the bulge of a curve ending inside.
    for move, match in (
        ("G5 X250 Y75 I10 J0 P-10 Q0\n", r"line 10: moves X to 250\.000"),
        ("G5 X190 Y75 I40 J0 P40 Q0\n", r"line 10: moves X to 206\.5\d+"),  # max at t = 0.7
    ):
        text = SAFE_HEAD + "G1 X150 Y75 Z1\n" + move
        with pytest.raises(UnsafeGcode, match=match):
            check_gcode(_write(tmp_path, text), PRINTER, PLA)
    inside = SAFE_HEAD + "M83\nG1 X50 Y75 Z0.2\nG5 X150 Y75 I0 J40 P0 Q40 E5\n"
    a = check_gcode(_write(tmp_path, inside), PRINTER, PLA)
    assert a.extrude_max is not None and a.extrude_max[1] == pytest.approx(105, abs=0.05)
    assert a.filament_mm == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("M112\n", r"line 9: `M112` halts the machine \(emergency stop\)"),
        ("M999\n", r"restarts the firmware after a halt"),
        ("M410\n", r"quickstop"),
        ("M81\n", r"power supply off"),
        ("D1\n", r"Marlin debug command"),
        ("M32 /other.gco\n", r"starts a print from a file the gate never saw"),
        ("M24\n", r"printer's storage"),
        ('M98 P"lift.g"\n', r"runs a macro file"),
        ("M110 N0\n", r"line numbers the host counts on"),
        ("M143 H1 S400\n", r"maximum temperature"),
        ("M570 H1 P10\n", r"heater fault detection"),
        ("FIRMWARE_RESTART\n", r"restarts Klipper's firmware"),
        ("SDCARD_PRINT_FILE FILENAME=x.gcode\n", r"file the gate never saw"),
        ("SAVE_VARIABLE VARIABLE=a VALUE=1\n", r"saved variables"),
    ],
)
def test_halting_and_firmware_state_commands_are_refused_in_a_job(
    tmp_path: Path, body: str, match: str
) -> None:
    with pytest.raises(UnsafeGcode, match=match + r".*allowed_config_commands"):
        check_gcode(_write(tmp_path, SAFE_HEAD + body), PRINTER, PLA)


def test_a_profile_may_allow_a_halting_command(tmp_path: Path) -> None:
    profile = PRINTER.model_copy(update={"allowed_config_commands": ["M112", "M81"]})
    a = check_gcode(_write(tmp_path, SAFE_HEAD + "M112\nM81\n"), profile, PLA)
    assert [f.code for f in a.config_commands] == ["M112", "M81"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("M112 is fun\n", r"t.gcode is not G-code: line 1 `M112 is fun`"),
        ("G28\nG1 X10\nThis file moves the head.\n", r"not G-code: line 3"),
        ("# Title\n\nSome prose here.\nMore prose.\n", r"line 1 .*\(and 2 more such lines\)"),
        ("G28\nG1 X10 X300\n", r"line 2 `G1 X10 X300`: gives X twice"),
        ("G28\nif move.axes[0].homed\n", r"meta command `if`"),
    ],
)
def test_what_is_not_gcode_is_refused(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(UnsafeGcode, match=match):
        check_gcode(_write(tmp_path, text), PRINTER, PLA)


def test_the_readme_is_not_gcode() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    with pytest.raises(UnsafeGcode, match=r"README.md is not G-code: line 1"):
        check_gcode(readme, PRINTER, PLA)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"G28\nG1 X1\n\x00\x01", 3),
        (b"G28\nG1 X10\x1cG1 X500\n", 2),  # a line break to Python, none to firmware
        (b"G28\r\nG1 X1\x0cG1 X2\r\n", 2),
        (b"\x89PNG\r\n\x1a\n", 2),
    ],
)
def test_binary_bytes_name_their_line(tmp_path: Path, data: bytes, line: int) -> None:
    path = tmp_path / "b.gcode"
    path.write_bytes(data)
    with pytest.raises(BadArtifact, match=rf"not G-code: line {line} holds binary data"):
        check_gcode(path, PRINTER)


def test_latin1_comments_are_text(tmp_path: Path) -> None:
    path = tmp_path / "l.gcode"
    path.write_bytes("; 210 \u00b0C\nG28\nG1 X10\n".encode("latin-1"))
    assert check_gcode(path, PRINTER, PLA).lines == 2


def test_a_relative_move_after_probing_is_refused(tmp_path: Path) -> None:
    # Only the firmware knows where G29 leaves the head; an absolute move makes it known.
    with pytest.raises(UnsafeGcode, match=r"line 11: `G1 Z5` moves Z from a position nobody"):
        check_gcode(_write(tmp_path, SAFE_HEAD + "G29\nG91\nG1 Z5\n"), PRINTER, PLA)
    check_gcode(_write(tmp_path, SAFE_HEAD + "G29\nG1 Z5\nG91\nG1 Z5\nG90\n"), PRINTER, PLA)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("G10 P0 S215 R300\n", r"`G10 P0 S215 R300` sets the hotend to 300"),  # RepRapFirmware
        ("M303 E0 S300 C8\n", r"hotend to 300"),
        ("M303 E-1 S130 C8\n", r"bed to 130"),
        ("M104 I2\n", r"stored preheat preset"),
    ],
)
def test_other_ways_to_set_a_temperature(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(UnsafeGcode, match=match):
        check_gcode(_write(tmp_path, SAFE_HEAD + body), PRINTER, PLA)


def test_an_e_inside_a_number_is_a_new_word(tmp_path: Path) -> None:
    # Marlin stops a number at E and Klipper splits before it: Y10E1.5 is Y10 E1.5, never Y100.
    a = check_gcode(_write(tmp_path, "G28\nG1 X10 Y10 Z0.3\nG1X20Y10E1.5\n"), PRINTER, PLA)
    assert a.extrude_max == (20.0, 10.0, 0.3)
    assert a.filament_mm == pytest.approx(1.5)


def test_inches_are_converted_in_the_figures_and_still_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "G28\nG20\nG1 X2 Y1 Z0.01\nG21\n")
    assert analyse_gcode(path, PRINTER).move_max == (50.8, 25.4, 0.254)
    with pytest.raises(UnsafeGcode, match=r"line 2: `G20` switches to inches.*Klipper"):
        check_gcode(path, PRINTER, PLA)
