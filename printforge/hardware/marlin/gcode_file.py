"""Reading a G-code file into the commands a printer is sent: comments and blank lines go.

The commands are kept exactly as written otherwise (no re-formatting of moves), and each one is
checked against the firmware's line limit once the line number and checksum are added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from printforge.hardware.marlin.protocol import strip_comment
from printforge.runtime.errors import InputError

__all__ = ["GcodeProgram", "load_gcode", "strip_command"]

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
    for number, raw in enumerate(text.splitlines(), start=1):
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


_Z = re.compile(r"\bZ\s*([-+]?\d*\.?\d+)", re.IGNORECASE)


def layer_index(commands: list[str]) -> tuple[list[int], int]:
    """Number the layers by the absolute Z of moves: each new highest Z starts one.

    Moves in relative mode (a lift in the end G-code) do not count.
    """
    out: list[int] = []
    layer = 0
    top = float("-inf")
    absolute = True
    for cmd in commands:
        code = cmd[:4].upper()
        if code.startswith("G90"):
            absolute = True
        elif code.startswith("G91"):
            absolute = False
        elif absolute and code[:2] in ("G0", "G1") and code[2:3] in (" ", ""):
            match = _Z.search(cmd)
            if match is not None:
                z = float(match.group(1))
                if z > top + 1e-6:
                    top = z
                    layer += 1
        out.append(layer)
    return out, layer
