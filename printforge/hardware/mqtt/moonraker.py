"""Klipper printers through Moonraker's MQTT API (`driver = "moonraker"`).

Commands are JSON-RPC 2.0 over MQTT; the G-code file goes over HTTP (`POST
/server/files/upload`, root `gcodes`) and is started with `printer.print.start`.

Moonraker is not Klipper: it runs, answers and says `{"server": "online"}` while the Klipper
host (Klippy) is absent, starting up, shut down or gone. Whether the printer can print is
therefore read from `server.info` (`klippy_connected`, `klippy_state`) after every connection,
and followed through Moonraker's `notify_klippy_ready|shutdown|disconnected`, which Moonraker
sends to websocket clients only (moonraker/server.py, components/websockets.py): the driver
keeps a websocket open for them, and asks `server.info` every `klippy_check_s` while it has
none. Until Klippy is ready and its objects are read, the printer is not ready, with the reason
in its status message; when Klippy drops, the object tree it left is thrown away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, ValidationError

from printforge.hardware.eta import LiveEta
from printforge.hardware.mqtt.client import BusClient, decode, note_malformed
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.device import MqttDriverConfig, MqttPrinterDriver, RemotePrint
from printforge.hardware.mqtt.klipper import (
    KLIPPY_NOTIFICATIONS,
    STATUS_OBJECTS,
    KlipperState,
    MoonrakerTopics,
    RpcResponse,
    ServerInfo,
    ServerStatus,
    StatusUpdate,
    drop_mistyped,
    merge_status,
    reply_fits,
    rpc_request,
)
from printforge.models.printer import (
    MaterialProfile,
    PlateObject,
    PrinterProfile,
    PrinterState,
    PrintProgress,
)
from printforge.runtime.errors import (
    AuthError,
    ConnectionLost,
    InputError,
    InvalidTransition,
    OperationTimeout,
    PrintCancelled,
    PrinterDisconnected,
    PrinterError,
    PrinterFault,
)
from printforge.runtime.retry import Backoff

__all__ = ["MoonrakerConfig", "MoonrakerDriver"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # from print.start until Klipper reports our file printing
CLIENT_NAME = "printforge"


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
    websocket: bool = Field(
        True,
        description="follow Moonraker's notify_klippy_* on its websocket (MQTT carries none)",
    )
    klippy_check_s: float = Field(
        5.0, gt=0, description="ask server.info this often while no websocket is following Klippy"
    )


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
        # What server.info last said about Klippy; None until it has answered.
        self.server: ServerInfo | None = None
        # Why Klippy's objects could not be read, when they could not.
        self._problem: str | None = None
        self._tree_known = False  # a full objects query has succeeded since Klippy came
        self._refreshing = asyncio.Lock()
        self._refresh_wanted = asyncio.Event()
        self._ws_live = False
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
        self._client.on_connect(self._want_refresh_hook)
        self._set_status(state=PrinterState.CONNECTING, message="waiting for moonraker")
        self._spawn(self._refresher())
        if self.cfg.websocket:
            self._spawn(self._follow_websocket())
        await self._client.start()

    async def _want_refresh_hook(self) -> None:
        self._refresh_wanted.set()

    # Klippy's state --------------------------------------------------------------------------
    async def _refresher(self) -> None:
        """Run a refresh whenever one is wanted, and every `klippy_check_s` while nothing else
        (a live websocket) would tell us that Klippy went away or came back."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.klippy_check_s):
                    await self._refresh_wanted.wait()
            if self._refresh_wanted.is_set() or not self._settled():
                self._refresh_wanted.clear()
                try:
                    await self._refresh()
                except Exception:
                    # Whatever one look breaks, the next one is due: the printer's readiness
                    # must not freeze on a bug.
                    log.exception("moonraker %s: looking at klippy failed", self.name)

    def _settled(self) -> bool:
        """Nothing to ask: a websocket follows Klippy and the last look found it ready."""
        s = self.server
        return (
            self._ws_live and s is not None and s.ready and self._tree_known and not self._problem
        )

    async def _refresh(self) -> None:
        """Ask `server.info`; once Klippy is there, read its objects in full."""
        if self._client is None or not self._client.connected.is_set():
            return
        async with self._refreshing:
            try:
                info = ServerInfo.model_validate(await self._rpc("server.info"))
            except (OperationTimeout, PrinterError, ConnectionLost, ValidationError) as err:
                self._problem = f"moonraker's server.info failed: {_reason(err)}"
                self._apply()
                return
            was = self.server
            self.server = info
            if not info.klippy_connected or info.klippy_state in ("disconnected", "startup"):
                # Moonraker throws its own cache away when Klippy goes (klippy_connection.py
                # `_on_connection_closed`); so do we, or "printing" would outlive Klippy.
                self._forget_klippy()
                self._problem = None
                self._apply()
                return
            if was is None or not was.klippy_connected or not self._tree_known or self._problem:
                await self._query_objects()
            self._apply()

    async def _query_objects(self) -> None:
        try:
            result = await self._rpc("printer.objects.query", {"objects": STATUS_OBJECTS})
        except (OperationTimeout, PrinterError, ConnectionLost) as err:
            self._forget_klippy()
            self._problem = f"klippy's status could not be read: {_reason(err)}"
            log.warning("moonraker %s: %s", self.name, self._problem)
            return
        status = result["status"]
        bad = drop_mistyped(status)
        if bad:
            note_malformed("moonraker", self.topics.response, f"wrong types: {bad}")
        # The tree holds only what arrived since Klippy came (it is emptied when Klippy goes),
        # so the full answer folds over it.
        merge_status(self._tree, status)
        self._tree_known = True
        self._problem = None

    def _forget_klippy(self) -> None:
        self._tree = {}
        self._tree_known = False

    def _klippy_notified(self, method: str) -> None:
        """A notify_klippy_* from the websocket: act on a disconnect at once, then look.

        Moonraker says ready only after Klippy (re)connected, and a connection that ended was
        announced by a disconnect, which threw the old tree away; so a ready needs no more
        than a look at server.info. Its server.info may already have said ready: Moonraker
        registers Klippy's remote methods before it notifies (klippy_connection.py).
        """
        if method == "notify_klippy_disconnected" and self.server is not None:
            self.server = self.server.model_copy(
                update={"klippy_connected": False, "klippy_state": "disconnected"}
            )
            self._forget_klippy()
            self._apply()
        self._refresh_wanted.set()

    async def _follow_websocket(self) -> None:
        """Keep Moonraker's websocket open for the notify_klippy_* notifications."""
        import aiohttp

        url = self.cfg.http_url.rstrip("/").replace("http", "ws", 1) + "/websocket"
        headers = {}
        if self.cfg.api_key is not None:
            headers["X-Api-Key"] = self.cfg.api_key.get_secret_value()
        backoff = Backoff(0.5, 30.0)
        failures = 0
        said: str | None = None
        while True:
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(connect=10.0)) as session,
                    session.ws_connect(
                        url,
                        headers=headers,
                        heartbeat=20.0,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                    ) as ws,
                ):
                    await self._identify(ws)
                    failures, said = 0, None
                    self._ws_live = True
                    self._refresh_wanted.set()  # whatever happened while we were not listening
                    async for msg in ws:
                        if msg.type is not aiohttp.WSMsgType.TEXT:
                            break
                        method = _notification(msg.data)
                        if method in KLIPPY_NOTIFICATIONS:
                            self._klippy_notified(method)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, PrinterError) as err:
                why = _reason(err)
                if why != said:
                    # Once per cause: a Moonraker without a reachable websocket is polled.
                    log.info(
                        "moonraker %s: no websocket for klippy notifications (%s); asking"
                        " server.info every %gs instead",
                        self.name,
                        why,
                        self.cfg.klippy_check_s,
                    )
                    said = why
            finally:
                self._ws_live = False
            failures += 1
            await asyncio.sleep(backoff.delay(failures))

    async def _identify(self, ws: Any) -> None:
        """`server.connection.identify`: only an identified (authorised) websocket client gets
        notifications (websockets.py `notify_clients` skips those that need auth)."""
        params: dict[str, Any] = {
            "client_name": CLIENT_NAME,
            "version": "1",
            "type": "other",
            "url": "https://printforge.invalid/",
        }
        if self.cfg.api_key is not None:
            params["api_key"] = self.cfg.api_key.get_secret_value()
        request_id = self._next_id()
        await ws.send_str(rpc_request("server.connection.identify", params, request_id).decode())
        async with asyncio.timeout(self.cfg.request_timeout_s):
            async for msg in ws:
                try:
                    frame = json.loads(msg.data)
                except (TypeError, ValueError):
                    continue
                if not isinstance(frame, dict):
                    continue
                if frame.get("method") in KLIPPY_NOTIFICATIONS:
                    self._klippy_notified(frame["method"])
                elif frame.get("id") == request_id:
                    if frame.get("error"):
                        error = frame["error"]
                        text = error.get("message") if isinstance(error, dict) else str(error)
                        raise PrinterError(f"identify refused: {text}")
                    return
        raise PrinterError("the websocket closed before identify was answered")

    # inbound ---------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self.topics.response:
            resp = decode(RpcResponse, payload, kind="moonraker", topic=topic)
            if resp is not None and isinstance(resp.id, str):
                # Every client's replies come here; ids not ours are other clients'.
                self._answer(resp.id, resp)
        elif topic == self.topics.klipper_status:
            update = decode(StatusUpdate, payload, kind="moonraker", topic=topic)
            if update is not None:
                bad = drop_mistyped(update.status)
                if bad:
                    note_malformed("moonraker", topic, f"wrong types: {', '.join(bad)}")
                merge_status(self._tree, update.status)
                if not self._tree_known:
                    # Moonraker publishes Klippy's objects only while Klippy is there: it is
                    # back (or was never lost); read it in full before trusting fragments.
                    self._refresh_wanted.set()
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
                if online:
                    self._refresh_wanted.set()
                else:
                    self.server = None
                    self._forget_klippy()
            self._apply()

    def _apply(self) -> None:
        """Compose the status from Moonraker's availability, Klippy's state and its objects."""
        if not self._online:
            self._mark_offline("moonraker offline")
            return
        s = self.server
        self.klipper = None
        if s is None:
            self._not_ready(PrinterState.CONNECTING, self._problem or "waiting for server.info")
        elif not s.klippy_connected or s.klippy_state == "disconnected":
            self._not_ready(
                PrinterState.OFFLINE,
                f"klippy (the klipper host) is not connected to moonraker ({s.klippy_state})",
            )
        elif s.klippy_state == "startup":
            self._not_ready(PrinterState.CONNECTING, "klippy is starting up")
        elif self._problem or not self._tree_known:
            self._not_ready(PrinterState.CONNECTING, self._problem or "reading klippy's status")
        else:
            self.klipper = k = KlipperState.of(self._tree)
            if k.state is PrinterState.CONNECTING:
                self._not_ready(k.state, k.message or "klippy is not ready")
                return
            self.connected.set()
            self._set_status(
                state=k.state, temperatures=k.temperatures, progress=k.progress, message=k.message
            )
        self._changed.set()

    def _not_ready(self, state: PrinterState, why: str) -> None:
        if self._status.message != why:
            log.info("moonraker %s: not ready: %s", self.name, why)
        self.connected.clear()
        self._set_status(state=state, message=why)

    # requests --------------------------------------------------------------------------------
    async def _rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        resp: RpcResponse = await self._ask(
            self.topics.request,
            lambda request_id: rpc_request(method, params, request_id),
            f"moonraker {self.cfg.instance} did not answer {method} within"
            f" {self.cfg.request_timeout_s:g}s",
            fits=lambda reply: reply_fits(method, reply),
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

    # objects of a plate ------------------------------------------------------------------------
    async def cancel_object(self, ref: str | int) -> dict[str, Any]:
        """`EXCLUDE_OBJECT NAME=<name>` (Klipper's [exclude_object]); `ref` is the name or the
        index in the order the file defines the objects."""
        if self._status.state not in (PrinterState.PRINTING, PrinterState.PAUSED):
            raise InvalidTransition(f"printer {self.name} is not printing")
        # Read afresh: the object list is the running file's, and the MQTT status need not
        # carry exclude_object at all (Moonraker's [mqtt] status_objects).
        result = await self._rpc("printer.objects.query", {"objects": {"exclude_object": None}})
        status = result.get("status", {}) if isinstance(result, dict) else {}
        merge_status(self._tree, {"exclude_object": status.get("exclude_object") or {}})
        objects = _klipper_objects(self._tree["exclude_object"])
        if not objects:
            raise InputError(
                f"printer {self.name}: Klipper knows no objects of this print (the file needs"
                " EXCLUDE_OBJECT_DEFINE labels, and printer.cfg an [exclude_object] section)"
            )
        chosen = _pick(objects, ref)
        if chosen is None:
            known = ", ".join(f"{o['id']}:{o['name']}" for o in objects)
            raise InputError(f"no object {ref!r} in this print (objects: {known})")
        await self._rpc("printer.gcode.script", {"script": f"EXCLUDE_OBJECT NAME={chosen['name']}"})
        excluded = set(self._tree["exclude_object"].get("excluded_objects") or [])
        self._tree["exclude_object"]["excluded_objects"] = sorted(excluded | {chosen["name"]})
        objects = _klipper_objects(self._tree["exclude_object"])
        self._set_status(objects=[PlateObject(**o) for o in objects])
        return {**chosen, "cancelled": True}

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
        # Moonraker's retained server status and Klippy behind it, not our broker connection:
        # either may be gone while the broker still answers us.
        s = self.server
        return self._online and s is not None and s.klippy_connected

    async def _start_print(self, path: Path, job_id: str) -> RemotePrint:
        if not self._online:
            raise PrinterDisconnected(f"moonraker {self.cfg.instance} is offline")
        # Ask now rather than trust the last look: without a websocket a Klippy that dropped
        # a moment ago is not known yet, and nothing may reach the printer then.
        await self._refresh()
        s = self.server
        if s is None or not s.klippy_connected:
            raise PrinterDisconnected(
                f"printer {self.name}: {self._status.message or 'klippy is not connected'}"
            )
        if not self.connected.is_set() or self._status.state is not PrinterState.IDLE:
            raise InvalidTransition(
                f"printer {self.name} is {self._status.state.value}, not idle"
                + (f": {self._status.message}" if self._status.message else "")
            )
        remote_name = await self.upload(path, f"{job_id}.gcode")
        await self._rpc("printer.print.start", {"filename": remote_name})
        # The plate's objects for the job's view from the start, as Klipper will name them.
        names = await asyncio.to_thread(_defined_objects, path)
        self._set_status(objects=[PlateObject(id=i, name=n) for i, n in enumerate(names)])
        return RemotePrint(
            job_id=job_id,
            file=remote_name,
            lost=f"moonraker {self.cfg.instance} or its klippy went away during job {job_id}",
            never_started=f"{self.name}: klipper never started {remote_name}",
            eta=LiveEta(path, self.profile),
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
            raise PrintCancelled(f"{self.name}: the print was cancelled on the printer")
        progress = k.progress
        if progress is not None and job.eta is not None:
            # Klipper's file position on the plan; its print_duration leaves out the time
            # before the first extrusion (the heat-up) and pauses, so it is the clock.
            update = job.eta.at_byte(progress.bytes_acked, progress.elapsed_s, progress.fraction)
            progress = progress.model_copy(update=update)
            self._set_status(progress=progress)
        return progress, False


def _defined_objects(path: Path) -> list[str]:
    """The names a file's `EXCLUDE_OBJECT_DEFINE NAME=` lines give, upper-cased as Klipper
    keeps them, in the file's order."""
    names: list[str] = []
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.lstrip()[:21].upper().startswith(b"EXCLUDE_OBJECT_DEFINE"):
                continue
            for word in raw.decode(errors="replace").split(";", 1)[0].split()[1:]:
                key, _, value = word.partition("=")
                if key.upper() == "NAME" and value and value.upper() not in names:
                    names.append(value.upper())
    return names


def _klipper_objects(state: dict[str, Any]) -> list[dict[str, Any]]:
    names = [
        o["name"]
        for o in state.get("objects") or []
        if isinstance(o, dict) and isinstance(o.get("name"), str)
    ]
    excluded = {n for n in state.get("excluded_objects") or [] if isinstance(n, str)}
    return [{"id": i, "name": n, "cancelled": n in excluded} for i, n in enumerate(names)]


def _pick(objects: list[dict[str, Any]], ref: str | int) -> dict[str, Any] | None:
    """By index (an int or digits) or by name; Klipper keeps names upper-cased."""
    if isinstance(ref, int) or ref.isdigit():
        index = int(ref)
        if 0 <= index < len(objects):
            return objects[index]
    for obj in objects:
        if isinstance(ref, str) and obj["name"] == ref.upper():
            return obj
    return None


def _reason(err: BaseException) -> str:
    text = getattr(err, "message", None) or str(err)
    return text or type(err).__name__


def _notification(data: Any) -> str | None:
    """The method of a JSON-RPC notification frame, or None."""
    try:
        frame = json.loads(data)
    except (TypeError, ValueError):
        return None
    method = frame.get("method") if isinstance(frame, dict) else None
    return method if isinstance(method, str) else None
