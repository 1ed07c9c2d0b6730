"""Who may act on a job: the rule shared by `job.cancel`, `printer.cancel`,
`job.cancel_object` and `job.answer` (issue 11: jobs record the key that submitted them).

A module of its own so the endpoint modules that apply it need not import each other.
"""

from __future__ import annotations

from printforge.server.auth import Role
from printforge.server.rpc import CallContext, Forbidden
from printforge.server.state import STATE_KEY

__all__ = ["check_may_cancel"]


async def check_may_cancel(ctx: CallContext, job_id: str, verb: str = "cancel") -> None:
    """An operator cancels (or answers) its own jobs; an admin any (a job recorded without a
    submitter is an admin's)."""
    if ctx.principal.role.allows(Role.ADMIN):
        return
    state = ctx.app[STATE_KEY]
    await state.orch.get(job_id)  # an unknown id is not_found, not forbidden
    if await state.orch.store.submitted_by(job_id) != ctx.principal.key_id:
        raise Forbidden(
            f"job {job_id} was submitted by another key: only that key or an admin may {verb} it"
        )
