"""A print on a bus printer outlives its orchestrator (issue 16): when the instance that
started it is killed, another takes the job over and follows the print to its end.

The killed instance is a real child process (tests/fakes/instance.py); both instances share one
data directory with leases, so the survivor finds the dead one by its liveness mark at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from printforge.models.job import Job, JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.orchestrator.store import JobStore
from printforge.settings import load_settings
from tests.fakes.broker import Mosquitto
from tests.fakes.instance import start_instance
from tests.fakes.node import node_process, ready_line, stop
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode


async def until(predicate, timeout: float = 60.0) -> Any:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not (value := await predicate()):  # noqa: ASYNC110 - the store is the truth
            await asyncio.sleep(0.05)
        return value


def _overrides(data: Path, broker: str, prefix: str) -> dict[str, Any]:
    return {
        "data_dir": str(data),
        "store": {"leases": True, "lease_s": 2.0},
        "bus": {"broker": broker, "topic_prefix": prefix, "command_retry_s": 0.5,
                "reconnect_initial_s": 0.05},
    }  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_bus_print_is_adopted_when_its_instance_dies(
    mosquitto_broker: Mosquitto, tmp_path: Path
) -> None:
    prefix = f"a{uuid.uuid4().hex[:10]}/v1"
    data = tmp_path / "data"
    printer = "eta.virtual-1"
    # Long enough to outlive the first instance: 0.5 mm moves at 300 mm/min, at 20x.
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300, feed=300))
    node = node_process(mosquitto_broker.url, prefix, "eta", "--virtual", "1", "--sim-speed", "20")
    overrides = _overrides(data, mosquitto_broker.url, prefix)
    request = PrintRequest(gcode_path=gcode, printer=printer)
    first = start_instance(overrides, request)
    try:
        await ready_line(node)
        assert (await ready_line(first)).strip() == "ready"
        job_id = (await ready_line(first)).strip()
        store = JobStore(data / "printforge.sqlite3")
        await store.open()
        try:

            async def streaming() -> bool:
                job = await store.get(job_id)
                # Streaming on the node: the line it reached is saved on each heartbeat.
                return job is not None and (job.last_acked_line or 0) > 5

            await until(streaming, 120)
        finally:
            await store.close()
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)

        async with Orchestrator(load_settings(overrides=overrides)) as survivor:
            assert survivor.leases is not None and survivor.leases.taken_over == 1
            done = await survivor.wait(job_id, timeout=180)
            assert done.state is JobState.COMPLETED, done.error
            reasons = [r for _, _, _, r in await survivor.store.transitions(job_id)]
            assert reasons[-1] == f"printed on {printer} (adopted)"
            assert "recovered after takeover" not in reasons  # it kept printing
            assert await survivor.store.foreign_printers("nobody") == set()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate(timeout=30)
        stop(node)


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_dead_instances_job_on_a_printer_this_one_now_prints_on_waits_for_it(
    mosquitto_broker: Mosquitto, tmp_path: Path
) -> None:
    """The 1,000-job bench's lost jobs: a dead instance's printer lease lapsed before its job's
    takeover, this instance leased the printer and started its own job Y there, then took the
    dead job X over. Adopting X re-claimed the printer under the same owner (so for X), and X's
    end freed it while Y printed: X (or another instance's job) was started on it, the node
    refused, and that job failed. X must be settled without touching Y's printer, and wait."""
    prefix = f"b{uuid.uuid4().hex[:10]}/v1"
    data = tmp_path / "data"
    printer = "eta.virtual-1"
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300, feed=300))
    node = node_process(mosquitto_broker.url, prefix, "eta", "--virtual", "1", "--sim-speed", "20")
    try:
        await ready_line(node)
        async with Orchestrator(
            load_settings(overrides=_overrides(data, mosquitto_broker.url, prefix))
        ) as orch:
            assert orch.leases is not None
            y = await orch.submit(PrintRequest(gcode_path=gcode, printer=printer))

            async def printing() -> bool:
                job = await orch.store.get(y.id)
                return job is not None and (job.last_acked_line or 0) > 5

            await until(printing, 120)
            # The dead instance's job: printing on the same printer (it had been, before its
            # printer lease lapsed), its job lease lapsed too.
            x = Job(request=PrintRequest(gcode_path=gcode, printer=printer),
                    state=JobState.PRINTING, printer=printer)  # fmt: skip
            async with orch.store.transaction() as tx:
                # Leased to an instance long gone, in one statement (a sweep between an insert
                # and the lease would take over a job with none): the next sweep takes it.
                await tx.execute(
                    "INSERT INTO jobs (id, state, priority, created_at, updated_at, data,"
                    " lease_owner, lease_expires, lease_stage)"
                    " VALUES (?, ?, 0, ?, ?, ?, 'gone/1/dead', 0, 'printer')",
                    (x.id, x.state.value, x.created_at.isoformat(), x.updated_at.isoformat(),
                     x.model_dump_json()),
                )  # fmt: skip
            await orch.leases.sweep()

            async def settled() -> bool:
                reasons = [r for _, _, _, r in await orch.store.transitions(x.id)]
                return "adopted print had not started" in reasons

            await until(settled, 60)
            # Y keeps its printer while it prints: reserved here for Y, and leased for Y.
            assert (await orch.get(y.id)).state is JobState.PRINTING  # else this proves nothing
            assert orch.printers.reserved_by(printer) == y.id
            assert await orch.store.foreign_printers("another") == {printer}
            # X never printed there: queued again, and printed once Y is done.
            done_y = await orch.wait(y.id, timeout=240)
            done_x = await orch.wait(x.id, timeout=240)
            assert done_y.state is JobState.COMPLETED, done_y.error
            assert done_x.state is JobState.COMPLETED, done_x.error
    finally:
        stop(node)
