"""A simulated Klipper+Moonraker: JSON-RPC over MQTT, Klipper status, HTTP file upload.

Close enough to the real thing to test the driver: the same topics and frames, partial status
updates, the retained online/offline server status, and uploads that must exist before
`printer.print.start`. Faults are constructor arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from printforge.hardware.mqtt.client import BusClient, decode
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.klipper import MoonrakerTopics, merge_status
from printforge.hardware.mqtt.sim.device import BusSimulator, SimFaults, approach

__all__ = ["MoonrakerFaults", "MoonrakerSimulator"]

log = logging.getLogger(__name__)

HEAT_RATE_C_S = 40.0


class MoonrakerFaults(SimFaults):
    """Faults of a simulated Moonraker: replies are JSON-RPC, a failure shuts Klipper down."""


class _Request(BaseModel):
    jsonrpc: str = "2.0"
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    id: int | str | None = None


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
    ) -> None:
        super().__init__(faults or MoonrakerFaults())
        self.instance = instance
        self.topics = MoonrakerTopics(instance)
        self.bytes_per_s = bytes_per_s
        self.status_interval_s = status_interval_s
        self.calls: list[str] = []
        self.tree: dict[str, dict[str, Any]] = {
            "webhooks": {"state": "ready", "state_message": "Printer is ready"},
            "print_stats": {
                "state": "standby",
                "filename": "",
                "print_duration": 0.0,
                "message": "",
            },
            "virtual_sdcard": {"progress": 0.0, "file_position": 0, "file_size": 0},
            "extruder": {"temperature": 22.0, "target": 0.0},
            "heater_bed": {"temperature": 22.0, "target": 0.0},
        }
        self._dirty: dict[str, dict[str, Any]] = {}
        self._paused = asyncio.Event()
        self._paused.set()
        self._runner: web.AppRunner | None = None
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
        with contextlib.suppress(Exception):
            await self.client.publish_if_connected(
                self.topics.moonraker_status, json.dumps({"server": "offline"}), qos=1, retain=True
            )
        await self.client.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _announce(self) -> None:
        await self.client.publish_if_connected(
            self.topics.moonraker_status, json.dumps({"server": "online"}), qos=1, retain=True
        )

    # state ---------------------------------------------------------------------------------------
    def _set(self, obj: str, **fields: Any) -> None:
        merge_status(self.tree, {obj: fields})
        merge_status(self._dirty, {obj: fields})

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.status_interval_s)
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

    # JSON-RPC ------------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        req = decode(_Request, payload, kind="moonraker_sim", topic=topic)
        if req is not None:
            self._spawn(self._answer(req))

    async def _answer(self, req: _Request) -> None:
        self.calls.append(req.method)
        if self.faults.response_delay_s:
            await asyncio.sleep(self.faults.response_delay_s)
        frame: dict[str, Any] = {"jsonrpc": "2.0", "id": req.id}
        try:
            frame["result"] = self._call(req.method, req.params)
        except _RpcFailure as err:
            frame["error"] = {"code": err.code, "message": err.message}
        await self.client.publish(self.topics.response, json.dumps(frame), qos=1)

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        stats = self.tree["print_stats"]
        klippy_ready = self.tree["webhooks"]["state"] == "ready"
        if method == "printer.objects.query":
            wanted = params.get("objects") or {}
            status = {o: dict(self.tree[o]) for o in wanted if o in self.tree}
            return {"eventtime": time.monotonic(), "status": status}
        if method == "printer.emergency_stop":
            if self._print_task is not None:
                self._print_task.cancel()
            self._set("webhooks", state="shutdown", state_message="Shutdown due to M112 command")
            self._set("print_stats", state="error", message="Shutdown due to M112 command")
            return "ok"
        if not klippy_ready:
            raise _RpcFailure(503, "Klippy Host not connected")
        if method == "printer.gcode.script":
            return "ok"
        if method == "printer.print.start":
            name = params.get("filename", "")
            if name not in self.files:
                raise _RpcFailure(400, f"File {name} does not exist")
            if stats["state"] in ("printing", "paused"):
                raise _RpcFailure(400, "Print is already in progress")
            self._begin_print(name)
            return "ok"
        if method == "printer.print.pause":
            if stats["state"] != "printing":
                raise _RpcFailure(400, "Print not in progress")
            self._paused.clear()
            self._set("print_stats", state="paused")
            return "ok"
        if method == "printer.print.resume":
            if stats["state"] != "paused":
                raise _RpcFailure(400, "Print is not paused")
            self._paused.set()
            self._set("print_stats", state="printing")
            return "ok"
        if method == "printer.print.cancel":
            if self._print_task is not None and not self._print_task.done():
                self._print_task.cancel()
                self._set("print_stats", state="cancelled")
            return "ok"
        raise _RpcFailure(-32601, f"Method not found: {method}")

    async def _print(self, name: str) -> None:
        size = len(self.files[name])
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
                position = min(size, position + max(1, int(self.bytes_per_s * tick)))
                fraction = position / size
                self._set("virtual_sdcard", file_position=position, progress=round(fraction, 4))
                self._set("print_stats", print_duration=round(duration, 2))
                if self._fails_at(fraction):
                    msg = "Heater extruder not heating at expected rate"
                    self._set("webhooks", state="shutdown", state_message=msg)
                    self._set("print_stats", state="error", message=msg)
                    return
            self._set("print_stats", state="complete")
        finally:
            self._paused.set()
            self._set("extruder", target=0.0)
            self._set("heater_bed", target=0.0)


class _RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
