"""Bambu Lab printers in LAN mode (`driver = "bambu"`): MQTT over TLS plus an FTPS upload.

The printer is its own broker (port 8883, user `bblp`, password the LAN access code); commands
go to `device/{serial}/request`, reports come on `device/{serial}/report`. A file is uploaded
over implicit FTPS (port 990) and started with `print.gcode_file`.

A simulator (`sim/bambu.py`) is no broker of its own: it reports through a shared one, named by
`broker`, and may serve plain FTP (`ftp_tls = false`) when there is no certificate to serve.
"""

from __future__ import annotations

import asyncio
import ftplib
import ssl
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from printforge.hardware.mqtt.bambu_protocol import (
    BambuState,
    BambuTopics,
    Report,
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
    PrinterDisconnected,
    PrinterError,
    PrinterFault,
)

__all__ = ["BambuConfig", "BambuDriver"]

USER = "bblp"
START_TIMEOUT_S = 60.0


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
    stale_after_s: float = Field(30.0, gt=0, description="silent this long: offline")
    broker: str | None = Field(
        None,
        description="mqtt:// or mqtts:// URL of a shared broker the printer reports through"
        " (simulators); default the printer itself, over TLS at host:mqtt_port",
    )
    ftp_tls: bool = Field(
        True, description="implicit FTPS; false only for a simulator serving plain FTP"
    )

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
        self._ctx: ssl.SSLContext | None = None
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
        self._client.on_connect(self._push_all)
        self._set_status(state=PrinterState.CONNECTING)
        self._spawn(self._watchdog())
        await self._client.start()

    async def _push_all(self) -> None:
        # A full report after every (re)connection: partial reports assume we know the rest.
        await self._publish("pushing", "pushall")

    async def _watchdog(self) -> None:
        """Ask for a report when the printer goes quiet; call it offline when it stays quiet."""
        while True:
            await asyncio.sleep(min(5.0, self.cfg.stale_after_s / 3))
            client = self._client
            if client is None or not client.connected.is_set():
                self._mark_offline("no connection to the printer")
                continue
            silent = time.monotonic() - self._last_report
            if silent > self.cfg.stale_after_s:
                self._mark_offline(f"no report for {silent:.0f}s")
            if silent > self.cfg.stale_after_s / 3:
                await self._publish("pushing", "pushall")

    # inbound ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        report = decode(Report, payload, kind="bambu", topic=topic)
        if report is None or report.print is None:
            return
        section = report.print
        seq = section.get("sequence_id")
        if "result" in section and isinstance(seq, str):
            self._answer(seq, section)
        bad = non_numeric(section)
        if bad:
            # Valid JSON with a wrong type: kept in the tree it would break every later report.
            note_malformed("bambu", topic, f"not numbers: {', '.join(bad)}")
        skip = _EPHEMERAL.union(bad)
        merge_report(self._tree, {k: v for k, v in section.items() if k not in skip})
        self._last_report = time.monotonic()
        self.bambu = b = BambuState.of(self._tree)
        self.connected.set()
        self._set_status(state=b.state, temperatures=b.temperatures, message=b.message)
        self._changed.set()

    # requests --------------------------------------------------------------------------------
    async def _publish(self, section: str, command: str, **fields: Any) -> str:
        if self._client is None:
            raise PrinterDisconnected(f"printer {self.name} is not started")
        seq = str(next(self._ids))
        await self._client.publish(
            self.topics.request, request(section, command, int(seq), **fields), qos=1
        )
        return seq

    async def _command(self, command: str, **fields: Any) -> None:
        """A `print` command, waiting for the printer's echo with its result."""
        ack: dict[str, Any] = await self._ask(
            self.topics.request,
            lambda seq: request("print", command, seq, **fields),
            f"bambu {self.name} did not confirm {command} in {self.cfg.request_timeout_s:g}s",
        )
        if str(ack.get("result", "")).lower() != "success":
            raise PrinterError(
                f"bambu {self.name} refused {command}: {ack.get('reason') or ack.get('result')}",
                code="bambu_refused",
            )

    async def send(self, line: str) -> None:
        await self._command("gcode_line", param=line.rstrip("\n") + "\n")

    async def pause(self) -> None:
        await self._command("pause")

    async def resume(self) -> None:
        await self._command("resume")

    async def cancel(self) -> None:
        await self._command("stop")

    async def emergency_stop(self) -> None:
        # LAN mode has no dedicated kill; M112 through gcode_line is the firmware's own.
        await self._command("gcode_line", param="M112\n")

    # printing --------------------------------------------------------------------------------
    async def upload(self, path: Path, remote_name: str) -> None:
        assert self._ctx is not None or not self.cfg.ftp_tls, "upload before start()"
        try:
            await asyncio.to_thread(
                upload_file,
                path,
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
            raise InvalidTransition(f"printer {self.name} is {b.state.value}, not idle")
        name = f"{job_id}.gcode"
        size = (await asyncio.to_thread(path.stat)).st_size
        await self.upload(path, name)
        self._set_status(progress=None)  # the last print's, until this one reports
        await self._command("gcode_file", param=f"/sdcard/{name}")
        return RemotePrint(
            job_id=job_id,
            file=name,
            lost=f"bambu {self.name} went away during {job_id}",
            never_started=f"bambu {self.name} never started {name}",
            size=size,
        )

    def _print_seen(self, job: RemotePrint) -> bool | None:
        b = self.bambu
        if b is None:
            return None
        # The file stays named after it ended: only a live state says our print is under way.
        named = bool(b.gcode_file and b.gcode_file.rsplit("/", 1)[-1] == job.file)
        return named and b.gcode_state not in ("IDLE", "FINISH", "FAILED")

    def _print_progress(self, job: RemotePrint) -> tuple[PrintProgress | None, bool]:
        b = self.bambu
        assert b is not None  # _print_seen said there is a report
        if b.gcode_state == "FAILED" or b.error:
            code = error_code(b.error) if b.error else "unknown"
            raise PrinterFault(f"bambu {self.name}: print failed (HMS {code})")
        progress = b.progress(job.size, time.monotonic() - job.started)
        if progress is not None:
            # Reports carry a percentage, not the job's size: only a print in progress can put
            # it into the status, where a node's last word on the job takes it from.
            self._set_status(progress=progress)
        if b.gcode_state == "FINISH":
            return progress, True
        if b.gcode_state == "IDLE":
            raise PrinterError(
                f"bambu {self.name}: the print was stopped on the printer", code="cancelled"
            )
        return progress, False

    def _progressed(self, progress: PrintProgress, last: PrintProgress | None) -> bool:
        # Elapsed time makes every computed progress new; only bytes printed count as news.
        return progress.bytes_acked != (last.bytes_acked if last else -1)


# Per-message fields, not printer state: keep them out of the merged tree.
_EPHEMERAL = frozenset({"command", "sequence_id", "result", "reason", "param", "msg"})
