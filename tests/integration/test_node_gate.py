"""The node gates every path to its printers itself (issue 11, items 1 and 2).

A real mosquitto, a real `printforge node --virtual 1` process, and the orchestrator's bus
driver as the sender: it uploads and starts files and sends lines without gating them itself,
as any client on the broker could.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from printforge.hardware.mqtt.discovery import BusDiscovery
from printforge.hardware.mqtt.remote import RemotePrinterDriver
from printforge.orchestrator.printers import PrinterManager
from printforge.runtime.errors import UnsafeGcode
from printforge.settings import load_settings
from tests.fakes.broker import Mosquitto

pytestmark = pytest.mark.mqtt

REPO = Path(__file__).resolve().parents[2]
PRINTER = "gate.virtual-1"


async def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
    if not line:
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"node exited: {err}")


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - state spread over several objects
            await asyncio.sleep(0.05)


def _node_process(url: str, prefix: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "printforge",
            "node",
            "--broker",
            url,
            "--topic-prefix",
            prefix,
            "--node-id",
            "gate",
            "--status-interval",
            "0.2",
            "--virtual",
            "1",
            "--sim-speed",
            "200",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PRINTFORGE_ENV": "development"},
    )


@pytest_asyncio.fixture
async def node(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> AsyncIterator[tuple[BusDiscovery, RemotePrinterDriver]]:
    """A node process with one virtual printer (generic-220, PLA), seen through discovery."""
    prefix = f"g{uuid.uuid4().hex[:10]}/v1"
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "bus": {
                "broker": mosquitto_broker.url,
                "topic_prefix": prefix,
                "command_retry_s": 0.5,
                "reconnect_initial_s": 0.05,
            },
        }
    )
    disc = BusDiscovery(settings, PrinterManager(settings))
    await disc.start(wait_s=5)
    proc = _node_process(mosquitto_broker.url, prefix)
    try:
        await _ready(proc)
        await _until(lambda: disc.manager.available(PRINTER))
        driver = disc.manager.get(PRINTER)
        assert isinstance(driver, RemotePrinterDriver)
        yield disc, driver
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        await disc.stop()


def _hotend_target(disc: BusDiscovery) -> float:
    temps = disc.farm.statuses[PRINTER].temperatures
    return max((t.target for t in temps.values()), default=0.0)


@pytest.mark.asyncio
async def test_a_started_file_is_gated_by_the_node_before_a_byte_is_streamed(
    node: tuple[BusDiscovery, RemotePrinterDriver], tmp_path: Path
) -> None:
    disc, driver = node
    unsafe = tmp_path / "attack.gcode"
    unsafe.write_text("M104 S400\nM140 S200\nM500\nG1 X9999\n")
    with pytest.raises(UnsafeGcode) as refused:
        async for _ in driver.stream(unsafe, job_id="attack"):
            pass
    message = refused.value.message
    for words in ("M104 S400", "M140 S200", "M500", "moves X to 9999"):
        assert words in message
    # Nothing reached the heaters: the printer is idle with its targets at zero.
    assert _hotend_target(disc) == 0.0
    assert disc.farm.statuses[PRINTER].job_id is None


@pytest.mark.asyncio
async def test_a_file_that_is_not_gcode_is_refused_by_the_node(
    node: tuple[BusDiscovery, RemotePrinterDriver], tmp_path: Path
) -> None:
    _disc, driver = node
    prose = tmp_path / "fun.gcode"
    prose.write_text("M112 is fun\n")
    with pytest.raises(UnsafeGcode, match=r"not G-code: line 1"):
        async for _ in driver.stream(prose, job_id="prose"):
            pass


@pytest.mark.asyncio
async def test_send_follows_relative_moves_and_offsets_across_lines(
    node: tuple[BusDiscovery, RemotePrinterDriver],
) -> None:
    _disc, driver = node
    # Before a home the node does not know where the head is: a relative move is refused.
    await driver.send("G91")
    with pytest.raises(UnsafeGcode, match=r"home"):
        await driver.send("G1 X150")
    # Homed, relative moves accumulate across the lines sent: 150 is inside, 300 is not.
    await driver.send("G28")
    await driver.send("G1 X150")
    with pytest.raises(UnsafeGcode, match=r"moves X to 300"):
        await driver.send("G1 X150")
    # A G92 offset shifts the logical origin: X200 is then a move to 700 mm.
    await driver.send("G90")
    await driver.send("G28")
    await driver.send("G92 X-500")
    with pytest.raises(UnsafeGcode, match=r"moves X to 700"):
        await driver.send("G1 X200")
    # A refused line changed nothing: the state the next line is judged from is unchanged.
    await driver.send("G1 X-450")  # machine X 50
    with pytest.raises(UnsafeGcode, match=r"M500"):
        await driver.send("M500")
    with pytest.raises(UnsafeGcode, match=r"not G-code"):
        await driver.send("hello printer")
