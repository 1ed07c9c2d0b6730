"""MoonrakerDriver against the Moonraker simulator on a real mosquitto (JSON-RPC over MQTT,
Klipper status updates, HTTP upload)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.moonraker import MoonrakerConfig, MoonrakerDriver
from printforge.hardware.mqtt.sim.moonraker import MoonrakerFaults, MoonrakerSimulator
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime import metrics
from printforge.runtime.errors import PrinterDisconnected, PrinterError, PrinterFault
from tests.fakes.broker import Mosquitto, mosquitto_broker  # noqa: F401
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt


@pytest_asyncio.fixture
async def klipper(
    request: pytest.FixtureRequest,
    mosquitto_broker: Mosquitto,  # noqa: F811
) -> AsyncIterator[tuple[MoonrakerSimulator, MoonrakerDriver]]:
    options = dict(getattr(request, "param", {}))  # simulator faults, by indirect parametrize
    instance = f"klipper-{uuid.uuid4().hex[:8]}"
    sim = MoonrakerSimulator(
        BusSettings(broker=mosquitto_broker.url, reconnect_initial_s=0.05),
        instance,
        bytes_per_s=options.pop("bytes_per_s", 20_000),
        status_interval_s=0.05,
        faults=MoonrakerFaults(**options),
    )
    await sim.start()
    driver = MoonrakerDriver(
        "mk",
        MoonrakerConfig(
            broker=mosquitto_broker.url,
            instance=instance,
            http_url=sim.http_url,
            offline_grace_s=0.5,
            request_timeout_s=3.0,
        ),
        PrinterProfile(name="generic-220"),
    )
    await driver.start()
    try:
        await asyncio.wait_for(driver.connected.wait(), 5)
        yield sim, driver
    finally:
        await driver.stop()
        await sim.stop()


@pytest.mark.asyncio
async def test_print_uploads_starts_and_completes(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], tmp_path: Path
) -> None:
    sim, driver = klipper
    gcode = write_gcode(tmp_path, numbered_moves_gcode(400))
    progress = [p async for p in driver.stream(gcode, job_id="k1")]
    assert sim.files["printforge/k1.gcode"] == gcode.read_bytes()
    assert "printer.print.start" in sim.calls
    assert progress and progress[-1].fraction == 1.0
    assert [p.bytes_acked for p in progress] == sorted(p.bytes_acked for p in progress)
    assert driver.status().state is PrinterState.IDLE
    assert driver.status().temperatures["hotend"].target >= 0


@pytest.mark.asyncio
async def test_pause_resume_cancel_map_to_methods(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], tmp_path: Path
) -> None:
    sim, driver = klipper
    gcode = write_gcode(tmp_path, numbered_moves_gcode(2000))
    task: asyncio.Task[None]
    first = asyncio.Event()

    async def run() -> None:
        async for _ in driver.stream(gcode, job_id="k2"):
            first.set()

    task = asyncio.create_task(run())
    await asyncio.wait_for(first.wait(), 5)
    await driver.pause()
    assert sim.tree["print_stats"]["state"] == "paused"
    await driver.resume()
    assert sim.tree["print_stats"]["state"] == "printing"
    await driver.send("M117 hello")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.tree["print_stats"]["state"] == "cancelled"
    for method in ("printer.print.pause", "printer.print.resume", "printer.gcode.script"):
        assert method in sim.calls
    # Klipper's PAUSE with nothing printing is only a console message (pause_resume.py), so
    # Moonraker answers "ok" and nothing changes.
    await driver.pause()
    assert sim.tree["print_stats"]["state"] == "cancelled"


@pytest.mark.asyncio
@pytest.mark.parametrize("klipper", [dict(fail_at_fraction=0.3)], indirect=True)
async def test_klipper_error_is_a_fault(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], tmp_path: Path
) -> None:
    _sim, driver = klipper
    gcode = write_gcode(tmp_path, numbered_moves_gcode(400))
    with pytest.raises(PrinterFault, match="not heating"):
        async for _ in driver.stream(gcode):
            pass
    assert driver.status().state is PrinterState.FAULTED


@pytest.mark.asyncio
async def test_emergency_stop_shuts_klipper_down(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver],
) -> None:
    sim, driver = klipper
    await driver.emergency_stop()
    assert sim.tree["webhooks"]["state"] == "shutdown"
    async with asyncio.timeout(5):
        while driver.status().state is not PrinterState.FAULTED:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.mark.asyncio
@pytest.mark.parametrize("klipper", [dict(drop_at_fraction=0.2, drop_for_s=3.0)], indirect=True)
async def test_moonraker_leaving_the_bus_interrupts(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], tmp_path: Path
) -> None:
    _sim, driver = klipper
    gcode = write_gcode(tmp_path, numbered_moves_gcode(800))
    with pytest.raises(PrinterDisconnected):
        async for _ in driver.stream(gcode):
            pass
    assert driver.status().state is PrinterState.OFFLINE


@pytest.mark.asyncio
@pytest.mark.parametrize("klipper", [dict(malformed_every=3, response_delay_s=0.2)], indirect=True)
async def test_malformed_reports_and_slow_replies_are_survived(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], tmp_path: Path
) -> None:
    _sim, driver = klipper
    before = metrics.MQTT_MALFORMED.labels("moonraker")._value.get()
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
    progress = [p async for p in driver.stream(gcode)]
    assert progress[-1].fraction == 1.0
    assert metrics.MQTT_MALFORMED.labels("moonraker")._value.get() > before


@pytest.mark.asyncio
async def test_garbage_on_the_server_status_topic_does_not_take_klipper_offline(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver],
) -> None:
    # Moonraker publishes its server status only when it connects or leaves (retained), so a
    # garbage message there used to mark a healthy printer offline until Moonraker restarted.
    sim, driver = klipper
    topic = driver.topics.moonraker_status
    before = metrics.MQTT_MALFORMED.labels("moonraker")._value.get()
    for garbage in (b"{not json", b"[1]", b'{"jsonrpc": "2.0", "id": 1, "result": null}'):
        await sim.client.publish(topic, garbage, qos=1)
    async with asyncio.timeout(10):
        while metrics.MQTT_MALFORMED.labels("moonraker")._value.get() < before + 3:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert driver.status().state is PrinterState.IDLE
    await driver.send("M117 still here")


@pytest.mark.asyncio
async def test_a_status_field_of_the_wrong_type_is_counted_and_does_not_stick(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], caplog: pytest.LogCaptureFixture
) -> None:
    # Kept in the object tree, "hot" used to make every later update raise (a traceback
    # each, uncounted) while the printer's status stood still.
    sim, driver = klipper
    topic = driver.topics.klipper_status
    before = metrics.MQTT_MALFORMED.labels("moonraker")._value.get()
    bad = json.dumps(
        {
            "eventtime": 1.0,
            "status": {"extruder": {"temperature": "hot"}, "print_stats": {"state": [1]}},
        }
    )
    await sim.client.publish(topic, bad, qos=1)
    async with asyncio.timeout(10):
        while metrics.MQTT_MALFORMED.labels("moonraker")._value.get() < before + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    good = b'{"eventtime": 2.0, "status": {"heater_bed": {"temperature": 41.5}}}'
    await sim.client.publish(topic, good, qos=1)
    async with asyncio.timeout(10):
        while driver.status().temperatures["bed"].actual != 41.5:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert driver.status().state is PrinterState.IDLE
