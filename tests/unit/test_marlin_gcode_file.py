"""Reading a G-code file into the commands a printer is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.hardware.marlin.gcode_file import layer_index, load_gcode
from printforge.runtime.errors import InputError


def test_comments_and_blank_lines_go_the_rest_stays_as_written(tmp_path: Path) -> None:
    path = tmp_path / "a.gcode"
    path.write_text("; header\n\nG28 ; home\n  G1 X1.50 Y2 F600  \nM104 S200\r\n")
    program = load_gcode(path)
    assert program.commands == ["G28", "G1 X1.50 Y2 F600", "M104 S200"]
    assert program.source_lines == [3, 4, 5]
    assert program.total_bytes == sum(len(c) + 1 for c in program.commands)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"G28\n\x00\x00", "contains NUL bytes"),
        (b"G28\n\xff\xfe G1\n", "invalid UTF-8"),
        (b"G1 X1 " + b"Y1 " * 30 + b"\n", "at most"),
        (b"M117 5*5\n", "'*'"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gcode"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_gcode(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_gcode(tmp_path / "nope.gcode")
    with pytest.raises(InputError, match="directory"):
        load_gcode(tmp_path)


def test_line_limit_follows_the_firmware(tmp_path: Path) -> None:
    path = tmp_path / "long.gcode"
    path.write_text("M117 " + "x" * 70 + "\n")
    load_gcode(path, max_line_bytes=96)
    with pytest.raises(InputError, match="max_line_bytes=64"):
        load_gcode(path, max_line_bytes=64)


def test_layers_are_the_heights_the_file_extrudes_at() -> None:
    # The one layer model (gcode.layers): a command is in the layer of the last extrusion
    # before it; a lift that prints nothing (Z0.6, the end's G91 Z10) is no layer.
    commands = [
        "G28",
        "G1 Z0.2 F600",
        "G1 X1 E1",
        "G1 Z0.4",
        "G1 X2 E2",
        "G0 Z0.4",
        "G1 Z0.6",
        "G91",
        "G1 Z10",
        "G90",
        "M84",
    ]
    layers, total = layer_index(commands)
    assert layers == [0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2]
    assert total == 2


def test_a_z_hop_is_not_a_layer() -> None:
    # Counting each new highest Z (what the driver's progress did before) takes every 0.2 mm
    # hop over a layer for a layer, and then no longer sees the next layer, lower than the hop.
    commands = ["G28", "M83", "G1 Z0.2 F600"]
    for z in (0.2, 0.4, 0.6):
        commands += [f"G1 Z{z:.1f}", "G1 X10 E1", f"G1 Z{z + 0.2:.1f}", "G1 X20 Y20"]
    layers, total = layer_index(commands)
    assert total == 3
    assert layers[-1] == 3 and layers[4] == 1  # the hop after layer 1 is still layer 1
