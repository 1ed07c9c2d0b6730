"""A simulated Klipper+Moonraker: JSON-RPC over MQTT, Klipper status, HTTP upload, websocket.

Close enough to the real thing to test the driver, checked against Moonraker 0.11's source
(moonraker/server.py, components/mqtt.py, components/klippy_connection.py, klippy_apis.py,
websockets.py, common.py `JsonRPC`) and Klipper's API server (docs/API_Server.md, webhooks.py):

- Moonraker runs whether or not Klippy does. `server.info` says `klippy_connected` and
  `klippy_state` (disconnected, startup, ready, error, shutdown). Klippy's own methods
  (`printer.info`, `printer.objects.*`, `printer.gcode.script`, `printer.emergency_stop`) are
  registered only once Klippy has connected: until then they answer -32601 "Method not found",
  afterwards, with Klippy gone, 503 "Klippy Host not connected". Moonraker's own
  `printer.print.*` answer 503 whenever Klippy is not connected, and an error Klippy returns
  (a G-code refused in shutdown, "SD busy") comes back as 400.
- The MQTT status topic says `{"server": "online"}` on every broker connection whatever Klippy
  does, and nothing is published on MQTT when Klippy drops; websocket clients that have
  identified get `notify_klippy_ready|shutdown|disconnected`.
- Object status is published as changed fields only, and in full when Klippy comes (Moonraker
  subscribes anew, components/mqtt.py `_handle_klippy_started`).

`klippy` (constructor) starts it with Klippy ready or absent; `connect_klippy`,
`disconnect_klippy` and `shutdown_klippy` drive it from there. Faults are constructor arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from printforge.hardware.mqtt.client import BusClient, decode
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.klipper import MoonrakerTopics, merge_status
from printforge.hardware.mqtt.sim.device import BusSimulator, SimFaults, approach

__all__ = ["KLIPPY_METHODS", "MoonrakerFaults", "MoonrakerSimulator"]

log = logging.getLogger(__name__)

HEAT_RATE_C_S = 40.0
MOONRAKER_VERSION = "v0.11.0-sim"
READY_MESSAGE = "Printer is ready"  # klippy.py message_ready
STARTUP_MESSAGE = (  # klippy.py message_startup
    "\nPrinter is not ready\nThe klippy host software is attempting to connect.  Please\n"
    "retry in a few moments.\n"
)
RESTART_HINT = (  # klippy.py message_restart
    '\nOnce the underlying issue is corrected, use the "RESTART"\ncommand to reload the config'
    " and restart the host software.\nPrinter is halted\n"
)

# The JSON-RPC methods Moonraker gets from Klippy's endpoint list (`list_endpoints`):
# registered once Klippy has first connected, 503 while it is away after that.
KLIPPY_METHODS = frozenset(
    {
        "printer.info",
        "printer.emergency_stop",
        "printer.objects.list",
        "printer.objects.query",
        "printer.objects.subscribe",
        "printer.gcode.script",
        "printer.gcode.help",
        "printer.gcode.restart",
        "printer.gcode.firmware_restart",
    }
)
# Moonraker's own aliases that forward to Klippy (klippy_apis.py): always registered.
PRINT_METHODS = frozenset(
    {
        "printer.print.start",
        "printer.print.pause",
        "printer.print.resume",
        "printer.print.cancel",
        "printer.restart",
        "printer.firmware_restart",
    }
)


class MoonrakerFaults(SimFaults):
    """Faults of a simulated Moonraker: replies are JSON-RPC, a failure shuts Klipper down."""

    objects_query_fails: int = Field(
        0,
        ge=0,
        description="the first N printer.objects.query answer 503, as when Klippy drops between"
        " server.info and the query",
    )


class _Request(BaseModel):
    jsonrpc: str = "2.0"
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    id: int | str | None = None


def _fresh_tree() -> dict[str, dict[str, Any]]:
    """Klipper's objects as a freshly started Klippy has them."""
    return {
        "webhooks": {"state": "ready", "state_message": READY_MESSAGE},
        "print_stats": {
            "state": "standby",
            "filename": "",
            "print_duration": 0.0,
            "message": "",
        },
        "virtual_sdcard": {"progress": 0.0, "file_position": 0, "file_size": 0},
        "pause_resume": {"is_paused": False},
        # A printer.cfg with [exclude_object] (what the slicer's labels need).
        "exclude_object": {"objects": [], "excluded_objects": [], "current_object": None},
        "extruder": {"temperature": 22.0, "target": 0.0},
        "heater_bed": {"temperature": 22.0, "target": 0.0},
    }


class MoonrakerSimulator(BusSimulator):
    """One simulated printer. `http_url` is valid after `start()`."""

    def __init__(
        self,
        settings: BusSettings,
        instance: str,
        *,
        bytes_per_s: float = 200_000.0,
        status_interval_s: float = 0.25,
        faults: MoonrakerFaults | None = None,
        klippy: Literal["ready", "absent"] = "ready",
    ) -> None:
        super().__init__(faults or MoonrakerFaults())
        self.instance = instance
        self.topics = MoonrakerTopics(instance)
        self.bytes_per_s = bytes_per_s
        self.status_interval_s = status_interval_s
        self.calls: list[str] = []
        self.skipped_bytes = 0  # bytes of excluded objects the print left out
        self.tree: dict[str, dict[str, Any]] = _fresh_tree()
        # Klippy: whether it is connected to us, and whether it ever was (its endpoints exist).
        self.klippy_connected = klippy == "ready"
        self.klippy_seen = self.klippy_connected
        self._klippy_starting = False
        self._dirty: dict[str, dict[str, Any]] = {}
        self._paused = asyncio.Event()
        self._paused.set()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._identified: set[web.WebSocketResponse] = set()
        self.http_url = ""
        self.client = BusClient(
            settings,
            client_id=f"sim-moonraker-{instance}-{uuid.uuid4().hex[:6]}",
            on_message=self._on_message,
            subscriptions=[(self.topics.request, 1)],
            will=BusClient.will_of(self.topics.moonraker_status, json.dumps({"server": "offline"})),
            name=f"sim-moonraker:{instance}",
        )
        self.client.on_connect(self._announce)

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self, *, wait_s: float = 10.0) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/server/files/upload", self._handle_upload)
        app.router.add_get("/websocket", self._handle_websocket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.http_url = f"http://127.0.0.1:{port}"
        self._spawn(self._report_loop())
        await self.client.start(wait_s=wait_s)

    async def stop(self) -> None:
        await self._stop_tasks()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        with contextlib.suppress(Exception):
            await self.client.publish_if_connected(
                self.topics.moonraker_status, json.dumps({"server": "offline"}), qos=1, retain=True
            )
        await self.client.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _announce(self) -> None:
        # On every broker connection, Klippy or not (components/mqtt.py `_on_connect`).
        await self.client.publish_if_connected(
            self.topics.moonraker_status, json.dumps({"server": "online"}), qos=1, retain=True
        )

    # Klippy ----------------------------------------------------------------------------------
    @property
    def klippy_state(self) -> str:
        """What `server.info` says (klippy_connection.py `state`)."""
        if not self.klippy_connected:
            return "disconnected"
        if self._klippy_starting:
            return "startup"
        return str(self.tree["webhooks"]["state"])

    async def connect_klippy(self, *, startup_s: float = 0.0) -> None:
        """Klippy (re)starts and connects: `startup` for `startup_s`, then ready."""
        if self.klippy_connected:
            return
        self.tree = _fresh_tree()
        self._dirty = {}
        self.klippy_connected = True
        self.klippy_seen = True
        self._klippy_starting = True
        if startup_s:
            await asyncio.sleep(startup_s)
        self._klippy_starting = False
        # Moonraker subscribes anew and publishes the full status (mqtt.py).
        merge_status(self._dirty, self.tree)
        self._notify("notify_klippy_ready")

    async def disconnect_klippy(self) -> None:
        """The Klipper host goes away (a crash, a restart, a service stop): MQTT hears nothing."""
        if not self.klippy_connected:
            return
        if self._print_task is not None and not self._print_task.done():
            self._print_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._print_task
        self.klippy_connected = False
        self._klippy_starting = False
        self._dirty = {}
        self._notify("notify_klippy_disconnected")

    def shutdown_klippy(self, message: str) -> None:
        """Klippy shuts down (M112, an MCU error): webhooks says so, a print ends in error."""
        task = self._print_task
        if task is not None and not task.done():
            if task is not asyncio.current_task():  # the print failing ends by itself
                task.cancel()
            self._set("print_stats", state="error", message=message)
        self._set("webhooks", state="shutdown", state_message=message + RESTART_HINT)
        self._notify("notify_klippy_shutdown")

    def _notify(self, method: str) -> None:
        frame = json.dumps({"jsonrpc": "2.0", "method": method})
        for ws in list(self._identified):
            if not ws.closed:
                self._spawn(ws.send_str(frame))

    # state ---------------------------------------------------------------------------------------
    def _set(self, obj: str, **fields: Any) -> None:
        merge_status(self.tree, {obj: fields})
        merge_status(self._dirty, {obj: fields})

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.status_interval_s)
            if not self.klippy_connected:
                continue  # Moonraker has no subscription without Klippy
            self._heat()
            if not self._dirty:
                continue
            if self._garbled():
                payload: bytes = b'{"eventtime": 1, "status": {"print_stats": '  # cut short
            else:
                frame = {"eventtime": time.monotonic(), "status": self._dirty}
                payload = json.dumps(frame).encode()
                self._dirty = {}
            await self.client.publish_if_connected(self.topics.klipper_status, payload, qos=0)

    def _heat(self) -> None:
        step = HEAT_RATE_C_S * self.status_interval_s
        for obj in ("extruder", "heater_bed"):
            h = self.tree[obj]
            moved = approach(h["temperature"], h["target"] or 22.0, step)
            if moved is not None:
                self._set(obj, temperature=round(moved, 2))

    # HTTP ----------------------------------------------------------------------------------------
    async def _handle_upload(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        fields: dict[str, str] = {}
        filename = None
        data = b""
        async for part in reader:
            if part.name == "file":
                filename = part.filename
                data = bytes(await part.read())
            elif part.name:
                fields[part.name] = await part.text()
        if not filename or fields.get("root", "gcodes") != "gcodes":
            return web.json_response({"error": {"message": "bad upload"}}, status=400)
        folder = fields.get("path", "").strip("/")
        path = f"{folder}/{filename}" if folder else filename
        self.files[path] = data
        return web.json_response(
            {"item": {"path": path, "root": "gcodes", "size": len(data)}, "action": "create_file"},
            status=201,
        )

    async def _handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    req = _Request.model_validate_json(msg.data)
                except ValueError:
                    await ws.send_str(json.dumps(_error(-32700, "Parse error", None)))
                    continue
                if req.method == "server.connection.identify":
                    # No authorization here: a mock farm trusts loopback, as Moonraker does its
                    # trusted_clients.
                    self._identified.add(ws)
                    frame = {"jsonrpc": "2.0", "result": {"connection_id": id(ws)}, "id": req.id}
                else:
                    frame = await self._dispatch(req)
                await ws.send_str(json.dumps(frame))
        finally:
            self._sockets.discard(ws)
            self._identified.discard(ws)
        return ws

    # JSON-RPC ------------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        req = decode(_Request, payload, kind="moonraker_sim", topic=topic)
        if req is not None:
            self._spawn(self._answer(req))

    async def _answer(self, req: _Request) -> None:
        self.calls.append(req.method)
        if self.faults.response_delay_s:
            await asyncio.sleep(self.faults.response_delay_s)
        frame = await self._dispatch(req)
        await self.client.publish(self.topics.response, json.dumps(frame), qos=1)

    async def _dispatch(self, req: _Request) -> dict[str, Any]:
        try:
            result = self._call(req.method, req.params)
        except _RpcFailure as err:
            return _error(err.code, err.message, req.id)
        return {"jsonrpc": "2.0", "result": result, "id": req.id}

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        if method == "server.info":
            return self._server_info()
        if method in KLIPPY_METHODS:
            if not self.klippy_seen:
                raise _RpcFailure(-32601, "Method not found")
            if not self.klippy_connected:
                raise _RpcFailure(503, "Klippy Host not connected")
            return self._klippy_call(method, params)
        if method in PRINT_METHODS:
            if not self.klippy_connected:
                raise _RpcFailure(503, "Klippy Host not connected")
            return self._print_call(method, params)
        raise _RpcFailure(-32601, "Method not found")

    def _server_info(self) -> dict[str, Any]:
        return {
            "klippy_connected": self.klippy_connected,
            "klippy_state": self.klippy_state,
            "components": ["klippy_connection", "jsonrpc", "file_manager", "klippy_apis", "mqtt"],
            "failed_components": [],
            "registered_directories": ["config", "logs", "gcodes"],
            "warnings": [],
            "websocket_count": len(self._sockets),
            "moonraker_version": MOONRAKER_VERSION,
            "missing_klippy_requirements": [],
            "api_version": [1, 5, 0],
            "api_version_string": "1.5.0",
        }

    def _klippy_ready(self) -> bool:
        return self.klippy_state == "ready"

    def _klippy_call(self, method: str, params: dict[str, Any]) -> Any:
        if method == "printer.info":
            webhooks = self.tree["webhooks"]
            starting = self._klippy_starting
            return {
                "state": "startup" if starting else webhooks["state"],
                "state_message": STARTUP_MESSAGE if starting else webhooks["state_message"],
                "hostname": "sim",
                "klipper_path": "/sim/klipper",
                "python_path": "/sim/klippy-env/bin/python",
                "process_id": os.getpid(),
                "user_id": 0,
                "group_id": 0,
                "log_file": "/sim/klippy.log",
                "config_file": "/sim/printer.cfg",
                "software_version": "v0.13.0-sim",
                "cpu_info": "simulated",
            }
        if method == "printer.objects.list":
            return {"objects": sorted(self.tree)}
        if method in ("printer.objects.query", "printer.objects.subscribe"):
            if self.faults.objects_query_fails > 0:
                self.faults.objects_query_fails -= 1
                raise _RpcFailure(503, "Klippy Host not connected")
            wanted = params.get("objects")
            if not isinstance(wanted, dict):
                raise _RpcFailure(400, "Invalid argument")
            # An object Klippy does not have comes back empty (webhooks.py `_do_query`).
            status = {o: dict(self.tree.get(o, {})) for o in wanted}
            return {"eventtime": time.monotonic(), "status": status}
        if method == "printer.emergency_stop":
            self.shutdown_klippy("Shutdown due to webhooks request")
            return "ok"
        if method == "printer.gcode.script":
            self._gcode_allowed()
            self._gcode(str(params.get("script", "")))
            return "ok"
        raise _RpcFailure(-32601, "Method not found")

    def _gcode(self, script: str) -> None:
        """The one command the simulator acts on: `EXCLUDE_OBJECT NAME=<name>`. Klipper
        (extras/exclude_object.py) upper-cases the name and adds it to `excluded_objects`,
        known or not; its print then leaves that object's moves out."""
        for line in script.splitlines():
            words = line.split()
            if not words or words[0].upper() != "EXCLUDE_OBJECT":
                continue
            args = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            name = args.get("NAME", args.get("name", "")).upper()
            excluded = list(self.tree.get("exclude_object", {}).get("excluded_objects", []))
            if name and name not in excluded:
                self._set("exclude_object", excluded_objects=sorted([*excluded, name]))

    def _gcode_allowed(self) -> None:
        """In shutdown Klipper refuses G-code with its state message (gcode.py cmd_default)."""
        if not self._klippy_ready():
            raise _RpcFailure(400, str(self.tree["webhooks"]["state_message"]))

    def _print_call(self, method: str, params: dict[str, Any]) -> Any:
        stats = self.tree["print_stats"]
        self._gcode_allowed()
        if method == "printer.print.start":
            name = str(params.get("filename", "")).lstrip("/")
            if self._print_task is not None and not self._print_task.done():
                raise _RpcFailure(400, "SD busy")  # virtual_sdcard.py SDCARD_PRINT_FILE
            if name not in self.files:
                raise _RpcFailure(400, "Unable to open file")
            self._begin_print(name)
            return "ok"
        # PAUSE, RESUME and CANCEL_PRINT succeed whatever the state (pause_resume.py): a pause
        # with nothing printing or a resume of what is not paused is only a console message.
        if method == "printer.print.pause":
            if stats["state"] == "printing":
                self._paused.clear()
                self._set("print_stats", state="paused")
                self._set("pause_resume", is_paused=True)
            return "ok"
        if method == "printer.print.resume":
            if stats["state"] == "paused":
                self._paused.set()
                self._set("print_stats", state="printing")
                self._set("pause_resume", is_paused=False)
            return "ok"
        if method == "printer.print.cancel":
            if self._print_task is not None and not self._print_task.done():
                self._print_task.cancel()
                self._set("print_stats", state="cancelled")
            return "ok"
        return "ok"  # restart / firmware_restart: nothing to model

    async def _print(self, name: str) -> None:
        size = len(self.files[name])
        spans = _object_spans(self.files[name])
        self._set(
            "exclude_object",
            objects=[{"name": n} for n in spans.names],
            excluded_objects=[],
            current_object=None,
        )
        self.skipped_bytes = 0
        self._set("print_stats", state="printing", filename=name, print_duration=0.0, message="")
        self._set("virtual_sdcard", file_size=size, file_position=0, progress=0.0)
        self._set("extruder", target=210.0)
        self._set("heater_bed", target=60.0)
        position = 0
        duration = 0.0
        tick = self.status_interval_s / 2
        try:
            while position < size:
                await self._paused.wait()
                await asyncio.sleep(tick)
                duration += tick
                step = max(1, int(self.bytes_per_s * tick))
                # Klipper runs an excluded object's moves as nothing: its bytes go by at once.
                excluded = set(self.tree["exclude_object"]["excluded_objects"])
                for start, stop, obj in spans.spans:
                    if obj in excluded and start <= position + step and stop > position:
                        skipped = stop - max(start, position)
                        self.skipped_bytes += skipped
                        step += skipped
                position = min(size, position + step)
                fraction = position / size
                self._set("virtual_sdcard", file_position=position, progress=round(fraction, 4))
                self._set("print_stats", print_duration=round(duration, 2))
                if self._fails_at(fraction):
                    msg = "Heater extruder not heating at expected rate"
                    self._set("print_stats", state="error", message=msg)
                    self.shutdown_klippy(msg)
                    return
            self._set("print_stats", state="complete")
        finally:
            self._paused.set()
            self._set("pause_resume", is_paused=False)
            self._set("extruder", target=0.0)
            self._set("heater_bed", target=0.0)


@dataclass
class _Spans:
    names: list[str] = field(default_factory=list)
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # byte range, object


def _object_spans(data: bytes) -> _Spans:
    """The objects a file defines (EXCLUDE_OBJECT_DEFINE) and the bytes of each one's paths
    (EXCLUDE_OBJECT_START ... _END), names upper-cased as Klipper keeps them."""
    found = _Spans()
    open_at: dict[str, int] = {}
    offset = 0
    for raw in data.splitlines(keepends=True):
        words = raw.decode(errors="replace").split(";", 1)[0].split()
        if words:
            head = words[0].upper()
            args = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            name = args.get("NAME", "").upper()
            if head == "EXCLUDE_OBJECT_DEFINE" and name and name not in found.names:
                found.names.append(name)
            elif head == "EXCLUDE_OBJECT_START" and name:
                open_at[name] = offset + len(raw)
            elif head == "EXCLUDE_OBJECT_END" and name in open_at:
                found.spans.append((open_at.pop(name), offset, name))
        offset += len(raw)
    found.spans.sort()
    return found


def _error(code: int, message: str, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


class _RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
