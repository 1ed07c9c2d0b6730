"""`job.cancel_object`: stop printing one object of a job's plate (issue 15 item 7).

Kept apart from `api` so the queue methods there can change without touching it. The printer's
driver does the work: the Marlin host leaves the object's lines out, Klipper gets
`EXCLUDE_OBJECT`, a bus printer's node is asked, and Bambu answers `unsupported`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.models.job import JobState
from printforge.runtime.errors import InvalidTransition
from printforge.server.auth import Role
from printforge.server.ownership import check_may_cancel
from printforge.server.rpc import CallContext, Endpoint, HandlerTable
from printforge.server.state import STATE_KEY

__all__ = ["CancelObjectParams", "register_object_endpoints"]


class CancelObjectParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    object: str | int = Field(
        description="the object's name as the slicer labelled it, or its index (`id`)"
    )


async def _handle_cancel_object(ctx: CallContext, p: CancelObjectParams) -> dict[str, Any]:
    state = ctx.app[STATE_KEY]
    await check_may_cancel(ctx, p.job_id)  # who may cancel a job may cancel a part of it
    job = await state.orch.get(p.job_id)
    if job.state is not JobState.PRINTING or job.printer is None:
        raise InvalidTransition(f"job {job.id} is {job.state.value}, not printing")
    driver = state.orch.printers.get(job.printer)
    running = driver.status().job_id
    if running is not None and running != job.id:
        raise InvalidTransition(f"printer {job.printer} is printing job {running}, not {job.id}")
    cancelled = await driver.cancel_object(p.object)
    return {
        "job_id": job.id,
        "printer": job.printer,
        "object": cancelled,
        "objects": driver.objects(),
    }


def register_object_endpoints(table: HandlerTable) -> None:
    table.register(
        Endpoint(
            "job.cancel_object",
            _handle_cancel_object,
            CancelObjectParams,
            Role.OPERATOR,
            "Cancel one object of a printing job's plate; the others print on",
            ("POST", "/api/jobs/{job_id}/cancel_object"),
            result_example={
                "job_id": "3f2a9c0b1d4e",
                "printer": "mk3",
                "object": {"id": 0, "name": "bracket_1", "cancelled": True},
                "objects": [
                    {"id": 0, "name": "bracket_1", "cancelled": True},
                    {"id": 1, "name": "bracket_2", "cancelled": False},
                ],
            },
        )
    )
