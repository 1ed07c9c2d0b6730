"""MoonrakerDriver against the Moonraker simulator on a real mosquitto (JSON-RPC over MQTT,
Klipper status updates, HTTP upload)."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio

from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.moonraker import MoonrakerConfig, MoonrakerDriver
from printforge.hardware.mqtt.sim.moonraker import MoonrakerFaults, MoonrakerSimulator
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus
from printforge.runtime import metrics
from printforge.runtime.errors import PrinterDisconnected, PrinterFault
from tests.fakes.broker import Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt


@pytest_asyncio.fixture
async def klipper(
    request: pytest.FixtureRequest,
    mosquitto_broker: Mosquitto,
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


# Klippy's own state (issue 19 items 3, 4 and 9) ------------------------------------------------


async def until(
    driver: MoonrakerDriver, test: Callable[[PrinterStatus], bool], timeout: float = 10.0
) -> PrinterStatus:
    """Wait, on the driver's own status changes, until `test` holds."""
    changed = asyncio.Event()
    remove = driver.add_listener(lambda _status: changed.set())
    try:
        async with asyncio.timeout(timeout):
            while not test(driver.status()):
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise AssertionError(f"status never matched; last: {driver.status()!r}") from None
    finally:
        remove()
    return driver.status()


async def raw_call(
    broker: Mosquitto, instance: str, method: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One JSON-RPC request from a client of our own, as any MQTT client of Moonraker sends it."""
    request_id = f"raw-{uuid.uuid4().hex}"
    frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        frame["params"] = params
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{instance}/moonraker/api/response", qos=1)
        await client.publish(f"{instance}/moonraker/api/request", json.dumps(frame), qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                reply = json.loads(message.payload)  # type: ignore[arg-type]
                if reply.get("id") == request_id:
                    return reply  # type: ignore[no-any-return]
    raise AssertionError("unreachable")


@pytest_asyncio.fixture
async def pair(
    mosquitto_broker: Mosquitto,
) -> AsyncIterator[Callable[..., Any]]:
    """`await pair(klippy=..., faults=..., **driver_options)` -> a started (sim, driver)."""
    made: list[tuple[MoonrakerSimulator, MoonrakerDriver]] = []

    async def make(
        *, klippy: str = "ready", faults: MoonrakerFaults | None = None, **options: Any
    ) -> tuple[MoonrakerSimulator, MoonrakerDriver]:
        instance = f"klipper-{uuid.uuid4().hex[:8]}"
        sim = MoonrakerSimulator(
            BusSettings(broker=mosquitto_broker.url, reconnect_initial_s=0.05),
            instance,
            status_interval_s=0.05,
            faults=faults,
            klippy=klippy,  # type: ignore[arg-type]
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
                **options,
            ),
            PrinterProfile(name="generic-220"),
        )
        made.append((sim, driver))
        await driver.start()
        return sim, driver

    yield make
    for sim, driver in made:
        await asyncio.wait_for(driver.stop(), 10)
        await asyncio.wait_for(sim.stop(), 10)


@pytest.mark.asyncio
async def test_with_klippy_absent_the_printer_is_not_ready_and_nothing_is_sent(
    pair: Callable[..., Any], tmp_path: Path
) -> None:
    # Moonraker up and online on MQTT, Klippy not there: never idle, never dispatched to.
    sim, driver = await pair(klippy="absent")
    status = await until(driver, lambda s: "klippy" in (s.message or ""))
    assert status.state is PrinterState.OFFLINE and "not connected" in (status.message or "")
    assert not driver.connected.is_set()
    with pytest.raises(PrinterDisconnected, match="klippy"):
        async for _ in driver.stream(write_gcode(tmp_path, numbered_moves_gcode(10))):
            pass
    assert sim.files == {} and "printer.print.start" not in sim.calls


@pytest.mark.asyncio
@pytest.mark.parametrize("websocket", [True, False], ids=["notified", "polled"])
async def test_klippy_coming_and_going_in_the_simulator(
    pair: Callable[..., Any], websocket: bool
) -> None:
    sim, driver = await pair(websocket=websocket, klippy_check_s=0.3)
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    await sim.disconnect_klippy()  # nothing is published on MQTT: a notification or a poll
    status = await until(driver, lambda s: s.state is not PrinterState.IDLE)
    assert status.state is PrinterState.OFFLINE and "klippy" in (status.message or "")
    assert driver.klipper is None  # the tree Klippy left is not kept
    starting = asyncio.create_task(sim.connect_klippy(startup_s=1.0))
    status = await until(driver, lambda s: s.state is PrinterState.CONNECTING)
    assert "starting up" in (status.message or "")
    await starting
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    sim.shutdown_klippy("MCU 'mcu' shutdown: Timer too close")
    status = await until(driver, lambda s: s.state is PrinterState.FAULTED)
    assert "Timer too close" in (status.message or "")


@pytest.mark.asyncio
async def test_a_failed_status_query_leaves_the_printer_not_ready(pair: Callable[..., Any]) -> None:
    # Klippy dropped between server.info and the objects query: not ready (and why) until a
    # later look reads the objects.
    _sim, driver = await pair(
        faults=MoonrakerFaults(objects_query_fails=1), websocket=False, klippy_check_s=0.3
    )
    status = await until(driver, lambda s: "could not be read" in (s.message or ""))
    assert status.state is PrinterState.CONNECTING and not driver.connected.is_set()
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    assert driver.connected.is_set()


@pytest.mark.asyncio
async def test_the_simulator_answers_as_moonraker_does(
    pair: Callable[..., Any],
    mosquitto_broker: Mosquitto,
) -> None:
    # moonraker/server.py _handle_info_request; Klippy's endpoints only once Klippy connected
    # (-32601 before, 503 after it left); Moonraker's own printer.print.* 503 without Klippy.
    sim, _driver = await pair(klippy="absent")
    call = functools.partial(raw_call, mosquitto_broker, sim.instance)
    info = (await call("server.info"))["result"]
    assert (info["klippy_connected"], info["klippy_state"]) == (False, "disconnected")
    assert (await call("printer.info"))["error"]["code"] == -32601
    assert (await call("printer.objects.list"))["error"]["code"] == -32601
    assert (await call("printer.print.start", {"filename": "x"}))["error"]["code"] == 503
    await sim.connect_klippy()
    assert (await call("printer.info"))["result"]["state"] == "ready"
    assert "webhooks" in (await call("printer.objects.list"))["result"]["objects"]
    await sim.disconnect_klippy()
    error = (await call("printer.info"))["error"]
    assert (error["code"], error["message"]) == (503, "Klippy Host not connected")


@pytest.mark.asyncio
async def test_two_drivers_of_one_moonraker_do_not_take_each_others_replies(
    pair: Callable[..., Any],
    mosquitto_broker: Mosquitto,
) -> None:
    # Two orchestrators watching the same printer: their requests go out at once and their
    # replies come on the one response topic; numbered 1, 2, 3… each, they used to collide.
    sim, first = await pair(faults=MoonrakerFaults(response_delay_s=0.3))
    second = MoonrakerDriver(
        "mk2",
        MoonrakerConfig(
            broker=mosquitto_broker.url,
            instance=sim.instance,
            http_url=sim.http_url,
            request_timeout_s=3.0,
        ),
        PrinterProfile(name="generic-220"),
    )
    await second.start()
    try:
        await until(first, lambda s: s.state is PrinterState.IDLE)
        await until(second, lambda s: s.state is PrinterState.IDLE)
        paused, info = await asyncio.gather(
            first._rpc("printer.print.pause"), second._rpc("server.info")
        )
        assert paused == "ok"
        assert isinstance(info, dict) and info["klippy_state"] == "ready"
    finally:
        await asyncio.wait_for(second.stop(), 10)


@pytest.mark.asyncio
async def test_the_eta_follows_the_files_time_plan(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver], tmp_path: Path
) -> None:
    """Klipper's file position is read on the file's time plan (worked out while the print
    starts, a few ms against the seconds this print takes), corrected by the pace."""
    _sim, driver = klipper
    gcode = write_gcode(tmp_path, numbered_moves_gcode(2000))
    progress = [p async for p in driver.stream(gcode, job_id="k-eta")]
    planned = [p for p in progress[len(progress) // 2 : -1] if p.eta_source == "estimate"]
    assert planned, [p.eta_source for p in progress]
    for p in planned:
        assert p.eta_s is not None and p.finish_at is not None
        assert p.planned_s is not None and p.planned_s > 0
        assert p.pace is not None
