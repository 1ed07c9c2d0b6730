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

from printforge.models.job import JobState
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
