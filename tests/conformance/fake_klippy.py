"""A small Klippy (the Klipper host) on Moonraker's unix-socket API, for the real Moonraker.

Klipper itself needs a printer's MCU to reach `ready`; this stands in for it on the API the real
Moonraker speaks to it (Klipper docs/API_Server.md, klippy/webhooks.py; Moonraker's
components/klippy_connection.py and klippy_apis.py):

- framing: JSON objects each terminated by 0x03, both ways; a request is `{"id", "method",
  "params"}`, a reply `{"id", "result"}` or `{"id", "error": {"error": "WebRequestError",
  "message"}}`;
- endpoints: `info` (state startup/ready/shutdown/error and its message), `list_endpoints`,
  `objects/list`, `objects/query`, `objects/subscribe` (the reply, then
  `{**response_template, "params": {"eventtime", "status"}}` with changed fields),
  `gcode/script` (`SDCARD_PRINT_FILE FILENAME="…"` prints a file from the gcodes folder, as
  virtual_sdcard.py does), `gcode/subscribe_output`, `register_remote_method`,
  `pause_resume/pause|resume|cancel`, `emergency_stop`;
- in shutdown, G-code is refused with the state message (gcode.py `cmd_default`).

It listens where Moonraker's `klippy_uds_address` points; Moonraker connects to it (and keeps
retrying while the socket file is absent). Tests drive it: `start()` (ready or startup),
`become_ready()`, `shutdown()`, `stop()` (Klippy gone), and `hold(method)` to keep an answer
back until `release()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

READY = "Printer is ready"
STARTUP = (
    "\nPrinter is not ready\nThe klippy host software is attempting to connect.  Please\n"
    "retry in a few moments.\n"
)
HALTED = (
    '\nOnce the underlying issue is corrected, use the "RESTART"\ncommand to reload the config'
    " and restart the host software.\nPrinter is halted\n"
)
ENDPOINTS = [
    "list_endpoints",
    "info",
    "emergency_stop",
    "register_remote_method",
    "objects/list",
    "objects/query",
    "objects/subscribe",
    "gcode/help",
    "gcode/script",
    "gcode/restart",
    "gcode/firmware_restart",
    "gcode/subscribe_output",
    "pause_resume/cancel",
    "pause_resume/pause",
    "pause_resume/resume",
]
_PRINT_FILE = re.compile(r'SDCARD_PRINT_FILE\s+FILENAME="?([^"]+)"?', re.IGNORECASE)


class _Refused(Exception):
    """An endpoint's error reply (webhooks.py WebRequestError)."""


class FakeKlippy:
    def __init__(
        self,
        socket_path: Path,
        gcodes: Path,
        *,
        bytes_per_s: float = 40_000.0,
        tick_s: float = 0.05,
    ) -> None:
        self.socket_path = socket_path
        self.gcodes = gcodes
        self.bytes_per_s = bytes_per_s
        self.tick_s = tick_s
        self.state = "startup"
        self.state_message = STARTUP
        self.objects: dict[str, dict[str, Any]] = self._fresh_objects()
        self.methods: list[str] = []  # every request, in order
        self.scripts: list[str] = []  # every gcode/script
        self.connected = asyncio.Event()  # Moonraker is connected
        self.errors: list[BaseException] = []
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # per connection: (objects -> fields or None, response template, last status sent)
        self._subs: dict[asyncio.StreamWriter, tuple[dict[str, Any], dict[str, Any], dict]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._print: asyncio.Task[None] | None = None
        self._held: dict[str, asyncio.Event] = {}
        self._held_reply: dict[str, Any] = {}

    def _fresh_objects(self) -> dict[str, dict[str, Any]]:
        return {
            "webhooks": {"state": self.state, "state_message": self.state_message},
            "print_stats": {
                "filename": "",
                "total_duration": 0.0,
                "print_duration": 0.0,
                "filament_used": 0.0,
                "state": "standby",
                "message": "",
                "info": {"total_layer": None, "current_layer": None},
            },
            "virtual_sdcard": {
                "file_path": None,
                "progress": 0.0,
                "is_active": False,
                "file_position": 0,
                "file_size": 0,
            },
            "pause_resume": {"is_paused": False},
            "display_status": {"progress": 0.0, "message": None},
            "idle_timeout": {"state": "Idle", "printing_time": 0.0},
            "extruder": {"temperature": 23.0, "target": 0.0, "power": 0.0},
            "heater_bed": {"temperature": 23.0, "target": 0.0, "power": 0.0},
            "configfile": {
                "config": {"virtual_sdcard": {"path": str(self.gcodes)}},
                "settings": {"virtual_sdcard": {"path": str(self.gcodes)}},
            },
        }

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self, *, ready: bool = True) -> None:
        if ready:
            self._set_state("ready", READY)
        self._server = await asyncio.start_unix_server(
            self._connection, path=str(self.socket_path), limit=20 * 1024 * 1024
        )
        self._spawn(self._status_loop())

    async def stop(self) -> None:
        """Klippy goes away: the socket closes and its file is removed."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.connected.clear()

    def become_ready(self) -> None:
        self._set_state("ready", READY)

    def shutdown(self, message: str) -> None:
        """Klipper's invoke_shutdown: a print ends in error, G-code is refused from now on."""
        if self._print is not None and not self._print.done():
            self._print.cancel()
            self._set("print_stats", state="error", message=message)
        self._set("virtual_sdcard", is_active=False)
        self._set_state("shutdown", message + HALTED)

    def hold(self, method: str) -> None:
        """Keep the reply to the next `method` request back until `release(method)`."""
        self._held[method] = asyncio.Event()

    def release(self, method: str, *, error: str | None = None) -> None:
        self._held_reply[method] = error
        self._held[method].set()

    def _set_state(self, state: str, message: str) -> None:
        self.state, self.state_message = state, message
        self._set("webhooks", state=state, state_message=message)

    def _set(self, obj: str, **fields: Any) -> None:
        self.objects.setdefault(obj, {}).update(fields)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # the socket ---------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connected.set()
        try:
            while True:
                try:
                    data = await reader.readuntil(b"\x03")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                request = json.loads(data[:-1])
                self._spawn(self._answer(writer, request))
        except Exception as err:  # a bug here must fail the test, not vanish
            self.errors.append(err)
        finally:
            self._writers.discard(writer)
            self._subs.pop(writer, None)
            writer.close()

    def _send(self, writer: asyncio.StreamWriter, frame: dict[str, Any]) -> None:
        if not writer.is_closing():
            writer.write(json.dumps(frame).encode() + b"\x03")

    async def _answer(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        method = request.get("method")
        params = request.get("params") or {}
        self.methods.append(str(method))
        try:
            result = self._call(writer, str(method), params)
            held = self._held.get(str(method))
            if held is not None:
                await held.wait()
                del self._held[str(method)]
                error = self._held_reply.pop(str(method), None)
                if error is not None:
                    raise _Refused(error)
        except _Refused as err:
            reply: dict[str, Any] = {"error": {"error": "WebRequestError", "message": str(err)}}
        except Exception as err:
            self.errors.append(err)
            raise
        else:
            reply = {"result": result}
        if request.get("id") is not None:
            self._send(writer, {"id": request["id"], **reply})

    def _status(self, wanted: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, fields in wanted.items():
            obj = self.objects.get(name, {})
            out[name] = {k: v for k, v in obj.items() if fields is None or k in fields}
        return out

    def _call(self, writer: asyncio.StreamWriter, method: str, params: dict[str, Any]) -> Any:
        if method == "info":
            return {
                "state": self.state,
                "state_message": self.state_message,
                "hostname": "fake-klippy",
                "klipper_path": str(self.gcodes.parent / "klipper"),
                "python_path": "/usr/bin/python3",
                "process_id": os.getpid(),
                "user_id": os.getuid(),
                "group_id": os.getgid(),
                "log_file": str(self.gcodes.parent / "klippy.log"),
                "config_file": str(self.gcodes.parent / "printer.cfg"),
                "software_version": "v0.13.0-fake",
                "cpu_info": "fake",
            }
        if method == "list_endpoints":
            return {"endpoints": ENDPOINTS}
        if method == "objects/list":
            return {"objects": list(self.objects)}
        if method in ("objects/query", "objects/subscribe"):
            wanted = params.get("objects")
            if not isinstance(wanted, dict):
                raise _Refused("Invalid argument")
            status = self._status(wanted)
            if method == "objects/subscribe":
                template = params.get("response_template") or {}
                self._subs[writer] = (dict(wanted), template, json.loads(json.dumps(status)))
            return {"eventtime": time.monotonic(), "status": status}
        if method in ("gcode/subscribe_output", "register_remote_method", "gcode/help"):
            return {}
        if method == "emergency_stop":
            self.shutdown("Shutdown due to webhooks request")
            return {}
        if method == "gcode/script":
            return self._script(str(params.get("script", "")))
        if method.startswith("pause_resume/"):
            return self._pause_resume(method.split("/", 1)[1])
        raise _Refused(f"webhooks: No registered callback for path '{method}'")

    def _script(self, script: str) -> dict[str, Any]:
        self.scripts.append(script)
        if self.state != "ready":
            raise _Refused(self.state_message)
        found = _PRINT_FILE.search(script)
        if found:
            if self._print is not None and not self._print.done():
                raise _Refused("SD busy")
            name = found.group(1).lstrip("/")
            path = self.gcodes / name
            if not path.is_file():
                raise _Refused("Unable to open file")
            self._print = self._spawn(self._printing(name, path.stat().st_size))
        return {}

    def _pause_resume(self, what: str) -> dict[str, Any]:
        if self.state != "ready":
            raise _Refused(self.state_message)
        stats = self.objects["print_stats"]
        if what == "pause" and stats["state"] == "printing":
            self._set("print_stats", state="paused")
            self._set("pause_resume", is_paused=True)
        elif what == "resume" and stats["state"] == "paused":
            self._set("print_stats", state="printing")
            self._set("pause_resume", is_paused=False)
        elif what == "cancel" and self._print is not None and not self._print.done():
            self._print.cancel()
            self._set("print_stats", state="cancelled")
        return {}

    async def _printing(self, name: str, size: int) -> None:
        self._set("print_stats", state="printing", filename=name, print_duration=0.0, message="")
        self._set(
            "virtual_sdcard",
            file_path=str(self.gcodes / name),
            file_size=size,
            file_position=0,
            progress=0.0,
            is_active=True,
        )
        self._set("extruder", target=210.0)
        self._set("heater_bed", target=60.0)
        position = 0
        while position < size:
            await asyncio.sleep(self.tick_s)
            if self.objects["print_stats"]["state"] == "paused":
                continue
            position = min(size, position + max(1, int(self.bytes_per_s * self.tick_s)))
            duration = self.objects["print_stats"]["print_duration"] + self.tick_s
            self._set("virtual_sdcard", file_position=position, progress=round(position / size, 4))
            self._set("print_stats", print_duration=round(duration, 3))
        self._set("print_stats", state="complete")
        self._set("virtual_sdcard", is_active=False)
        self._set("extruder", target=0.0)
        self._set("heater_bed", target=0.0)

    async def _status_loop(self) -> None:
        """Changed fields to each subscriber, as webhooks.py `_do_query` sends them."""
        while True:
            await asyncio.sleep(self.tick_s)
            for writer, (wanted, template, last) in list(self._subs.items()):
                now = self._status(wanted)
                diff: dict[str, Any] = {}
                for name, fields in now.items():
                    before = last.get(name, {})
                    changed = {k: v for k, v in fields.items() if before.get(k) != v}
                    if changed:
                        diff[name] = changed
                        before.update(json.loads(json.dumps(changed)))
                        last[name] = before
                if diff:
                    self._send(
                        writer,
                        {**template, "params": {"eventtime": time.monotonic(), "status": diff}},
                    )
