"""What the MQTT printer drivers (Moonraker, Bambu) share, apart from their protocols.

Both own background tasks behind one bus client, both number their requests and match the
printer's replies by that number and by what they answer, both keep a status tree fed by reports
and wake waiters
through `_changed`, and both run a print the same way once it is started on the printer: follow
the reports until it ends, let it survive a short absence of the printer, and cancel it on the
printer when the stream is cancelled. Subclasses keep only the protocol: how to connect, how to
start a print, and what a report says about it.

Replies travel on topics every client of the printer shares (Moonraker answers all its MQTT
clients on one `{instance}/moonraker/api/response`; a Bambu printer echoes every client's
command on `device/{serial}/report`), and other clients number their requests too (1, 2, 3…,
"0", "10000000"). So request ids carry a random part per driver instance, and a reply is taken
only when it also fits the request (`_ask`'s `fits`): an id that matches but answers something
else is another client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from printforge.hardware.base import DriverConfig, PrinterDriver
from printforge.hardware.eta import LiveEta
from printforge.hardware.mqtt.client import BusClient
from printforge.models.printer import MaterialProfile, PrinterProfile, PrinterState, PrintProgress
from printforge.runtime.errors import OperationTimeout, PrinterDisconnected, PrinterError

__all__ = ["MqttDriverConfig", "MqttPrinterDriver", "RemotePrint"]

log = logging.getLogger(__name__)


class MqttDriverConfig(DriverConfig):
    """Keys every MQTT printer has."""

    request_timeout_s: float = Field(10.0, gt=0)
    offline_grace_s: float = Field(
        20.0, ge=0, description="a print survives the printer being away this long"
    )


@dataclass
class RemotePrint:
    """A print started on the printer, as `MqttPrinterDriver.stream` follows it."""

    job_id: str
    file: str  # the name the printer's reports carry for it
    lost: str  # why the stream fails once the printer stays away past the grace
    never_started: str  # why it fails when the printer never shows the file printing
    also: tuple[str, ...] = ()  # other names a report may carry for it (a Bambu subtask)
    size: int = 0
    started: float = field(default_factory=time.monotonic)
    eta: LiveEta | None = None  # the file's time plan, when the file is G-code we can read


class MqttPrinterDriver(PrinterDriver):
    """Owned tasks, stop, offline marking, numbered requests and following a started print."""

    # From the start command until the printer reports our file under way.
    start_timeout_s: ClassVar[float]

    def __init__(
        self,
        name: str,
        config: MqttDriverConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        super().__init__(name, config, profile, material)
        self.cfg: MqttDriverConfig = config
        self._client: BusClient | None = None
        # Set on every report; the print loop waits on it instead of polling the tree.
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        # A per-instance random prefix: ids from another client (or another driver for the same
        # printer, or this one before a restart) cannot collide with ours.
        self._id_prefix = self._new_id_prefix()
        # Keyed by the id as the printer echoes it back, a string in every protocol's frames;
        # each with the test a reply must pass to be the answer to that request.
        self._replies: dict[str, tuple[asyncio.Future[Any], Callable[[Any], bool]]] = {}

    # lifecycle -----------------------------------------------------------------------------------
    async def stop(self) -> None:
        # Take the client first: tasks that wake up while being cancelled see "not started".
        client, self._client = self._client, None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if client is not None:
            await client.stop()
        self.connected.clear()
        self._set_status(state=PrinterState.OFFLINE)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _mark_offline(self, why: str) -> None:
        if self._status.state is not PrinterState.OFFLINE:
            log.warning("%s %s offline: %s", self.kind, self.name, why)
        self.connected.clear()
        self._set_status(state=PrinterState.OFFLINE, message=why)
        self._changed.set()

    def _reachable(self) -> bool:
        """Whether reports can arrive now; a print waits out `offline_grace_s` when not."""
        return self.connected.is_set()

    # requests ------------------------------------------------------------------------------------
    @staticmethod
    def _new_id_prefix() -> str:
        """The random part of this instance's request ids (protocols override its form)."""
        return f"pf-{uuid.uuid4().hex[:12]}-"

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"

    async def _ask(
        self,
        topic: str,
        frame: Callable[[str], bytes],
        timeout_message: str,
        fits: Callable[[Any], bool] = lambda _reply: True,
    ) -> Any:
        """Publish the request `frame(id)` builds and wait for the reply `_answer` gets for it.

        Only a reply with our id that `fits` the request is taken. Raises OperationTimeout
        with `timeout_message` after `request_timeout_s`.
        """
        if self._client is None:
            raise PrinterDisconnected(f"printer {self.name} is not started")
        key = self._next_id()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[key] = (fut, fits)
        try:
            async with asyncio.timeout(self.cfg.request_timeout_s):
                await self._client.publish(topic, frame(key), qos=1)
                return await fut
        except TimeoutError:
            raise OperationTimeout(timeout_message) from None
        finally:
            self._replies.pop(key, None)

    def _answer(self, request_id: str, reply: Any) -> bool:
        """Hand a reply to the request waiting for it; True when it was ours.

        Late or unknown replies are dropped, and so is one with our id that does not fit
        the request: it answers another client's request that happened to use the same id.
        """
        pending = self._replies.get(request_id)
        if pending is None:
            return False
        fut, fits = pending
        if fut.done():
            return False
        if not fits(reply):
            log.warning(
                "%s %s: a reply with our id %s does not answer our request; ignored",
                self.kind,
                self.name,
                request_id,
            )
            return False
        fut.set_result(reply)
        return True

    # protocol ------------------------------------------------------------------------------------
    @abstractmethod
    async def _start_print(self, path: Path, job_id: str) -> RemotePrint:
        """Check the printer is ready, hand it the file and start it."""

    @abstractmethod
    def _print_seen(self, job: RemotePrint) -> bool | None:
        """Whether the latest report shows `job` under way; None while there is no report."""

    @abstractmethod
    def _print_progress(self, job: RemotePrint) -> tuple[PrintProgress | None, bool]:
        """Progress of `job` and whether it finished; raises when the printer ended it otherwise.

        Asked only once `_print_seen` said yes: before that, the state belongs to whatever the
        printer did before our print.
        """

    def _progressed(self, progress: PrintProgress, last: PrintProgress | None) -> bool:
        """Whether `progress` is worth yielding after `last`."""
        return progress != last

    # printing ------------------------------------------------------------------------------------
    async def stream(
        self, path: Path, *, job_id: str | None = None
    ) -> AsyncIterator[PrintProgress]:
        job = await self._start_print(path, job_id or uuid.uuid4().hex)
        if job.eta is not None:
            job.eta.start()
        self._set_status(job_id=job.job_id)
        ours = False
        last: PrintProgress | None = None
        offline_since: float | None = None
        try:
            while True:
                self._changed.clear()
                if not self._reachable():
                    offline_since = offline_since or time.monotonic()
                    if time.monotonic() - offline_since > self.cfg.offline_grace_s:
                        raise PrinterDisconnected(job.lost)
                elif (seen := self._print_seen(job)) is not None:
                    offline_since = None
                    ours = ours or seen
                    if ours:
                        progress, finished = self._print_progress(job)
                        if finished:
                            if progress is not None and progress != last:
                                yield progress
                            return
                        if progress is not None and self._progressed(progress, last):
                            last = progress
                            yield progress
                    elif time.monotonic() - job.started > self.start_timeout_s:
                        raise PrinterError(job.never_started)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._changed.wait()
        except asyncio.CancelledError:
            # The safe stop: shielded so that the cancel reaching us does not cancel it too.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._spawn(self.cancel()))
            raise
        finally:
            if job.eta is not None:
                await job.eta.close()
            self._set_status(job_id=None)
