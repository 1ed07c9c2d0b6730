"""Pure Bambu Lab LAN-mode helpers: request frames and `device/{serial}/report` parsing.

Printers push `{"print": {...}}` reports: a full one after `pushing.pushall`, changed fields
otherwise (P1/A1 series), so reports are folded into one tree before reading it. Fields follow
the community-documented LAN protocol: `gcode_state` (IDLE, PREPARE, RUNNING, PAUSE, FINISH,
FAILED), `mc_percent`, `mc_remaining_time` (minutes), `nozzle_temper`, `bed_temper`, their
`*_target_temper`, `print_error` (HMS code, 0 = none), `gcode_file` and `subtask_name`.

A cancel (from the screen or any client's `stop`) ends as `gcode_state: "FAILED"` with
`print_error: 50348044` (0x0300400C), which returns to 0 a few seconds later; FAILED then stays
as the resting state, like FINISH, until the next print (pybambu `models.py` `print_update`
treats IDLE, FAILED and FINISH alike as idle, and 50348044 as "event_print_canceled"). So FAILED
is no fault by itself: only a print error other than the cancel code is.

Commands come back on the report topic as echoes carrying their `command`, `sequence_id` and
`result`; every client's do, and reports carry the printer's own `sequence_id` too (with
`command: "push_status"`), so an echo is ours only when both match what we sent.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.models.printer import PrinterState, PrintProgress, Temperature

__all__ = [
    "CANCELLED",
    "BambuState",
    "BambuTopics",
    "echo_of",
    "error_code",
    "merge_report",
    "non_numeric",
    "request",
]

# print_error of a print cancelled by a user (on the screen or by a client's stop).
CANCELLED = 0x0300_400C  # 50348044
# The command field of the printer's own status reports, as opposed to command echoes.
PUSH_STATUS = "push_status"

_STATES = {
    "IDLE": PrinterState.IDLE,
    "PREPARE": PrinterState.HEATING,
    "SLICING": PrinterState.HEATING,
    "RUNNING": PrinterState.PRINTING,
    "PAUSE": PrinterState.PAUSED,
    "FINISH": PrinterState.IDLE,
    # A resting state after a cancel or a failure; a failure's print_error makes it a fault.
    "FAILED": PrinterState.IDLE,
}


class BambuTopics:
    def __init__(self, serial: str) -> None:
        self.request = f"device/{serial}/request"
        self.report = f"device/{serial}/report"


def request(section: str, command: str, sequence_id: str | int, **fields: Any) -> bytes:
    """`{"print": {"sequence_id": "7", "command": "pause"}}` and friends."""
    body = {"sequence_id": str(sequence_id), "command": command, **fields}
    return json.dumps({section: body}).encode()


def echo_of(section: dict[str, Any]) -> tuple[str, str] | None:
    """(sequence_id, command) of a command echo with its result; None for a status report."""
    command = section.get("command")
    seq = section.get("sequence_id")
    if not isinstance(command, str) or command == PUSH_STATUS or "result" not in section:
        return None
    return (str(seq), command) if isinstance(seq, str | int) else None


def error_code(print_error: int) -> str:
    """HMS style `0300_4000` from the integer `print_error` (0 means no error)."""
    return f"{(print_error >> 16) & 0xFFFF:04X}_{print_error & 0xFFFF:04X}"


class Report(BaseModel):
    """One message on the report topic; only the `print` section matters here."""

    model_config = ConfigDict(extra="ignore")

    print: dict[str, Any] | None = None


# Fields read as numbers; firmware sends numbers (some versions as numeric strings).
NUMERIC = (
    "mc_percent",
    "mc_remaining_time",
    "nozzle_temper",
    "nozzle_target_temper",
    "bed_temper",
    "bed_target_temper",
    "print_error",
    "layer_num",
    "total_layer_num",
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def non_numeric(section: dict[str, Any]) -> list[str]:
    """The NUMERIC fields of a report that hold something else (null means absent)."""
    return [k for k in NUMERIC if section.get(k) is not None and _number(section[k]) is None]


def merge_report(tree: dict[str, Any], section: dict[str, Any]) -> None:
    tree.update(section)


class BambuState(BaseModel):
    state: PrinterState
    gcode_state: str | None = None
    gcode_file: str | None = None
    subtask_name: str | None = None
    percent: int | None = None
    remaining_min: int | None = None
    layer: int | None = None
    layers_total: int | None = None
    error: int = 0
    message: str | None = None
    temperatures: dict[str, Temperature] = Field(default_factory=dict)

    @classmethod
    def of(cls, tree: dict[str, Any]) -> BambuState:
        gcode_state = tree.get("gcode_state")
        error = int(_number(tree.get("print_error")) or 0)
        state = _STATES.get(str(gcode_state or "IDLE").upper(), PrinterState.IDLE)
        message = None
        if error == CANCELLED:
            message = f"print cancelled (HMS {error_code(error)})"
        elif error:
            message = f"HMS {error_code(error)}"
            if state is not PrinterState.IDLE or str(gcode_state).upper() == "FAILED":
                state = PrinterState.FAULTED
        temps: dict[str, Temperature] = {}
        for prefix, key in (("nozzle", "hotend"), ("bed", "bed")):
            actual = _number(tree.get(f"{prefix}_temper"))
            if actual is not None:
                target = _number(tree.get(f"{prefix}_target_temper")) or 0.0
                temps[key] = Temperature(actual=actual, target=target)
        percent = _number(tree.get("mc_percent"))
        remaining = _number(tree.get("mc_remaining_time"))
        # 0 of 0 before a print has its plan: unknown, not "layer 0".
        layers_total = int(_number(tree.get("total_layer_num")) or 0) or None
        layer = int(_number(tree.get("layer_num")) or 0) if layers_total else None
        return cls(
            state=state,
            gcode_state=gcode_state,
            gcode_file=_text(tree.get("gcode_file")),
            subtask_name=_text(tree.get("subtask_name")),
            percent=int(percent) if percent is not None else None,
            remaining_min=int(remaining) if remaining is not None else None,
            layer=layer,
            layers_total=layers_total,
            error=error,
            message=message,
            temperatures=temps,
        )

    @property
    def cancelled(self) -> bool:
        return self.error == CANCELLED

    def progress(self, size: int, elapsed_s: float) -> PrintProgress | None:
        if self.percent is None:
            return None
        return PrintProgress(
            bytes_acked=size * self.percent // 100,
            bytes_total=size,
            elapsed_s=elapsed_s,
            eta_s=self.remaining_min * 60.0 if self.remaining_min is not None else None,
            eta_source="printer" if self.remaining_min is not None else None,
            layer=self.layer,
            layers_total=self.layers_total,
        )
