"""printforge's Moonraker driver against the real Moonraker 0.11 (Arksine's, from PyPI).

Moonraker runs as its own process on the tests' mosquitto (tests/conformance/moonraker_host.py);
Klippy is either absent or the fake Klippy on Moonraker's unix-socket API
(tests/conformance/fake_klippy.py), driven through `ready` → `printing` → `shutdown` and away.
Each test states what real Moonraker does (asked over MQTT as any client would) and then what
the driver makes of it. Issue 19 items 3, 4 and 9.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio

from printforge.hardware.mqtt.moonraker import MoonrakerConfig, MoonrakerDriver
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus
from printforge.runtime.errors import PrinterDisconnected, PrinterError, PrinterFault
from tests.conformance.fake_klippy import FakeKlippy
from tests.conformance.moonraker_host import MoonrakerProcess, moonraker_binary
from tests.fakes.broker import Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = [pytest.mark.conformance, pytest.mark.mqtt]


def _moonraker(folder: Path, broker: Mosquitto) -> Iterator[MoonrakerProcess]:
    if not moonraker_binary().exists():
        pytest.fail(f"{moonraker_binary()} is missing: scripts/setup installs Moonraker there")
    proc = MoonrakerProcess(folder, broker.port)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def fresh_moonraker(
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto_broker: Mosquitto,
) -> Iterator[MoonrakerProcess]:
    """A Moonraker that no Klippy ever connects to (no test gives it one)."""
    yield from _moonraker(tmp_path_factory.mktemp("moonraker-alone"), mosquitto_broker)


@pytest.fixture(scope="module")
def moonraker(
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto_broker: Mosquitto,
) -> Iterator[MoonrakerProcess]:
    """One Moonraker for the tests that bring their own fake Klippy (each removes it after)."""
    yield from _moonraker(tmp_path_factory.mktemp("moonraker"), mosquitto_broker)


@pytest_asyncio.fixture
async def klippy(moonraker: MoonrakerProcess) -> AsyncIterator[FakeKlippy]:
    fake = FakeKlippy(moonraker.klippy_socket, moonraker.gcodes)
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.errors, fake.errors


def driver_for(moonraker: MoonrakerProcess, broker: Mosquitto, **options: Any) -> MoonrakerDriver:
    return MoonrakerDriver(
        "klipper",
        MoonrakerConfig(
            broker=broker.url,
            instance=moonraker.instance,
            http_url=moonraker.http_url,
            request_timeout_s=5.0,
            offline_grace_s=0.5,
            **options,
        ),
        PrinterProfile(name="generic-220"),
    )


@pytest_asyncio.fixture
async def started() -> AsyncIterator[Callable[[MoonrakerDriver], Any]]:
    """`await started(driver)` starts it; every driver started so is stopped after the test."""
    drivers: list[MoonrakerDriver] = []

    async def start(driver: MoonrakerDriver) -> MoonrakerDriver:
        drivers.append(driver)
        await driver.start()
        return driver

    yield start
    for driver in drivers:
        await asyncio.wait_for(driver.stop(), 10)


async def until(
    driver: MoonrakerDriver, test: Callable[[PrinterStatus], bool], timeout: float = 15.0
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


class RawClient:
    """Another MQTT client of the same Moonraker, speaking JSON-RPC the plain way."""

    def __init__(self, broker: Mosquitto, instance: str) -> None:
        self.broker = broker
        self.request = f"{instance}/moonraker/api/request"
        self.response = f"{instance}/moonraker/api/response"

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = f"raw-{uuid.uuid4().hex}"
        frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            frame["params"] = params
        async with aiomqtt.Client("127.0.0.1", self.broker.port) as client:
            await client.subscribe(self.response, qos=1)
            await client.publish(self.request, json.dumps(frame), qos=1)
            async with asyncio.timeout(10):
                async for message in client.messages:
                    reply = json.loads(message.payload)  # type: ignore[arg-type]
                    if reply.get("id") == request_id:
                        return reply  # type: ignore[no-any-return]
        raise AssertionError("unreachable")


@pytest.mark.asyncio
async def test_klippy_absent_the_printer_is_not_ready_and_nothing_is_sent_to_print(
    fresh_moonraker: MoonrakerProcess,
    mosquitto_broker: Mosquitto,
    started: Callable[[MoonrakerDriver], Any],
    tmp_path: Path,
) -> None:
    # What real Moonraker does with no Klippy: online on MQTT, server.info says so, Klippy's
    # methods are not registered (-32601), its own print methods answer 503.
    raw = RawClient(mosquitto_broker, fresh_moonraker.instance)
    info = (await raw.call("server.info"))["result"]
    assert (info["klippy_connected"], info["klippy_state"]) == (False, "disconnected")
    for method in ("printer.objects.query", "printer.info", "printer.objects.list"):
        params = {"objects": {"webhooks": None}} if method == "printer.objects.query" else None
        assert (await raw.call(method, params))["error"]["code"] == -32601
    for method in ("printer.print.start", "printer.print.pause"):
        params = {"filename": "x.gcode"} if method == "printer.print.start" else None
        error = (await raw.call(method, params))["error"]
        assert (error["code"], error["message"]) == (503, "Klippy Host not connected")

    driver: MoonrakerDriver = await started(driver_for(fresh_moonraker, mosquitto_broker))
    status = await until(driver, lambda s: "klippy" in (s.message or ""))
    # Not idle, not dispatchable, and saying why.
    assert status.state is PrinterState.OFFLINE
    assert "not connected" in (status.message or "") and "disconnected" in (status.message or "")
    assert not driver.connected.is_set()
    with pytest.raises(PrinterDisconnected, match="klippy"):
        async for _ in driver.stream(write_gcode(tmp_path, numbered_moves_gcode(20))):
            pass
    # Nothing went to the printer: no upload reached Moonraker's gcodes folder.
    assert not [p for p in fresh_moonraker.gcodes.rglob("*") if p.is_file()]
    assert driver.status().state is PrinterState.OFFLINE


@pytest.mark.asyncio
async def test_another_clients_replies_on_the_shared_topic_are_not_taken_for_ours(
    moonraker: MoonrakerProcess,
    mosquitto_broker: Mosquitto,
    klippy: FakeKlippy,
    started: Callable[[MoonrakerDriver], Any],
) -> None:
    # Moonraker answers every MQTT client on the one response topic. While our pause waits on
    # Klippy, a second client numbering its server.info requests 1, 2, 3… gets its answers
    # there; then Klippy goes away and Moonraker answers our pause with 503. The pause must
    # fail with that 503, not "succeed" with someone's server.info.
    await klippy.start()
    driver: MoonrakerDriver = await started(driver_for(moonraker, mosquitto_broker))
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    klippy.hold("pause_resume/pause")
    pause = asyncio.create_task(driver.pause())
    request = f"{moonraker.instance}/moonraker/api/request"
    response = f"{moonraker.instance}/moonraker/api/response"
    async with aiomqtt.Client("127.0.0.1", mosquitto_broker.port) as other:
        await other.subscribe(response, qos=1)
        for n in range(1, 101):
            frame = {"jsonrpc": "2.0", "method": "server.info", "id": n}
            await other.publish(request, json.dumps(frame), qos=1)
        answered: set[int] = set()
        async with asyncio.timeout(15):
            async for message in other.messages:
                reply = json.loads(message.payload)  # type: ignore[arg-type]
                if isinstance(reply.get("id"), int) and "result" in reply:
                    answered.add(reply["id"])
                if len(answered) == 100:
                    break
    assert not pause.done()  # every one of those went by; none was ours
    await klippy.stop()  # Moonraker fails what Klippy still owed it (klippy_connection.py)
    with pytest.raises(PrinterError, match="Klippy Disconnected") as caught:
        await asyncio.wait_for(pause, 10)
    assert caught.value.code == "moonraker_503"


@pytest.mark.asyncio
async def test_klippy_ready_printing_shutdown_through_real_moonraker(
    moonraker: MoonrakerProcess,
    mosquitto_broker: Mosquitto,
    klippy: FakeKlippy,
    started: Callable[[MoonrakerDriver], Any],
    tmp_path: Path,
) -> None:
    klippy.bytes_per_s = 2_000.0  # a print of minutes: it ends by the shutdown, not by itself
    await klippy.start(ready=False)  # Klippy connects but is still starting up
    driver: MoonrakerDriver = await started(driver_for(moonraker, mosquitto_broker))
    status = await until(driver, lambda s: "starting up" in (s.message or ""))
    assert status.state is PrinterState.CONNECTING
    assert not driver.connected.is_set()

    klippy.become_ready()
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    assert driver.connected.is_set()

    gcode = write_gcode(tmp_path, numbered_moves_gcode(3000))
    seen = asyncio.Event()

    async def run() -> None:
        async for _ in driver.stream(gcode, job_id="conf1"):
            seen.set()

    job = asyncio.create_task(run())
    try:
        await asyncio.wait_for(seen.wait(), 15)
        assert driver.status().state is PrinterState.PRINTING
        assert (moonraker.gcodes / "printforge" / "conf1.gcode").read_bytes() == gcode.read_bytes()
        started_file = 'SDCARD_PRINT_FILE FILENAME="printforge/conf1.gcode"'
        assert any(started_file in script for script in klippy.scripts)
        klippy.shutdown("MCU 'mcu' shutdown: Timer too close")
        with pytest.raises(PrinterFault, match="Timer too close"):
            await asyncio.wait_for(job, 15)
    finally:
        job.cancel()
    assert driver.status().state is PrinterState.FAULTED
    # Moonraker passes Klipper's refusal on: G-code in shutdown is an error (400).
    with pytest.raises(PrinterError) as caught:
        await driver.send("G28")
    assert caught.value.code == "moonraker_400"


@pytest.mark.parametrize("websocket", [True, False], ids=["notified", "polled"])
@pytest.mark.asyncio
async def test_klippy_going_away_is_seen_though_mqtt_says_nothing(
    moonraker: MoonrakerProcess,
    mosquitto_broker: Mosquitto,
    klippy: FakeKlippy,
    started: Callable[[MoonrakerDriver], Any],
    tmp_path: Path,
    websocket: bool,
) -> None:
    klippy.bytes_per_s = 2_000.0  # a print of minutes: it ends by Klippy's going, not by itself
    await klippy.start()
    driver: MoonrakerDriver = await started(
        driver_for(moonraker, mosquitto_broker, websocket=websocket, klippy_check_s=0.5)
    )
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(5000))
    seen = asyncio.Event()

    async def run() -> None:
        async for _ in driver.stream(gcode, job_id=f"gone-{websocket}"):
            seen.set()

    job = asyncio.create_task(run())
    try:
        await asyncio.wait_for(seen.wait(), 15)
        await klippy.stop()  # the Klipper host dies mid-print
        # The tree said "printing"; it must not outlive Klippy.
        status = await until(driver, lambda s: s.state is not PrinterState.PRINTING)
        assert status.state is PrinterState.OFFLINE and "klippy" in (status.message or "")
        with pytest.raises(PrinterDisconnected):
            await asyncio.wait_for(job, 15)
    finally:
        job.cancel()
    # Real Moonraker, Klippy gone after it was there: its methods stay registered but 503.
    raw = RawClient(mosquitto_broker, moonraker.instance)
    error = (await raw.call("printer.objects.query", {"objects": {"webhooks": None}}))["error"]
    assert (error["code"], error["message"]) == (503, "Klippy Host not connected")

    # Klippy back: ready again, from a fresh read of its objects.
    klippy = FakeKlippy(moonraker.klippy_socket, moonraker.gcodes)
    await klippy.start()
    try:
        await until(driver, lambda s: s.state is PrinterState.IDLE)
        assert driver.klipper is not None and driver.klipper.print_state == "standby"
    finally:
        await klippy.stop()


@pytest.mark.asyncio
async def test_a_reply_with_our_id_that_answers_another_method_is_not_taken(
    moonraker: MoonrakerProcess,
    mosquitto_broker: Mosquitto,
    klippy: FakeKlippy,
    started: Callable[[MoonrakerDriver], Any],
) -> None:
    await klippy.start()
    driver: MoonrakerDriver = await started(driver_for(moonraker, mosquitto_broker))
    await until(driver, lambda s: s.state is PrinterState.IDLE)
    klippy.hold("pause_resume/pause")  # Klippy answers our pause only when told to
    request = f"{moonraker.instance}/moonraker/api/request"
    response = f"{moonraker.instance}/moonraker/api/response"
    async with aiomqtt.Client("127.0.0.1", mosquitto_broker.port) as spy:
        await spy.subscribe(request, qos=1)
        pause = asyncio.create_task(driver.pause())
        async with asyncio.timeout(10):
            async for message in spy.messages:
                frame = json.loads(message.payload)  # type: ignore[arg-type]
                if frame.get("method") == "printer.print.pause":
                    ours = frame["id"]
                    break
        # A server.info result under our id: no answer to a pause.
        forged = {"jsonrpc": "2.0", "result": {"klippy_connected": True, "klippy_state": "ready"}}
        await spy.publish(response, json.dumps({**forged, "id": ours}), qos=1)
        # Then a status update from the same client: once the driver shows it, it has had the
        # forged reply too (one broker, one session, in order).
        marker = {"eventtime": 1.0, "status": {"extruder": {"temperature": 77.7}}}
        await spy.publish(f"{moonraker.instance}/klipper/status", json.dumps(marker), qos=1)
        await until(driver, lambda s: s.temperatures["hotend"].actual == 77.7)
        assert not pause.done()
        klippy.release("pause_resume/pause", error="Pause refused by the test")
        with pytest.raises(PrinterError, match="Pause refused by the test") as caught:
            await asyncio.wait_for(pause, 10)
    assert caught.value.code == "moonraker_400"
