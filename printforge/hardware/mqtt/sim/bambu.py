"""A simulated Bambu Lab printer in LAN mode: TLS MQTT reports and commands, FTPS storage.

A real printer is its own broker; the simulator instead connects to a broker as `bblp` (the
tests give it a TLS listener and that user; a mock farm's broker need only let `bblp` in) so
that a farm of them shares one mosquitto. The topics, frames,
partial reports, command echoes and the FTPS upload are the printer's. With no
`ftps_context` the upload is plain FTP (`BambuConfig.ftp_tls = false` on the driver side), for a
mock farm that has no certificate to serve.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from printforge.gcode.analysis import analyse_text
from printforge.gcode.source import decode_gcode, split_lines
from printforge.gcode.syntax import parse_line
from printforge.hardware.mqtt.bambu_protocol import BambuTopics
from printforge.hardware.mqtt.client import BusClient, decode
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.sim.device import BusSimulator, SimFaults, approach
from printforge.hardware.mqtt.sim.ftps_server import FtpsServer
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import BadArtifact

__all__ = ["BambuFaults", "BambuSimulator"]

log = logging.getLogger(__name__)

HEAT_RATE_C_S = 40.0
FAILURE_CODE = 0x0300_4000  # an HMS-style print_error
BAD_FILE_CODE = 0x0500_C010  # an HMS-style print_error for a file the printer cannot read
MIN_PRINT_S = 0.5
MAX_TICKS = 200


@dataclass(frozen=True)
class PrintPlan:
    """What the simulated printer makes of a file before it starts: how long, how many layers,
    which temperatures - read from the G-code itself, as the real printer does."""

    seconds: float
    layers: int
    nozzle_c: float
    bed_c: float


def plan_print(data: bytes, sim_speed: float) -> PrintPlan:
    """The file's estimated time divided by the speed-up; raises BadArtifact for a file that is
    not G-code text. Runs the same analysis the safety gate uses, so a mock farm's prints take
    as long, relative to each other, as they would on the machine."""
    name = Path("plate.gcode")
    text = decode_gcode(data, name.name)
    found = analyse_text(
        text, name, PrinterProfile(name="bambu-sim", bed_x=256, bed_y=256), size_bytes=len(data)
    )
    return PrintPlan(
        seconds=max(MIN_PRINT_S, found.estimated_time_s / sim_speed),
        layers=max(1, found.layers),
        nozzle_c=found.max_hotend_temp or 220.0,
        bed_c=found.max_bed_temp or 55.0,
    )


class BambuFaults(SimFaults):
    """Faults of a simulated Bambu printer; the reply held is the command echo."""


class _Request(BaseModel):
    print: dict[str, Any] | None = None
    pushing: dict[str, Any] | None = None


class BambuSimulator(BusSimulator):
    """One simulated printer; `ftp_port` is valid after `start()`."""

    def __init__(
        self,
        settings: BusSettings,
        serial: str,
        access_code: str,
        *,
        ftps_context: ssl.SSLContext | None,
        print_s: float = 2.0,
        sim_speed: float | None = None,
        report_interval_s: float = 0.1,
        faults: BambuFaults | None = None,
    ) -> None:
        super().__init__(faults or BambuFaults())
        self.serial = serial
        self.topics = BambuTopics(serial)
        # Without a speed-up every print takes print_s; with one, the file's own estimate / N.
        self.print_s = print_s
        self.sim_speed = sim_speed
        self.report_interval_s = report_interval_s
        self.commands: list[str] = []
        self.gcode_lines: list[str] = []
        self.state: dict[str, Any] = {
            "gcode_state": "IDLE",
            "gcode_file": "",
            "mc_percent": 0,
            "mc_remaining_time": 0,
            "nozzle_temper": 24.0,
            "nozzle_target_temper": 0.0,
            "bed_temper": 24.0,
            "bed_target_temper": 0.0,
            "print_error": 0,
            "layer_num": 0,
            "total_layer_num": 0,
        }
        self._dirty: dict[str, Any] = {}
        self._running = asyncio.Event()
        self._running.set()
        self.ftps = FtpsServer(ftps_context, user="bblp", password=access_code, on_file=self._store)
        self.client = BusClient(
            settings,
            client_id=f"sim-bambu-{serial}-{uuid.uuid4().hex[:6]}",
            on_message=self._on_message,
            subscriptions=[(self.topics.request, 1)],
            username="bblp",
            password=access_code,
            name=f"sim-bambu:{serial}",
        )

    @property
    def ftp_port(self) -> int:
        return self.ftps.port

    async def start(self, *, wait_s: float = 10.0) -> None:
        await self.ftps.start()
        self._spawn(self._report_loop())
        await self.client.start(wait_s=wait_s)

    async def stop(self) -> None:
        await self._stop_tasks()
        await self.client.stop()
        await self.ftps.stop()

    def _store(self, name: str, data: bytes) -> None:
        self.files[name] = data

    def _set(self, **fields: Any) -> None:
        self.state.update(fields)
        self._dirty.update(fields)

    # reports -------------------------------------------------------------------------------------
    async def _report(self, section: dict[str, Any]) -> None:
        if self._garbled():
            payload = b'{"print": {"gcode_state": "RUNN'  # cut off mid-report
        else:
            payload = json.dumps({"print": {"command": "push_status", "msg": 1, **section}})
            payload = payload.encode()
        await self.client.publish_if_connected(self.topics.report, payload, qos=0)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval_s)
            self._heat()
            if self._dirty:
                section, self._dirty = self._dirty, {}
                await self._report(section)

    def _heat(self) -> None:
        step = HEAT_RATE_C_S * self.report_interval_s
        for prefix in ("nozzle", "bed"):
            target = self.state[f"{prefix}_target_temper"] or 24.0
            moved = approach(self.state[f"{prefix}_temper"], target, step)
            if moved is not None:
                self._set(**{f"{prefix}_temper": round(moved, 1)})

    # commands ------------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        req = decode(_Request, payload, kind="bambu_sim", topic=topic)
        if req is not None:
            self._spawn(self._handle(req))

    async def _handle(self, req: _Request) -> None:
        if req.pushing is not None and req.pushing.get("command") == "pushall":
            self.commands.append("pushall")
            self._dirty.clear()
            await self._report(dict(self.state))
            return
        body = req.print
        if body is None:
            return
        command = str(body.get("command", ""))
        self.commands.append(command)
        if self.faults.response_delay_s:
            await asyncio.sleep(self.faults.response_delay_s)
        result, reason = self._execute(command, body.get("param"))
        echo = {
            "command": command,
            "sequence_id": body.get("sequence_id"),
            "param": body.get("param", ""),
            "result": result,
            "reason": reason,
        }
        await self.client.publish_if_connected(
            self.topics.report, json.dumps({"print": echo}), qos=0
        )

    def _execute(self, command: str, param: Any) -> tuple[str, str]:
        state = self.state["gcode_state"]
        if command == "gcode_line":
            lines = split_lines(str(param or ""))
            self.gcode_lines.extend(lines)
            if any((p := parse_line(line)) is not None and p.code == "M112" for line in lines):
                if self._print_task is not None:
                    self._print_task.cancel()
                self._set(gcode_state="FAILED", print_error=FAILURE_CODE + 1)
            return "success", ""
        if command in ("gcode_file", "project_file"):
            name = str(param or "").removeprefix("/sdcard/").lstrip("/")
            if name not in self.files:
                return "failed", f"file {name} not found"
            if state in ("PREPARE", "RUNNING", "PAUSE"):
                return "failed", "printer busy"
            self._begin_print(name)
            return "success", ""
        if command == "pause":
            if state != "RUNNING":
                return "failed", "not printing"
            self._running.clear()
            self._set(gcode_state="PAUSE")
            return "success", ""
        if command == "resume":
            if state != "PAUSE":
                return "failed", "not paused"
            self._running.set()
            self._set(gcode_state="RUNNING")
            return "success", ""
        if command == "stop":
            if self._print_task is not None and not self._print_task.done():
                self._print_task.cancel()
            self._set(gcode_state="IDLE", mc_percent=0)
            return "success", ""
        return "failed", f"unsupported command {command}"

    async def _print(self, name: str) -> None:
        self._set(gcode_state="PREPARE", gcode_file=name, print_error=0, mc_percent=0)
        plan = PrintPlan(self.print_s, 50, 220.0, 55.0)
        if self.sim_speed:
            # A real printer sits in PREPARE while it reads the file: long enough for a report,
            # so the host sees its print start before it sees it fail.
            await asyncio.sleep(self.report_interval_s * 2)
            try:
                plan = await asyncio.to_thread(plan_print, self.files[name], self.sim_speed)
            except BadArtifact as err:
                log.warning("sim-bambu %s: cannot print %s: %s", self.serial, name, err)
                self._set(gcode_state="FAILED", print_error=BAD_FILE_CODE)
                return
        self._set(nozzle_target_temper=plan.nozzle_c, bed_target_temper=plan.bed_c)
        steps = min(MAX_TICKS, max(plan.layers, 10))
        tick = plan.seconds / steps
        try:
            await asyncio.sleep(tick)
            self._set(gcode_state="RUNNING", total_layer_num=plan.layers)
            for step in range(1, steps + 1):
                await self._running.wait()
                await asyncio.sleep(tick)
                fraction = step / steps
                remaining = round((steps - step) * tick * (self.sim_speed or 1.0) / 60)
                self._set(
                    mc_percent=int(fraction * 100),
                    mc_remaining_time=remaining,
                    layer_num=max(1, round(fraction * plan.layers)),
                )
                if self._fails_at(fraction):
                    self._set(gcode_state="FAILED", print_error=FAILURE_CODE)
                    return
            self._set(gcode_state="FINISH")
        finally:
            self._running.set()
            self._set(nozzle_target_temper=0.0, bed_target_temper=0.0)
