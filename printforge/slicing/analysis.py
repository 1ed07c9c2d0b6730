"""Where the G-code analysis used to live; it is `printforge.gcode.analysis` now.

Kept so that code written against the old path keeps working while branches merge; new code
imports from `printforge.gcode`.
"""

from __future__ import annotations

from printforge.gcode.analysis import (
    Finding,
    GcodeAnalysis,
    analyse_gcode,
    analyse_text,
    gcode_artifact,
    parse_duration,
)
from printforge.gcode.commands import PROTECTED_COMMANDS
from printforge.gcode.source import read_gcode_text

__all__ = [
    "CONFIG_COMMANDS",
    "Finding",
    "GcodeAnalysis",
    "analyse_gcode",
    "analyse_text",
    "gcode_artifact",
    "parse_duration",
    "read_gcode_text",
]

CONFIG_COMMANDS: dict[str, str] = {code: what for code, (_, what) in PROTECTED_COMMANDS.items()}
