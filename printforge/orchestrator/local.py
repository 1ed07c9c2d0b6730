"""One job through a span of the pipeline inside a command, for the doors that need no server.

`printforge design`, `slice` and `print` ask the same `Pipeline` as the server for their span of
stages, so each gets the same agents, runtime guard (timeout, retry, breaker), health records,
metrics, events and job folder. The job lives in a scratch data directory of its own: a command
never touches a running server's job store, nor waits for its data-directory lock.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from printforge.agents.base import Agent, load_agent
from printforge.hardware.base import PrinterDriver
from printforge.models.job import Job, JobState, Span, StageName
from printforge.models.request import PrintRequest
from printforge.orchestrator.bus import EventBus
from printforge.orchestrator.pipeline import Pipeline
from printforge.orchestrator.printers import PrinterManager
from printforge.orchestrator.scheduler import HeatGate
from printforge.orchestrator.store import JobStore
from printforge.runtime.errors import (
    ConfigError,
    InputError,
    NeedsInput,
    PrinterDisconnected,
    PrintforgeError,
    UnsafeGcode,
)
from printforge.runtime.health import HealthRegistry
from printforge.settings import Settings

if TYPE_CHECKING:
    from printforge.gcode.analysis import Analysed

__all__ = ["LocalPipeline", "job_error"]

# Error codes a command re-raises as their own class, so the CLI's exit codes stay as they were
# (a configuration error is a usage error, exit 2).
_ERRORS: dict[str, type[PrintforgeError]] = {
    "config_error": ConfigError,
    "invalid_input": InputError,
    "unsafe_gcode": UnsafeGcode,
}


def job_error(job: Job) -> PrintforgeError:
    """The error a job ended with, as the exception a command raises to report it."""
    if job.state is JobState.NEEDS_INPUT or (
        job.error is not None and job.error.code == "needs_input"
    ):
        # A job waiting for an answer ends a one-shot command with its question.
        return NeedsInput(
            str(job.report.get("question") or (job.error.message if job.error else "")),
            requirements=list(job.report.get("requirements") or []),
        )
    if job.error is None:
        return PrintforgeError(f"job {job.id} ended {job.state.value}")
    if job.state is JobState.INTERRUPTED and job.error.code != "interrupted":
        return PrinterDisconnected(job.error.message, last_acked_line=job.last_acked_line)
    cls = _ERRORS.get(job.error.code, PrintforgeError)
    return cls(job.error.message, code=job.error.code)


class LocalPipeline:
    """The pipeline for one command: `async with LocalPipeline(settings, span) as local:`,
    then `await local.run(request)`; the scratch folder goes when the block ends."""

    def __init__(
        self,
        settings: Settings,
        span: Span,
        *,
        driver: PrinterDriver | None = None,
        agents: dict[str, Agent[Any, Any]] | None = None,
        printer_agent: dict[str, Any] | None = None,
    ) -> None:
        """Args:
        driver: the printer a `print` job streams to, started by the caller.
        printer_agent: options of the printer agent (`gate`, `material_from`).
        """
        self._given = settings
        self._printer_agent = printer_agent or {}
        self.span = span
        self._driver = driver
        self._overrides = agents or {}
        self.health = HealthRegistry()
        self.bus = EventBus()
        self.agents: dict[str, Agent[Any, Any]] = {}
        self._tmp: Path | None = None
        self.settings: Settings = settings
        self.store: JobStore | None = None
        self.printers: PrinterManager | None = None
        self.pipeline: Pipeline | None = None

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        self._tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="printforge-"))
        self.settings = self._given.model_copy(update={"data_dir": self._tmp})
        self.store = JobStore(self.settings.db_path)
        await self.store.open()
        stages = self.span.stages()
        if StageName.PRINTER in stages:
            self.printers = PrinterManager(self.settings, self.health)
            if self._driver is not None:
                await self.printers.add(self._driver)
        for stage in stages:
            agent = self._overrides.get(stage.value) or self._build(stage.value)
            await agent.start()
            self.agents[stage.value] = agent
        self.pipeline = Pipeline(
            self.settings, self.store, self.bus, self.health, self.agents, self.printers
        )

    def _build(self, name: str) -> Agent[Any, Any]:
        cls = load_agent(name)
        if name == "printer":
            slots = HeatGate(self.settings.server.max_heating)
            return cls(self.settings, self.printers, slots, **self._printer_agent)  # type: ignore[call-arg]
        if name == "research":
            return cls(self.settings, health=self.health)  # type: ignore[call-arg]
        return cls(self.settings)  # type: ignore[call-arg]

    async def _stop(self) -> None:
        for agent in reversed(list(self.agents.values())):
            await agent.stop()
        self.agents.clear()
        if self.printers is not None:
            await self.printers.stop()
            if self._driver is not None:
                # A manager that was never started stops nothing: the driver is ours to stop.
                await self.printers.remove(self._driver.name)
        if self.store is not None:
            await self.store.close()
        self.bus.close()
        if self._tmp is not None:
            await asyncio.to_thread(shutil.rmtree, self._tmp, True)
            self._tmp = None

    def job_dir(self, job: Job) -> Path:
        return self.settings.jobs_dir / job.id

    async def submit(self, request: PrintRequest) -> Job:
        """Record the job (queued) and its request, as the server does; `run` then drives it."""
        assert self.store is not None
        job = Job(request=request)
        folder = self.job_dir(job)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        text = json.dumps(request.model_dump(mode="json", by_alias=True), indent=2)
        await asyncio.to_thread((folder / "request.json").write_text, text)
        await self.store.insert(job)
        return job

    async def run(
        self, job: Job, target: str | None = None, *, analysed: Analysed | None = None
    ) -> Job:
        """Drive the job through this command's span; returns it in its final state.

        Args:
            analysed: the command's own analysis of the request's G-code file, if it made one.
        """
        assert self.pipeline is not None
        return await self.pipeline.run(job, self.span, target=target, analysed=analysed)
