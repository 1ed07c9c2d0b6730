"""Who may act on a job or a printer: the rules shared by `job.cancel`, `printer.cancel`,
`job.cancel_object`, `job.answer` and the printer controls (issue 11: jobs record the key that
submitted them; moving a printer is a deliberate right, the `printer` capability).

A module of its own so the endpoint modules that apply it need not import each other.
"""

from __future__ import annotations

from typing import Any

from printforge.server.auth import Role
from printforge.server.rpc import CallContext, Forbidden
from printforge.server.state import STATE_KEY

__all__ = ["PRINTER", "check_may_cancel", "printer_job", "runs_own_job"]

# The capability that moves printers (auth.CAPABILITIES).
PRINTER = "printer"


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


def printer_job(ctx: CallContext, printer: str) -> str | None:
    """The job a printer is running or holds reserved, if any (an unknown printer raises)."""
    printers = ctx.app[STATE_KEY].orch.printers
    driver = printers.get(printer)
    return printers.reserved_by(printer) or driver.status().job_id  # type: ignore[no-any-return]


async def runs_own_job(ctx: CallContext, params: Any) -> bool:
    """The printer is running a job this key submitted: its owner may pause, resume or cancel
    its own print without the printer capability (as `job.cancel` lets it stop the job)."""
    job_id = printer_job(ctx, params.printer)
    if not job_id or not ctx.principal.role.allows(Role.OPERATOR):
        return False
    store = ctx.app[STATE_KEY].orch.store
    return await store.submitted_by(job_id) == ctx.principal.key_id  # type: ignore[no-any-return]
