"""Queue management (issue 15): hold, release, move and update queued jobs; retry ended ones.

Every change is persisted in the job store before the dispatcher sees it: a held job is kept
out of the dispatch heap; a moved or re-prioritised job is pushed again under its new key and
its old heap entry, no longer matching, is skipped (Orchestrator._dispatch_loop).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal, Protocol

from printforge.models.job import Job, JobState, StageName, StageState
from printforge.models.request import PrintRequest
from printforge.runtime.errors import InputError


class _Orchestrator(Protocol):
    """What queue control uses of orchestrator.service.Orchestrator (which owns this)."""

    store: Any
    pipeline: Any
    printers: Any
    settings: Any
    scheduler: Any

    async def get(self, job_id: str) -> Job: ...

    async def submit(
        self, request: PrintRequest, submitted_by: str | None = None, *, retry_of: str | None = None
    ) -> Job: ...

    def _enqueue(self, job: Job) -> None: ...


__all__ = ["RETRYABLE", "QueueControl"]

RETRYABLE = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED})
# A moved job sits this far from a neighbour with no other job between (seconds of rank).
_GAP = 1.0


class QueueControl:
    def __init__(self, orch: _Orchestrator) -> None:
        self.orch = orch

    async def _queued(self, job_id: str) -> Job:
        job = await self.orch.get(job_id)
        if job.state is not JobState.QUEUED:
            raise InputError(
                f"job {job_id} is {job.state.value}: only a queued job can be held, moved or"
                " changed"
            )
        return job

    async def _changed(self, job: Job, what: str) -> Job:
        await self.orch.store.save(job)
        assert self.orch.pipeline is not None
        self.orch.pipeline._emit(job, "log", message=what, data={"queue": what})
        self.orch._enqueue(job)
        return job

    async def hold(self, job_id: str) -> Job:
        job = await self._queued(job_id)
        if job.held:
            return job
        job.held = True
        return await self._changed(job, "held")

    async def release(self, job_id: str) -> Job:
        job = await self._queued(job_id)
        if not job.held:
            return job
        job.held = False
        return await self._changed(job, "released")

    async def move(
        self,
        job_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        top: bool = False,
    ) -> Job:
        """Before or after another queued job (taking its priority), or to the top."""
        if sum((before is not None, after is not None, top)) != 1:
            raise InputError("job.move takes exactly one of before, after or top")
        job = await self._queued(job_id)
        others = [j for j in await self.orch.store.queued() if j.id != job.id]
        if top:
            if others:
                first = others[0]
                priority = max(job.request.priority, first.request.priority)
                job.request = job.request.model_copy(update={"priority": priority})
                job.queue_rank = first.queue_key[1] - _GAP
            return await self._changed(job, "moved to the top")
        anchor_id = before if before is not None else after
        index = next((i for i, j in enumerate(others) if j.id == anchor_id), None)
        if index is None:
            raise InputError(f"job {anchor_id} is not queued: move before or after a queued job")
        anchor = others[index]
        # The neighbour on the other side, if it has the same priority, bounds the new rank.
        side = index - 1 if before is not None else index + 1
        neighbour = others[side] if 0 <= side < len(others) else None
        rank = anchor.queue_key[1]
        if neighbour is not None and neighbour.request.priority == anchor.request.priority:
            job.queue_rank = (rank + neighbour.queue_key[1]) / 2
        else:
            job.queue_rank = rank - _GAP if before is not None else rank + _GAP
        job.request = job.request.model_copy(update={"priority": anchor.request.priority})
        where = "before" if before is not None else "after"
        return await self._changed(job, f"moved {where} {anchor.id}")

    async def update(
        self,
        job_id: str,
        *,
        priority: int | None = None,
        printer: str | None = None,
        material: str | None = None,
        tags: list[str] | None = None,
        nozzle_diameter: float | None = None,
        not_before: datetime | None = None,
        clear_not_before: bool = False,
    ) -> Job:
        """Change a queued job's priority, printer, material, constraints (tags, nozzle; 0
        clears it) or `not_before`, checked as at submission."""
        job = await self._queued(job_id)
        changes: dict[str, object] = {}
        if tags is not None:
            changes["tags"] = tags
        if nozzle_diameter is not None:
            changes["nozzle_diameter"] = nozzle_diameter or None
        if not_before is not None and clear_not_before:
            raise InputError("give not_before or clear_not_before, not both")
        if not_before is not None:
            changes["not_before"] = not_before
        if clear_not_before:
            changes["not_before"] = None
        if priority is not None:
            changes["priority"] = priority
        if printer is not None:
            self.orch.printers.get(printer)  # unknown: the attached printers are named
            changes["printer"] = printer
        if material is not None:
            changes["material"] = self.orch.settings.material(material).name
        if not changes:
            raise InputError(
                "job.update needs at least one of priority, printer, material, tags,"
                " nozzle_diameter, not_before, clear_not_before"
            )
        try:
            # Validated as a new request is (tags cleaned, a time with its zone).
            request = PrintRequest.model_validate(
                {**job.request.model_dump(by_alias=True), **changes}
            )
        except ValueError as err:
            raise InputError(f"invalid update: {err}") from None
        if request.print_:
            self.orch.scheduler.check_constraints(
                request, [request.printer] if request.printer else None
            )
        job.request = request
        said = ", ".join(f"{k} {v}" for k, v in changes.items())
        return await self._changed(job, f"updated: {said}")

    async def retry(
        self,
        job_id: str,
        *,
        start: Literal["failed", "start"] = "failed",
        submitted_by: str | None = None,
    ) -> Job:
        """A new job doing what an ended one did not: from the stage that failed (the G-code
        or the model it already made enters the pipeline there), or from the start."""
        old = await self.orch.get(job_id)
        if old.state not in RETRYABLE:
            raise InputError(
                f"job {job_id} is {old.state.value}: only a failed, cancelled or interrupted"
                " job can be retried"
            )
        request = old.request.model_copy(update={"copies": 1})
        if start == "failed":
            # Checking an artifact reads it whole (sha256): off the event loop.
            request = await asyncio.to_thread(_from_failed_stage, old, request)
        job = await self.orch.submit(request, submitted_by, retry_of=old.id)
        return job


def _from_failed_stage(old: Job, request: PrintRequest) -> PrintRequest:
    """The request entering at the stage that did not finish, when the one before left a
    verified artifact; otherwise the request as it was (from the start)."""
    done = {s.name for s in old.stages if s.state is StageState.COMPLETED}
    source = {"text": None, "model_path": None, "gcode_path": None}
    if StageName.SLICER in done and old.gcode is not None and old.gcode.verify():
        return request.model_copy(update={**source, "gcode_path": old.gcode.path})
    if StageName.CAD in done and old.mesh is not None and old.mesh.verify():
        return request.model_copy(update={**source, "model_path": old.mesh.path})
    return request
