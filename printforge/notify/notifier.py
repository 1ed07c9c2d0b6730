"""Send farm events to every configured target, with retries, and keep what finally failed.

Each delivery retries on its own task with the runtime's backoff (`runtime.retry`), decided by
error type; one slow receiver never holds up another or the event bus. A delivery that runs
out of attempts (or meets a permanent refusal) goes to the dead-letter list, kept in the data
directory across restarts, from which `notify.resend` sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printforge.models.event import Event
from printforge.notify.config import NotifySettings
from printforge.notify.events import EventTranslator, NotifyEvent
from printforge.notify.senders import AppriseSender, Sender, WebhookSender
from printforge.runtime.errors import InputError, PrintforgeError
from printforge.runtime.retry import backoff_delay, is_transient, retry_after_of

__all__ = ["DEAD_LETTER_FILE", "Notifier"]

log = logging.getLogger(__name__)

DEAD_LETTER_FILE = "notify-failed.json"


class Notifier:
    def __init__(
        self,
        settings: NotifySettings,
        data_dir: Path,
        bus: Any = None,
        senders: list[Sender] | None = None,
    ) -> None:
        self.settings = settings
        self.policy = settings.policy()
        self._path = data_dir / DEAD_LETTER_FILE
        self._bus = bus
        self._given = senders
        self.senders: list[Sender] = []
        self._translator = EventTranslator()
        self._sub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._dead: list[dict[str, Any]] = []
        self.delivered = 0
        self._started = False

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._given is not None:
            self.senders = list(self._given)
        else:
            self.senders = [WebhookSender(t, i) for i, t in enumerate(self.settings.webhooks)]
            self.senders += [
                AppriseSender(u.get_secret_value(), i) for i, u in enumerate(self.settings.apprise)
            ]
        self._dead = await asyncio.to_thread(self._load)
        if self._bus is not None:
            # Generous: a burst of printer statuses must not push a job's completion out.
            self._sub = self._bus.subscribe(maxsize=10_000)
            self._reader = asyncio.create_task(self._read(), name="notify-reader")

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._sub is not None:
            # Closing lets the reader finish the events already queued (a one-shot `run`
            # stops right after its job completed), then end.
            self._sub.close()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.timeout_s):
                    await asyncio.shield(self._reader)
        # A grace for deliveries under way, then what is left is kept for a resend.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=min(self.policy.timeout_s, 10.0))
        tasks = [t for t in (self._reader, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sender in self.senders:
            try:
                await sender.close()
            except Exception as err:  # collect-and-go-on: the others still close
                log.warning("closing %s failed: %s", sender.name, err)
        await asyncio.to_thread(self._save)

    # events in -------------------------------------------------------------------------------
    async def _read(self) -> None:
        async for event in self._sub:
            self.handle(event)

    def handle(self, event: Event) -> None:
        for note in self._translator.translate(event):
            self.publish(note)

    def publish(self, event: NotifyEvent) -> None:
        """Send one notification to every target that wants its kind (e.g. `spool.low`)."""
        body = event.model_dump_json().encode()
        for sender in self.senders:
            if sender.wants(event):
                task = asyncio.create_task(
                    self._deliver(sender, event, body), name=f"notify-{event.event}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # delivery --------------------------------------------------------------------------------
    async def _deliver(self, sender: Sender, event: NotifyEvent, body: bytes) -> None:
        attempts = 0
        try:
            error = await self._attempts(sender, event, body, self.policy.max_attempts)
        except asyncio.CancelledError:
            # Stopping: what was not delivered is kept for a resend, not forgotten.
            self._bury(sender, event, attempts, "not delivered before printforge stopped")
            raise
        if error is None:
            return
        attempts, message = error
        log.warning("notification %s to %s failed after %d attempt(s): %s",
                    event.event, sender.name, attempts, message)  # fmt: skip
        self._bury(sender, event, attempts, message)
        await asyncio.to_thread(self._save)

    async def _attempts(
        self, sender: Sender, event: NotifyEvent, body: bytes, max_attempts: int
    ) -> tuple[int, str] | None:
        """Try up to `max_attempts` times; None when delivered, else (attempts, last error)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(self.policy.timeout_s):
                    await sender.send(event, body)
            except TimeoutError:
                err: BaseException = TimeoutError(f"no answer within {self.policy.timeout_s:g} s")
            except PrintforgeError as caught:
                err = caught
            else:
                self.delivered += 1
                return None
            message = err.message if isinstance(err, PrintforgeError) else str(err)
            if attempt >= max_attempts or not is_transient(err):
                return attempt, message
            delay = backoff_delay(attempt, self.policy, retry_after=retry_after_of(err))
            log.debug("notification %s to %s: %s; again in %.1f s",
                      event.event, sender.name, message, delay)  # fmt: skip
            await asyncio.sleep(delay)

    # dead letters ----------------------------------------------------------------------------
    def _bury(self, sender: Sender, event: NotifyEvent, attempts: int, error: str) -> None:
        self._dead.append(
            {
                "id": uuid.uuid4().hex[:12],
                "target": sender.name,
                "event": event.model_dump(mode="json"),
                "attempts": attempts,
                "error": error,
                "failed_at": datetime.now(UTC).isoformat(),
            }
        )
        del self._dead[: max(0, len(self._dead) - self.settings.dead_letter_max)]

    def failed(self) -> list[dict[str, Any]]:
        """The dead-letter list, oldest first (targets shown without their secrets)."""
        return [dict(d) for d in self._dead]

    async def resend(self, dead_id: str) -> dict[str, Any]:
        """Send one dead letter again, with the same retries; gone from the list if delivered."""
        entry = next((d for d in self._dead if d["id"] == dead_id), None)
        if entry is None:
            raise InputError(f"no failed notification with id {dead_id!r}", code="not_found")
        sender = next((s for s in self.senders if s.name == entry["target"]), None)
        if sender is None:
            raise InputError(f"{entry['target']} is no longer configured in [notify]")
        event = NotifyEvent.model_validate(entry["event"])
        error = await self._attempts(
            sender, event, event.model_dump_json().encode(), self.policy.max_attempts
        )
        if error is None:
            self._dead = [d for d in self._dead if d["id"] != dead_id]
            result = {"id": dead_id, "delivered": True}
        else:
            entry["attempts"] += error[0]
            entry["error"] = error[1]
            result = {"id": dead_id, "delivered": False, "error": error[1]}
        await asyncio.to_thread(self._save)
        return result

    def _load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            log.warning("cannot read %s (%s): starting with no failed notifications",
                        self._path, err)  # fmt: skip
            return []
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def _save(self) -> None:
        if not self._dead and not self._path.exists():
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._dead))
            os.replace(tmp, self._path)
        except OSError as err:
            log.warning("cannot keep failed notifications in %s: %s", self._path, err)
