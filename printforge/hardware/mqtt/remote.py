"""A printer attached to another host's node, driven over the farm bus (`driver = "bus"`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from printforge.hardware.base import DriverConfig, PrinterDriver
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.farm import FarmClient
from printforge.hardware.mqtt.messages import (
    CancelObjectCommand,
    Command,
    ControlCommand,
    Reply,
    SendCommand,
    StartCommand,
    StatusMessage,
    UploadCommand,
    new_id,
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
    BadArtifact,
    ConfigError,
    ConnectionLost,
    InputError,
    InvalidTransition,
    PrintCancelled,
    PrinterBusy,
    PrinterDisconnected,
    PrinterError,
    PrinterFault,
    PrintforgeError,
    UnsafeGcode,
)

__all__ = ["RemoteConfig", "RemotePrinterDriver", "error_from_reply"]

log = logging.getLogger(__name__)

CANCEL_TIMEOUT_S = 15.0
_MIRRORED = (
    "state",
    "temperatures",
    "progress",
    "job_id",
    "material",
    "profile",
    "message",
    "simulated",
)

_ERRORS: dict[str, type[PrintforgeError]] = {
    "printer_fault": PrinterFault,
    "printer_disconnected": PrinterDisconnected,
    "bad_artifact": BadArtifact,
    "invalid_input": InputError,
    "bad_command": InputError,
    "invalid_transition": InvalidTransition,
    "connection_lost": ConnectionLost,
    "unsafe_gcode": UnsafeGcode,
    "unauthorized": AuthError,
    "untrusted_origin": InputError,
}
# Codes the node chose more precisely than the exception type's own: kept as they came.
_KEEP_CODE = frozenset({"unauthorized", "untrusted_origin"})


def error_from_reply(reply: Reply, what: str) -> PrintforgeError:
    """The exception a failed reply stands for, chosen by its stable code."""
    body = reply.error
    code = body.code if body else "printer_error"
    message = f"{what}: {body.message if body else 'refused'}"
    if body is not None and body.busy and code == InvalidTransition.code:
        return PrinterBusy(message)
    cls = _ERRORS.get(code)
    if cls is None:
        return PrinterError(message, code=code)
    return cls(message, code=code) if code in _KEEP_CODE else cls(message)


class RemoteConfig(DriverConfig):
    """`[printers.NAME]` keys of a `driver = "bus"` printer."""

    printer_id: str | None = Field(None, description="the printer's bus id; default its name")
    bus: BusSettings | None = Field(
        None, description="broker to use when not attached by discovery (own connection)"
    )
    offline_grace_s: float | None = Field(
        None, ge=0, description="a print survives the node being off the bus this long"
    )


def _hash_file(path: Path, keep_up_to: int) -> tuple[str, int, bytes | None]:
    """sha256 and size; the bytes too when the file fits in one chunk (saves a second read)."""
    h = hashlib.sha256()
    size = 0
    parts: list[bytes] = []
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
            if size <= keep_up_to:
                parts.append(chunk)
    return h.hexdigest(), size, b"".join(parts) if size <= keep_up_to else None


def _read_at(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)


class RemotePrinterDriver(PrinterDriver):
    kind: ClassVar[str] = "bus"
    Config: ClassVar[type[RemoteConfig]] = RemoteConfig  # type: ignore[assignment]

    def __init__(
        self,
        name: str,
        config: RemoteConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
        *,
        farm: FarmClient | None = None,
    ) -> None:
        super().__init__(name, config, profile, material)
        self.cfg = config
        self.printer_id = config.printer_id or name
        self._farm = farm
        self._own_farm = False
        self._unwatch: object = None
        self._queues: set[asyncio.Queue[StatusMessage | None]] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self.remote: StatusMessage | None = None
        self._last_progress: PrintProgress | None = None
        self.command_latencies: list[float] = []

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._unwatch is not None:
            return
        if self._farm is None:
            if self.cfg.bus is None or not self.cfg.bus.broker:
                raise ConfigError(
                    f"printers.{self.name}: a bus printer needs [printers.{self.name}.bus] broker"
                    " (or discovery from [bus])"
                )
            self._farm = FarmClient(self.cfg.bus)
            self._own_farm = True
            await self._farm.start()
        self._unwatch = self._farm.watch(self.printer_id, self._on_remote)
        known = self._farm.statuses.get(self.printer_id)
        if known is not None:
            self._on_remote(self.printer_id, known)

    async def stop(self) -> None:
        unwatch, self._unwatch = self._unwatch, None
        if callable(unwatch):
            unwatch()
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, CANCEL_TIMEOUT_S)
        if self._own_farm and self._farm is not None:
            await self._farm.stop()
            self._farm = None
        self.connected.clear()
        self._set_status(state=PrinterState.OFFLINE)

    @property
    def farm(self) -> FarmClient:
        if self._farm is None:
            raise PrinterDisconnected(f"printer {self.name} is not started")
        return self._farm

    # status ----------------------------------------------------------------------------------
    def _on_remote(self, printer_id: str, msg: StatusMessage | None) -> None:
        self.remote = msg
        if msg is not None and msg.progress is not None:
            self._last_progress = msg.progress  # the will carries none; keep the last we saw
        for q in list(self._queues):
            q.put_nowait(msg)
        if msg is None:
            self.connected.clear()
            self._set_status(state=PrinterState.OFFLINE, message="removed from the bus")
            return
        if msg.state is PrinterState.OFFLINE:
            self.connected.clear()
        else:
            self.connected.set()
        status = msg.to_status(driver=self.kind)
        # Attributes, not model_dump(): nested models must stay models in the copy.
        self._set_status(**{k: getattr(status, k) for k in _MIRRORED})

    # commands --------------------------------------------------------------------------------
    async def _request(self, cmd: Command, what: str | None = None) -> Reply:
        started = time.perf_counter()
        reply = await self.farm.request(self.printer_id, cmd)
        self.command_latencies.append(time.perf_counter() - started)
        if len(self.command_latencies) > 1000:
            del self.command_latencies[:500]
        if not reply.ok:
            raise error_from_reply(reply, what or f"{self.printer_id} {cmd.op}")
        return reply

    async def send(self, line: str) -> None:
        try:
            cmd = SendCommand(line=line.rstrip("\r\n"))
        except ValidationError:
            raise InputError(
                f"{self.printer_id}: send takes one G-code line of 1 to 256 characters"
            ) from None
        await self._request(cmd)

    async def pause(self) -> None:
        await self._request(ControlCommand(op="pause"))

    async def resume(self) -> None:
        await self._request(ControlCommand(op="resume"))

    async def cancel(self) -> None:
        await self._request(ControlCommand(op="cancel"))

    async def emergency_stop(self) -> None:
        await self._request(ControlCommand(op="emergency_stop"))

    async def cancel_object(self, ref: str | int) -> dict[str, Any]:
        """Forwarded to the node, whose driver does it or refuses (`unsupported`, with why)."""
        reply = await self._request(CancelObjectCommand(object=ref))
        result = dict(reply.result or {})
        # The node's statuses carry no object list: what the cancels answered is known.
        known = [o for o in self._status.objects if o.id != result.get("id")]
        with contextlib.suppress(ValidationError):
            known.append(PlateObject.model_validate(result))
        self._set_status(objects=sorted(known, key=lambda o: o.id))
        return result

    async def confirm_bed_clear(self) -> None:
        await self._request(ControlCommand(op="clear_bed"))
        await super().confirm_bed_clear()

    async def ping(self) -> Reply:
        return await self._request(ControlCommand(op="ping"))

    # printing --------------------------------------------------------------------------------
    async def upload(self, path: Path) -> str:
        """Send a file to the node in chunks; returns its sha256 once the node verified it."""
        chunk = self.farm.settings.chunk_bytes
        sha256, size, whole = await asyncio.to_thread(_hash_file, path, chunk)
        total = max(1, math.ceil(size / chunk))
        upload_id = new_id()
        for index in range(total):
            if whole is not None:
                data = whole
            else:
                data = await asyncio.to_thread(_read_at, path, index * chunk, chunk)
            cmd = UploadCommand(
                upload_id=upload_id,
                index=index,
                total=total,
                size=size,
                sha256=sha256,
                data=base64.b64encode(data).decode(),
            )
            reply = await self._request(cmd, f"upload of {path.name} to {self.printer_id}")
            if reply.result.get("complete"):
                break
        return sha256

    async def stream(
        self, path: Path, *, job_id: str | None = None
    ) -> AsyncIterator[PrintProgress]:
        job_id = job_id or new_id()
        if self.remote is None or self.remote.state is PrinterState.OFFLINE:
            raise PrinterDisconnected(f"printer {self.printer_id} is not on the bus")
        queue: asyncio.Queue[StatusMessage | None] = asyncio.Queue()
        self._queues.add(queue)
        started = False
        self._last_progress = None
        try:
            sha256 = await self.upload(path)
            boot = self.remote.boot if self.remote else None
            reply = await self._request(
                StartCommand(job_id=job_id, sha256=sha256), f"start on {self.printer_id}"
            )
            started = True
            min_seq = int(reply.result.get("seq", 0))
            async for progress in self._progress(queue, job_id, boot, min_seq):
                yield progress
        except asyncio.CancelledError:
            if started:
                await self._cancel_remote(job_id)
            raise
        finally:
            self._queues.discard(queue)

    async def follow(self, job_id: str) -> AsyncIterator[PrintProgress]:
        """The progress of a job another orchestrator started on this printer and can no longer
        watch (it died): as `stream`, from wherever the job is now, without starting anything.
        A job that already ended says how it ended; a printer printing something else, or whose
        node restarted, raises PrinterDisconnected."""
        if self.remote is None or self.remote.state is PrinterState.OFFLINE:
            raise PrinterDisconnected(f"printer {self.printer_id} is not on the bus")
        queue: asyncio.Queue[StatusMessage | None] = asyncio.Queue()
        self._queues.add(queue)
        self._last_progress = None
        try:
            async for progress in self._progress(queue, job_id, self.remote.boot, 0):
                yield progress
        finally:
            self._queues.discard(queue)

    async def _progress(
        self,
        queue: asyncio.Queue[StatusMessage | None],
        job_id: str,
        boot: str | None,
        min_seq: int,
    ) -> AsyncIterator[PrintProgress]:
        """The job's progress from the printer's statuses until it ends (raising unless it
        completed)."""
        last: PrintProgress | None = None
        async for msg in self._job_statuses(queue, job_id):
            if msg.boot != boot:
                raise PrinterDisconnected(
                    f"node of {self.printer_id} restarted; job {job_id} is gone",
                    last_acked_line=last.lines_acked if last else None,
                )
            lj = msg.last_job
            if lj is not None and lj.job_id == job_id:
                self._finish(lj.outcome, lj.message, last)
                if msg.progress is not None and msg.progress != last:
                    yield msg.progress
                return
            if msg.seq < min_seq:
                continue
            if msg.job_id != job_id:
                raise PrinterDisconnected(
                    f"{self.printer_id} is no longer printing job {job_id}",
                    last_acked_line=last.lines_acked if last else None,
                )
            if msg.progress is not None and msg.progress != last:
                last = msg.progress
                yield last

    def _finish(self, outcome: str, message: str | None, last: PrintProgress | None) -> None:
        if outcome == "completed":
            return
        text = f"{self.printer_id}: {message or outcome}"
        if outcome == "failed":
            raise PrinterFault(text)
        if outcome == "interrupted":
            raise PrinterDisconnected(text, last_acked_line=last.lines_acked if last else None)
        raise PrintCancelled(text)

    async def _job_statuses(
        self, queue: asyncio.Queue[StatusMessage | None], job_id: str
    ) -> AsyncIterator[StatusMessage]:
        """Statuses while the job runs; PrinterDisconnected when the node is gone for good."""
        farm = self.farm
        stale = farm.settings.stale_after_s
        grace = self.cfg.offline_grace_s
        if grace is None:
            grace = farm.settings.offline_grace_s
        offline_since: float | None = None
        if self.remote is not None:
            queue.put_nowait(self.remote)
        while True:
            wait = stale
            if offline_since is not None:
                wait = max(0.0, offline_since + grace - time.monotonic())
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can return a message that
                # arrives in the turn the job is cancelled, and the cancellation is lost.
                async with asyncio.timeout(wait):
                    msg = await queue.get()
            except TimeoutError:
                if offline_since is not None:
                    raise PrinterDisconnected(
                        f"{self.printer_id} left the bus during job {job_id}",
                        last_acked_line=self._acked(),
                    ) from None
                if not farm.client.connected.is_set():
                    # Our own broker link is down, not the printer: wait for it, then the
                    # retained status tells where the job stands.
                    try:
                        async with asyncio.timeout(farm.settings.disconnect_grace_s):
                            await farm.client.connected.wait()
                    except TimeoutError:
                        raise PrinterDisconnected(
                            f"broker unreachable for {farm.settings.disconnect_grace_s:g}s",
                            last_acked_line=self._acked(),
                        ) from None
                    continue
                raise PrinterDisconnected(
                    f"{self.printer_id} silent for {stale:g}s", last_acked_line=self._acked()
                ) from None
            if msg is None:
                raise PrinterDisconnected(
                    f"{self.printer_id} was removed from the bus", last_acked_line=self._acked()
                )
            if msg.state is PrinterState.OFFLINE:
                if offline_since is None:
                    offline_since = time.monotonic()
                    log.warning("%s went offline during job %s", self.printer_id, job_id)
                continue
            offline_since = None
            yield msg

    def _acked(self) -> int | None:
        progress = self._last_progress
        return progress.lines_acked if progress else None

    async def _cancel_remote(self, job_id: str) -> None:
        cmd = ControlCommand(op="cancel", job_id=job_id)
        task: asyncio.Task[object] = asyncio.create_task(
            self.farm.request(self.printer_id, cmd, timeout_s=CANCEL_TIMEOUT_S)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.shield(task)
        except Exception as err:  # best effort: the caller is being cancelled anyway
            log.warning("cancel of job %s on %s not confirmed: %s", job_id, self.printer_id, err)
