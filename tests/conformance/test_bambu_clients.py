"""A third-party Bambu client, `bambulabs-api` 2.6 (PyPI), against our Bambu simulator.

The simulator is what mock farms and CI print on instead of a printer; here a client nobody
here wrote drives it over MQTT-over-TLS and implicit FTPS as it would drive a printer: reading
its status, uploading, starting a `.gcode.3mf` project (`project_file`) and a bare G-code file
(`gcode_file`), pausing, resuming, stopping. Then the same client, as a second user of the
printer, cancels a print printforge's driver started, and its commands (sequence ids "0" and
"10000000", or none) travel the same report topic as ours. Issue 19 items 4, 5 and 6.
"""

from __future__ import annotations

import asyncio
import io
import json
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import bambulabs_api as bl
import pytest
import pytest_asyncio

from printforge.hardware.mqtt.bambu import BambuConfig, BambuDriver
from printforge.hardware.mqtt.bambu_project import build_project
from printforge.hardware.mqtt.bambu_protocol import CANCELLED
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.sim.bambu import BambuSimulator
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime.errors import PrinterError, PrinterFault
from tests.fakes.broker import BAMBU_ACCESS_CODE, Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.mqtt,
    # bambulabs-api makes its TLS context with ssl.PROTOCOL_TLS (mqtt_client.py tls_set).
    pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning"),
]


def server_context(broker: Mosquitto) -> ssl.SSLContext:
    assert broker.tls is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(broker.tls.cert, broker.tls.key)
    return ctx


class Client:
    """bambulabs-api's Printer, pointed at the simulator's ports, with a way to wait on it."""

    def __init__(self, serial: str, mqtt_port: int, ftp_port: int) -> None:
        self.printer = bl.Printer("127.0.0.1", BAMBU_ACCESS_CODE, serial)
        # Printer() takes no ports (a printer listens on 8883 and 990); the simulator's are free
        # ones, so they are set on the client's two halves.
        self.printer.mqtt_client._port = mqtt_port
        self.printer.ftp_client.port = ftp_port
        self._changed = threading.Condition()
        self.printer.mqtt_client.on_message_handler = self._on_message

    def _on_message(self, *_args: Any) -> None:
        with self._changed:
            self._changed.notify_all()

    def start(self) -> None:
        self.printer.mqtt_start()

    def stop(self) -> None:
        self.printer.mqtt_client._client.disconnect()
        self.printer.mqtt_stop()

    def dump(self) -> dict[str, Any]:
        """What the client has merged from the reports, without its getters' pushall."""
        return dict(self.printer.mqtt_dump().get("print", {}))

    def wait(
        self, test: Callable[[dict[str, Any]], bool], timeout: float = 15.0, section: str = "print"
    ) -> None:
        """Block (in a thread) until `test` holds for what the client merged of a section
        (`print` by default), woken by each message it gets."""

        def merged() -> dict[str, Any]:
            return dict(self.printer.mqtt_dump().get(section, {}))

        with self._changed:
            if not self._changed.wait_for(lambda: test(merged()), timeout):
                raise AssertionError(f"never matched; last {section}: {merged()}")

    def publish(self, frame: dict[str, Any]) -> None:
        """A frame through the client's own MQTT connection (for commands it has no method
        for: gcode_file)."""
        topic = f"device/{self.printer.serial}/request"
        self.printer.mqtt_client._client.publish(topic, json.dumps(frame)).wait_for_publish(10)


@pytest_asyncio.fixture
async def rig(
    tls_broker: Mosquitto,
) -> AsyncIterator[tuple[BambuSimulator, Client]]:
    assert tls_broker.tls is not None and tls_broker.tls_port is not None
    serial = f"01P00A{uuid.uuid4().hex[:8].upper()}"
    sim = BambuSimulator(
        BusSettings(
            broker=tls_broker.tls_url, tls_ca=str(tls_broker.tls.ca), reconnect_initial_s=0.05
        ),
        serial,
        BAMBU_ACCESS_CODE,
        ftps_context=await asyncio.to_thread(server_context, tls_broker),
        print_s=1.5,
        report_interval_s=0.05,
        idle_report_s=0.25,
        cancel_clear_s=0.5,
    )
    await sim.start()
    client = Client(serial, tls_broker.tls_port, sim.ftp_port)
    try:
        await asyncio.to_thread(client.start)
        await asyncio.to_thread(client.wait, lambda d: "gcode_state" in d)
        yield sim, client
    finally:
        await asyncio.to_thread(client.stop)
        await sim.stop()


@pytest.mark.asyncio
async def test_status_read(rig: tuple[BambuSimulator, Client]) -> None:
    sim, client = rig
    p = client.printer
    # The client asked for a full report and the version on connect, as the printers expect.
    assert "pushall" in sim.commands
    assert p.get_state() is bl.GcodeState.IDLE
    assert p.get_current_state() is bl.PrintStatus.IDLE  # stg_cur 255, a P1 at rest
    assert p.get_percentage() == 0 and p.get_time() == 0
    assert p.get_bed_temperature() == pytest.approx(24.0, abs=2)
    assert p.get_nozzle_temperature() == pytest.approx(24.0, abs=2)
    assert p.get_file_name() == "" and p.print_error_code() == 0
    assert (p.current_layer_num(), p.total_layer_num()) == (0, 0)
    await asyncio.to_thread(client.wait, lambda info: "module" in info, section="info")
    assert p.mqtt_client.firmware_version() == "01.08.00.00"  # its info.get_version answered


@pytest.mark.asyncio
async def test_project_file_print_as_the_client_starts_it(
    rig: tuple[BambuSimulator, Client], tmp_path: Path
) -> None:
    sim, client = rig
    gcode = numbered_moves_gcode(200).encode()
    project = build_project(gcode, title="cube", plate=2)
    await asyncio.to_thread(client.printer.upload_file, io.BytesIO(project), "cube.gcode.3mf")
    assert sim.files["cube.gcode.3mf"] == project
    assert await asyncio.to_thread(client.printer.start_print, "cube.gcode.3mf", 2, False)
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "RUNNING")
    # What bambulabs-api sends: the plate in param, the file in url (and file), its own
    # sequence id; the simulator used to take param for the file name and refuse it.
    request = sim.requests[-1]
    assert request["command"] == "project_file"
    assert (request["param"], request["url"]) == ("Metadata/plate_2.gcode", "ftp:///cube.gcode.3mf")
    assert request["sequence_id"] == "10000000" and request["use_ams"] is False
    assert client.printer.get_file_name() == "cube.gcode.3mf"
    assert client.printer.subtask_name() == "cube"
    assert client.printer.get_current_state() is bl.PrintStatus.PRINTING
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "FINISH")
    assert client.printer.get_percentage() == 100


@pytest.mark.asyncio
async def test_gcode_file_print(rig: tuple[BambuSimulator, Client]) -> None:
    sim, client = rig
    gcode = numbered_moves_gcode(100).encode()
    await asyncio.to_thread(client.printer.upload_file, io.BytesIO(gcode), "part.gcode")
    assert sim.files["part.gcode"] == gcode  # over implicit FTPS, closed without close_notify
    frame = {"print": {"sequence_id": "0", "command": "gcode_file", "param": "/sdcard/part.gcode"}}
    await asyncio.to_thread(client.publish, frame)
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "RUNNING")
    assert client.printer.get_file_name() == "part.gcode"
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "FINISH")


@pytest.mark.asyncio
async def test_pause_resume_and_a_stop_reported_as_the_printer_does(
    rig: tuple[BambuSimulator, Client],
) -> None:
    sim, client = rig
    sim.print_s = 30.0  # long enough to pause, resume and stop it
    project = build_project(numbered_moves_gcode(200).encode(), title="long")
    await asyncio.to_thread(client.printer.upload_file, io.BytesIO(project), "long.gcode.3mf")
    await asyncio.to_thread(client.printer.start_print, "long.gcode.3mf", 1, False)
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "RUNNING")
    assert await asyncio.to_thread(client.printer.pause_print)
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "PAUSE")
    assert client.printer.get_current_state() is bl.PrintStatus.PAUSED_USER
    assert await asyncio.to_thread(client.printer.resume_print)
    await asyncio.to_thread(client.wait, lambda d: d.get("gcode_state") == "RUNNING")
    assert await asyncio.to_thread(client.printer.stop_print)
    # A cancel: FAILED with 50348044 (0x0300400C)…
    await asyncio.to_thread(
        client.wait, lambda d: (d.get("gcode_state"), d.get("print_error")) == ("FAILED", CANCELLED)
    )
    assert client.printer.print_error_code() == 50348044
    # … whose code goes back to 0 while FAILED stays, the resting state until the next print.
    await asyncio.to_thread(client.wait, lambda d: d.get("print_error") == 0)
    assert client.printer.get_state() is bl.GcodeState.FAILED


@pytest_asyncio.fixture
async def driver(
    rig: tuple[BambuSimulator, Client],
    tls_broker: Mosquitto,
) -> AsyncIterator[BambuDriver]:
    sim, _client = rig
    assert tls_broker.tls is not None
    drv = BambuDriver(
        "p1",
        BambuConfig(
            host="127.0.0.1",
            serial=sim.serial,
            access_code=BAMBU_ACCESS_CODE,
            mqtt_port=tls_broker.tls_port,
            ftp_port=sim.ftp_port,
            tls_ca=str(tls_broker.tls.ca),
            verify_hostname=True,
            request_timeout_s=5.0,
            offline_grace_s=0.5,
        ),
        PrinterProfile(name="generic-220"),
    )
    await drv.start()
    try:
        await asyncio.wait_for(drv.connected.wait(), 10)
        yield drv
    finally:
        await asyncio.wait_for(drv.stop(), 10)


@pytest.mark.asyncio
async def test_a_cancel_from_another_client_is_a_cancel_and_the_next_job_runs(
    rig: tuple[BambuSimulator, Client], driver: BambuDriver, tmp_path: Path
) -> None:
    sim, client = rig
    sim.print_s = 30.0
    first = asyncio.Event()

    async def run() -> None:
        async for _ in driver.stream(write_gcode(tmp_path, numbered_moves_gcode(100)), job_id="j1"):
            first.set()

    job = asyncio.create_task(run())
    try:
        await asyncio.wait_for(first.wait(), 15)
        # Someone presses stop in their app: bambulabs-api's stop, with no sequence id.
        assert await asyncio.to_thread(client.printer.stop_print)
        with pytest.raises(PrinterError) as caught:
            await asyncio.wait_for(job, 15)
    finally:
        job.cancel()
    assert not isinstance(caught.value, PrinterFault)
    assert caught.value.code == "cancelled"
    # A cancel is no fault: the printer is idle (FAILED at rest) and takes the next job.
    assert driver.status().state is PrinterState.IDLE
    assert "cancelled" in (driver.status().message or "")
    sim.print_s = 1.0
    progress = [p async for p in driver.stream(write_gcode(tmp_path, "G28\nG1 X5\n"), job_id="j2")]
    assert progress[-1].fraction == 1.0


@pytest.mark.asyncio
async def test_another_clients_commands_on_the_shared_report_topic_are_not_ours(
    rig: tuple[BambuSimulator, Client],
    driver: BambuDriver,
    tls_broker: Mosquitto,
) -> None:
    sim, client = rig
    assert tls_broker.tls is not None
    sim.faults.response_delay_s = 0.5  # our echo comes late: others go by first
    topics = (f"device/{sim.serial}/request", f"device/{sim.serial}/report")
    tls = ssl.create_default_context(cafile=str(tls_broker.tls.ca))
    async with aiomqtt.Client(
        "127.0.0.1",
        tls_broker.tls_port,
        username="bblp",
        password=BAMBU_ACCESS_CODE,
        tls_context=tls,
    ) as spy:
        await spy.subscribe(topics[0], qos=1)
        ours = asyncio.create_task(driver.send("M117 ours"))
        async with asyncio.timeout(10):
            async for message in spy.messages:
                body = json.loads(message.payload).get("print", {})  # type: ignore[arg-type]
                if body.get("command") == "gcode_line":
                    seq = body["sequence_id"]
                    break
        # bambulabs-api's own G-code, numbered "0" as it numbers every gcode_line …
        await asyncio.to_thread(client.printer.gcode, "M117 theirs", False)
        # … and a replayed echo of some other command under our sequence id, refused.
        replay = {"command": "pause", "sequence_id": seq, "result": "failed", "reason": "nope"}
        await spy.publish(topics[1], json.dumps({"print": replay}), qos=1)
        await asyncio.wait_for(ours, 10)  # answered by our own echo, not the replay
    assert "M117 ours" in sim.gcode_lines
    assert driver.status().state is PrinterState.IDLE
