"""The websocket: JSON-RPC calls in, `job.event` and `printer.status` notifications out.

One bus subscription serves every client: an event is serialised once and queued to each client
that wants it, and each client has one writer task, so a slow client delays only itself. A client
whose queue overflows is closed (1013, try again later) rather than silently missing events; it
reconnects and re-reads the state. Printer status is coalesced per printer, because 50 virtual
printers report far more often than a person can read; a change of state (idle → printing →
idle) is never coalesced away, because a fast print can start and end inside one interval and a
dashboard that never saw it print would be lying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, web

from printforge.models.event import JobEvent, PrinterStatusEvent
from printforge.runtime import metrics
from printforge.server.auth import Principal
from printforge.server.views import printer_view

__all__ = ["Broadcaster", "WsClient"]

log = logging.getLogger(__name__)


def _notification(method: str, params: dict[str, Any]) -> str:
    return json.dumps(
        {"jsonrpc": "2.0", "method": method, "params": params}, separators=(",", ":"), default=str
    )


class WsClient:
    def __init__(self, ws: web.WebSocketResponse, principal: Principal, queue_size: int) -> None:
        self.ws = ws
        self.principal = principal
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)
        self.jobs: str | set[str] = "all"
        self.owned: set[str] = set()
        self.printers = True
        self.overflowed = False
        self.revoked = False  # its key was revoked: no more calls, the socket is closing

    def own(self, job_ids: list[str]) -> None:
        self.owned.update(job_ids)

    def subscribe(self, jobs: str | list[str], printers: bool) -> None:
        self.jobs = set(jobs) if isinstance(jobs, list) else jobs
        self.printers = printers

    def wants_job(self, job_id: str) -> bool:
        if self.jobs == "all":
            return True
        if self.jobs == "own":
            return job_id in self.owned
        if self.jobs == "none":
            return False
        return job_id in self.jobs

    def offer(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("websocket client %s too slow; closing it", self.principal.name)
            # The writer sees the sentinel after draining and closes the socket.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def write_loop(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None:
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                return
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                return


class Broadcaster:
    """Fans the bus out to websocket clients; owns one task and one bus subscription."""

    def __init__(self, bus: Any, status_interval_s: float) -> None:
        self.bus = bus
        self.clients: set[WsClient] = set()
        self.status_interval_s = status_interval_s
        self._pending_status: dict[str, dict[str, Any]] = {}
        self._last_state: dict[str, str] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._closing: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        if self._task is None:
            self._sub = self.bus.subscribe(maxsize=10_000)
            self._task = asyncio.create_task(self._run(), name="ws-broadcaster")

    async def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self._sub is not None:
            self._sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async for event in self._sub:
            try:
                if isinstance(event, JobEvent):
                    self._job_event(event)
                elif isinstance(event, PrinterStatusEvent):
                    self._printer_event(event)
            except Exception:
                log.exception("broadcasting an event failed")

    def _job_event(self, event: JobEvent) -> None:
        text = _notification("job.event", event.model_dump(mode="json"))
        sent = 0
        for client in self.clients:
            if client.wants_job(event.job_id):
                client.offer(text)
                sent += 1
        metrics.WEBSOCKET_EVENTS.labels("job.event").inc(sent)
        lag = (datetime.now(UTC) - event.ts).total_seconds()
        metrics.WEBSOCKET_EVENT_LAG.observe(max(0.0, lag))

    def _printer_event(self, event: PrinterStatusEvent) -> None:
        view = printer_view(event.status)
        printer_id = event.status.id
        if view["state"] != self._last_state.get(printer_id):
            # Order matters: the last figures of the old state go out before the new state.
            pending = self._pending_status.pop(printer_id, None)
            if pending is not None:
                self._send_status(pending)
            self._last_state[printer_id] = view["state"]
            self._send_status(view)
            return
        self._pending_status[printer_id] = view
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.status_interval_s, self._flush_status)

    def _flush_status(self) -> None:
        self._flush_handle = None
        pending, self._pending_status = self._pending_status, {}
        for status in pending.values():
            self._send_status(status)

    def _send_status(self, status: dict[str, Any]) -> None:
        text = _notification("printer.status", status)
        sent = 0
        for client in self.clients:
            if client.printers:
                client.offer(text)
                sent += 1
        metrics.WEBSOCKET_EVENTS.labels("printer.status").inc(sent)

    def revoke(self, key_id: str) -> int:
        """A revoked key loses its open sockets too (closed 1008), or a leaked key stays live."""
        closed = 0
        for client in list(self.clients):
            if client.principal.key_id == key_id and not client.revoked:
                client.revoked = True
                # Not awaited: the caller may be this very socket, whose reader is busy here.
                task = asyncio.create_task(
                    client.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"API key revoked")
                )
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                closed += 1
        return closed

    async def close_all(self) -> None:
        """Shutdown: every client is told the server is going away."""
        clients = list(self.clients)
        await asyncio.gather(
            *(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for c in clients),
            return_exceptions=True,
        )
