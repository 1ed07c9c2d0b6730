"""Bambu Lab printers in LAN mode (`driver = "bambu"`): MQTT over TLS plus an FTPS upload.

The printer is its own broker (port 8883, user `bblp`, password the LAN access code); commands
go to `device/{serial}/request`, reports come on `device/{serial}/report`. A file is uploaded
over implicit FTPS (port 990) and started the way Bambu Studio starts one: a plate-sliced
`.gcode.3mf` project with `print.project_file` (`print_as = "project"`, the default; plain
G-code is wrapped into a one-plate project), or a bare G-code file with `print.gcode_file`.

The printer echoes every client's commands on the report topic, and other clients number theirs
too ("0", "10000000", a counter): our sequence ids start at a random base per driver, and an
echo is our answer only when its sequence id and its command both match. A full report
(`pushing.pushall`) is asked for on the first connection and then at most every
`pushall_min_interval_s` (OpenBambuAPI mqtt.md: not more often than every 5 minutes on a P1P,
whose hardware lags under it); otherwise the printer's incremental reports keep the state.

A simulator (`sim/bambu.py`) is no broker of its own: it reports through a shared one, named by
`broker`, and may serve plain FTP (`ftp_tls = false`) when there is no certificate to serve.
"""

from __future__ import annotations

import asyncio
import ftplib
import secrets
import ssl
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from printforge.hardware.eta import LiveEta
from printforge.hardware.mqtt.bambu_project import build_project, file_md5, plate_path
from printforge.hardware.mqtt.bambu_protocol import (
    CANCELLED,
    PUSH_STATUS,
    BambuState,
    BambuTopics,
    Report,
    echo_of,
    error_code,
    merge_report,
    non_numeric,
    request,
)
from printforge.hardware.mqtt.client import BusClient, decode, note_malformed
from printforge.hardware.mqtt.config import BrokerAddress, BusSettings, parse_broker
from printforge.hardware.mqtt.device import MqttDriverConfig, MqttPrinterDriver, RemotePrint
from printforge.hardware.mqtt.ftps import upload_file
from printforge.models.printer import MaterialProfile, PrinterProfile, PrinterState, PrintProgress
from printforge.runtime.errors import (
    AuthError,
    ConfigError,
    ConnectionLost,
    InvalidTransition,
    PrintCancelled,
    PrinterDisconnected,
    PrinterError,
    PrinterFault,
)

__all__ = ["BambuConfig", "BambuDriver"]

USER = "bblp"
START_TIMEOUT_S = 60.0
# Far from the small counters and the fixed "0" / "10000000" other clients use, and below
# 2**31 in case a firmware reads sequence ids as int32.
_SEQUENCE_BASES = range(100_000_000, 1_000_000_000, 1_000_000)


class BambuConfig(MqttDriverConfig):
    """`[printers.NAME]` keys of a `driver = "bambu"` printer."""

    host: str = Field(description="the printer's LAN address")
    serial: str = Field(min_length=1, description="the printer's serial number")
    access_code: SecretStr = Field(description="LAN access code from the printer's screen")
    mqtt_port: int = Field(8883, gt=0, lt=65536)
    ftp_port: int = Field(990, gt=0, lt=65536)
    tls_ca: str | None = Field(
        None, description="CA to verify the printer with; without it the certificate is not checked"
    )
    verify_hostname: bool = Field(
        False, description="printers present their serial, not their address, as the name"
    )
    stale_after_s: float = Field(
        60.0, gt=0, description="silent this long: offline (pybambu's watchdog waits 60 s too)"
    )
    pushall_min_interval_s: float = Field(
        300.0,
        ge=0,
        description="at most one full report (pushing.pushall) this often; OpenBambuAPI warns a"
        " P1P lags when asked more often than every 5 minutes",
    )
    broker: str | None = Field(
        None,
        description="mqtt:// or mqtts:// URL of a shared broker the printer reports through"
        " (simulators); default the printer itself, over TLS at host:mqtt_port",
    )
    ftp_tls: bool = Field(
        True, description="implicit FTPS; false only for a simulator serving plain FTP"
    )
    print_as: Literal["project", "gcode"] = Field(
        "project",
        description="project: upload a .gcode.3mf and start it with project_file, as Bambu"
        " Studio does; gcode: upload the G-code and start it with gcode_file",
    )
    plate: int = Field(1, ge=1, description="the plate of a .3mf project to print")
    use_ams: bool = Field(False, description="project_file use_ams: feed from the AMS")
    ams_mapping: list[int] = Field(
        default_factory=list, description="project_file ams_mapping (with use_ams)"
    )
    bed_leveling: bool = Field(True, description="project_file bed_leveling")
    timelapse: bool = Field(False, description="project_file timelapse")
    flow_cali: bool = Field(False, description="project_file flow_cali")
    vibration_cali: bool = Field(False, description="project_file vibration_cali")
    layer_inspect: bool = Field(False, description="project_file layer_inspect")

    @field_validator("broker")
    @classmethod
    def _broker_is_a_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_broker(value)
            except ConfigError as err:
                raise ValueError(err.message) from None
        return value

    def address(self) -> BrokerAddress:
        """Where the reports are: the shared broker if one is named, else the printer."""
        if self.broker:
            return parse_broker(self.broker)
        return BrokerAddress(host=self.host, port=self.mqtt_port, tls=True)


def _tls(cfg: BambuConfig) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cafile=cfg.tls_ca)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"bambu tls_ca cannot be used: {err}") from err
    ctx.check_hostname = bool(cfg.tls_ca) and cfg.verify_hostname
    if not cfg.tls_ca:
        # The printer's certificate is self-signed per device; with no CA there is nothing to
        # verify against. The access code still authenticates us to the printer.
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class BambuDriver(MqttPrinterDriver):
    kind: ClassVar[str] = "bambu"
    Config: ClassVar[type[BambuConfig]] = BambuConfig  # type: ignore[assignment]
    start_timeout_s: ClassVar[float] = START_TIMEOUT_S
    cfg: BambuConfig

    def __init__(
        self,
        name: str,
        config: BambuConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        super().__init__(name, config, profile, material)
        self.topics = BambuTopics(config.serial)
        self._tree: dict[str, Any] = {}
        self._last_report = 0.0
        self._last_pushall: float | None = None  # monotonic time of the last one we sent
        # A report we could not read: its fields are missing from the tree until the printer
        # resends them, which a P1 does only when they change again.
        self._pushall_due = False
        self.pushalls = 0
        self._ctx: ssl.SSLContext | None = None
        # print_error codes seen since our print started: a FAILED whose code already went
        # back to 0 is still told apart from a failure.
        self._job_errors: set[int] = set()
        self._sequence_base = secrets.choice(_SEQUENCE_BASES) + secrets.randbelow(1_000_000)
        self.bambu: BambuState | None = None

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._client is not None:
            return
        address = self.cfg.address()
        if address.tls or self.cfg.ftp_tls:
            self._ctx = await asyncio.to_thread(_tls, self.cfg)
        scheme = "mqtts" if address.tls else "mqtt"
        settings = BusSettings(broker=f"{scheme}://{address.host}:{address.port}")
        self._client = BusClient(
            settings,
            client_id=f"pf-bambu-{self.name}-{uuid.uuid4().hex[:8]}",
            on_message=self._on_message,
            subscriptions=[(self.topics.report, 0)],
            name=f"bambu:{self.name}",
            address=address,
            username=USER,
            password=self.cfg.access_code.get_secret_value(),
            tls=self._ctx if address.tls else None,
        )
        self._client.on_connect(self._on_connect)
        self._set_status(state=PrinterState.CONNECTING)
        self._spawn(self._watchdog())
        await self._client.start()

    async def _on_connect(self) -> None:
        # Partial reports assume we know the rest: a full one on the first connection, and on
        # later ones when the rate limit allows (the watchdog sends a deferred one).
        if self._pushall_allowed():
            await self._push_all()

    def _pushall_allowed(self) -> bool:
        last = self._last_pushall
        return last is None or time.monotonic() - last >= self.cfg.pushall_min_interval_s

    async def _push_all(self) -> None:
        self._last_pushall = time.monotonic()
        self._pushall_due = False
        self.pushalls += 1
        await self._publish("pushing", "pushall")

    async def _watchdog(self) -> None:
        """Call the printer offline when it stays quiet; never ask it for reports more often
        than the rate limit lets us."""
        while True:
            await asyncio.sleep(min(5.0, self.cfg.stale_after_s / 3))
            client = self._client
            if client is None or not client.connected.is_set():
                self._mark_offline("no connection to the printer")
                continue
            silent = time.monotonic() - self._last_report
            if silent > self.cfg.stale_after_s:
                self._mark_offline(f"no report for {silent:.0f}s")
                if self._pushall_allowed():
                    await self._push_all()
            elif (self._pushall_due or not self._tree) and self._pushall_allowed():
                # A report lost, or a reconnection inside the limit that left us without one.
                await self._push_all()

    # inbound ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        report = decode(Report, payload, kind="bambu", topic=topic)
        if report is None:
            self._pushall_due = True  # counted and logged by decode
            return
        if report.print is None:
            return
        section = report.print
        self._last_report = time.monotonic()
        echo = echo_of(section)
        if echo is not None:
            # Any client's command echo: an answer if it is ours, never printer state (it
            # repeats the command's own fields: url, subtask_name, param…).
            self._answer(echo[0], section)
        elif section.get("command", PUSH_STATUS) == PUSH_STATUS:
            bad = non_numeric(section)
            if bad:
                # Valid JSON with a wrong type: kept in the tree it would break every later
                # report.
                note_malformed("bambu", topic, f"not numbers: {', '.join(bad)}")
            skip = _EPHEMERAL.union(bad)
            merge_report(self._tree, {k: v for k, v in section.items() if k not in skip})
            self.bambu = BambuState.of(self._tree)
            code = BambuState.of({"print_error": section.get("print_error")}).error
            if code:
                self._job_errors.add(code)  # as reported now, not left from an earlier print
        b = self.bambu
        self.connected.set()
        if b is None:
            # Alive, but nothing known yet (only echoes so far).
            self._set_status(state=PrinterState.CONNECTING, message="waiting for a full report")
        else:
            self._set_status(state=b.state, temperatures=b.temperatures, message=b.message)
        self._changed.set()

    # requests --------------------------------------------------------------------------------
    @staticmethod
    def _new_id_prefix() -> str:
        return ""  # sequence ids are numbers from a random base (see _next_id)

    def _next_id(self) -> str:
        return str(self._sequence_base + next(self._ids))

    async def _publish(self, section: str, command: str, **fields: Any) -> str:
        if self._client is None:
            raise PrinterDisconnected(f"printer {self.name} is not started")
        seq = self._next_id()
        await self._client.publish(
            self.topics.request, request(section, command, seq, **fields), qos=1
        )
        return seq

    async def _command(self, command: str, **fields: Any) -> None:
        """A `print` command, waiting for the printer's echo of it with its result."""
        ack: dict[str, Any] = await self._ask(
            self.topics.request,
            lambda seq: request("print", command, seq, **fields),
            f"bambu {self.name} did not confirm {command} in {self.cfg.request_timeout_s:g}s",
            fits=lambda section: section.get("command") == command,
        )
        if str(ack.get("result", "")).lower() != "success":
            raise PrinterError(
                f"bambu {self.name} refused {command}: {ack.get('reason') or ack.get('result')}",
                code="bambu_refused",
            )

    async def send(self, line: str) -> None:
        await self._command("gcode_line", param=line.rstrip("\n") + "\n")

    async def pause(self) -> None:
        await self._command("pause", param="")

    async def resume(self) -> None:
        await self._command("resume", param="")

    async def cancel(self) -> None:
        await self._command("stop", param="")

    async def emergency_stop(self) -> None:
        # LAN mode has no dedicated kill; M112 through gcode_line is the firmware's own.
        await self._command("gcode_line", param="M112\n")

    async def cancel_object(self, ref: str | int) -> dict[str, Any]:
        # Bambu Studio skips objects with a `skip_objects` print command whose ids come from
        # the project 3MF's plate metadata (its own slicer's object ids); the plain G-code this
        # host sends carries none, and the command is not in the documented LAN protocol.
        raise PrinterError(
            f"printer {self.name}: cancelling one object is not supported on Bambu printers"
            " (their LAN protocol has no command for it on a plain G-code print)",
            code="unsupported",
        )

    # printing --------------------------------------------------------------------------------
    async def upload(self, source: Path | bytes, remote_name: str) -> None:
        assert self._ctx is not None or not self.cfg.ftp_tls, "upload before start()"
        try:
            await asyncio.to_thread(
                upload_file,
                source,
                remote_name,
                host=self.cfg.host,
                port=self.cfg.ftp_port,
                user=USER,
                password=self.cfg.access_code.get_secret_value(),
                context=self._ctx if self.cfg.ftp_tls else None,
            )
        except ftplib.error_perm as err:
            if str(err).startswith("530"):
                raise AuthError(f"bambu {self.name} refused the access code (FTPS)") from err
            raise PrinterError(f"bambu {self.name}: upload refused: {err}") from err
        except (OSError, EOFError, ftplib.Error) as err:
            raise ConnectionLost(f"bambu {self.name}: FTPS upload failed: {err}") from err

    async def _start_print(self, path: Path, job_id: str) -> RemotePrint:
        b = self.bambu
        if b is None or not self.connected.is_set():
            raise PrinterDisconnected(f"bambu {self.name} is offline")
        if b.state is not PrinterState.IDLE:
            raise InvalidTransition(
                f"printer {self.name} is {b.state.value}, not idle"
                + (f": {b.message}" if b.message else "")
            )
        self._set_status(progress=None)  # the last print's, until this one reports
        self._job_errors = set()
        if self.cfg.print_as == "gcode" and not _is_project(path):
            name = f"{job_id}.gcode"
            size = (await asyncio.to_thread(path.stat)).st_size
            await self.upload(path, name)
            await self._command("gcode_file", param=f"/sdcard/{name}")
            also: tuple[str, ...] = ()
        else:
            name, size = await self._upload_project(path, job_id)
            also = (job_id,)
        return RemotePrint(
            job_id=job_id,
            file=name,
            also=also,
            lost=f"bambu {self.name} went away during {job_id}",
            never_started=f"bambu {self.name} never started {name}",
            size=size,
            # A project's G-code is inside a zip: its plan is the printer's own figure.
            eta=None if _is_project(path) else LiveEta(path, self.profile),
        )

    async def _upload_project(self, path: Path, job_id: str) -> tuple[str, int]:
        """Upload `path` as a project (wrapping plain G-code into one) and start its plate."""
        data = await asyncio.to_thread(path.read_bytes)
        if _is_project(path):
            project, size, plate = data, len(data), self.cfg.plate
        else:
            plate = 1
            project = await asyncio.to_thread(build_project, data, title=job_id, plate=plate)
            size = len(data)  # progress is a share of the G-code, as the printer reports it
        md5 = await asyncio.to_thread(file_md5, project)  # tens of MB: not on the loop
        name = f"{job_id}.gcode.3mf"
        await self.upload(project, name)
        # The fields Bambu Studio and the other clients send (OpenBambuAPI mqtt.md
        # print.project_file; pybambu PRINT_PROJECT_FILE_TEMPLATE; bambulabs-api
        # start_print_3mf); the file is named in url, the plate's G-code in param.
        await self._command(
            "project_file",
            param=plate_path(plate),
            url=f"ftp:///{name}",
            file=name,
            md5=md5,
            subtask_name=job_id,
            project_id="0",
            profile_id="0",
            task_id="0",
            subtask_id="0",
            bed_type="auto",
            bed_leveling=self.cfg.bed_leveling,
            timelapse=self.cfg.timelapse,
            flow_cali=self.cfg.flow_cali,
            vibration_cali=self.cfg.vibration_cali,
            layer_inspect=self.cfg.layer_inspect,
            use_ams=self.cfg.use_ams,
            ams_mapping=self.cfg.ams_mapping if self.cfg.use_ams else [],
        )
        return name, size

    def _print_seen(self, job: RemotePrint) -> bool | None:
        b = self.bambu
        if b is None:
            return None
        # A P1 names a project print by its file, an X1 by `/data/Metadata/plate_1.gcode` and
        # the subtask (pybambu models.py); the name stays after the print ended, so only a
        # live state says our print is under way.
        file = b.gcode_file.rsplit("/", 1)[-1] if b.gcode_file else None
        named = file == job.file or (b.subtask_name is not None and b.subtask_name in job.also)
        return named and b.gcode_state not in ("IDLE", "FINISH", "FAILED")

    def _print_progress(self, job: RemotePrint) -> tuple[PrintProgress | None, bool]:
        b = self.bambu
        assert b is not None  # _print_seen said there is a report
        failure = next((e for e in self._job_errors if e != CANCELLED), None)
        if failure is not None and (b.gcode_state == "FAILED" or b.error):
            raise PrinterFault(f"bambu {self.name}: print failed (HMS {error_code(failure)})")
        if b.gcode_state == "FAILED":
            if CANCELLED in self._job_errors:
                raise PrintCancelled(f"bambu {self.name}: the print was cancelled on the printer")
            raise PrinterError(
                f"bambu {self.name}: the print ended FAILED with no error code left to read"
                " (a cancel, or a failure whose code was cleared)",
                code="print_failed",
            )
        progress = b.progress(job.size, time.monotonic() - job.started)
        if progress is not None and job.eta is not None and b.percent is not None:
            # The percent is the file's M73 P (a share of the planned time): on the plan.
            update = job.eta.at_percent(b.percent, progress.elapsed_s)
            if update["eta_source"] != "linear" or progress.eta_s is None:
                progress = progress.model_copy(update=update)
        if progress is not None:
            # Reports carry a percentage, not the job's size: only a print in progress can put
            # it into the status, where a node's last word on the job takes it from.
            self._set_status(progress=progress)
        if b.gcode_state == "FINISH":
            return progress, True
        if b.gcode_state == "IDLE":
            raise PrintCancelled(f"bambu {self.name}: the print was stopped on the printer")
        return progress, False

    def _progressed(self, progress: PrintProgress, last: PrintProgress | None) -> bool:
        # Elapsed time makes every computed progress new; only bytes printed count as news.
        return progress.bytes_acked != (last.bytes_acked if last else -1)


def _is_project(path: Path) -> bool:
    return path.name.lower().endswith(".3mf")


# Per-message fields, not printer state: keep them out of the merged tree.
_EPHEMERAL = frozenset({"command", "sequence_id", "result", "reason", "param", "msg"})
