"""Queue management methods (issue 15): job.hold, job.release, job.retry, job.move, job.update."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from printforge.server.auth import Role
from printforge.server.ownership import check_may_cancel
from printforge.server.rpc import CallContext, Endpoint, HandlerTable
from printforge.server.state import STATE_KEY
from printforge.server.views import job_view

__all__ = ["register_queue"]


class _JobParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)


class RetryParams(_JobParams):
    start: Literal["failed", "start"] = Field(
        "failed",
        description="failed: from the stage that failed (its model or G-code enters there);"
        " start: from the request",
    )


class MoveParams(_JobParams):
    before: str | None = Field(None, max_length=64, description="a queued job's id")
    after: str | None = Field(None, max_length=64, description="a queued job's id")
    top: bool = Field(False, description="to the front of the queue")


class UpdateParams(_JobParams):
    priority: int | None = Field(None, ge=-100, le=100)
    printer: str | None = Field(None, min_length=1, max_length=200)
    material: str | None = Field(None, min_length=1, max_length=100)
    tags: list[str] | None = Field(None, max_length=20, description="[] clears them")
    nozzle_diameter: float | None = Field(None, ge=0, le=2.0, description="0 clears it")
    not_before: datetime | None = Field(None, description="ISO 8601 with a zone")
    clear_not_before: bool = Field(False, description="dispatch as soon as its turn comes")


async def _view(ctx: CallContext, job: Any) -> dict[str, Any]:
    state = ctx.app[STATE_KEY]
    statuses = {s.id: s for s in state.orch.printers.statuses()}
    return job_view(job, state.orch.job_dir(job.id), statuses, state.orch.wait_reason(job))


async def _check_owner(ctx: CallContext, job_id: str) -> None:
    """As job.cancel: an operator changes its own jobs; an admin any."""
    await check_may_cancel(ctx, job_id, "change")


async def _handle_hold(ctx: CallContext, p: _JobParams) -> dict[str, Any]:
    await _check_owner(ctx, p.job_id)
    return await _view(ctx, await ctx.app[STATE_KEY].orch.queue.hold(p.job_id))


async def _handle_release(ctx: CallContext, p: _JobParams) -> dict[str, Any]:
    await _check_owner(ctx, p.job_id)
    return await _view(ctx, await ctx.app[STATE_KEY].orch.queue.release(p.job_id))


async def _handle_retry(ctx: CallContext, p: RetryParams) -> dict[str, Any]:
    await _check_owner(ctx, p.job_id)
    job = await ctx.app[STATE_KEY].orch.queue.retry(
        p.job_id, start=p.start, submitted_by=ctx.principal.key_id
    )
    if ctx.client is not None:
        ctx.client.own([job.id])
    return await _view(ctx, job)


async def _handle_move(ctx: CallContext, p: MoveParams) -> dict[str, Any]:
    await _check_owner(ctx, p.job_id)
    queue = ctx.app[STATE_KEY].orch.queue
    return await _view(ctx, await queue.move(p.job_id, before=p.before, after=p.after, top=p.top))


async def _handle_update(ctx: CallContext, p: UpdateParams) -> dict[str, Any]:
    await _check_owner(ctx, p.job_id)
    queue = ctx.app[STATE_KEY].orch.queue
    job = await queue.update(
        p.job_id,
        priority=p.priority,
        printer=p.printer,
        material=p.material,
        tags=p.tags,
        nozzle_diameter=p.nozzle_diameter,
        not_before=p.not_before,
        clear_not_before=p.clear_not_before,
    )
    return await _view(ctx, job)


def register_queue(t: HandlerTable) -> None:
    op = Role.OPERATOR
    for ep in (
        Endpoint("job.hold", _handle_hold, _JobParams, op, "Hold a queued job (not dispatched)",
                 ("POST", "/api/jobs/{job_id}/hold")),
        Endpoint("job.release", _handle_release, _JobParams, op, "Release a held job",
                 ("POST", "/api/jobs/{job_id}/release")),
        Endpoint("job.retry", _handle_retry, RetryParams, op,
                 "A failed, cancelled or interrupted job again, as a new job",
                 ("POST", "/api/jobs/{job_id}/retry"), 202),
        Endpoint("job.move", _handle_move, MoveParams, op,
                 "Move a queued job before or after another, or to the top",
                 ("POST", "/api/jobs/{job_id}/move")),
        Endpoint("job.update", _handle_update, UpdateParams, op,
                 "Change a queued job's priority, printer, material, tags, nozzle or not_before",
                 ("POST", "/api/jobs/{job_id}/update")),
    ):  # fmt: skip
        t.register(ep)
