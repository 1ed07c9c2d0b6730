"""The orchestrator: job store, event bus, printers, scheduler and pipeline behind one facade.

The CLI's `run`, the server and the farm bus all use this class. It owns every task it starts;
`stop()` cancels and awaits them, and a job cut off by a shutdown is recorded as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import importlib
import json
import logging
import shutil
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from printforge.agents.base import Agent, load_agent
from printforge.models.event import JobEvent, PrinterStatusEvent
from printforge.models.job import SPANS, TERMINAL, Job, JobState, Span, StageName
from printforge.models.printer import PrinterStatus
from printforge.models.request import PrintRequest
from printforge.orchestrator.adoption import can_follow, follow_print
from printforge.orchestrator.bus import EventBus
from printforge.orchestrator.leases import LeaseKeeper, LeaseLost
from printforge.orchestrator.pipeline import Pipeline
from printforge.orchestrator.printers import PrinterManager
from printforge.orchestrator.queue import QueueControl
from printforge.orchestrator.scheduler import FarmScheduler
from printforge.orchestrator.spools import SpoolTracker
from printforge.orchestrator.store import job_store
from printforge.runtime import workers
from printforge.runtime.errors import InputError, InvalidTransition, PrintforgeError
from printforge.runtime.health import HealthRegistry, HealthState
from printforge.runtime.lock import DataDirLock
from printforge.runtime.logsetup import bind_log_context
from printforge.runtime.paths import PRIVATE_DIR_MODE, private_dir
from printforge.settings import Settings

__all__ = ["Orchestrator"]

log = logging.getLogger(__name__)


# What the stages import on first use: imported at start, in a thread, so that the first job
# does not stall the loop the printers stream on (hundreds of ms on a loaded machine).
_PRELOAD = (
    "printforge.agents.cad",
    "printforge.agents.printer",
    "printforge.agents.research",
    "printforge.agents.slicer",
    "printforge.gcode.analysis",
    "printforge.gcode.gate",
    "printforge.geometry",
    "printforge.geometry.bounds",
    "printforge.geometry.font",
    "printforge.geometry.verify",
    "printforge.llm.offline",
    "printforge.llm.offline.extras",
    "printforge.llm.offline.reader",
    "printforge.slicing.builtin",
    "printforge.slicing.engine",
    "printforge.slicing.preview",
)


def _preload() -> None:
    for name in _PRELOAD:
        importlib.import_module(name)


def _build_agent(name: str, settings: Settings, orch: Orchestrator) -> Agent[Any, Any]:
    cls = load_agent(name)
    if name == "printer":
        return cls(settings, orch.printers, orch.scheduler.heat_gate)  # type: ignore[call-arg]
    if name == "research":
        return cls(settings, health=orch.health)  # type: ignore[call-arg]
    return cls(settings)  # type: ignore[call-arg]


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        *,
        agents: dict[str, Agent[Any, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self._workers: workers.WorkerPool | None = None
        self.health = HealthRegistry()
        self.bus = EventBus()
        self.store = job_store(settings)
        # With leases (issue 16) orchestrators share the data directory and the store.
        self.leases: LeaseKeeper | None = (
            LeaseKeeper(self, settings.data_dir, settings.store.lease_s)
            if settings.store_leases
            else None
        )
        self.lock = DataDirLock(settings.data_dir, shared=self.leases is not None)
        self.relay: Any = None  # pgevents.PgEventRelay: job events across instances
        self._checkpoints: dict[str, int | None] = {}  # job id -> last acked line saved
        self.printers = PrinterManager(settings, self.health)
        self.scheduler = FarmScheduler(settings, self.printers)
        self.scheduler.on_bed_wait = self._on_bed_wait
        self.spools = SpoolTracker(settings, self.store, self.printers)
        self.scheduler.spool_of = self.spools.loaded
        self.scheduler.spools_loaded = self.spools.any_loaded
        self.scheduler.on_spool_wait = self._on_spool_wait
        self.queue = QueueControl(self)
        self._agent_overrides = agents or {}
        self.agents: dict[str, Agent[Any, Any]] = {}
        self.pipeline: Pipeline | None = None
        self._jobs: dict[str, asyncio.Task[Job]] = {}
        self._live: dict[str, Job] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        # Queued jobs in dispatch order: (-priority, rank, id) (Job.queue_key). The store is the
        # truth; this heap spares the dispatcher a full read of the queue on every wake. A job
        # moved or re-prioritised is pushed again; its old entry no longer matches and is skipped.
        self._pending: list[tuple[int, float, str]] = []
        # Queued jobs whose `not_before` has not come: (when, heap entry), earliest first.
        self._later: list[tuple[float, tuple[int, float, str]]] = []
        # Each job's newest key in the heap: a job seen again (the lease sweep reads the whole
        # queue) is pushed only if its key changed.
        self._pending_keys: dict[str, tuple[int, float]] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._discovery: Any = None
        self.notifier: Any = None  # notify.notifier.Notifier, when [notify] has targets
        self._unsubscribe_printers: Any = None
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def describe(self, **info: Any) -> None:
        """Tell other commands on this data directory about this orchestrator (a server's URL):
        in the lock file when it holds it alone, in its instance mark when it shares it."""
        self.lock.describe(**info)
        if self.leases is not None:
            self.leases.mark.describe(**info)

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        # Before anything touches the store: recovery must never run under a live owner.
        self.lock.acquire()
        self._started = True
        try:
            await self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop()
            raise

    async def _start(self) -> None:
        private_dir(self.settings.jobs_dir)
        await asyncio.to_thread(_preload)
        if self.settings.runtime.workers > 0 and workers.installed() is None:
            # CAD builds and slicing leave the loop the printers stream on (runtime/workers.py).
            self._workers = workers.WorkerPool(self.settings.runtime.workers)
            workers.install(self._workers)
        await self.store.open()
        if self.leases is None:
            recovered = await self.store.recover()
            if recovered:
                log.warning("recovered %d job(s) cut off by a previous stop", len(recovered))
        if self.settings.notify.enabled:
            from printforge.notify.notifier import Notifier

            # Before the printers: a printer that faults as it starts is told too.
            self.notifier = Notifier(self.settings.notify, self.settings.data_dir, self.bus)
            await self.notifier.start()
        self._unsubscribe_printers = self.printers.add_listener(self._on_printer_status)
        await self.printers.start()
        # After the printers: what a person loaded on them (or a spool) is applied as they come.
        await self.spools.start()
        if self.notifier is not None:
            self.spools.notify = self.notifier.publish
        if self.settings.bus.broker:
            from printforge.hardware.mqtt.discovery import BusDiscovery

            self._discovery = BusDiscovery(self.settings, self.printers)
            await self._discovery.start()
        await self.scheduler.start()
        for name in ("research", "cad", "slicer", "printer"):
            agent = self._agent_overrides.get(name) or _build_agent(name, self.settings, self)
            await agent.start()
            self.agents[name] = agent
        self.pipeline = Pipeline(
            self.settings, self.store, self.bus, self.health, self.agents, self.printers
        )
        if self.leases is not None:
            # Only jobs whose instance is gone are recovered, not those others are running.
            self.pipeline.on_stage = self.leases.hold
            await self.leases.start()
            if self.store.dialect == "postgresql":
                from printforge.orchestrator.pgevents import PgEventRelay

                self.relay = PgEventRelay(self.store.url, self.bus, self.leases.instance)
                self.relay.on_cancel = self.cancel
                await self.relay.start()
        for job in await self.store.queued():
            self._enqueue(job)
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="job-dispatcher")
        self._wake.set()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            await self._stop()
        finally:
            self.lock.release()

    async def _stop(self) -> None:
        errors: list[str] = []
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        tasks = list(self._jobs.values())
        for task in tasks:
            task.cancel()
        if tasks:
            # Each job records itself as interrupted (or re-queued) while it unwinds; a print
            # first stops the printer safely (heaters off, nozzle up), which the drivers bound
            # by their own timeout. The printers must not be closed under that.
            grace = self.settings.orchestrator.shutdown_grace_s
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            if pending:
                names = ", ".join(t.get_name() for t in pending)
                errors.append(f"{names} did not stop within {grace:g} s")
        if self.relay is not None:
            await self.relay.stop()
        if self.leases is not None:
            await self.leases.stop()
        await self.scheduler.stop()
        for agent in reversed(list(self.agents.values())):
            try:
                await agent.stop()
            except Exception as err:
                errors.append(f"agent {agent.name}: {err}")
        if self._discovery is not None:
            try:
                await self._discovery.stop()
            except Exception as err:
                errors.append(f"bus discovery: {err}")
        try:
            await self.spools.stop()
        except Exception as err:
            errors.append(f"spools: {err}")
        await self.printers.stop()
        if self.pipeline is not None:
            try:
                await self.pipeline.close()
            except Exception as err:
                errors.append(f"detector: {err}")
        if self._unsubscribe_printers:
            self._unsubscribe_printers()
        await self.store.close()
        if self.notifier is not None:
            try:
                await self.notifier.stop()
            except Exception as err:
                errors.append(f"notifications: {err}")
        self.bus.close()
        if self._workers is not None:
            if workers.installed() is self._workers:
                workers.install(None)
            self._workers.close()
            self._workers = None
        if errors:
            log.warning("orchestrator stopped with errors: %s", "; ".join(errors))

    # jobs ------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.settings.jobs_dir / job_id

    async def submit(
        self, request: PrintRequest, submitted_by: str | None = None, *, retry_of: str | None = None
    ) -> Job:
        """Persist a new job as queued (and its copies) and let the dispatcher pick it up.

        Args:
            submitted_by: the API key id of the caller, recorded with each copy.
            retry_of: the ended job this one retries (job.retry).
        """
        self._require_started()
        if request.printer is not None:
            self.printers.get(request.printer)
        if request.print_:
            self._refuse_if_no_printer_can_start(request.printer)
            self.scheduler.check_constraints(
                request, [request.printer] if request.printer else None
            )
        if request.material is not None:
            self.settings.material(request.material)
        first = await self._insert(
            Job(request=request.model_copy(update={"copies": 1}), retry_of=retry_of),
            submitted_by=submitted_by,
        )
        if request.copies > 1:
            ids = [first.id]
            for n in range(2, request.copies + 1):
                copy = await self._insert(
                    Job(
                        request=request.model_copy(update={"copies": 1}),
                        copy_of=first.id,
                        copy_number=n,
                    ),
                    submitted_by=submitted_by,
                )
                ids.append(copy.id)
            first.copies = ids
            await self.store.save(first)
        return first

    def never_started(self) -> dict[str, str]:
        """Printers whose driver has not started yet, with why (they are retried in the
        background, so a server waits for them; a command-line job is refused instead)."""
        down = {}
        for name in self.printers.names():
            record = self.health.get(name, "printer")
            if record.last_success_at is None and record.failures:
                down[name] = record.last_error or "did not start"
        return down

    def _refuse_if_no_printer_can_start(self, printer: str | None) -> None:
        if self.settings.orchestrator.wait_for_offline_printers:
            return
        down = self.never_started()
        names = [printer] if printer is not None else self.printers.names()
        if not names or any(n not in down for n in names):
            return
        reasons = "; ".join(f"{n}: {down[n]}" for n in names)
        raise InputError(
            f"no printer to print on ({reasons}); connect it and run again, or slice without"
            " printing (--no-print)",
            code="printer_unavailable",
        )

    async def _insert(self, job: Job, submitted_by: str | None = None) -> Job:
        request = job.request
        folder = self.job_dir(job.id)
        folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        (folder / "request.json").write_text(
            json.dumps(request.model_dump(mode="json", by_alias=True), indent=2)
        )
        await self.store.insert(job, submitted_by)
        assert self.pipeline is not None
        self.pipeline._emit(job, "state", message="queued")
        self._enqueue(job)
        return job

    def _enqueue(self, job: Job, *, seen: bool = False) -> None:
        """Put a queued job in the dispatch heap.

        Args:
            seen: found by the lease sweep's read of the queue: pushed only if it is not
                already waiting under the same key (an explicit call always pushes).
        """
        if job.held:
            return  # released later, and enqueued then
        key = job.queue_key
        if seen and self._pending_keys.get(job.id) == key:
            return  # already waiting under this key
        self._pending_keys[job.id] = key
        heapq.heappush(self._pending, (*key, job.id))
        self._wake.set()

    async def adopt(self, job: Job, stage: str | None) -> None:
        """A job whose instance died, now leased to this one (LeaseKeeper.sweep): a print on
        a bus printer is followed to its end (adoption.py); anything else is settled as a
        restart settles it (interrupted; queued again unless it was printing)."""
        assert self.leases is not None and self.pipeline is not None
        was = job.state.value
        log.warning("job %s: its instance stopped while it was %s (%s); taken over", job.id,
                    was, stage or "no stage")  # fmt: skip
        if can_follow(self, job):
            self._launch(job, follow_print(self, job))
            return
        message = f"its instance stopped while the job was {was}"
        if job.state is JobState.PRINTING and job.last_acked_line is not None:
            message += f" (last acknowledged line {job.last_acked_line})"
        await self.store.interrupt(job, message, reason="takeover")  # fmt: skip
        self.pipeline._emit(job, "state", message="taken over from a stopped instance")
        await self.leases.release(job.id)
        if job.state is JobState.QUEUED:
            self._enqueue(job)
        else:
            self._finished(job)

    async def get(self, job_id: str) -> Job:
        job = await self.store.get(job_id)
        if job is None:
            raise InputError(f"no job with id {job_id!r}", code="not_found")
        return job

    async def list_jobs(self, state: JobState | None = None, limit: int = 100) -> list[Job]:
        return await self.store.list(state, limit)

    async def cancel(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.state in TERMINAL:
            return job
        task = self._jobs.get(job_id)
        if task is None and self.leases is not None:
            # Claimed elsewhere (running, or queued there waiting for a printer).
            owner, left = await self.store.lease_of(job_id)
            if owner == self.leases.instance:
                # Ours with no task running (a job parked on a question): cancelled here.
                owner = None
            if owner is not None and left is not None and left > 0 and self.relay is not None:
                # The instance that runs it is asked (LISTEN/NOTIFY); its end is read here.
                await self.relay.request_cancel(job_id, owner)
                return await self.wait(job_id, timeout=self.settings.orchestrator.shutdown_grace_s)
            if owner is not None and left is not None and left > 0:
                # Right, or say so: its task runs in another process.
                raise InputError(
                    f"job {job_id} is {job.state.value} on another instance ({owner}); cancel"
                    " it there"
                )
        if task is not None and not task.done():
            live = self._live.get(job_id)
            if live is not None:
                live.cancel_reason = "user"
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
            job = await self.get(job_id)
            if job.state in TERMINAL:
                return job
            # The task had finished its work (a job parked on a question, releasing its
            # lease) when the cancel reached it: the job is cancelled here instead.
        assert self.pipeline is not None
        await self.pipeline.move(job, JobState.CANCELLED, reason="cancelled by user")
        self._finished(job)
        return job

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Until the job is completed, failed, cancelled, or interrupted for good."""
        job = await self.get(job_id)
        if self._settled(job):
            return job
        event = self._done.setdefault(job_id, asyncio.Event())
        async with asyncio.timeout(timeout):
            if self.leases is None:
                await event.wait()
            else:
                # Another instance may run it: its end is read from the store as well.
                while not event.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await event.wait()
                    job = await self.get(job_id)
                    if self._settled(job) and (
                        job.state is not JobState.INTERRUPTED
                        or (await self.store.lease_of(job_id))[0] is None
                    ):
                        break
        return await self.get(job_id)

    def _settled(self, job: Job) -> bool:
        # A job waiting for an answer is settled too: nothing runs until someone answers.
        return job.state in TERMINAL or (
            job.state in (JobState.INTERRUPTED, JobState.NEEDS_INPUT) and job.id not in self._jobs
        )

    async def answer(self, job_id: str, text: str) -> Job:
        """Continue a job that asked a question: the answer is added to the request, which is
        read again from the start (research, then the rest)."""
        self._require_started()
        job = await self.get(job_id)
        if job.state is not JobState.NEEDS_INPUT:
            raise InvalidTransition(f"job {job_id} is {job.state.value}, not waiting for an answer")
        answer = text.strip()
        if not answer:
            raise InputError("the answer is empty")
        asked = job.report.pop("question", None)
        answers = list(job.report.get("answers", []))
        answers.append({"question": asked, "answer": answer})
        job.report["answers"] = answers
        prompt = f"{(job.request.text or '').rstrip(' .')}. {answer}"
        job.request = job.request.model_copy(update={"text": prompt})
        (self.job_dir(job.id) / "request.json").write_text(
            json.dumps(job.request.model_dump(mode="json", by_alias=True), indent=2)
        )
        assert self.pipeline is not None
        await self.pipeline.move(job, JobState.QUEUED, reason="answered")
        self._enqueue(job)
        return job

    def _finished(self, job: Job) -> None:
        event = self._done.pop(job.id, None)
        if event is not None:
            event.set()

    # dispatch --------------------------------------------------------------------------------
    def _busy_preparing(self) -> int:
        """Jobs doing research, CAD or slicing now (not printing, not waiting for a printer)."""
        waiting = set(self.scheduler.waiting())
        return sum(
            1
            for j in self._live.values()
            if j.state is not JobState.PRINTING and j.id not in waiting
        )

    async def _dispatch_loop(self) -> None:
        limit = self.settings.orchestrator.max_active_jobs
        while True:
            # Woken by submissions and finished jobs; the timeout catches jobs that moved on to
            # wait for a printer and so freed a preparation slot. asyncio.timeout, not
            # wait_for: see PrinterManager.wait_changed.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._wake.wait()
            self._wake.clear()
            deferred: list[tuple[int, float, str]] = []
            now = time.time()
            while self._later and self._later[0][0] <= now:
                heapq.heappush(self._pending, heapq.heappop(self._later)[1])
            try:
                while self._pending and self._busy_preparing() < limit:
                    entry = heapq.heappop(self._pending)
                    job_id = entry[2]
                    if self._pending_keys.get(job_id) == entry[:2] and job_id not in self._jobs:
                        del self._pending_keys[job_id]
                    if job_id in self._jobs:
                        # Re-queued by its own task, which has not ended yet: next wake.
                        deferred.append(entry)
                        continue
                    job = await self.store.get(job_id)
                    if job is None or job.state is not JobState.QUEUED:
                        continue  # cancelled while it waited
                    if job.held or job.queue_key != entry[:2]:
                        continue  # held, or moved: its current entry is elsewhere in the heap
                    when = job.request.not_before
                    if when is not None and when.timestamp() > now:
                        # Not yet: kept aside, back in the queue when its time comes (the
                        # loop wakes at least every 0.5 s).
                        heapq.heappush(self._later, (when.timestamp(), entry))
                        # Still waiting under this key: the lease sweep need not push it again.
                        self._pending_keys[job_id] = entry[:2]
                        continue
                    if self.leases is not None and not await self.leases.claim(job_id):
                        continue  # another instance has it
                    self._launch(job)
            except Exception:
                log.exception("job dispatch failed")
            for entry in deferred:
                heapq.heappush(self._pending, entry)

    async def checkpoint(self) -> None:
        """Save what a print has reached (its last acknowledged line), for whoever takes it
        over if this instance dies (on each lease heartbeat)."""
        for job in list(self._live.values()):
            line = job.last_acked_line
            if job.state is JobState.PRINTING and line != self._checkpoints.get(job.id):
                await self.store.save(job)
                self._checkpoints[job.id] = line
        for job_id in set(self._checkpoints) - set(self._live):
            del self._checkpoints[job_id]

    def _launch(self, job: Job, work: Coroutine[Any, Any, Job] | None = None) -> None:
        self._live[job.id] = job
        task = asyncio.create_task(self._run_job(job, work), name=f"job-{job.id}")
        self._jobs[job.id] = task

        def done(t: asyncio.Task[Job]) -> None:
            self._jobs.pop(job.id, None)
            self._live.pop(job.id, None)
            self._wake.set()
            if not t.cancelled() and (err := t.exception()) is not None:
                # Never an unretrieved task traceback on the user's terminal; the store keeps
                # the job's last state and recovery settles it on the next start.
                log.error("job %s ended with an internal error: %r", job.id, err)

        task.add_done_callback(done)

    async def _run_job(self, job: Job, work: Coroutine[Any, Any, Job] | None = None) -> Job:
        bind_log_context(job_id=job.id)  # this task's own context: every line names the job
        try:
            result = await (work if work is not None else self._run_job_inner(job))
            if work is not None:
                self._finished(result)
            return result
        except asyncio.CancelledError:
            self._finished(job)
            raise
        except LeaseLost as err:
            # Another instance took the job over (this one stalled past its lease): it is
            # theirs now, and nothing more is recorded here.
            log.warning("%s; stopped working on it here", err)
            return job
        finally:
            if self.leases is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release_leases(job.id))

    async def _release_leases(self, job_id: str) -> None:
        assert self.leases is not None
        await self.store.release_printers_of(job_id, self.leases.instance)
        await self.leases.release(job_id)

    async def _run_job_inner(self, job: Job) -> Job:
        assert self.pipeline is not None
        try:
            if job.copy_of is not None:
                try:
                    await self._wait_for_original(job)
                except asyncio.CancelledError:
                    await self.pipeline.on_cancelled(job)
                    raise
            target = self.scheduler.target(job)
        except InputError as err:
            from printforge.models.job import JobError

            await self.pipeline.move(
                job, JobState.FAILED, error=JobError(code=err.code, message=err.message)
            )
            self._finished(job)
            return job
        # A copy prints its original's G-code: only the printer stage is left to it.
        span = SPANS["print"] if job.copy_of is not None else Span.of(job.request)
        result = await self.pipeline.run(
            job,
            span,
            target=target,
            choose_printer=self._choose_printer,
            release_printer=self._release_printer,
            design_profile=self.scheduler.design_profile(job, target),
            retarget=self.scheduler.retarget,
        )
        if result.state is JobState.INTERRUPTED and self._should_requeue(result):
            result.print_attempts += 1
            await self.pipeline.move(result, JobState.QUEUED, reason="re-queued after printer loss")
            self._enqueue(result)
        else:
            self._finished(result)
            await self._recover(result)
        return result

    async def _recover(self, job: Job) -> None:
        """After a failure the watch detected (issue 17): the recovery it decided, as a new job
        (a reprint waits for the bed to be confirmed clear like any print; a re-slice starts
        from the model with the slicer change)."""
        diagnosis = job.report.get("vision", {}).get("diagnosis") or {}
        recovery = diagnosis.get("recovery") or {}
        action = recovery.get("action")
        if job.state is not JobState.FAILED or action not in ("retry", "reslice"):
            return
        request = job.request.model_copy(update={"copies": 1})
        source = {"text": None, "model_path": None, "gcode_path": None}
        if action == "retry" and job.gcode is not None:
            request = request.model_copy(update={**source, "gcode_path": job.gcode.path})
        elif action == "reslice" and job.mesh is not None:
            change = recovery.get("change") or {}
            request = request.model_copy(
                update={
                    **source,
                    "model_path": job.mesh.path,
                    "slice": request.slice.model_copy(update=change),
                }
            )
        try:
            again = await self.submit(request, retry_of=job.id)
        except PrintforgeError as err:
            log.warning("job %s: the recovery (%s) was refused: %s", job.id, action, err)
            return
        assert self.pipeline is not None
        self.pipeline.emit_log(
            job, f"recovery: {recovery.get('reason')}; job {again.id}", {"recovery": again.id}
        )

    def _should_requeue(self, job: Job) -> bool:
        cfg = self.settings.orchestrator
        return cfg.requeue_interrupted and job.print_attempts < cfg.max_print_attempts

    async def _choose_printer(self, job: Job, target: str) -> str:
        """A free printer for the job, reserved; a shared (bus) printer also leased to this
        instance, so no other orchestrator starts a job on it meanwhile."""
        while True:
            name = await self.scheduler.acquire(job, target)
            if self.leases is None or not self.printers.shared(name):
                return name
            owner = self.leases.instance
            if await self.store.claim_printer(name, owner, self.leases.ttl_s, job.id):
                return name
            # Another instance drives it: give it back, and wait for another printer.
            self.printers.release(name, printed=False)
            self.printers.mark_foreign(name)

    def _release_printer(self, name: str, printed: bool) -> None:
        job_id = self.printers.reserved_by(name)
        job = self._live.get(job_id) if job_id is not None else None
        if job is not None:
            # Before the release wakes the scheduler: the next job is matched against the
            # grams left after this print, not before it. Not only when `printed`: a print
            # cancelled by the user unwinds without it, and is charged by its progress.
            grams = self.spools.charge(job, name)
            if grams:
                self.pipeline._emit(job, "log", StageName.PRINTER,  # type: ignore[union-attr]
                                    message=f"{grams:g} g of filament charged to the spool on"
                                    f" {name}", data={"spool_charged_g": grams})  # fmt: skip
        self.printers.release(name, printed=printed)

    async def _wait_for_original(self, job: Job) -> None:
        """A copy prints the original's G-code; it waits until that exists."""
        assert job.copy_of is not None
        original_id = job.copy_of
        # Subscribe before reading the store, so no event between the two is missed.
        sub = self.bus.subscribe(maxsize=100)
        try:
            while True:
                original = await self.get(original_id)
                if original.gcode is not None and original.gcode.verify():
                    dest = self.job_dir(job.id) / "model.gcode"
                    await asyncio.to_thread(shutil.copyfile, original.gcode.path, dest)
                    job.gcode = original.gcode.model_copy(update={"path": dest})
                    job.spec, job.mesh = original.spec, original.mesh
                    # Asked of the store: the copy goes only to printers of this profile.
                    job.sliced_for = original.sliced_for
                    return
                ended = original.state in TERMINAL or original.state is JobState.INTERRUPTED
                if ended and original.gcode is None:
                    raise InputError(
                        f"copy of job {original_id}, which ended {original.state.value}"
                        " before it had G-code"
                    )
                async for event in sub:
                    if (
                        isinstance(event, JobEvent)
                        and event.job_id == original_id
                        and (event.kind in ("state", "stage.completed"))
                    ):
                        break
        finally:
            sub.close()

    def _on_bed_wait(self, job_id: str, printers: list[str]) -> None:
        """A job waits for a person, not a printer: name the printers and the way out."""
        job = self._live.get(job_id)
        if job is None:
            return
        names = ", ".join(printers)
        how = " or ".join(f"`printforge printers clear {n}`" for n in printers)
        self.bus.publish(
            JobEvent(
                kind="log",
                job_id=job_id,
                state=job.state,
                stage=StageName.PRINTER,
                message=f"waiting for the bed of {names} to be cleared: remove the part, then"
                f" run {how} (or use the dashboard)",
                data={"bed_clear": printers},
            )
        )

    def _on_spool_wait(self, job_id: str, reason: str, printers: list[str]) -> None:
        """A job waits for filament, not a printer: say which spool, and how short."""
        job = self._live.get(job_id)
        if job is None:
            return
        self.bus.publish(
            JobEvent(
                kind="log",
                job_id=job_id,
                state=job.state,
                stage=StageName.PRINTER,
                message=f"waiting: {reason}; load a fuller spool (printer.load_spool) or update"
                " this one (spool.update)",
                data={"spool_wait": printers, "reason": reason},
            )
        )

    def wait_reason(self, job: Job) -> str | None:
        """Why a job is not moving on, when it waits for something other than its turn."""
        when = job.request.not_before
        if job.state is JobState.QUEUED and when is not None and when > datetime.now(UTC):
            return f"not before {when.isoformat()}"
        return self.scheduler.wait_reason(job.id)

    def _on_printer_status(self, status: PrinterStatus) -> None:
        self.bus.publish(PrinterStatusEvent(status=status))
        self._wake.set()

    # health ----------------------------------------------------------------------------------
    async def health_report(self) -> dict[str, Any]:
        records = self.health.records()
        counts = await self.store.counts() if self._started else {}
        store_ok = self._started
        state = self.health.overall()
        if not store_ok:
            state = HealthState.UNHEALTHY
        return {
            "status": state.value,
            "components": [r.model_dump(mode="json") for r in records],
            "printers": [s.model_dump(mode="json") for s in self.printers.statuses()],
            "store": {"path": str(self.store.path), "ok": store_ok, "jobs": counts},
            "queue": {"waiting_for_printer": self.scheduler.waiting()},
        }

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the orchestrator is not started")
