"""A simulated Bambu Lab printer in LAN mode: TLS MQTT reports and commands, FTPS storage.

A real printer is its own broker; the simulator instead connects to a broker as `bblp` (the
tests give it a TLS listener and that user; a mock farm's broker need only let `bblp` in) so
that a farm of them shares one mosquitto. The topics, frames,
partial reports, command echoes and the FTPS upload are the printer's. With no
`ftps_context` the upload is plain FTP (`BambuConfig.ftp_tls = false` on the driver side), for a
mock farm that has no certificate to serve.

As the printers do (OpenBambuAPI mqtt.md, pybambu models.py, bambulabs-api):
- reports are `push_status` sections with the printer's own `sequence_id`, changed fields only
  (a P1), at least every `idle_report_s` even when nothing changes, and in full on `pushall`;
- every command is echoed on the report topic with all its fields, its `sequence_id` (when it
  had one) and `result`;
- `project_file` prints the plate `param` names (`Metadata/plate_N.gcode`) out of the 3MF `url`
  names (`ftp:///name.3mf`, `file:///sdcard/name.3mf`), checking `md5` when given, and reports
  the print by file name and `subtask_name`; `gcode_file` prints a bare G-code file;
- `stop` ends a print as `gcode_state: "FAILED"` with `print_error: 50348044` (0x0300400C),
  which returns to 0 after `cancel_clear_s`; FAILED stays until the next print.
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
from printforge.hardware.mqtt.bambu_project import file_md5, read_plate
from printforge.hardware.mqtt.bambu_protocol import CANCELLED, PUSH_STATUS, BambuTopics
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
FIRMWARE = "01.08.00.00"
# stg_cur, the print stage bambulabs-api and pybambu read: 255 idle on a P1, 0 printing,
# 2 heatbed preheating, 16 paused by the user.
_STAGES = {"IDLE": 255, "FINISH": 255, "FAILED": 255, "PREPARE": 2, "RUNNING": 0, "PAUSE": 16}


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
    info: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Job:
    """What a start command asked for: the file's name as reported, its G-code, its subtask."""

    file: str
    gcode: bytes
    subtask: str


def storage_name(url: str) -> str:
    """The file on the printer's storage a `project_file` url names: `ftp:///a.3mf` and
    `file:///sdcard/a.3mf` are both `a.3mf` (the FTP root is the SD card)."""
    for prefix in ("ftp://", "file://"):
        if url.startswith(prefix):
            url = url[len(prefix) :]
            break
    url = url.lstrip("/")
    for root in ("sdcard/", "mnt/sdcard/"):
        if url.startswith(root):
            return url[len(root) :]
    return url


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
        idle_report_s: float = 1.0,
        cancel_clear_s: float = 2.0,
        faults: BambuFaults | None = None,
    ) -> None:
        super().__init__(faults or BambuFaults())
        self.serial = serial
        self.topics = BambuTopics(serial)
        # Without a speed-up every print takes print_s; with one, the file's own estimate / N.
        self.print_s = print_s
        self.sim_speed = sim_speed
        self.report_interval_s = report_interval_s
        self.idle_report_s = idle_report_s
        self.cancel_clear_s = cancel_clear_s
        self.commands: list[str] = []
        self.requests: list[dict[str, Any]] = []  # every print command as it came
        self.gcode_lines: list[str] = []
        self.state: dict[str, Any] = {
            "gcode_state": "IDLE",
            "gcode_file": "",
            "subtask_name": "",
            "mc_percent": 0,
            "mc_remaining_time": 0,
            "nozzle_temper": 24.0,
            "nozzle_target_temper": 0.0,
            "bed_temper": 24.0,
            "bed_target_temper": 0.0,
            "print_error": 0,
            "layer_num": 0,
            "total_layer_num": 0,
            "stg_cur": 255,
            "print_type": "idle",
            "gcode_file_prepare_percent": "0",
            "spd_mag": 100,
            "spd_lvl": 2,
        }
        self._dirty: dict[str, Any] = {}
        self._report_seq = 0
        self._running = asyncio.Event()
        self._running.set()
        self._job: _Job | None = None
        self._clear_task: asyncio.Task[None] | None = None
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

    @property
    def pushalls(self) -> int:
        return self.commands.count("pushall")

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
        if "gcode_state" in fields:
            fields["stg_cur"] = _STAGES.get(fields["gcode_state"], 255)
        self.state.update(fields)
        self._dirty.update(fields)

    # reports -------------------------------------------------------------------------------------
    async def _report(self, section: dict[str, Any]) -> None:
        self._report_seq += 1
        if self._garbled():
            payload = b'{"print": {"gcode_state": "RUNN'  # cut off mid-report
        else:
            frame = {"command": PUSH_STATUS, "msg": 1, "sequence_id": str(self._report_seq)}
            payload = json.dumps({"print": {**frame, **section}}).encode()
        await self.client.publish_if_connected(self.topics.report, payload, qos=0)

    async def _report_loop(self) -> None:
        quiet = 0.0
        while True:
            await asyncio.sleep(self.report_interval_s)
            self._heat()
            quiet += self.report_interval_s
            # Changed fields as they change, and a report at least every idle_report_s: a
            # printer that went quiet is one that is gone (pybambu's watchdog).
            if self._dirty or quiet >= self.idle_report_s:
                section, self._dirty = self._dirty, {}
                quiet = 0.0
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
        if req.pushing is not None:
            command = str(req.pushing.get("command", ""))
            self.commands.append(command)
            if command == "pushall":
                self._dirty.clear()
                await self._report(dict(self.state))
        if req.info is not None and req.info.get("command") == "get_version":
            await self._answer_version(req.info)
        body = req.print
        if body is None:
            return
        command = str(body.get("command", ""))
        self.commands.append(command)
        self.requests.append(dict(body))
        if self.faults.response_delay_s:
            await asyncio.sleep(self.faults.response_delay_s)
        job: _Job | _Refused | None = None
        if command in ("gcode_file", "project_file"):
            # Unzipping and hashing a project of tens of MB: not on the loop.
            job = await asyncio.to_thread(self._job_for, command, body)
        result, reason = self._execute(command, body, job)
        # The echo repeats the command's fields (OpenBambuAPI: "All parameters from the
        # original command"), with its result.
        echo = {**body, "command": command, "result": result, "reason": reason}
        await self.client.publish_if_connected(
            self.topics.report, json.dumps({"print": echo}), qos=0
        )

    async def _answer_version(self, info: dict[str, Any]) -> None:
        modules = [
            {"name": "ota", "sw_ver": FIRMWARE, "hw_ver": "", "sn": ""},
            {"name": "mc", "sw_ver": "00.00.30.00", "hw_ver": "MC07", "sn": self.serial},
        ]
        answer: dict[str, Any] = {"command": "get_version", "module": modules}
        if "sequence_id" in info:
            answer["sequence_id"] = info["sequence_id"]
        await self.client.publish_if_connected(
            self.topics.report, json.dumps({"info": answer}), qos=0
        )

    def _execute(
        self, command: str, body: dict[str, Any], job: _Job | _Refused | None
    ) -> tuple[str, str]:
        state = self.state["gcode_state"]
        param = body.get("param")
        if command == "gcode_line":
            lines = split_lines(str(param or ""))
            self.gcode_lines.extend(lines)
            if any((p := parse_line(line)) is not None and p.code == "M112" for line in lines):
                if self._print_task is not None:
                    self._print_task.cancel()
                self._set(gcode_state="FAILED", print_error=FAILURE_CODE + 1)
            return "success", ""
        if command in ("gcode_file", "project_file"):
            if state in ("PREPARE", "RUNNING", "PAUSE"):
                return "failed", "printer busy"
            if not isinstance(job, _Job):
                return "failed", str(job)
            self._job = job
            self._begin_print(job.file)
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
                self._cancelled()
            return "success", ""
        return "failed", f"unsupported command {command}"

    def _job_for(self, command: str, body: dict[str, Any]) -> _Job | _Refused:
        """The file and G-code a start command names, or why the printer refuses it."""
        try:
            return self._find_job(command, body)
        except _Refused as err:
            return err

    def _find_job(self, command: str, body: dict[str, Any]) -> _Job:
        if command == "gcode_file":
            name = storage_name(str(body.get("param") or ""))
            if name not in self.files:
                raise _Refused(f"file {name} not found")
            return _Job(file=name, gcode=self.files[name], subtask=Path(name).stem)
        url = body.get("url") or body.get("file") or ""
        name = storage_name(str(url))
        if name not in self.files:
            raise _Refused(f"file {name or '(none)'} not found (url {url!r})")
        data = self.files[name]
        md5 = body.get("md5")
        if md5 and str(md5).upper() != file_md5(data):
            raise _Refused(f"md5 mismatch for {name}")
        try:
            gcode = read_plate(data, str(body.get("param") or ""))
        except BadArtifact as err:
            raise _Refused(err.message) from None
        subtask = str(body.get("subtask_name") or "") or name.removesuffix(".3mf").removesuffix(
            ".gcode"
        )
        return _Job(file=name, gcode=gcode, subtask=subtask)

    def _cancelled(self) -> None:
        """A stopped print, as a printer reports it: FAILED with the cancel code, which goes
        back to 0 a little later while FAILED stays."""
        self._set(gcode_state="FAILED", print_error=CANCELLED)
        if self._clear_task is not None:
            self._clear_task.cancel()
        self._clear_task = self._spawn(self._clear_cancel())

    async def _clear_cancel(self) -> None:
        await asyncio.sleep(self.cancel_clear_s)
        if self.state["print_error"] == CANCELLED:
            self._set(print_error=0)

    async def _print(self, name: str) -> None:
        job = self._job
        assert job is not None and job.file == name
        self._set(
            gcode_state="PREPARE",
            gcode_file=name,
            subtask_name=job.subtask,
            print_type="local",
            print_error=0,
            mc_percent=0,
        )
        plan = PrintPlan(self.print_s, 50, 220.0, 55.0)
        if self.sim_speed:
            # A real printer sits in PREPARE while it reads the file: long enough for a report,
            # so the host sees its print start before it sees it fail.
            await asyncio.sleep(self.report_interval_s * 2)
            try:
                plan = await asyncio.to_thread(plan_print, job.gcode, self.sim_speed)
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


class _Refused(Exception):
    """A start command the printer answers with result "failed"."""
