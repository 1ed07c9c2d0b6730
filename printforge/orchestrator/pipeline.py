"""One job through the four agents: research -> CAD -> slicer -> printer, each call guarded.

Every state change is persisted before it is announced; every stage leaves a typed artifact
with its hash in the job's folder, and `report.json` is rewritten after each stage so a person
can read what happened even if the process dies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printforge.agents.base import Agent, AgentContext
from printforge.models.artifact import GcodeArtifact, MeshArtifact, SpecArtifact, file_sha256
from printforge.models.event import JobEvent
from printforge.models.job import (
    STATE_OF_STAGE,
    Job,
    JobError,
    JobState,
    Span,
    StageName,
    StageState,
)
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.orchestrator.bus import EventBus
from printforge.orchestrator.leases import LeaseLost
from printforge.orchestrator.printers import PrinterManager
from printforge.orchestrator.storesql import SqlJobStore
from printforge.runtime import metrics
from printforge.runtime.errors import (
    InputError,
    NeedsInput,
    PrintCancelled,
    PrinterBusy,
    PrinterDisconnected,
    PrintforgeError,
)
from printforge.runtime.guard import Guard
from printforge.runtime.health import HealthRegistry
from printforge.runtime.paths import PRIVATE_DIR_MODE
from printforge.runtime.system import disk_full
from printforge.settings import Settings

if TYPE_CHECKING:
    from printforge.gcode.analysis import Analysed

__all__ = ["Pipeline", "PrinterChooser"]

log = logging.getLogger(__name__)

# (job, target printer) -> the printer that will print it, reserved.
PrinterChooser = Callable[[Job, str], Awaitable[str]]


async def _as_targeted(job: Job, printer: str) -> str:
    """A door with one printer of its own (`print`): the target prints it, no waiting."""
    return printer


class _Throttle:
    """Stage progress for the bus, at most one update per interval: a printer streaming 600
    lines/s must not flood the websocket. The latest update held back is sent when the interval
    ends, so a stream that pauses (a bed heating for minutes after a burst of lines) shows
    where it really is, not the last update that happened to get through."""

    def __init__(self, send: Callable[[float | None, str | None, dict[str, Any] | None], None]):
        self._send = send
        self._last = 0.0
        self._held: tuple[float | None, str | None, dict[str, Any] | None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __call__(
        self, fraction: float | None, message: str | None, data: dict[str, Any] | None
    ) -> None:
        now = time.monotonic()
        wait = _PROGRESS_INTERVAL_S - (now - self._last)
        if fraction is not None and fraction < 1.0 and wait > 0:
            self._held = (fraction, message, data)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(wait, self._flush)
            return
        self._cancel()
        self._last = now
        self._send(fraction, message, data)

    def _flush(self) -> None:
        self._timer = None
        held, self._held = self._held, None
        if held is not None:
            self._last = time.monotonic()
            self._send(*held)

    def _cancel(self) -> None:
        self._held = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self._cancel()

    def send_held(self) -> None:
        """Send the update held back now: a stage that fails (a printer's emergency stop) ends
        where its last update says, so the last acknowledged line must not stay held."""
        if self._held is not None:
            if self._timer is not None:
                self._timer.cancel()
            self._flush()


@dataclass
class _Made:
    gcode: GcodeArtifact | None
    printer: str  # the printer it was designed and sliced for
    analysed: Analysed | None = None  # the G-code's analysis, for the printer stage's gate


_PROGRESS_INTERVAL_S = 0.1


# What a job hit by a full disk keeps: small, and what explains the job afterwards.
_KEPT_ON_DISK_FULL = frozenset({"request.json", "spec.json", "report.json"})


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: SqlJobStore,
        bus: EventBus,
        health: HealthRegistry,
        agents: dict[str, Agent[Any, Any]],
        printers: PrinterManager | None = None,
    ) -> None:
        self.settings = settings
        # The attached printers are the truth about a printer: one found on the farm bus is in
        # no config file, and a person may have loaded another material since start-up.
        self.printers = printers
        self.store = store
        self.bus = bus
        self.health = health
        self.agents = agents
        self.guards = {name: Guard(name, settings.policy(name), health) for name in agents}
        # The printer agent drives many printers: a breaker per printer, so one that keeps
        # faulting is taken out of use without failing every print on the others.
        self._printer_guards: dict[str, Guard] = {}
        self._vision: Any = None  # vision.worker.VisionWorker, once a camera watches a print
        # Called as each stage starts (the orchestrator's lease renewal, issue 16): it raises
        # LeaseLost if another instance took the job over, before the stage runs twice.
        self.on_stage: Callable[[Job, StageName], Awaitable[None]] | None = None

    def job_dir(self, job_id: str) -> Path:
        return self.settings.jobs_dir / job_id

    # events ----------------------------------------------------------------------------------
    def _emit(
        self,
        job: Job,
        kind: str,
        stage: StageName | None = None,
        *,
        progress: float | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.bus.publish(
            JobEvent(
                kind=kind,  # type: ignore[arg-type]
                job_id=job.id,
                state=job.state,
                stage=stage,
                progress=progress,
                message=message,
                data=data or {},
            )
        )

    def emit_log(self, job: Job, message: str, data: dict[str, Any] | None = None) -> None:
        """A line in the job's event stream (the watch's recovery, for one)."""
        self._emit(job, "log", message=message, data=data)

    async def move(
        self, job: Job, new: JobState, *, error: JobError | None = None, reason: str | None = None
    ) -> None:
        await self.store.transition(job, new, error=error, reason=reason)
        self._emit(
            job, "state", message=reason, data={"error": error.model_dump() if error else None}
        )

    def write_report(self, job: Job) -> None:
        folder = self.job_dir(job.id)
        folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        report = {
            "job_id": job.id,
            "state": job.state.value,
            "request": job.request.model_dump(mode="json", by_alias=True),
            "printer": job.printer,
            "stages": [s.model_dump(mode="json") for s in job.stages],
            "artifacts": {
                name: art.model_dump(mode="json")
                for name, art in (("spec", job.spec), ("mesh", job.mesh), ("gcode", job.gcode))
                if art is not None
            },
            "error": job.error.model_dump() if job.error else None,
            "last_acked_line": job.last_acked_line,
            "copy_of": job.copy_of,
            "copies": job.copies,
            "sliced_for": job.sliced_for,
            "print_attempts": job.print_attempts,
            "report": job.report,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        tmp = folder / "report.json.tmp"
        tmp.write_text(json.dumps(report, indent=2, default=str))
        tmp.replace(folder / "report.json")

    # stages ----------------------------------------------------------------------------------
    def _context(
        self, job: Job, stage: StageName, printer: str, profile: PrinterProfile | None = None
    ) -> AgentContext:
        def send(fraction: float | None, message: str | None, data: dict[str, Any] | None) -> None:
            if data and isinstance(data.get("lines_acked"), int):
                # Kept on the job as it goes: saved with it on each lease heartbeat, so the
                # instance that takes over a dead one's print can say where it stopped.
                job.last_acked_line = data["lines_acked"]
            self._emit(
                job,
                "stage.progress",
                stage,
                progress=None if fraction is None else max(0.0, min(1.0, fraction)),
                message=message,
                data=data,
            )

        throttle = _Throttle(send)
        own_profile, loaded = self._printer_facts(printer)
        return AgentContext(
            job_id=job.id,
            job_dir=self.job_dir(job.id),
            request=job.request,
            printer=printer,
            profile=profile or own_profile,
            material=self.settings.material(job.request.material or loaded),
            progress=throttle,
            report=job.report,
        )

    def _printer_facts(self, printer: str) -> tuple[PrinterProfile, str]:
        """The printer's profile and loaded material: from the attached printer when there is
        one (it carries its own profile), else from the config, else the generic defaults."""
        settings = self.settings
        if self.printers is not None and printer in self.printers.names():
            return self.printers.profile(printer), self.printers.entry(printer).material
        if printer in settings.printers:
            entry = settings.printer(printer)
            return settings.printer_profiles[entry.profile], entry.material
        # `slice --printer ender3`: a profile stands for a printer of that kind.
        profile = settings.printer_profiles.get(printer) or settings.printer_profiles["generic-220"]
        return profile, settings.default_material

    async def run_stage(self, job: Job, stage: StageName, inp: Any, ctx: AgentContext) -> Any:
        if self.on_stage is not None:
            await self.on_stage(job, stage)
        if job.state is not STATE_OF_STAGE[stage]:
            await self.move(job, STATE_OF_STAGE[stage])
        record = job.stage(stage)
        record.state = StageState.RUNNING
        record.started_at = datetime.now(UTC)
        record.error = None
        self._emit(job, "stage.started", stage)
        await self.store.save(job)
        agent = self.agents[stage.value]
        started = time.perf_counter()

        async def attempt(n: int) -> Any:
            record.attempts += 1
            ctx.attempt = n
            return await agent.run(inp, ctx)

        def on_retry(n: int, err: BaseException, delay: float) -> None:
            self._emit(
                job,
                "log",
                stage,
                message=f"attempt {n} failed ({err}); retrying in {delay:.1f} s",
            )

        outcome = "failure"
        try:
            result = await self._guard(stage, ctx.printer).call(attempt, on_retry=on_retry)
            outcome = "success"
        except asyncio.CancelledError:
            record.state = StageState.CANCELLED
            outcome = "cancelled"
            raise
        except PrinterDisconnected as err:
            record.state = StageState.INTERRUPTED
            record.error = JobError(code=err.code, message=err.message)
            raise
        except PrintCancelled as err:
            record.state = StageState.CANCELLED
            record.error = JobError(code=err.code, message=err.message)
            outcome = "cancelled"
            raise
        except NeedsInput:
            record.state = StageState.PENDING  # it runs again with the answer
            outcome = "needs_input"
            raise
        except PrintforgeError as err:
            record.state = StageState.FAILED
            record.error = JobError(code=err.code, message=err.message)
            if isinstance(ctx.progress, _Throttle):
                ctx.progress.send_held()
            self._emit(job, "stage.failed", stage, message=err.message)
            raise
        except Exception as err:
            if isinstance(ctx.progress, _Throttle):
                ctx.progress.send_held()
            record.state = StageState.FAILED
            record.error = JobError(code="internal_error", message=f"{type(err).__name__}: {err}")
            self._emit(job, "stage.failed", stage, message=record.error.message)
            raise
        finally:
            # A progress held back by the throttle must not arrive after the stage's end.
            if isinstance(ctx.progress, _Throttle):
                ctx.progress.close()
            elapsed = time.perf_counter() - started
            record.finished_at = datetime.now(UTC)
            record.duration_s = round(elapsed, 3)
            metrics.STAGE_DURATION.labels(stage.value, outcome).observe(elapsed)
        record.state = StageState.COMPLETED
        self._emit(job, "stage.completed", stage, progress=1.0)
        await self.store.save(job)
        self.write_report(job)
        return result

    def _guard(self, stage: StageName, printer: str) -> Guard:
        if stage is not StageName.PRINTER:
            return self.guards[stage.value]
        guard = self._printer_guards.get(printer)
        if guard is None:
            name = stage.value
            guard = Guard(name, self.settings.policy(name), self.health, target=printer)
            self._printer_guards[printer] = guard
        return guard

    def _skip(self, job: Job, *stages: StageName) -> None:
        for stage in stages:
            job.stage(stage).state = StageState.SKIPPED

    # the whole job ---------------------------------------------------------------------------
    async def run(
        self,
        job: Job,
        span: Span | None = None,
        *,
        target: str | None = None,
        choose_printer: PrinterChooser | None = None,
        release_printer: Callable[[str, bool], None] | None = None,
        design_profile: PrinterProfile | None = None,
        retarget: Callable[[Job, str, tuple[float, float, float]], str] | None = None,
        analysed: Analysed | None = None,
    ) -> Job:
        """Drive a job through `span` (by default the one its request describes) to its end.

        This is the one place stages are chained, for every door: the server, `run`, `design`,
        `slice` and `print`. Returns the job in its final (or interrupted) state.

        Args:
            span: the entry and exit stage; stages outside it are skipped.
            target: the printer the job is designed and sliced for (default: the request's,
                else the default printer).
            choose_printer: waits for and reserves the printer that prints it (default: the
                target, as it is).
            release_printer: frees that printer again, saying whether a print began.
            design_profile: the volume research and CAD check the part against (by default
                the target's profile); `retarget` may then move the job to a printer the part
                fits.
            analysed: the door's own analysis of the request's G-code file (`print` gates it
                before it opens the printer's port): used instead of analysing it again when
                the file and the profile are the same.
        """
        span = span or Span.of(job.request)
        printer = target or job.request.printer or self.settings.default_printer
        folder = self.job_dir(job.id)
        folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        reserved: str | None = None
        printed = False
        order = list(StageName)
        # Stages before the entry are skipped now; those after the exit once it is reached (a
        # job that fails earlier shows them pending: never reached, not decided against).
        self._skip(job, *order[: order.index(span.entry)])
        try:
            made = await self._prepare(job, span, printer, design_profile, retarget, analysed)
            printer = made.printer
            if span.exit is not StageName.PRINTER:
                self._skip(job, *order[order.index(span.exit) + 1 :])
                await self.store.save(job)
                reason = (
                    "stopped before printing"
                    if span.exit is StageName.SLICER
                    else f"stopped after {span.exit.value}"
                )
                await self.move(job, JobState.COMPLETED, reason=reason)
                return job
            assert made.gcode is not None
            job.gcode = made.gcode
            await self.store.save(job)
            if job.state is JobState.QUEUED or job.state is JobState.SLICING:
                self._emit(job, "log", StageName.PRINTER, message="waiting for a printer")
            reserved = await (choose_printer or _as_targeted)(job, printer)
            job.printer = reserved
            ctx = self._context(job, StageName.PRINTER, reserved)
            ctx.analysed = made.analysed
            watch = await self._watch(job, reserved, made.gcode.path)
            try:
                await self.run_stage(job, StageName.PRINTER, made.gcode, ctx)
            finally:
                if watch is not None:
                    await watch.stop()
            printed = True
            await self.move(job, JobState.COMPLETED, reason=f"printed on {reserved}")
            return job
        except asyncio.CancelledError:
            await self.on_cancelled(job)
            raise
        except LeaseLost:
            raise  # the job is another instance's now: nothing is recorded here
        except PrinterDisconnected as err:
            job.last_acked_line = err.last_acked_line
            printed = True  # something may be on the bed
            await self.move(
                job,
                JobState.INTERRUPTED,
                error=JobError(code=err.code, message=err.message),
                reason="printer disconnected",
            )
            return job
        except PrinterBusy as err:
            # The printer's node refused the start: it prints another job (one another
            # instance started there). Nothing printed, so this is no failure: interrupted,
            # and re-queued for another printer like any print cut off before it began.
            await self.move(
                job,
                JobState.INTERRUPTED,
                error=JobError(code=err.code, message=err.message),
                reason="printer busy with another job",
            )
            return job
        except PrintCancelled as err:
            printed = True  # stopped part-way: something may be on the bed
            diagnosis = job.report.get("vision", {}).get("diagnosis")
            if diagnosis is not None:
                # Stopped by the watch: a failed print, with the diagnosis as its reason.
                message = (
                    f"failure detected at layer {diagnosis['layer']}: {diagnosis['kind']}"
                    f" (score {diagnosis['score']:.2f})"
                )
                await self.move(
                    job,
                    JobState.FAILED,
                    error=JobError(code="failure_detected", message=message),
                    reason=message,
                )
                return job
            await self.move(
                job,
                JobState.CANCELLED,
                error=JobError(code=err.code, message=err.message),
                reason="cancelled at the printer",
            )
            return job
        except NeedsInput as err:
            # Not a failure: the job waits for the person's answer (job.answer re-queues it).
            job.report["question"] = err.question
            job.report["requirements"] = err.requirements
            await self.store.transition(job, JobState.NEEDS_INPUT, reason=err.question)
            self._emit(
                job,
                "state",
                message=err.question,
                data={"question": err.question, "requirements": err.requirements},
            )
            return job
        except PrintforgeError as err:
            if disk_full(err):
                await self._fail_for_disk(job, err)
            elif not job.terminal:
                await self.move(
                    job, JobState.FAILED, error=JobError(code=err.code, message=err.message)
                )
            return job
        except Exception as err:
            if disk_full(err):
                await self._fail_for_disk(job, err)
                return job
            # The job records the error; the traceback is for whoever runs with --debug.
            log.error(
                "job %s failed unexpectedly: %s: %s",
                job.id,
                type(err).__name__,
                err,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            if not job.terminal:
                await self.move(
                    job,
                    JobState.FAILED,
                    error=JobError(code="internal_error", message=f"{type(err).__name__}: {err}"),
                )
            return job
        finally:
            if reserved is not None and release_printer is not None:
                release_printer(reserved, printed)
            try:
                self.write_report(job)
            except OSError as err:
                if not disk_full(err):
                    raise
                log.warning("job %s: no space left for its report.json", job.id)

    async def _watch(self, job: Job, printer: str, gcode: Path) -> Any:
        """A started PrintWatch when the printer has a camera (issue 17), else None."""
        if self.printers is None or printer not in self.printers.names():
            return None
        entry = self.printers.entry(printer)
        if entry.camera is None or (entry.camera.snapshot_url or entry.camera.stream_url) is None:
            return None
        from printforge.orchestrator.watch import PrintWatch
        from printforge.vision.config import DetectionConfig

        detection = entry.detection or DetectionConfig()
        failures = 0
        ancestor = job.retry_of
        while ancestor is not None and failures < 10:  # the design's earlier failed prints
            earlier = await self.store.get(ancestor)
            if earlier is None or not earlier.report.get("vision", {}).get("diagnosis"):
                break
            failures += 1
            ancestor = earlier.retry_of
        watch = PrintWatch(
            job,
            self.printers.get(printer),
            entry.camera,
            detection,
            gcode,
            self.job_dir(job.id),
            lambda kind, message, data: self._emit(
                job, kind, StageName.PRINTER, message=message, data=data
            ),
            self.vision_worker,
            failures_before=failures,
        )
        await watch.start()
        return watch

    def vision_worker(self) -> Any:
        """The detector's worker process, started on first use (stopped by `close`)."""
        if self._vision is None:
            from printforge.vision.worker import VisionWorker

            self._vision = VisionWorker()
        return self._vision

    async def close(self) -> None:
        vision, self._vision = self._vision, None
        if vision is not None:
            await vision.stop()

    async def _fail_for_disk(self, job: Job, err: BaseException) -> None:
        """A full disk fails the job with a message saying so, not an internal error.

        The job's unfinished outputs are removed first: they are what filled the disk, and
        without the space they held the store could not record the failure either, so the job
        stayed in slicing or designing until a restart.
        """
        folder = self.job_dir(job.id)
        for path in folder.iterdir() if folder.is_dir() else []:
            if path.name not in _KEPT_ON_DISK_FULL and path.is_file():
                path.unlink(missing_ok=True)
        for stage in job.stages:
            if stage.state is StageState.RUNNING:
                stage.state = StageState.FAILED
        error = JobError(
            code="insufficient_storage",
            message=f"no space left on the disk of {self.settings.data_dir}"
            f" ({type(err).__name__}: {err}); free some space and submit the job again",
        )
        for stage in job.stages:
            if stage.state is StageState.FAILED and stage.error is not None:
                stage.error = error
        log.error("job %s failed: %s", job.id, error.message)
        if not job.terminal:
            await self.move(job, JobState.FAILED, error=error, reason="disk full")

    async def _prepare(
        self,
        job: Job,
        span: Span,
        printer: str,
        design_profile: PrinterProfile | None,
        retarget: Callable[[Job, str, tuple[float, float, float]], str] | None,
        analysed: Analysed | None = None,
    ) -> _Made:
        """The stages before the printer: whatever of research, CAD and slicing the span holds,
        from the input its entry stage takes. Returns the G-code (if the span reaches it) and
        the printer it was sliced for."""
        request = job.request
        if span.entry is StageName.PRINTER:
            if job.copy_of is not None and job.gcode is not None:
                return _Made(job.gcode, printer)  # a copy prints its original's G-code
            if request.gcode_path is None:
                raise InputError("the print stage needs a G-code file")
            ctx = self._context(job, StageName.SLICER, printer)
            gcode, known = await asyncio.to_thread(
                self._import_gcode, job, request.gcode_path, ctx.profile, ctx.material, analysed
            )
            return _Made(gcode, printer, known)
        mesh: MeshArtifact | Path
        if span.entry is StageName.SLICER:
            # A user's model enters the slicer as it is (no CAD checks, no turning); the
            # engine reads it once and refuses, with the reason, one no slicer could print.
            if request.model_path is None:
                raise InputError("the slicer stage needs a model file")
            mesh = request.model_path
        else:
            designed = await self._design(job, span, printer, design_profile)
            job.mesh = mesh = designed
            if span.exit is StageName.CAD:
                return _Made(None, printer)
            if retarget is not None:
                printer = retarget(job, printer, designed.size_mm)
        ctx = self._context(job, StageName.SLICER, printer)
        gcode = await self.run_stage(job, StageName.SLICER, mesh, ctx)
        job.gcode = gcode
        return _Made(gcode, printer, ctx.analysed)

    async def _design(
        self, job: Job, span: Span, printer: str, design_profile: PrinterProfile | None
    ) -> MeshArtifact:
        """Research then CAD, with the repair loop: a design the CAD checks refuse goes back to
        the model with the reason, up to `llm.repair_rounds` times (the offline parser would
        only repeat itself, and a question for the person is not a design fault)."""
        from printforge.agents.research import FEEDBACK_KEY

        cad_ctx = self._context(job, StageName.CAD, printer, design_profile)
        if span.entry is StageName.CAD:
            if job.request.model_path is None:
                raise InputError("the CAD stage needs a model file or a design")
            model = self._import_model(job.request.model_path)
            mesh: MeshArtifact = await self.run_stage(job, StageName.CAD, model, cad_ctx)
            return mesh
        ctx = self._context(job, StageName.RESEARCH, printer, design_profile)
        redesigns = 0
        while True:
            spec = await self.run_stage(job, StageName.RESEARCH, job.request, ctx)
            job.spec = self._write_spec(job, spec)
            try:
                mesh = await self.run_stage(job, StageName.CAD, spec, cad_ctx)
            except InputError as err:
                provider = (job.report.get("research") or {}).get("provider")
                if (
                    isinstance(err, NeedsInput)
                    or provider == "offline"
                    or redesigns >= self.settings.llm.repair_rounds
                ):
                    raise
                redesigns += 1
                job.report.setdefault(FEEDBACK_KEY, []).append(err.message)
                self._emit(
                    job,
                    "log",
                    StageName.CAD,
                    message=f"redesign {redesigns}: {err.message}",
                )
                continue
            return mesh

    async def on_cancelled(self, job: Job) -> None:
        """Persist what a cancellation means, shielded: the caller's task is already cancelled."""
        reason = job.cancel_reason

        async def persist() -> None:
            if job.terminal:
                return
            if reason == "user":
                await self.move(job, JobState.CANCELLED, reason="cancelled by user")
            else:
                was_printing = job.state is JobState.PRINTING
                await self.move(
                    job,
                    JobState.INTERRUPTED,
                    error=JobError(code="interrupted", message="printforge was shut down"),
                    reason="shutdown",
                )
                if not was_printing:
                    await self.move(job, JobState.QUEUED, reason="re-queued after shutdown")

        await asyncio.shield(persist())

    # artifacts -------------------------------------------------------------------------------
    def _write_spec(self, job: Job, spec: Any) -> SpecArtifact:
        path = self.job_dir(job.id) / "spec.json"
        path.write_text(spec.model_dump_json(indent=2))
        return SpecArtifact(
            path=path,
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
            family=getattr(spec, "family", None),
        )

    def _import_model(self, path: Path) -> Path:
        if not path.is_file():
            raise InputError(f"model file {path} does not exist")
        return path

    def _import_gcode(
        self,
        job: Job,
        source: Path,
        profile: PrinterProfile,
        material: MaterialProfile,
        known: Analysed | None,
    ) -> tuple[GcodeArtifact, Analysed]:
        """A user's own G-code enters at the printer stage; the printer agent gates it, with
        the analysis made here (or the door's own, `known`, when it is of this very file)."""
        from printforge.gcode.analysis import Analysed, analyse_gcode, gcode_artifact

        if not source.is_file():
            raise InputError(f"G-code file {source} does not exist")
        dest = self.job_dir(job.id) / "model.gcode"
        if source.resolve() != dest.resolve():
            shutil.copyfile(source, dest)
        sha256 = file_sha256(dest)
        if known is not None and known.fits(sha256, profile):
            analysis = known.with_density(material.density_g_cm3)
        else:
            analysis = analyse_gcode(dest, profile, material.density_g_cm3)
        artifact = gcode_artifact(dest, analysis, "imported", sha256=sha256)
        return artifact, Analysed(sha256, profile, analysis)
