"""Job events across orchestrators sharing PostgreSQL (issue 16), with LISTEN/NOTIFY.

Every instance relays the job events published on its own bus to the channel
`printforge_events`, and publishes on its bus the events other instances relayed: a websocket
client on any instance sees every job's events, whichever instance runs the job. Events are
packed into as few notifications as fit PostgreSQL's 8,000-byte payload. Printer status events
are not relayed: each instance reports the printers it drives (docs/server.md).

The same channel carries requests for the instance that runs a job: `job.cancel` asked of
any instance reaches the one holding the job's lease (`request_cancel`).

A relay that loses its connection reconnects with backoff; events published meanwhile on other
instances are not replayed (the store still holds every job's state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter

from printforge.models.event import Event, JobEvent
from printforge.orchestrator.bus import EventBus

__all__ = ["CHANNEL", "PgEventRelay"]

log = logging.getLogger(__name__)

CHANNEL = "printforge_events"
_PAYLOAD_MAX = 7_500  # bytes; PostgreSQL refuses a payload of 8,000 or more
_EVENTS: TypeAdapter[list[JobEvent]] = TypeAdapter(list[JobEvent])


class PgEventRelay:
    """Relays this instance's job events to the others, and theirs to this instance's bus."""

    def __init__(self, url: str, bus: EventBus, instance: str) -> None:
        self.url = url
        self.bus = bus
        self.instance = instance
        self.sent = 0
        self.received = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Events this relay published itself (from other instances): not sent back. Kept by
        # identity until the relay's own subscription has seen them.
        self._incoming: dict[int, Event] = {}
        self._listening = asyncio.Event()
        # Runs a request meant for this instance (the orchestrator's cancel).
        self.on_cancel: Callable[[str], Awaitable[Any]] | None = None

    async def start(self) -> None:
        if self._tasks:
            return
        sub = self.bus.subscribe(maxsize=10_000)
        for coro, name in ((self._send_loop(sub), "pg-events-send"),
                           (self._listen_loop(), "pg-events-listen")):  # fmt: skip
            task = asyncio.create_task(coro, name=name)
            self._tasks.add(task)
        # Listening before the first job starts, so no event of a job run elsewhere is missed.
        async with asyncio.timeout(15):
            await self._listening.wait()

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def request_cancel(self, job_id: str, owner: str) -> None:
        """Ask the instance `owner` to cancel a job it runs."""
        message = json.dumps({"from": self.instance, "cancel": job_id, "to": owner})
        conn = await self._connect()
        try:
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))
        finally:
            await conn.close()

    def _on_cancel(self, job_id: str) -> None:
        if self.on_cancel is None:
            return

        async def run() -> None:
            try:
                await self.on_cancel(job_id)  # type: ignore[misc]
            except Exception as err:
                log.warning("job %s: cancel asked by another instance failed: %s", job_id, err)

        task = asyncio.create_task(run(), name=f"remote-cancel-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=10)

    # outgoing -------------------------------------------------------------------------------------
    def _payloads(self, events: list[JobEvent]) -> list[str]:
        out: list[str] = []
        batch: list[str] = []
        size = 0
        for event in events:
            text = event.model_dump_json()
            if len(text.encode()) > _PAYLOAD_MAX - 100:
                log.warning("job %s: an event too large to relay (%s) was not relayed",
                            event.job_id, event.kind)  # fmt: skip
                continue
            if batch and size + len(text) + 1 > _PAYLOAD_MAX - 100:
                out.append(self._wrap(batch))
                batch, size = [], 0
            batch.append(text)
            size += len(text) + 1
        if batch:
            out.append(self._wrap(batch))
        return out

    def _wrap(self, batch: list[str]) -> str:
        return f'{{"from":{json.dumps(self.instance)},"events":[{",".join(batch)}]}}'

    async def _send_loop(self, sub: Any) -> None:
        conn = None
        try:
            while True:
                event = await sub.get()
                if event is None:
                    return
                events = [event, *sub.waiting()]  # all that is waiting, in one round trip
                mine = [
                    e for e in events
                    if isinstance(e, JobEvent) and self._incoming.pop(id(e), None) is None
                ]  # fmt: skip
                if not mine:
                    continue
                for payload in self._payloads(mine):
                    try:
                        if conn is None:
                            conn = await self._connect()
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                        self.sent += 1
                    except Exception as err:
                        log.warning("job events not relayed to other instances: %s", err)
                        if conn is not None:
                            with contextlib.suppress(Exception):
                                await conn.close()
                        conn = None
        finally:
            sub.close()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    # incoming -------------------------------------------------------------------------------------
    async def _listen_loop(self) -> None:
        delay = 0.5
        while True:
            conn = None
            try:
                conn = await self._connect()
                await conn.execute(f"LISTEN {CHANNEL}")
                self._listening.set()
                delay = 0.5
                async for note in conn.notifies():
                    self._on_payload(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("listening for other instances' events failed (%s); retrying in"
                            " %.1f s", err, delay)  # fmt: skip
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _on_payload(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("from") == self.instance:
                return  # our own, back from the channel
            if "cancel" in message:
                if message.get("to") == self.instance:
                    self._on_cancel(str(message["cancel"]))
                return
            events = _EVENTS.validate_python(message.get("events", []))
        except (ValueError, TypeError) as err:
            log.warning("an event from another instance could not be read: %s", err)
            return
        if len(self._incoming) > 50_000:
            # Our subscription dropped some (a burst past its queue): forget, never leak.
            self._incoming.clear()
        for event in events:
            self._incoming[id(event)] = event
            self.received += 1
            self.bus.publish(event)
