"""A bus print whose orchestrator died, adopted by another (issue 16).

The printer is on another host's node and keeps printing when the orchestrator that started
the job dies. The instance that takes the job over leases the printer, reserves it, follows the
print from the printer's statuses (`RemotePrinterDriver.follow`) and records how it ended, as
if it had started it. A print on a printer only the dead instance could reach (a serial port
of its own host) cannot be followed: that job is marked interrupted with its last acknowledged
line, saved on each lease heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from printforge.models.job import Job, JobError, JobState, StageName, StageState
from printforge.runtime.errors import PrintCancelled, PrinterDisconnected, PrintforgeError

__all__ = ["can_follow", "follow_print"]

log = logging.getLogger(__name__)


# How long a taken-over print waits for its printer to be seen on the bus (this instance may
# have just started, its discovery not yet having heard every node's retained status).
_APPEAR_S = 15.0


class _Orchestrator(Protocol):
    settings: Any
    store: Any
    printers: Any
    pipeline: Any
    leases: Any

    def _enqueue(self, job: Job) -> None: ...


def can_follow(orch: _Orchestrator, job: Job) -> bool:
    """A print this instance may be able to adopt: on a bus printer (one it knows as such, or
    one not in its own config while it is on the farm bus)."""
    name = job.printer
    if job.state is not JobState.PRINTING or name is None:
        return False
    if name in orch.printers.names():
        return bool(orch.printers.shared(name))
    return bool(orch.settings.bus.broker) and name not in orch.settings.printers


async def _appeared(orch: _Orchestrator, name: str) -> bool:
    try:
        async with asyncio.timeout(_APPEAR_S):
            while name not in orch.printers.names():
                await orch.printers.wait_changed(timeout=1.0)
    except TimeoutError:
        return False
    return bool(orch.printers.shared(name))


async def follow_print(orch: _Orchestrator, job: Job) -> Job:
    """Follow the adopted print to its end and record it (the job's lease is already ours)."""
    name = job.printer
    assert name is not None
    pipeline = orch.pipeline
    if not await _appeared(orch, name):
        await _interrupted(orch, job, f"printer {name} was not seen on the bus", None)
        return job
    mine = orch.printers.reserved_by(name)
    if mine is not None and mine != job.id:
        # The dead owner's printer lease lapsed before its job's, and this instance leased the
        # printer for a job of its own, which holds it now: the adopted job is not printing
        # there. Its printer (reservation and lease) stays that job's: claiming it for the
        # adopted one would free it when this job ends, under the running print.
        return await _settle_elsewhere(orch, job, name, f"printer {name} now prints job {mine}")
    if not await _claim(orch, name, job.id):
        log.warning("job %s: printer %s is another instance's now", job.id, name)
        return await _settle_elsewhere(
            orch, job, name, f"printer {name} was taken by another instance"
        )
    orch.printers.adopt(name, job.id)
    record = job.stage(StageName.PRINTER)
    if await _never_started(orch, name, job.id):
        orch.printers.release(name, printed=False)
        await _requeue(orch, job)
        return job
    pipeline._emit(job, "log", StageName.PRINTER, message=f"adopted the print on {name}")
    try:
        async for progress in orch.printers.get(name).follow(job.id):
            job.last_acked_line = progress.lines_acked
            pipeline._emit(job, "stage.progress", StageName.PRINTER, progress=progress.fraction,
                           data={"printer": name, "lines_acked": progress.lines_acked})  # fmt: skip
        record.state = StageState.COMPLETED
        pipeline._emit(job, "stage.completed", StageName.PRINTER, progress=1.0)
        await pipeline.move(job, JobState.COMPLETED, reason=f"printed on {name} (adopted)")
    except PrinterDisconnected as err:
        await _interrupted(orch, job, err.message, err.last_acked_line)
    except PrintCancelled as err:
        record.state = StageState.CANCELLED
        await pipeline.move(job, JobState.CANCELLED,
                            error=JobError(code=err.code, message=err.message),
                            reason="cancelled at the printer")  # fmt: skip
    except PrintforgeError as err:
        record.state = StageState.FAILED
        await pipeline.move(job, JobState.FAILED,
                            error=JobError(code=err.code, message=err.message))  # fmt: skip
    finally:
        orch.printers.release(name, printed=True)
    return job


async def _requeue(orch: _Orchestrator, job: Job) -> None:
    """The dead instance had not started the print (it died before its start command): nothing
    is on the bed, and the job is queued again like any other that had not printed."""
    job.stage(StageName.PRINTER).state = StageState.INTERRUPTED
    await orch.pipeline.move(job, JobState.INTERRUPTED,
                             error=JobError(code="interrupted", message="its instance stopped"
                                            " before the print started"),
                             reason="adopted print had not started")  # fmt: skip
    await orch.pipeline.move(job, JobState.QUEUED, reason="re-queued after takeover")
    orch._enqueue(job)


async def _settle_elsewhere(orch: _Orchestrator, job: Job, name: str, why: str) -> Job:
    """An adopted print whose printer another job holds: queued again if the printer's node
    never had it, else interrupted (it ran there once; how it ended cannot be followed)."""
    if await _never_started(orch, name, job.id):
        await _requeue(orch, job)
    else:
        await _interrupted(orch, job, why, None)
    return job


async def _claim(orch: _Orchestrator, name: str, job_id: str) -> bool:
    """The printer's lease for this instance: the dead owner's lapses with its job's (both are
    renewed by one heartbeat), so it is asked again for up to two leases."""
    ttl = orch.leases.ttl_s
    deadline = asyncio.get_running_loop().time() + 2 * ttl
    while True:
        if await orch.store.claim_printer(name, orch.leases.instance, ttl, job_id):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(ttl / 4)


async def _never_started(orch: _Orchestrator, name: str, job_id: str) -> bool:
    """Whether the printer's node has never had the job: judged on a status it published
    after now (a start command of the dead instance may still have been on its way)."""
    driver = orch.printers.get(name)
    seen = driver.remote.seq if driver.remote is not None else -1
    try:
        async with asyncio.timeout(orch.settings.bus.stale_after_s):
            while driver.remote is None or driver.remote.seq <= seen:
                await orch.printers.wait_changed(timeout=1.0)
    except TimeoutError:
        return False  # nothing new heard: follow() decides (and says why)
    status = driver.remote
    last = status.last_job
    return status.job_id != job_id and (last is None or last.job_id != job_id)


async def _interrupted(orch: _Orchestrator, job: Job, message: str, line: int | None) -> None:
    if line is not None:
        job.last_acked_line = line
    job.stage(StageName.PRINTER).state = StageState.INTERRUPTED
    await orch.pipeline.move(job, JobState.INTERRUPTED,
                             error=JobError(code="connection_lost", message=message),
                             reason="adopted print lost")  # fmt: skip
