"""The whole farm: `printforge node` processes on the bus and the Orchestrator (as `serve` runs
it) dispatching a job to one of them. Killing that node with SIGKILL mid-print re-queues the
job; when the node comes back the job prints there to completion. Nothing is forgotten."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest

from printforge.models.job import JobState
from printforge.models.printer import PrinterState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.settings import load_settings
from tests.fakes.broker import Mosquitto
from tests.fakes.node import node_process, ready_line, stop
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt


async def until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - the job store is the truth here
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_killed_node_requeues_the_job_and_it_finishes_later(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    prefix = f"o{uuid.uuid4().hex[:10]}/v1"
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "bus": {
                "broker": mosquitto_broker.url,
                "topic_prefix": prefix,
                "offline_grace_s": 0.3,
                "stale_after_s": 3.0,
                "command_retry_s": 0.5,
                "reconnect_initial_s": 0.05,
            },
            "orchestrator": {"requeue_interrupted": True, "max_print_attempts": 3},
        }
    )
    # Slow enough to be killed mid-print: 0.5 mm moves at 300 mm/min in real time.
    gcode = write_gcode(tmp_path, numbered_moves_gcode(60, feed=300))
    printer = "gamma.virtual-1"
    node = node_process(mosquitto_broker.url, prefix, "gamma", "--virtual", "1", "--sim-speed", "1")
    async with Orchestrator(settings) as orch:
        try:
            await ready_line(node)

            async def remote_ready() -> bool:
                return printer in orch.printers.names() and orch.printers.available(printer)

            await until(remote_ready)
            job = await orch.submit(PrintRequest(gcode_path=gcode, printer=printer))

            async def printing() -> bool:
                driver = orch.printers.get(printer)
                progress = driver.status().progress
                return progress is not None and progress.lines_acked > 3

            await until(printing)
            os.kill(node.pid, signal.SIGKILL)
            node.communicate(timeout=10)

            async def requeued() -> bool:
                j = await orch.get(job.id)
                return j.state in (JobState.QUEUED, JobState.INTERRUPTED) and (
                    orch.printers.get(printer).status().state is PrinterState.OFFLINE
                )

            await until(requeued)
            assert (await orch.get(job.id)).state is not JobState.FAILED

            # The host comes back: same printer id, new process. The job prints there.
            node = node_process(
                mosquitto_broker.url, prefix, "gamma", "--virtual", "1", "--sim-speed", "50"
            )
            await ready_line(node)
            done = await orch.wait(job.id, timeout=60)
            assert done.state is JobState.COMPLETED, done.error
            assert done.print_attempts >= 2
        finally:
            stop(node)


@pytest.mark.asyncio
async def test_orchestrator_dispatches_to_a_bambu_simulator_of_a_mock_farm(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # What `printforge serve` with [bus] broker set does, against `printforge node --sim-bambu`.
    from printforge.hardware.mqtt.remote import RemotePrinterDriver  # appended test: local import

    prefix = f"o{uuid.uuid4().hex[:10]}/v1"
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "bus": {
                "broker": mosquitto_broker.url,
                "topic_prefix": prefix,
                "stale_after_s": 5.0,
                "command_retry_s": 0.5,
                "reconnect_initial_s": 0.05,
            },
        }
    )
    gcode = write_gcode(tmp_path, numbered_moves_gcode(200))
    printer = "kappa.bambu-2"
    node = node_process(mosquitto_broker.url, prefix, "kappa", "--sim-bambu", "2")
    async with Orchestrator(settings) as orch:
        try:
            await ready_line(node)

            async def remote_ready() -> bool:
                return printer in orch.printers.names() and orch.printers.available(printer)

            await until(remote_ready)
            job = await orch.submit(PrintRequest(gcode_path=gcode, printer=printer))
            done = await orch.wait(job.id, timeout=60)
            assert done.state is JobState.COMPLETED, done.error
            # Discovered over the bus, printed by the node's Bambu driver on its simulator.
            remote = orch.printers.get(printer)
            assert isinstance(remote, RemotePrinterDriver) and remote.remote is not None
            assert remote.remote.driver == "bambu"
            last_job = remote.remote.last_job
            assert last_job is not None and last_job.job_id == job.id
            assert last_job.outcome == "completed"
        finally:
            stop(node)
