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
from printforge.hardware.mqtt.messages import Command, EventMessage, Reply, StatusMessage
from printforge.hardware.mqtt.topics import Topics
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
        self.malformed = 0
        self.client = BusClient(
            settings,
            client_id=client_id or settings.client_id or f"pf-farm-{uuid.uuid4().hex[:12]}",
            on_message=self._on_message,
            subscriptions=[
                (self.topics.all("status"), 1),
                (self.topics.all("reply"), 1),
                (self.topics.all("events"), 1),
            ],
            health=health,
            name="farm",
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
        parsed = self.topics.parse(topic)
        if parsed is None:
            return
        printer_id, kind = parsed
        if kind == "reply":
            self._on_reply(topic, payload)
        elif kind == "status":
            self._on_status(printer_id, topic, payload)
        elif kind == "events":
            event = decode(EventMessage, payload, kind="event", topic=topic)
            if event is None:
                self.malformed += 1
                return
            for ecb in list(self._event_listeners):
                ecb(event)

    def _on_reply(self, topic: str, payload: bytes) -> None:
        reply = decode(Reply, payload, kind="reply", topic=topic)
        if reply is None:
            self.malformed += 1
            return
        fut = self._pending.get(reply.id)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def _on_status(self, printer_id: str, topic: str, payload: bytes) -> None:
        msg: StatusMessage | None
        if not payload:  # an empty retained message: the printer was decommissioned
            msg = None
            self.statuses.pop(printer_id, None)
        else:
            msg = decode(StatusMessage, payload, kind="status", topic=topic)
            if msg is not None and msg.id != printer_id:
                # Taken as is, it would show one printer's state under another's name.
                note_malformed("status", topic, f"id {msg.id!r} is not the topic's {printer_id!r}")
                msg = None
            if msg is None:
                self.malformed += 1
                return
            prev = self.statuses.get(printer_id)
            if prev is not None and prev.boot == msg.boot and msg.seq and msg.seq < prev.seq:
                return  # reordered across a reconnect: older news
            self.statuses[printer_id] = msg
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
        payload = cmd.model_dump_json()
        topic = self.topics.cmd(printer_id)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
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
