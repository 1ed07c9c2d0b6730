"""Pure Moonraker/Klipper protocol helpers: JSON-RPC 2.0 frames and Klipper object status.

Moonraker's `[mqtt]` component answers JSON-RPC 2.0 on `{instance}/moonraker/api/request` /
`…/response`, publishes `{"eventtime", "status"}` updates (changed fields only) on
`{instance}/klipper/status`, and `{"server": "online"|"offline"}` (retained, the offline one as
its will) on `{instance}/moonraker/status` (moonraker/components/mqtt.py; docs/web_api.md).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.models.printer import PrinterState, PrintProgress, Temperature

__all__ = [
    "STATUS_OBJECTS",
    "KlipperState",
    "MoonrakerTopics",
    "RpcError",
    "RpcResponse",
    "ServerStatus",
    "StatusUpdate",
    "drop_mistyped",
    "merge_status",
    "rpc_request",
]

# The Klipper objects the driver follows (printer_objects.md).
STATUS_OBJECTS: dict[str, None] = {
    "webhooks": None,
    "print_stats": None,
    "virtual_sdcard": None,
    "extruder": None,
    "heater_bed": None,
}

_PRINT_STATES = {
    "standby": PrinterState.IDLE,
    "printing": PrinterState.PRINTING,
    "paused": PrinterState.PAUSED,
    "complete": PrinterState.IDLE,
    "cancelled": PrinterState.IDLE,
    "error": PrinterState.FAULTED,
}


class MoonrakerTopics:
    def __init__(self, instance: str) -> None:
        self.request = f"{instance}/moonraker/api/request"
        self.response = f"{instance}/moonraker/api/response"
        self.klipper_status = f"{instance}/klipper/status"
        self.moonraker_status = f"{instance}/moonraker/status"


class RpcError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int
    message: str


class RpcResponse(BaseModel):
    """A JSON-RPC 2.0 response; exactly one of result and error is meaningful."""

    model_config = ConfigDict(extra="ignore")

    jsonrpc: str = "2.0"
    id: int | str | None = None
    result: Any = None
    error: RpcError | None = None


class ServerStatus(BaseModel):
    """`{instance}/moonraker/status`: `{"server": "online"}`, or its `offline` will."""

    model_config = ConfigDict(extra="ignore")

    server: str


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    eventtime: float | None = None
    status: dict[str, dict[str, Any]] = Field(default_factory=dict)


def rpc_request(method: str, params: dict[str, Any] | None, request_id: int) -> bytes:
    frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        frame["params"] = params
    return json.dumps(frame).encode()


# The fields KlipperState reads, and the type each must have (null always means absent).
_NUMBERS = {
    "extruder": ("temperature", "target"),
    "heater_bed": ("temperature", "target"),
    "virtual_sdcard": ("file_size", "file_position"),
    "print_stats": ("print_duration",),
}
_STRINGS = {
    "webhooks": ("state", "state_message"),
    "print_stats": ("state", "message", "filename"),
}


def drop_mistyped(update: dict[str, Any]) -> list[str]:
    """Remove, in place, the fields KlipperState could not read; return them as obj.field.

    Kept in the tree, one would break every later update, and Moonraker resends a field only
    when it changes (a file size: once per print).
    """
    bad: list[str] = []
    for obj, fields in update.items():
        if not isinstance(fields, dict):
            continue
        for name in _NUMBERS.get(obj, ()):
            value = fields.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                bad.append(f"{obj}.{name}")
                del fields[name]
        for name in _STRINGS.get(obj, ()):
            value = fields.get(name)
            if value is not None and not isinstance(value, str):
                bad.append(f"{obj}.{name}")
                del fields[name]
    return bad


def merge_status(tree: dict[str, dict[str, Any]], update: dict[str, dict[str, Any]]) -> None:
    """Fold a partial update into the full object tree (Moonraker sends changed fields only)."""
    for obj, fields in update.items():
        if isinstance(fields, dict):
            tree.setdefault(obj, {}).update(fields)


class KlipperState(BaseModel):
    """The printer as the driver needs it, read from the Klipper object tree."""

    state: PrinterState
    print_state: str | None = None
    filename: str | None = None
    message: str | None = None
    temperatures: dict[str, Temperature] = Field(default_factory=dict)
    progress: PrintProgress | None = None

    @classmethod
    def of(cls, tree: dict[str, dict[str, Any]]) -> KlipperState:
        webhooks = tree.get("webhooks", {})
        stats = tree.get("print_stats", {})
        sd = tree.get("virtual_sdcard", {})
        temps: dict[str, Temperature] = {}
        for obj, key in (("extruder", "hotend"), ("heater_bed", "bed")):
            heater = tree.get(obj)
            if heater and heater.get("temperature") is not None:
                temps[key] = Temperature(
                    actual=float(heater["temperature"]), target=float(heater.get("target") or 0)
                )
        klippy = webhooks.get("state", "ready")
        print_state = stats.get("state")
        message = stats.get("message") or None
        if klippy in ("shutdown", "error"):
            state = PrinterState.FAULTED
            message = webhooks.get("state_message") or message or f"klippy {klippy}"
        elif klippy == "startup":
            state = PrinterState.CONNECTING
        else:
            state = _PRINT_STATES.get(print_state or "standby", PrinterState.IDLE)
        progress = None
        size = sd.get("file_size")
        if size:
            position = int(sd.get("file_position") or 0)
            duration = float(stats.get("print_duration") or 0.0)
            fraction = position / size if size else 0.0
            progress = PrintProgress(
                bytes_acked=position,
                bytes_total=int(size),
                elapsed_s=duration,
                eta_s=duration * (1 - fraction) / fraction if fraction > 0 else None,
            )
        return cls(
            state=state,
            print_state=print_state,
            filename=stats.get("filename") or None,
            message=message,
            temperatures=temps,
            progress=progress,
        )
