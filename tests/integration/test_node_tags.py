"""Issue 15, item 3 on a real farm bus: a `printforge node` publishes each printer's
`[printers.NAME] tags` with its status, the orchestrator (as `serve` runs it) discovers them,
and a job that asks for a tag goes only to a printer that has it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from printforge.models.job import JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.runtime.errors import InputError
from printforge.settings import load_settings
from tests.fakes.broker import Mosquitto
from tests.fakes.node import node_process, ready_line, stop
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt


@pytest.mark.asyncio
async def test_a_tagged_job_goes_to_the_node_printer_with_the_tag(
    mosquitto_broker: Mosquitto, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}/v1"
    node_config = tmp_path / "node.toml"
    node_config.write_text('[printers.enc]\ndriver = "virtual"\ntags = ["enclosed", "0.6mm"]\n')
    node = node_process(
        mosquitto_broker.url, prefix, "tnode", "--config", str(node_config), "--printer", "enc",
        "--virtual", "1", "--sim-speed", "500",
    )  # fmt: skip
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "bus": {"broker": mosquitto_broker.url, "topic_prefix": prefix},
        }
    )
    gcode = write_gcode(tmp_path, numbered_moves_gcode(40))
    try:
        await ready_line(node)
        async with Orchestrator(settings) as orch:
            names = ("tnode.enc", "tnode.virtual-1")
            async with asyncio.timeout(30):
                while not all(n in orch.printers.names() for n in names):
                    await orch.printers.wait_changed(timeout=1.0)
            assert orch.printers.entry("tnode.enc").tags == ["enclosed", "0.6mm"]
            assert orch.printers.entry("tnode.virtual-1").tags == []
            for _ in range(2):
                job = await orch.submit(PrintRequest(gcode_path=gcode, tags=["enclosed"]))
                done = await orch.wait(job.id, timeout=60)
                assert done.state is JobState.COMPLETED, done.error
                assert done.printer == "tnode.enc"
            with pytest.raises(InputError, match="no printer has tags enclosed"):
                await orch.submit(PrintRequest(gcode_path=gcode, tags=["enclosed"],
                                               printer="tnode.virtual-1"))  # fmt: skip
    finally:
        stop(node)
