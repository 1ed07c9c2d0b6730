"""The orchestrator side of the farm bus: one connection that sees every printer.

It keeps the latest status of every printer (retained messages make a fresh subscriber see the
whole farm at once), routes replies to the requests waiting for them, and resends a command
under the same id until a reply comes: with the node's de-duplication that makes a command
take effect exactly once even across broker restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from printforge.hardware.mqtt.client import BusClient, decode, note_malformed
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.messages import (
    Command,
    EventMessage,
    Reply,
    StartCommand,
    StatusMessage,
)
from printforge.hardware.mqtt.signing import Complaints, Verdict, signing_pair
from printforge.hardware.mqtt.topics import Topics
from printforge.models.printer import PrinterState
from printforge.runtime import metrics
from printforge.runtime.errors import OperationTimeout
from printforge.runtime.health import HealthRegistry

__all__ = ["FarmClient", "StatusCallback"]

log = logging.getLogger(__name__)

# (printer id, status or None when the retained status was cleared)
StatusCallback = Callable[[str, StatusMessage | None], None]
EventCallback = Callable[[EventMessage], None]


class FarmClient:
    """Statuses, events and request/reply for every printer under one topic prefix."""

    def __init__(
        self,
        settings: BusSettings,
        *,
        health: HealthRegistry | None = None,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.statuses: dict[str, StatusMessage] = {}
        self.last_seen: dict[str, float] = {}
        self._listeners: list[StatusCallback] = []
        self._watchers: dict[str, list[StatusCallback]] = {}
        self._event_listeners: list[EventCallback] = []
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        # Printer id -> node, for printers heard on the node-scoped layout: their commands go
        # back on that layout (the broker ACL may allow no other).
        self._routes: dict[str, str | None] = {}
        self.malformed = 0
        self.forged = 0  # messages dropped for a missing, bad, stale or replayed signature
        # With a farm key: commands are signed, and a printer's messages count only when they
        # are signed too. The nonces we issue are remembered so that an `unauthorized` reply
        # can be told apart: about our command, or about someone's copy of its id.
        self._signer, self._verifier = signing_pair(
            settings.farm_key_text(), window_s=settings.signature_window_s, remember_issued=True
        )
        self._complaints = Complaints(log)
        self.client = BusClient(
            settings,
            client_id=client_id or settings.client_id or f"pf-farm-{uuid.uuid4().hex[:12]}",
            on_message=self._on_message,
            subscriptions=[
                (self.topics.all("status"), 1),
                (self.topics.all("reply"), 1),
                (self.topics.all("events"), 1),
                (self.topics.all_nodes("status"), 1),
                (self.topics.all_nodes("reply"), 1),
                (self.topics.all_nodes("events"), 1),
            ],
            health=health,
            name="farm",
            signer=self._signer,
        )

    async def start(self, *, wait_s: float | None = None) -> None:
        await self.client.start(wait_s=wait_s)

    async def stop(self) -> None:
        await self.client.stop()
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()

    # listeners ---------------------------------------------------------------------------------
    def add_listener(self, cb: StatusCallback) -> Callable[[], None]:
        """Every status of every printer (discovery)."""
        self._listeners.append(cb)
        return lambda: self._listeners.remove(cb)

    def watch(self, printer_id: str, cb: StatusCallback) -> Callable[[], None]:
        """Statuses of one printer."""
        self._watchers.setdefault(printer_id, []).append(cb)

        def unwatch() -> None:
            cbs = self._watchers.get(printer_id, [])
            if cb in cbs:
                cbs.remove(cb)
            if not cbs:
                self._watchers.pop(printer_id, None)

        return unwatch

    def add_event_listener(self, cb: EventCallback) -> Callable[[], None]:
        self._event_listeners.append(cb)
        return lambda: self._event_listeners.remove(cb)

    # inbound -------------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        parsed = self.topics.parse_full(topic)
        if parsed is None:
            return
        printer_id, kind, node = parsed
        if kind == "reply":
            self._on_reply(topic, payload)
        elif kind == "status":
            self._on_status(printer_id, topic, payload, retained=retained, node=node)
        elif kind == "events":
            if not self._authentic(topic, payload, kind):
                return
            event = decode(EventMessage, payload, kind="event", topic=topic)
            if event is None:
                self.malformed += 1
                return
            for ecb in list(self._event_listeners):
                ecb(event)

    def _authentic(self, topic: str, payload: bytes, kind: str, *, fresh: bool = True) -> bool:
        """Without a farm key, everything; with one, only messages signed with it."""
        if self._verifier is None:
            return True
        verdict = self._verifier.check(topic, payload, fresh=fresh)
        if verdict.ok:
            return True
        self._drop(topic, kind, verdict)
        return False

    def _drop(self, topic: str, kind: str, verdict: Verdict) -> None:
        if verdict.replayed:
            return  # an authentic copy of a message already taken (a QoS 1 redelivery)
        self.forged += 1
        metrics.MQTT_UNAUTHENTICATED.labels(kind).inc()
        self._complaints.note(
            "dropped a %s on %s: %s (a printer whose node has no farm key, another key, or"
            " a wrong clock; or someone speaking for it)",
            kind,
            topic,
            verdict.reason,
        )

    def _on_reply(self, topic: str, payload: bytes) -> None:
        # The MAC, not the time: a reply counts only for a pending command with its id (a
        # fresh random one per command), so a replayed reply can only repeat the answer it
        # already was; and an orchestrator running behind must not drop its own answers.
        if not self._authentic(topic, payload, "reply", fresh=False):
            return
        reply = decode(Reply, payload, kind="reply", topic=topic)
        if reply is None:
            self.malformed += 1
            return
        if (
            self._signer is not None
            and reply.error is not None
            and reply.error.code == "unauthorized"
            and not self._signer.issued(reply.result.get("nonce"))
        ):
            # The node refused a message we did not sign (someone reused our command's id):
            # our own command is answered on its own, this refusal is not about it.
            return
        fut = self._pending.get(reply.id)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def _on_status(
        self,
        printer_id: str,
        topic: str,
        payload: bytes,
        *,
        retained: bool = False,
        node: str | None = None,
    ) -> None:
        msg: StatusMessage | None
        verdict: Verdict | None = None
        if not payload:  # an empty retained message: the printer was decommissioned
            known = self.statuses.get(printer_id)
            # An empty message cannot be signed: with a farm key, only a printer already
            # offline (retired) can be cleared away, never a working one.
            live = known is not None and known.state is not PrinterState.OFFLINE
            if self._verifier is not None and live:
                self._drop(topic, "status", Verdict(False, "removal of a printer not offline"))
                return
            msg = None
            self.statuses.pop(printer_id, None)
            self._routes.pop(printer_id, None)
        else:
            if self._verifier is not None:
                verdict = self._verifier.authenticate(topic, payload)
                if not verdict.ok:
                    self._drop(topic, "status", verdict)
                    return
            msg = decode(StatusMessage, payload, kind="status", topic=topic)
            if msg is not None and msg.id != printer_id:
                # Taken as is, it would show one printer's state under another's name.
                note_malformed("status", topic, f"id {msg.id!r} is not the topic's {printer_id!r}")
                msg = None
            if msg is None:
                self.malformed += 1
                return
            if verdict is not None and not retained and msg.state is not PrinterState.OFFLINE:
                # A live status must be fresh and new. A retained copy, and an offline status
                # (the last will, signed when its connection began), are old by nature: the
                # MAC is all that is checked, and seq orders them.
                verdict = self._verifier.admit(verdict)  # type: ignore[union-attr]
                if not verdict.ok:
                    self._drop(topic, "status", verdict)
                    return
            prev = self.statuses.get(printer_id)
            if prev is not None and prev.boot == msg.boot and msg.seq and msg.seq < prev.seq:
                return  # reordered across a reconnect: older news
            self.statuses[printer_id] = msg
            self._routes[printer_id] = node
        self.last_seen[printer_id] = time.monotonic()
        for cb in list(self._listeners):
            cb(printer_id, msg)
        for cb in list(self._watchers.get(printer_id, ())):
            cb(printer_id, msg)

    # requests ------------------------------------------------------------------------------------
    async def request(
        self,
        printer_id: str,
        cmd: Command,
        *,
        timeout_s: float | None = None,
        retry_s: float | None = None,
    ) -> Reply:
        """Send a command and wait for its reply, resending under the same id meanwhile."""
        timeout_s = timeout_s or self.settings.command_timeout_s
        retry_s = retry_s or self.settings.command_retry_s
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Reply] = loop.create_future()
        self._pending[cmd.id] = fut
        announce = self.settings.announce_origin
        if isinstance(cmd, StartCommand) and cmd.url and cmd.origin is None and announce:
            # Where this orchestrator serves files: a node fetches from it when the command is
            # signed (with no farm key the node relies on its own artifact_origins only).
            cmd = cmd.model_copy(update={"origin": announce})
        payload = cmd.model_dump_json()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    # Each send is signed as it goes out (BusClient), so a resend is fresh too.
                    topic = self.topics.cmd(printer_id, node=self._routes.get(printer_id))
                    await self.client.publish(topic, payload, qos=1)
                    done, _ = await asyncio.wait({fut}, timeout=retry_s)
                    if done:
                        return fut.result()
                    log.info("no reply to %s %s on %s yet: resending", cmd.op, cmd.id, printer_id)
        except TimeoutError:
            raise OperationTimeout(
                f"printer {printer_id} did not answer {cmd.op} within {timeout_s:g}s"
            ) from None
        finally:
            self._pending.pop(cmd.id, None)
