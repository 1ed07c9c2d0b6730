"""Where the G-code safety gate used to live; it is `printforge.gcode.gate` now.

Kept so that code written against the old path keeps working while branches merge; new code
imports from `printforge.gcode.gate`.
"""

from __future__ import annotations

from printforge.gcode.gate import (
    TOLERANCE_MM,
    GcodeAnalysis,
    Limits,
    SessionGate,
    check_gcode,
    inspect_gcode,
    volume_limits,
)

__all__ = [
    "TOLERANCE_MM",
    "GcodeAnalysis",
    "Limits",
    "SessionGate",
    "check_gcode",
    "inspect_gcode",
    "volume_limits",
]
