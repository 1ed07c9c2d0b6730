"""A G-code file as text, split into lines the way firmware splits them.

Firmware ends a line at `\\n` or `\\r` and nowhere else. Python's `str.splitlines` also splits at
form feeds, `\\x1c`-`\\x1e`, `\\x85` and the Unicode line separators, so a file could show the
gate two harmless lines where the printer runs one: `split_lines` splits as firmware does, and
`read_gcode_text` refuses control bytes outright.
"""

from __future__ import annotations

import re
from pathlib import Path

from printforge.runtime.errors import BadArtifact, InputError

__all__ = ["read_gcode_text", "split_lines"]

# Every C0 control but tab, LF and CR, and DEL: none belongs in G-code.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def split_lines(text: str) -> list[str]:
    """The lines of a text, ended by LF, CR LF or CR, as firmware reads them."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_gcode_text(path: Path) -> str:
    """The file as text; BadArtifact when it is not text G-code, InputError when unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"G-code file {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a G-code file") from None
    except OSError as err:
        raise InputError(f"G-code file {path} cannot be read: {err}") from err
    return decode_gcode(data, path.name)


def decode_gcode(data: bytes, name: str) -> str:
    """Bytes as G-code text; BadArtifact naming the line when they are not."""
    if data[:4] == b"GCDE":
        raise BadArtifact(f"{name} is binary G-code (.bgcode); export plain-text G-code")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Latin-1 comments (a slicer's degree sign) are text too; control bytes never are.
        text = data.decode("latin-1")
        bad = _CONTROL.search(text)
        if bad is None:
            return text
        raise _binary(data, bad.start(), name) from None
    bad = _CONTROL.search(text)
    if bad is not None:
        raise _binary(data, len(text[: bad.start()].encode()), name)
    return text


def _binary(data: bytes, offset: int, name: str) -> BadArtifact:
    line = data.count(b"\n", 0, offset) + 1
    return BadArtifact(
        f"{name} is not G-code: line {line} holds binary data (byte {data[offset]:#04x} at"
        f" offset {offset}); {name} is not a text G-code file"
    )
