"""The node side of the farm bus: each local printer exposed on its own MQTT connection.

A connection per printer is what lets the broker announce *that printer* offline through its
last will when the node dies; it is also how Bambu and Moonraker printers appear on a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import tempfile
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from printforge.gcode.gate import SessionGate, check_gcode
from printforge.hardware.base import PrinterDriver
from printforge.hardware.mqtt.client import BusClient, decode, note_malformed
from printforge.hardware.mqtt.config import BusSettings, Origin, origin_text, parse_origin
from printforge.hardware.mqtt.messages import (
    COMMAND,
    CancelObjectCommand,
    Command,
    ControlCommand,
    ErrorBody,
    EventMessage,
    JobOutcome,
    LastJob,
    ProfileSummary,
    Reply,
    SendCommand,
    StartCommand,
    StatusMessage,
    UploadCommand,
)
from printforge.hardware.mqtt.signing import Complaints, Signer, Verdict, Verifier, signing_pair
from printforge.hardware.mqtt.spool import Spool
from printforge.hardware.mqtt.topics import Topics, valid_printer_id
from printforge.models.printer import (
    MaterialProfile,
    PrinterProfile,
    PrinterState,
    PrinterStatus,
    PrintProgress,
)
from printforge.runtime import metrics
from printforge.runtime.errors import (
    BadArtifact,
    ConfigError,
    InputError,
    InvalidTransition,
    PrintCancelled,
    PrinterBusy,
    PrinterDisconnected,
    PrinterFault,
    PrintforgeError,
    UnsafeGcode,
)
from printforge.runtime.health import HealthRegistry
from printforge.runtime.logsetup import bind_log_context, log_context

__all__ = ["BusNode", "EndpointFaults", "PrinterEndpoint"]

log = logging.getLogger(__name__)

SEEN_COMMANDS = 4096  # command ids remembered per printer for de-duplication
# Refused commands answered per printer and second (burst, rate): a flood of forged commands
# is counted, not answered message for message.
REFUSAL_BURST, REFUSAL_RATE = 20.0, 10.0
URGENT = ("state", "job_id", "message")


class EndpointFaults(BaseModel):
    """Faults a simulated node can show, for tests and the benchmark."""

    reply_delay_s: float = Field(0.0, ge=0, description="hold every reply this long")
    drop_at_fraction: float | None = Field(
        None, gt=0, le=1, description="fall off the bus once a print reaches this fraction"
    )
    drop_for_s: float = Field(2.0, ge=0, description="stay away this long after falling off")


class PrinterEndpoint:
    """One printer on the bus: retained status, events, commands in, replies out."""

    def __init__(
        self,
        driver: PrinterDriver,
        settings: BusSettings,
        *,
        node_id: str,
        printer_id: str | None = None,
        spool: Spool,
        boot: str,
        health: HealthRegistry | None = None,
        faults: EndpointFaults | None = None,
        signer: Signer | None = None,
        verifier: Verifier | None = None,
        complaints: Complaints | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.driver = driver
        # Published with every status: what jobs may ask of this printer (issue 15).
        self.tags = list(tags or [])
        self.settings = settings
        self.node_id = node_id
        self.printer_id = printer_id or f"{node_id}.{driver.name}"
        if not valid_printer_id(self.printer_id):
            raise ConfigError(f"printer id {self.printer_id!r} cannot be an MQTT topic level")
        scoped = settings.topic_layout == "node"
        if scoped and not self.printer_id.startswith(f"{node_id}."):
            raise ConfigError(
                f"printer id {self.printer_id!r} must start with {node_id}. in the node layout"
            )
        self.topics = Topics(settings.topic_prefix, node=node_id if scoped else None)
        if signer is None and verifier is None and settings.farm_key is not None:
            signer, verifier = signing_pair(
                settings.farm_key_text(), window_s=settings.signature_window_s
            )
        self._verifier = verifier
        self._complaints = complaints or Complaints(log)
        self._trusted: frozenset[Origin] = frozenset(
            parse_origin(o) for o in settings.artifact_origins
        )
        self._refusal_tokens = REFUSAL_BURST
        self._refusal_at = time.monotonic()
        self.refused = 0
        self.spool = spool
        self.boot = boot
        self.faults = faults or EndpointFaults()
        self._profile = ProfileSummary.of(driver.profile)  # profiles are frozen: build it once
        # What the lines sent by hand have taught the gate about this printer (modes, homed
        # axes, offsets), until a reconnect, a job or a stop makes it unknown again.
        self._session = SessionGate(driver.profile)
        self._seq = 0
        self._seen: OrderedDict[str, Reply | None] = OrderedDict()
        self._queue: asyncio.Queue[Command] = asyncio.Queue()
        self._events: asyncio.Queue[EventMessage] = asyncio.Queue()
        self._urgent = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._job_task: asyncio.Task[None] | None = None
        self._job_id: str | None = None
        self._job_cancel_reason: JobOutcome | None = None
        self._progress: PrintProgress | None = None
        self._last_job: LastJob | None = None
        self._published: tuple[object, ...] | None = None
        self._unlisten = None
        self._dropped = False
        self.commands_handled = 0
        self.duplicates = 0
        self.client = BusClient(
            settings,
            client_id=f"pf-{node_id}-{driver.name}-{boot[:8]}"[:128],
            on_message=self._on_message,
            subscriptions=[(self.topics.cmd(self.printer_id), 1)],
            will=BusClient.will_of(
                self.topics.status(self.printer_id), self._offline("node connection lost")
            ),
            health=health,
            name=f"bus:{self.printer_id}",
            signer=signer,
        )
        self.client.on_connect(self._publish_status)

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        self._unlisten = self.driver.add_listener(self._on_driver_status)
        for coro, name in (
            (self._status_loop(), "status"),
            (self._command_loop(), "commands"),
            (self._event_loop(), "events"),
        ):
            self._spawn(coro, name)
        await self.client.start()

    async def stop(self, *, reason: str = "node stopped") -> None:
        """Interrupt a running job, publish `offline` (retained), disconnect."""
        if self._job_task is not None and not self._job_task.done():
            self._job_cancel_reason = "interrupted"
            self._job_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._job_task
        with contextlib.suppress(Exception):
            await self.client.publish_if_connected(
                self.topics.status(self.printer_id), self._offline(reason), qos=1, retain=True
            )
        await self.client.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        # A task copies the context it is created in: every line it logs names the printer.
        with log_context(printer=self.printer_id):
            task = asyncio.create_task(coro, name=f"{self.printer_id}-{name}")  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # status ----------------------------------------------------------------------------------
    def _offline(self, message: str) -> bytes:
        return (
            StatusMessage(
                id=self.printer_id,
                node=self.node_id,
                driver=self.driver.kind,
                state=PrinterState.OFFLINE,
                profile=self._profile,
                material=self.driver.material.name if self.driver.material else None,
                message=message,
                simulated=self.driver.status().simulated,
                boot=self.boot,
                last_job=self._last_job,
            )
            .model_dump_json()
            .encode()
        )

    def status_message(self) -> StatusMessage:
        status = self.driver.status()
        self._seq += 1
        update: dict[str, object] = {}
        if self._job_id is not None:
            update["job_id"] = self._job_id
            if status.state in (PrinterState.IDLE, PrinterState.FINISHED):
                update["state"] = PrinterState.PRINTING  # the stream has not begun yet
            if self._progress is not None:
                update["progress"] = self._progress
        if update:
            status = status.model_copy(update=update)
        return StatusMessage.of(
            status,
            printer_id=self.printer_id,
            node=self.node_id,
            profile=self._profile,
            material=self.driver.material,
            last_job=self._last_job,
            seq=self._seq,
            boot=self.boot,
            tags=self.tags,
        )

    def _on_driver_status(self, status: PrinterStatus) -> None:
        if status.state in _UNSEEN_STATES:
            self._session.forget()  # a reconnect or a halt: the head may be anywhere now
        key = tuple(getattr(status, k) for k in URGENT)
        if key != self._published:
            self._urgent.set()

    async def _publish_status(self, *, qos: int = 1) -> None:
        msg = self.status_message()
        self._published = (msg.state, msg.job_id, msg.message)
        await self.client.publish_if_connected(
            self.topics.status(self.printer_id), msg.model_dump_json(), qos=qos, retain=True
        )

    async def _status_loop(self) -> None:
        # State changes go out at once (QoS 1); temperatures and progress ride the heartbeat
        # (QoS 0: the next one supersedes it). A random phase keeps a node's printers from
        # all publishing in the same millisecond.
        interval = self.settings.status_interval_s
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            urgent = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._urgent.wait()
                    urgent = True
            self._urgent.clear()
            try:
                await self._publish_status(qos=1 if urgent else 0)
            except Exception:
                # The heartbeat is the printer's only sign of life: one failed publish must
                # not end it, or the orchestrator would count a healthy printer as stale.
                log.exception("%s: status publish failed", self.printer_id)

    # events ----------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: object) -> None:
        self._events.put_nowait(EventMessage(printer=self.printer_id, kind=kind, **fields))  # type: ignore[arg-type]

    async def _event_loop(self) -> None:
        topic = self.topics.events(self.printer_id)
        while True:
            event = await self._events.get()
            # publish() waits through outages, so an event is delayed, never dropped.
            await self.client.publish(topic, event.model_dump_json(), qos=1)

    # commands --------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if self._verifier is not None:
            # Before anything is parsed or acted on: with a farm key, only a command signed with
            # it, for this printer's topic, fresh and not seen before, goes any further.
            verdict = self._verifier.check(topic, payload)
            if not verdict.ok:
                self._unauthorized(topic, payload, verdict)
                return
        cmd = decode(COMMAND, payload, kind="command", topic=topic)
        if cmd is None:
            self._reject_malformed(payload)
            return
        if "id" not in cmd.model_fields_set:
            # The model makes up an id for commands built here; one received without an id
            # could not be de-duplicated (each resend would run again) nor answered.
            note_malformed("command", topic, "no id: a command must carry a unique id")
            return
        if cmd.id in self._seen:
            self.duplicates += 1
            reply = self._seen[cmd.id]
            if reply is not None:  # a lost reply: send the same one again, do nothing else
                self._spawn(self._send_reply(reply), "reply")
            return
        self._seen[cmd.id] = None
        while len(self._seen) > SEEN_COMMANDS:
            self._seen.popitem(last=False)
        if isinstance(cmd, StartCommand) and cmd.url is not None:
            why = self._untrusted_url(cmd)
            if why is not None:
                # Refused here, before the command is queued: no request is ever made.
                error = ErrorBody(code="untrusted_origin", message=why)
                reply = Reply(id=cmd.id, ok=False, error=error)
                self._seen[cmd.id] = reply
                self._event("command.rejected", job_id=cmd.job_id, message=f"start: {why}")
                self._spawn(self._send_reply(reply), "reply")
                return
        if isinstance(cmd, ControlCommand) and cmd.op in ("emergency_stop", "ping"):
            self._spawn(self._run_command(cmd), "urgent")  # never queued behind an upload
        else:
            self._queue.put_nowait(cmd)

    def _untrusted_url(self, cmd: StartCommand) -> str | None:
        """Why the node must not fetch `cmd.url`, or None when its origin is trusted."""
        try:
            origin = parse_origin(cmd.url or "")
        except ValueError as err:
            return f"url refused: {err}"
        if origin in self._trusted:
            return None
        if self._verifier is not None and cmd.origin:
            # The sender's own origin, as it announced it in a command signed with the farm key.
            try:
                if parse_origin(cmd.origin) == origin:
                    return None
            except ValueError:
                pass
        return (
            f"url refused: {origin_text(origin)} is not an origin this node fetches from"
            " ([bus] artifact_origins; an orchestrator's own origin counts only in a command"
            " signed with the farm key)"
        )

    def _unauthorized(self, topic: str, payload: bytes, verdict: Verdict) -> None:
        """Refuse a command whose signature does not hold: never run, answered `unauthorized`."""
        metrics.MQTT_UNAUTHENTICATED.labels("command").inc()
        cmd_id, op = _id_and_op(payload)
        if verdict.replayed and cmd_id is not None and cmd_id in self._seen:
            # An authentic copy of a command already here (a QoS 1 redelivery, or a replay):
            # what a duplicate gets, the same reply and nothing done again.
            self.duplicates += 1
            reply = self._seen[cmd_id]
            if reply is not None:
                self._spawn(self._send_reply(reply), "reply")
            return
        self.refused += 1
        self._complaints.note(
            "%s: refused %s on %s: %s", self.printer_id, op or "a command", topic, verdict.reason
        )
        if cmd_id is None or not self._may_answer_refusal():
            return
        # Not remembered under its id: an unsigned copy of a real command's id must not make
        # the real one look answered. The nonce tells a requester it is about its own message.
        reply = Reply(
            id=cmd_id,
            ok=False,
            error=ErrorBody(code="unauthorized", message=f"{op or 'command'}: {verdict.reason}"),
            result={"nonce": verdict.nonce} if verdict.nonce else {},
        )
        self._event(
            "command.rejected",
            message=f"{op or 'command'}: unauthorized: {verdict.reason}",
            data={"code": "unauthorized", "command_id": cmd_id},
        )
        self._spawn(self._send_reply(reply), "reply")

    def _may_answer_refusal(self) -> bool:
        now = time.monotonic()
        self._refusal_tokens = min(
            REFUSAL_BURST, self._refusal_tokens + (now - self._refusal_at) * REFUSAL_RATE
        )
        self._refusal_at = now
        if self._refusal_tokens < 1:
            return False
        self._refusal_tokens -= 1
        return True

    def _reject_malformed(self, payload: bytes) -> None:
        try:
            raw = json.loads(payload)
            cmd_id = raw.get("id") if isinstance(raw, dict) else None
        except ValueError:
            cmd_id = None
        if isinstance(cmd_id, str) and cmd_id and cmd_id not in self._seen:
            reply = Reply(
                id=cmd_id,
                ok=False,
                error=ErrorBody(code="bad_command", message=_why_malformed(raw)),
            )
            self._seen[cmd_id] = reply
            self._spawn(self._send_reply(reply), "reply")

    async def _command_loop(self) -> None:
        while True:
            cmd = await self._queue.get()
            await self._run_command(cmd)

    async def _run_command(self, cmd: Command) -> None:
        if self.faults.reply_delay_s:
            await asyncio.sleep(self.faults.reply_delay_s)  # a slow node: resends pile up
        try:
            result = await self._execute(cmd)
            reply = Reply(id=cmd.id, ok=True, result=result)
        except PrintforgeError as err:
            body = ErrorBody(code=err.code, message=err.message, busy=isinstance(err, PrinterBusy))
            reply = Reply(id=cmd.id, ok=False, error=body)
        except Exception as err:  # a driver bug must still produce a reply
            log.exception("%s: command %s failed", self.printer_id, cmd.op)
            reply = Reply(id=cmd.id, ok=False, error=ErrorBody(code="error", message=str(err)))
        self.commands_handled += 1
        self._seen[cmd.id] = reply
        if not reply.ok:
            self._event("command.rejected", message=f"{cmd.op}: {reply.error.message}")  # type: ignore[union-attr]
        await self._send_reply(reply)

    async def _send_reply(self, reply: Reply) -> None:
        await self.client.publish(
            self.topics.reply(self.printer_id), reply.model_dump_json(), qos=1
        )

    async def _execute(self, cmd: Command) -> dict[str, object]:
        driver = self.driver
        if isinstance(cmd, UploadCommand):
            return await self.spool.add_chunk(cmd)
        if isinstance(cmd, StartCommand):
            return await self._start_job(cmd)
        if isinstance(cmd, SendCommand):
            # Whoever may write to the cmd topic could otherwise set 999 °C or walk the head off
            # the bed a line at a time: each line is judged by where the lines before it left
            # this printer (relative moves, G92 offsets), by the same gate as every job.
            self._session.check(cmd.line, driver.material)
            try:
                await driver.send(cmd.line)
            except (Exception, asyncio.CancelledError):
                self._session.forget()  # it may or may not have run
                raise
            return {}
        if isinstance(cmd, CancelObjectCommand):
            if cmd.job_id is not None and cmd.job_id != self._job_id:
                raise InvalidTransition(f"job {cmd.job_id} is not running on {self.printer_id}")
            return await driver.cancel_object(cmd.object)
        op = cmd.op
        if cmd.job_id is not None and cmd.job_id != self._job_id and op != "ping":
            raise InvalidTransition(f"job {cmd.job_id} is not running on {self.printer_id}")
        if op == "ping":
            return {"state": driver.status().state.value, "job_id": self._job_id}
        if op == "pause":
            await driver.pause()
        elif op == "resume":
            await driver.resume()
        elif op == "cancel":
            self._session.forget()  # a safe stop parks the head
            if self._job_task is not None and not self._job_task.done():
                self._job_cancel_reason = "cancelled"
                self._job_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._job_task
            else:
                await driver.cancel()
        elif op == "emergency_stop":
            self._session.forget()
            await driver.emergency_stop()
            if self._job_task is not None and not self._job_task.done():
                self._job_cancel_reason = "failed"
                self._job_task.cancel()
        elif op == "clear_bed":
            await driver.confirm_bed_clear()
        self._urgent.set()
        return {"state": driver.status().state.value}

    async def _start_job(self, cmd: StartCommand) -> dict[str, object]:
        if self._job_task is not None and not self._job_task.done():
            if self._job_id == cmd.job_id:
                return {"job_id": cmd.job_id, "seq": self._seq}
            raise PrinterBusy(f"{self.printer_id} is printing job {self._job_id}")
        state = self.driver.status().state
        if state is not PrinterState.IDLE or not self.driver.connected.is_set():
            raise InvalidTransition(f"{self.printer_id} is {state.value}, not idle")
        if not self.spool.has(cmd.sha256):
            if not cmd.url:
                raise InputError(f"no uploaded file with sha256 {cmd.sha256[:12]}… and no url")
            await self.spool.fetch(cmd.url, cmd.sha256)
        # The node answers for its printers whoever sent the job: the file is gated against this
        # printer's profile and loaded material before a byte of it is streamed.
        await _gate_file(self.spool.path_of(cmd.sha256), cmd.sha256, self.driver)
        path = self.spool.acquire(cmd.sha256)
        self._job_id = cmd.job_id
        self._progress = None
        self._job_cancel_reason = None
        self._job_task = self._spawn(self._run_job(cmd.job_id, path, cmd.sha256), "job")
        self._event("job.started", job_id=cmd.job_id)
        self._urgent.set()
        # Statuses from this seq on carry the job: the requester ignores older ones.
        return {"job_id": cmd.job_id, "seq": self._seq + 1}

    async def _run_job(self, job_id: str, path: Path, sha256: str) -> None:
        bind_log_context(job_id=job_id)
        self._session.forget()  # a job moves the head and sets modes the session did not see
        outcome: JobOutcome = "completed"
        message: str | None = None
        dropped = False
        try:
            async for progress in self.driver.stream(path, job_id=job_id):
                self._progress = progress
                at = self.faults.drop_at_fraction
                if at is not None and not dropped and progress.fraction >= at:
                    dropped = True
                    self.client.sever(self.faults.drop_for_s)
        except asyncio.CancelledError:
            outcome = self._job_cancel_reason or "interrupted"
            message = "cancelled on request" if outcome == "cancelled" else "stopped"
            raise
        except PrinterDisconnected as err:
            outcome, message = "interrupted", err.message
        except PrinterFault as err:
            outcome, message = "failed", err.message
        except PrintCancelled as err:
            # Stopped at the printer itself (its screen, //action:cancel): a cancel.
            outcome, message = "cancelled", err.message
        except PrintforgeError as err:
            outcome, message = "failed", err.message
        except Exception as err:
            log.exception("%s: job %s crashed", self.printer_id, job_id)
            outcome, message = "failed", f"{type(err).__name__}: {err}"
        finally:
            self._session.forget()
            self._last_job = LastJob(job_id=job_id, outcome=outcome, message=message)
            self._job_id = None
            self._event(f"job.{outcome}", job_id=job_id, message=message)
            self._urgent.set()
            with contextlib.suppress(OSError):
                await asyncio.shield(self.spool.release(sha256))


# States after which nobody knows where the head is: the printer was away or halted.
_UNSEEN_STATES = frozenset({PrinterState.OFFLINE, PrinterState.CONNECTING, PrinterState.FAULTED})
# Verdicts by (file sha256, printer profile, material): a node whose printers print the same
# file gates it once. The verdict depends on nothing else, and a file is stored under the
# sha256 the spool verified, so a remembered verdict is the verdict.
_VERDICTS: OrderedDict[tuple[str, str, str], PrintforgeError | None] = OrderedDict()
_VERDICTS_KEPT = 256


async def _gate_file(path: Path, sha256: str, driver: PrinterDriver) -> None:
    """UnsafeGcode (or BadArtifact) when the file may not run on this printer."""
    material: MaterialProfile | None = driver.material
    key = (sha256, driver.profile.model_dump_json(), material.model_dump_json() if material else "")
    if key in _VERDICTS:
        _VERDICTS.move_to_end(key)
    else:
        _VERDICTS[key] = await asyncio.to_thread(_verdict, path, driver.profile, material)
        while len(_VERDICTS) > _VERDICTS_KEPT:
            _VERDICTS.popitem(last=False)
    refusal = _VERDICTS[key]
    if refusal is not None:
        raise type(refusal)(refusal.message)


def _verdict(
    path: Path, profile: PrinterProfile, material: MaterialProfile | None
) -> PrintforgeError | None:
    try:
        check_gcode(path, profile, material)
    except (UnsafeGcode, BadArtifact) as err:
        return err
    return None


def _id_and_op(payload: bytes) -> tuple[str | None, str | None]:
    """The id and op a refused command claims, for the answer (never trusted for anything else)."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return None, None
    if not isinstance(raw, dict):
        return None, None
    cmd_id, op = raw.get("id"), raw.get("op")
    good_id = cmd_id if isinstance(cmd_id, str) and 0 < len(cmd_id) <= 128 else None
    good_op = op if isinstance(op, str) and op.isidentifier() and len(op) <= 32 else None
    return good_id, good_op


def _why_malformed(raw: object) -> str:
    """The first thing wrong with a command, in words a requester can act on."""
    try:
        COMMAND.validate_python(raw)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"][1:])  # [0] is the op's model
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        return f"the command does not parse: {detail}"[:300]
    return "the command does not parse"


class BusNode:
    """All exposed printers of one host, started and stopped together."""

    def __init__(
        self,
        settings: BusSettings,
        drivers: list[PrinterDriver],
        *,
        spool_dir: Path | None = None,
        health: HealthRegistry | None = None,
        faults: EndpointFaults | None = None,
        tags: dict[str, list[str]] | None = None,
    ) -> None:
        """Args:
        tags: each printer's `[printers.NAME] tags`, by driver name.
        """
        self.settings = settings
        self.node_id = settings.resolved_node_id()
        self.boot = uuid.uuid4().hex
        folder = spool_dir or Path(settings.spool_dir or tempfile.gettempdir()) / (
            f"printforge-spool-{self.node_id}"
        )
        self.spool = Spool(folder)
        # One verifier for the node: nonces are remembered once, whichever printer they reach.
        signer, verifier = signing_pair(
            settings.farm_key_text(), window_s=settings.signature_window_s
        )
        complaints = Complaints(log)
        self.endpoints = [
            PrinterEndpoint(
                d,
                settings,
                node_id=self.node_id,
                spool=self.spool,
                boot=self.boot,
                health=health,
                faults=faults,
                signer=signer,
                verifier=verifier,
                complaints=complaints,
                tags=(tags or {}).get(d.name),
            )
            for d in drivers
        ]
        ids = [e.printer_id for e in self.endpoints]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"two printers share a bus id: {sorted(ids)}")
        self.open_warning_given = False
        if self.endpoints and settings.username is None and settings.farm_key is None:
            self.endpoints[0].client.on_connect(self._warn_if_open)

    async def _warn_if_open(self) -> None:
        """Once: a broker that let us in without credentials, and no farm key, is an open door."""
        if self.open_warning_given:
            return
        self.open_warning_given = True
        log.warning(
            "broker %s:%s let node %s in without credentials and no [bus] farm_key is set:"
            " anyone on the broker can drive its printers (set PRINTFORGE_BUS__FARM_KEY"
            " on every node and orchestrator, and broker credentials: see docs/farm.md)",
            self.endpoints[0].client.address.host,
            self.endpoints[0].client.address.port,
            self.node_id,
        )

    async def start(self, *, wait_s: float | None = None) -> None:
        await asyncio.gather(*(e.start() for e in self.endpoints))
        if wait_s is not None:
            await asyncio.gather(*(e.client.wait_connected(wait_s) for e in self.endpoints))

    async def stop(self) -> None:
        results = await asyncio.gather(
            *(e.stop() for e in reversed(self.endpoints)), return_exceptions=True
        )
        for endpoint, result in zip(reversed(self.endpoints), results, strict=True):
            if isinstance(result, Exception):
                log.warning("%s did not stop cleanly: %s", endpoint.printer_id, result)
