"""Pure Moonraker/Klipper protocol helpers: JSON-RPC 2.0 frames and Klipper object status.

Moonraker's `[mqtt]` component answers JSON-RPC 2.0 on `{instance}/moonraker/api/request` /
`…/response`, publishes `{"eventtime", "status"}` updates (changed fields only) on
`{instance}/klipper/status`, and `{"server": "online"|"offline"}` (retained, the offline one as
its will) on `{instance}/moonraker/status` (moonraker/components/mqtt.py; docs/web_api.md).

Moonraker runs without Klippy (the Klipper host) too: `server.info` then says
`klippy_connected: false, klippy_state: "disconnected"` (or `startup`, `error`, `shutdown`;
moonraker/server.py `_handle_info_request`, components/klippy_connection.py). The online status
is published on every broker connection whether Klippy is there or not, and nothing at all is
published on MQTT when Klippy drops: only websocket clients get `notify_klippy_disconnected`
(components/websockets.py `notify_clients`). So the object tree says nothing about whether
Klippy is there; `server.info` and those notifications do.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.models.printer import PrinterState, PrintProgress, Temperature

__all__ = [
    "KLIPPY_NOTIFICATIONS",
    "STATUS_OBJECTS",
    "KlipperState",
    "MoonrakerTopics",
    "RpcError",
    "RpcResponse",
    "ServerInfo",
    "ServerStatus",
    "StatusUpdate",
    "drop_mistyped",
    "merge_status",
    "reply_fits",
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


class ServerInfo(BaseModel):
    """The parts of Moonraker's `server.info` result that say whether Klippy is there."""

    model_config = ConfigDict(extra="ignore")

    klippy_connected: bool
    klippy_state: str  # disconnected | startup | ready | error | shutdown
    warnings: list[str] = Field(default_factory=list)
    moonraker_version: str | None = None

    @property
    def ready(self) -> bool:
        return self.klippy_connected and self.klippy_state == "ready"


# Sent by Moonraker to websocket clients only (server.py registers them as notifications).
KLIPPY_NOTIFICATIONS = frozenset(
    {"notify_klippy_ready", "notify_klippy_shutdown", "notify_klippy_disconnected"}
)


class ServerStatus(BaseModel):
    """`{instance}/moonraker/status`: `{"server": "online"}`, or its `offline` will."""

    model_config = ConfigDict(extra="ignore")

    server: str


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    eventtime: float | None = None
    status: dict[str, dict[str, Any]] = Field(default_factory=dict)


def rpc_request(method: str, params: dict[str, Any] | None, request_id: str | int) -> bytes:
    frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        frame["params"] = params
    return json.dumps(frame).encode()


def _dict_with(*keys: str) -> Any:
    return lambda result: isinstance(result, dict) and all(k in result for k in keys)


# What a successful result of each method looks like (moonraker/server.py, klippy_apis.py; a
# Klippy request whose result is empty comes back as "ok", klippy_connection.py).
_RESULT_SHAPES: dict[str, Any] = {
    "server.info": _dict_with("klippy_connected", "klippy_state"),
    "printer.info": _dict_with("state"),
    "printer.objects.query": lambda r: isinstance(r, dict) and isinstance(r.get("status"), dict),
    "printer.objects.list": lambda r: isinstance(r, dict) and isinstance(r.get("objects"), list),
}
_OK_METHODS = frozenset(
    {
        "printer.gcode.script",
        "printer.print.start",
        "printer.print.pause",
        "printer.print.resume",
        "printer.print.cancel",
        "printer.emergency_stop",
    }
)


def reply_fits(method: str, reply: RpcResponse) -> bool:
    """Whether `reply` can be the answer to a `method` request: an error always can; a result
    must have the shape that method returns (a `server.info` result is no answer to a pause)."""
    if reply.error is not None:
        return True
    if method in _OK_METHODS:
        return reply.result == "ok"
    shape = _RESULT_SHAPES.get(method)
    return shape is None or bool(shape(reply.result))


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
        # No default: a tree without Klippy's own state (nothing queried yet, or Klippy gone)
        # says nothing about whether the printer is ready.
        klippy = webhooks.get("state")
        print_state = stats.get("state")
        message = stats.get("message") or None
        if klippy in ("shutdown", "error"):
            state = PrinterState.FAULTED
            message = webhooks.get("state_message") or message or f"klippy {klippy}"
        elif klippy == "ready":
            state = _PRINT_STATES.get(print_state or "standby", PrinterState.IDLE)
        else:
            state = PrinterState.CONNECTING
            if klippy == "startup":
                message = "klippy is starting up"
            else:
                message = "klippy's state is unknown (no webhooks.state in the object tree)"
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
                eta_source="linear" if fraction > 0 else None,
            )
        return cls(
            state=state,
            print_state=print_state,
            filename=stats.get("filename") or None,
            message=message,
            temperatures=temps,
            progress=progress,
        )
