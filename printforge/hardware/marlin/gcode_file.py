"""Reading a G-code file into the commands a printer is sent: comments and blank lines go.

The commands are kept exactly as written otherwise (no re-formatting of moves), and each one is
checked against the firmware's line limit once the line number and checksum are added. Lines
are split where firmware splits them (`gcode.source.split_lines`) and the layer of each command
comes from the one layer model (`gcode.layers`), read by the one G-code reader.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from printforge.gcode.layers import is_extruding, layer_numbers
from printforge.gcode.reader import Reader
from printforge.gcode.source import split_lines
from printforge.gcode.syntax import parse_line, strip_comment
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError

__all__ = ["GcodeProgram", "layer_index", "load_gcode", "strip_command"]

# `N<n> ` and `*<xor>` around a command; the checksum is at most three digits.
_FRAME_OVERHEAD = len("N ") + len("*255") + 1


@dataclass(frozen=True, slots=True)
class GcodeProgram:
    commands: list[str]
    source_lines: list[int]  # 1-based line in the file of each command
    total_bytes: int  # bytes of the commands plus one newline each
    layers: list[int]  # the layer each command belongs to (0 before the first)
    layers_total: int

    def __len__(self) -> int:
        return len(self.commands)


def strip_command(raw: str) -> str:
    """A file line without its `;` comment and surrounding whitespace ('' when nothing is left)."""
    return strip_comment(raw)


def load_gcode(path: Path, max_line_bytes: int = 96) -> GcodeProgram:
    """Read and check a G-code file. Raises InputError with an actionable message."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise InputError(f"G-code file not found: {path}") from err
    except IsADirectoryError as err:
        raise InputError(f"{path} is a directory, not a G-code file") from err
    except OSError as err:
        raise InputError(f"cannot read G-code file {path}: {err.strerror or err}") from err
    if b"\x00" in data:
        raise InputError(f"{path} is not a text G-code file (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path} is not a text G-code file (invalid UTF-8 at byte {err.start})"
        ) from err
    commands: list[str] = []
    sources: list[int] = []
    total = 0
    for number, raw in enumerate(split_lines(text), start=1):
        cmd = strip_command(raw)
        if not cmd:
            continue
        commands.append(cmd)
        sources.append(number)
        total += len(cmd.encode()) + 1
    # The line numbers the host will use go up to about the command count.
    digits = len(str(len(commands) + 10))
    limit = max_line_bytes - _FRAME_OVERHEAD - digits
    for cmd, number in zip(commands, sources, strict=True):
        size = len(cmd.encode())
        if size > limit:
            raise InputError(
                f"{path}:{number}: command is {size} bytes; the firmware accepts at most "
                f"{limit} once numbered and checksummed (max_line_bytes={max_line_bytes})"
            )
        if "*" in cmd:
            raise InputError(f"{path}:{number}: a command may not contain '*' (checksum marker)")
    layers, layers_total = layer_index(commands)
    return GcodeProgram(commands, sources, total, layers, layers_total)


def layer_index(commands: Iterable[str]) -> tuple[list[int], int]:
    """The layer of each command and the layer count, by the one layer model: a layer is a
    height the file extrudes at, and a command is in the layer of the last extrusion before it.
    """
    reader = Reader(PrinterProfile(name="stream"))
    prev = reader.state.machine()
    current = math.nan
    heights: list[float] = []
    for cmd in commands:
        line = parse_line(cmd)
        if line is not None:
            for point in reader.step(line).points:
                if is_extruding(prev, point):
                    current = point[2]
                prev = point
        heights.append(current)
    return layer_numbers(heights)
