"""Klipper printers through Moonraker's MQTT API (`driver = "moonraker"`).

Commands are JSON-RPC 2.0 over MQTT; the G-code file goes over HTTP (`POST
/server/files/upload`, root `gcodes`) and is started with `printer.print.start`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from printforge.hardware.mqtt.client import BusClient, decode, note_malformed
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.device import MqttDriverConfig, MqttPrinterDriver, RemotePrint
from printforge.hardware.mqtt.klipper import (
    STATUS_OBJECTS,
    KlipperState,
    MoonrakerTopics,
    RpcResponse,
    ServerStatus,
    StatusUpdate,
    drop_mistyped,
    merge_status,
    rpc_request,
)
from printforge.models.printer import MaterialProfile, PrinterProfile, PrinterState, PrintProgress
from printforge.runtime.errors import (
    AuthError,
    ConnectionLost,
    InvalidTransition,
    OperationTimeout,
    PrinterDisconnected,
    PrinterError,
    PrinterFault,
)

__all__ = ["MoonrakerConfig", "MoonrakerDriver"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # from print.start until Klipper reports our file printing


class MoonrakerConfig(MqttDriverConfig):
    """`[printers.NAME]` keys of a `driver = "moonraker"` printer."""

    broker: str = Field(description="the broker Moonraker's [mqtt] section connects to")
    instance: str = Field(description="Moonraker's [mqtt] instance_name")
    http_url: str = Field(description="Moonraker's HTTP address, e.g. http://klipper.local:7125")
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: str | None = None
    tls_insecure: bool = False
    api_key: SecretStr | None = Field(None, description="X-Api-Key for the HTTP upload")
    upload_folder: str = Field("printforge", description="folder under gcodes/ for our files")


class MoonrakerDriver(MqttPrinterDriver):
    kind: ClassVar[str] = "moonraker"
    Config: ClassVar[type[MoonrakerConfig]] = MoonrakerConfig  # type: ignore[assignment]
    start_timeout_s: ClassVar[float] = START_TIMEOUT_S
    cfg: MoonrakerConfig

    def __init__(
        self,
        name: str,
        config: MoonrakerConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        super().__init__(name, config, profile, material)
        self.topics = MoonrakerTopics(config.instance)
        self._tree: dict[str, dict[str, Any]] = {}
        self._online = False
        self.klipper: KlipperState | None = None

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._client is not None:
            return
        bus = BusSettings(
            broker=self.cfg.broker,
            username=self.cfg.username,
            password=self.cfg.password,
            tls_ca=self.cfg.tls_ca,
            tls_insecure=self.cfg.tls_insecure,
        )
        self._client = BusClient(
            bus,
            client_id=f"pf-moonraker-{self.name}-{uuid.uuid4().hex[:8]}",
            on_message=self._on_message,
            subscriptions=[
                (self.topics.response, 1),
                (self.topics.klipper_status, 0),
                (self.topics.moonraker_status, 1),
            ],
            name=f"moonraker:{self.name}",
        )
        # The query needs the message loop running: it cannot run inside the hook itself.
        self._client.on_connect(self._spawn_refresh)
        self._set_status(state=PrinterState.CONNECTING)
        await self._client.start()

    async def _spawn_refresh(self) -> None:
        self._spawn(self._refresh())

    async def _refresh(self) -> None:
        try:
            result = await self._rpc("printer.objects.query", {"objects": STATUS_OBJECTS})
        except (OperationTimeout, PrinterError, ConnectionLost) as err:
            log.warning("moonraker %s: status query failed: %s", self.name, err)
            return
        if isinstance(result, dict) and isinstance(result.get("status"), dict):
            bad = drop_mistyped(result["status"])
            if bad:
                note_malformed("moonraker", self.topics.response, f"wrong types: {bad}")
            merge_status(self._tree, result["status"])
            self._online = True
            self._apply()

    # inbound ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self.topics.response:
            resp = decode(RpcResponse, payload, kind="moonraker", topic=topic)
            if resp is not None and isinstance(resp.id, int):
                self._answer(str(resp.id), resp)
        elif topic == self.topics.klipper_status:
            update = decode(StatusUpdate, payload, kind="moonraker", topic=topic)
            if update is not None:
                bad = drop_mistyped(update.status)
                if bad:
                    note_malformed("moonraker", topic, f"wrong types: {', '.join(bad)}")
                merge_status(self._tree, update.status)
                self._apply()
        elif topic == self.topics.moonraker_status:
            server = decode(ServerStatus, payload, kind="moonraker", topic=topic)
            if server is None:
                # Counted and logged by decode; Moonraker says this only on connect and in its
                # will, so garbage taken as "offline" would stick until Moonraker restarts.
                return
            online = server.server == "online"
            if online != self._online:
                self._online = online
                if online and self._client is not None:
                    self._spawn(self._refresh())
            self._apply()

    def _apply(self) -> None:
        if not self._online:
            self._mark_offline("moonraker offline")
            return
        self.klipper = k = KlipperState.of(self._tree)
        self.connected.set()
        self._set_status(
            state=k.state, temperatures=k.temperatures, progress=k.progress, message=k.message
        )
        self._changed.set()

    # requests --------------------------------------------------------------------------------
    async def _rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        resp: RpcResponse = await self._ask(
            self.topics.request,
            lambda request_id: rpc_request(method, params, request_id),
            f"moonraker {self.cfg.instance} did not answer {method} within"
            f" {self.cfg.request_timeout_s:g}s",
        )
        if resp.error is not None:
            raise PrinterError(
                f"moonraker {method}: {resp.error.message}", code=f"moonraker_{resp.error.code}"
            )
        return resp.result

    async def send(self, line: str) -> None:
        await self._rpc("printer.gcode.script", {"script": line})

    async def pause(self) -> None:
        await self._rpc("printer.print.pause")

    async def resume(self) -> None:
        await self._rpc("printer.print.resume")

    async def cancel(self) -> None:
        await self._rpc("printer.print.cancel")

    async def emergency_stop(self) -> None:
        await self._rpc("printer.emergency_stop")

    # printing --------------------------------------------------------------------------------
    async def upload(self, path: Path, filename: str) -> str:
        """POST the file to Moonraker; returns the path Klipper knows it by."""
        import aiohttp

        headers = {}
        if self.cfg.api_key is not None:
            headers["X-Api-Key"] = self.cfg.api_key.get_secret_value()
        data = await asyncio.to_thread(path.read_bytes)
        form = aiohttp.FormData()
        form.add_field("root", "gcodes")
        form.add_field("path", self.cfg.upload_folder)
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        url = self.cfg.http_url.rstrip("/") + "/server/files/upload"
        try:
            timeout = aiohttp.ClientTimeout(total=max(60.0, len(data) / 100_000))
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=form, headers=headers) as resp,
            ):
                if resp.status in (401, 403):
                    raise AuthError(f"moonraker {url} refused the upload (HTTP {resp.status})")
                if resp.status >= 300:
                    raise ConnectionLost(f"moonraker upload failed: HTTP {resp.status}")
                body = await resp.json()
        except aiohttp.ClientError as err:
            raise ConnectionLost(f"moonraker upload to {url} failed: {err}") from err
        item = body.get("result", body).get("item", {}) if isinstance(body, dict) else {}
        return str(item.get("path") or f"{self.cfg.upload_folder}/{filename}")

    def _reachable(self) -> bool:
        # Moonraker's retained server status, not our broker connection: Moonraker may be gone
        # while the broker still answers us.
        return self._online

    async def _start_print(self, path: Path, job_id: str) -> RemotePrint:
        if not self._online:
            raise PrinterDisconnected(f"moonraker {self.cfg.instance} is offline")
        k = self.klipper
        if k is not None and k.state is not PrinterState.IDLE:
            raise InvalidTransition(f"printer {self.name} is {k.state.value}, not idle")
        remote_name = await self.upload(path, f"{job_id}.gcode")
        await self._rpc("printer.print.start", {"filename": remote_name})
        return RemotePrint(
            job_id=job_id,
            file=remote_name,
            lost=f"moonraker {self.cfg.instance} went offline during job {job_id}",
            never_started=f"{self.name}: klipper never started {remote_name}",
        )

    def _print_seen(self, job: RemotePrint) -> bool | None:
        k = self.klipper
        return None if k is None else k.filename == job.file

    def _print_progress(self, job: RemotePrint) -> tuple[PrintProgress | None, bool]:
        k = self.klipper
        assert k is not None  # _print_seen said there is a report
        if k.state is PrinterState.FAULTED or k.print_state == "error":
            raise PrinterFault(f"{self.name}: {k.message or 'klipper error'}")
        if k.print_state == "complete":
            return k.progress, True
        if k.print_state in ("cancelled", "standby"):
            raise PrinterError(
                f"{self.name}: the print was cancelled on the printer", code="cancelled"
            )
        return k.progress, False
