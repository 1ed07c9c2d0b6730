"""BambuDriver against the Bambu simulator: MQTT over TLS with the `bblp` user and the access
code, partial reports, command echoes and an implicit-FTPS upload (certificate made now)."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from printforge.hardware.mqtt.bambu import BambuConfig, BambuDriver
from printforge.hardware.mqtt.bambu_project import build_project, file_md5, read_plate
from printforge.hardware.mqtt.bambu_protocol import CANCELLED
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.sim.bambu import BambuFaults, BambuSimulator
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime import metrics
from printforge.runtime.errors import AuthError, PrinterDisconnected, PrinterError, PrinterFault
from tests.fakes.broker import BAMBU_ACCESS_CODE, Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt


def server_context(broker: Mosquitto) -> ssl.SSLContext:
    assert broker.tls is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(broker.tls.cert, broker.tls.key)
    return ctx


@pytest_asyncio.fixture
async def bambu(
    request: pytest.FixtureRequest,
    tls_broker: Mosquitto,
) -> AsyncIterator[tuple[BambuSimulator, BambuDriver]]:
    options = dict(getattr(request, "param", {}))  # simulator faults, by indirect parametrize
    verify = options.pop("verify", True)
    code = options.pop("access_code", BAMBU_ACCESS_CODE)
    # A lost (garbled) report is made good with a pushall; the default 5 minutes is the real
    # printers' limit, tested in test_pushall_is_not_repeated_within_its_interval.
    pushall_s = options.pop("pushall_min_interval_s", 0.5)
    assert tls_broker.tls is not None
    serial = f"01S00C{uuid.uuid4().hex[:8].upper()}"
    sim = BambuSimulator(
        BusSettings(
            broker=tls_broker.tls_url, tls_ca=str(tls_broker.tls.ca), reconnect_initial_s=0.05
        ),
        serial,
        BAMBU_ACCESS_CODE,
        ftps_context=await asyncio.to_thread(server_context, tls_broker),
        print_s=options.pop("print_s", 1.0),
        report_interval_s=0.05,
        idle_report_s=0.25,
        faults=BambuFaults(**options),
    )
    await sim.start()
    driver = BambuDriver(
        "x1",
        BambuConfig(
            host="127.0.0.1",
            serial=serial,
            access_code=code,
            mqtt_port=tls_broker.tls_port,
            ftp_port=sim.ftp_port,
            tls_ca=str(tls_broker.tls.ca) if verify else None,
            verify_hostname=verify,
            offline_grace_s=0.3,
            stale_after_s=1.5,
            pushall_min_interval_s=pushall_s,
            request_timeout_s=3.0,
        ),
        PrinterProfile(name="generic-220"),
    )
    await driver.start()
    try:
        yield sim, driver
    finally:
        await driver.stop()
        await sim.stop()


async def ready(driver: BambuDriver) -> None:
    await asyncio.wait_for(driver.connected.wait(), 5)


@pytest.mark.asyncio
async def test_upload_start_and_finish_over_tls(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    sim, driver = bambu
    await ready(driver)
    assert "pushall" in sim.commands  # a full report is asked for on connect
    assert driver.status().temperatures["hotend"].actual == pytest.approx(24.0, abs=5)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
    progress = [p async for p in driver.stream(gcode, job_id="b1")]
    # Started as Bambu Studio starts a print: the G-code as plate 1 of a .gcode.3mf project.
    assert read_plate(sim.files["b1.gcode.3mf"], "Metadata/plate_1.gcode") == gcode.read_bytes()
    assert progress[-1].fraction == 1.0
    assert [p.bytes_acked for p in progress] == sorted(p.bytes_acked for p in progress)
    assert driver.status().state is PrinterState.IDLE
    # The status keeps the finished print's progress: a node relays it as the job's last word.
    status_progress = driver.status().progress
    assert status_progress is not None and status_progress.fraction == 1.0


@pytest.mark.asyncio
@pytest.mark.parametrize("bambu", [{"verify": False, "print_s": 4.0}], indirect=True)
async def test_pause_resume_stop_and_gcode_line(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    sim, driver = bambu
    await ready(driver)
    await driver.send("G28")
    assert sim.gcode_lines == ["G28"]
    gcode = write_gcode(tmp_path, numbered_moves_gcode(100))
    first = asyncio.Event()

    async def run() -> None:
        async for _ in driver.stream(gcode):
            first.set()

    task = asyncio.create_task(run())
    await asyncio.wait_for(first.wait(), 5)
    async with asyncio.timeout(5):  # the first progress can come while still preparing
        while driver.status().state is not PrinterState.PRINTING:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await driver.pause()
    assert sim.state["gcode_state"] == "PAUSE"
    with pytest.raises(PrinterError, match="not printing"):
        await driver.pause()
    await driver.resume()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.commands[-1] == "stop"
    # As a printer reports a cancel: FAILED with 0x0300400C, the code going back to 0 later.
    assert sim.state["gcode_state"] == "FAILED"
    assert sim.state["print_error"] == CANCELLED


@pytest.mark.asyncio
@pytest.mark.parametrize("bambu", [{"fail_at_fraction": 0.4}], indirect=True)
async def test_print_error_is_a_fault_with_its_code(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    _sim, driver = bambu
    await ready(driver)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(50))
    with pytest.raises(PrinterFault, match="0300_4000"):
        async for _ in driver.stream(gcode):
            pass
    assert driver.status().state is PrinterState.FAULTED


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bambu", [{"drop_at_fraction": 0.2, "drop_for_s": 5.0, "print_s": 3.0}], indirect=True
)
async def test_silent_printer_interrupts_the_job(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    _sim, driver = bambu
    await ready(driver)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(50))
    with pytest.raises(PrinterDisconnected):
        async for _ in driver.stream(gcode):
            pass
    assert driver.status().state is PrinterState.OFFLINE


@pytest.mark.asyncio
@pytest.mark.parametrize("bambu", [{"malformed_every": 4, "response_delay_s": 0.2}], indirect=True)
async def test_malformed_reports_are_counted(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    _sim, driver = bambu
    before = metrics.MQTT_MALFORMED.labels("bambu")._value.get()
    await ready(driver)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(50))
    progress = [p async for p in driver.stream(gcode)]
    assert progress[-1].fraction == 1.0
    assert metrics.MQTT_MALFORMED.labels("bambu")._value.get() > before


@pytest.mark.asyncio
async def test_a_report_with_a_wrongly_typed_field_is_counted_and_does_not_stick(
    bambu: tuple[BambuSimulator, BambuDriver], caplog: pytest.LogCaptureFixture
) -> None:
    # Valid JSON, wrong type: merged into the report tree, it used to make every later
    # report raise (uncounted, a traceback each), freezing the printer's status until a full
    # report happened to replace the field.
    sim, driver = bambu
    await ready(driver)
    before = metrics.MQTT_MALFORMED.labels("bambu")._value.get()
    bad = b'{"print": {"bed_temper": "hot", "mc_percent": [1]}}'
    await sim.client.publish(sim.topics.report, bad, qos=1)
    async with asyncio.timeout(10):
        while metrics.MQTT_MALFORMED.labels("bambu")._value.get() < before + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await sim.client.publish(sim.topics.report, b'{"print": {"print_error": 0}}', qos=1)
    await driver.send("M117 after")  # its echo is a report too: it went through the driver
    assert not [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert driver.status().state is PrinterState.IDLE
    assert isinstance(driver.status().temperatures["bed"].actual, float)


@pytest.mark.asyncio
@pytest.mark.parametrize("bambu", [{"access_code": "00000000"}], indirect=True)
async def test_wrong_access_code_is_refused(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    _sim, driver = bambu
    async with asyncio.timeout(5):
        while driver._client is not None and not driver._client.auth_failed:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert not driver.connected.is_set()
    with pytest.raises(AuthError):
        await driver.upload(write_gcode(tmp_path, "G28\n"), "x.gcode")


PLAIN_CODE = "90817263"


async def plain_pair(broker: Mosquitto, **sim_options: float) -> tuple[BambuSimulator, BambuDriver]:
    """A started simulator on a plain broker with plain FTP (a mock farm's transport) and its
    started driver; the caller stops both."""
    serial = f"SIM{uuid.uuid4().hex[:8].upper()}"
    sim = BambuSimulator(
        BusSettings(broker=broker.url, reconnect_initial_s=0.05),
        serial,
        PLAIN_CODE,
        ftps_context=None,
        report_interval_s=0.05,
        idle_report_s=0.25,
        **sim_options,  # type: ignore[arg-type]
    )
    await sim.start()
    driver = BambuDriver(
        "sim-x1",
        BambuConfig(
            host="127.0.0.1",
            serial=serial,
            access_code=PLAIN_CODE,
            broker=broker.url,
            ftp_port=sim.ftp_port,
            ftp_tls=False,
            request_timeout_s=5.0,
        ),
        PrinterProfile(name="generic-220"),
    )
    await driver.start()
    return sim, driver


@pytest.mark.asyncio
async def test_simulator_on_a_shared_plain_broker_with_plain_ftp(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The mock farm's transport (`printforge node --sim-bambu`): reports through the farm's
    # plain broker, the upload over plain FTP, since there is no certificate to serve.
    caplog.set_level(logging.DEBUG)
    sim, driver = await plain_pair(mosquitto_broker, print_s=0.5)
    try:
        await ready(driver)
        gcode = write_gcode(tmp_path, numbered_moves_gcode(100))
        progress = [p async for p in driver.stream(gcode, job_id="plain")]
        assert read_plate(sim.files["plain.gcode.3mf"], "Metadata/plate_1.gcode") == (
            gcode.read_bytes()
        )
        assert progress[-1].fraction == 1.0
    finally:
        await driver.stop()
        await sim.stop()
    assert PLAIN_CODE not in caplog.text  # not even at DEBUG, where MQTT and FTP traffic is logged


def layered_gcode(layers: int, *, nozzle: int = 235, bed: int = 70) -> str:
    """A small square per layer, extruding, with its own temperatures."""
    out = [f"M140 S{bed}", f"M104 S{nozzle}", "G28", "G90", "M83"]
    for n in range(1, layers + 1):
        z = 0.2 * n
        out.append(f"G1 Z{z:.2f} F600")
        for x, y in ((10, 10), (30, 10), (30, 30), (10, 30), (10, 10)):
            out.append(f"G1 X{x} Y{y} E0.5 F1800")
    out.append("M104 S0")
    return "\n".join(out) + "\n"


@pytest.mark.asyncio
async def test_with_a_speed_up_the_simulator_plays_the_file_it_was_given(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # A mock farm's Bambu prints take the file's own time / N, its layers and temperatures.
    sim, driver = await plain_pair(mosquitto_broker, sim_speed=1000.0)
    seen: list[tuple[float, float, int]] = []
    try:
        await ready(driver)
        gcode = write_gcode(tmp_path, layered_gcode(12))
        async for _ in driver.stream(gcode, job_id="layers"):
            state = sim.state
            if state["gcode_state"] == "RUNNING":
                seen.append(
                    (
                        state["nozzle_target_temper"],
                        state["bed_target_temper"],
                        state["total_layer_num"],
                    )
                )
    finally:
        await driver.stop()
        await sim.stop()
    assert seen, "no report while running"
    assert set(seen) == {(235.0, 70.0, 12)}
    assert sim.state["layer_num"] == 12


@pytest.mark.asyncio
async def test_a_file_that_is_not_gcode_fails_on_the_simulator(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    sim, driver = await plain_pair(mosquitto_broker, sim_speed=1000.0)
    try:
        await ready(driver)
        junk = tmp_path / "junk.gcode"
        junk.write_bytes(bytes(range(256)) * 8)
        with pytest.raises(PrinterFault):
            async for _ in driver.stream(junk, job_id="junk"):
                pass
    finally:
        await driver.stop()
        await sim.stop()
    assert sim.state["gcode_state"] == "FAILED"


# issue 19 items 5, 6 and 7 --------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("bambu", [{"print_s": 30.0}], indirect=True)
async def test_a_stop_on_the_printer_is_a_cancel_and_the_next_job_runs(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    sim, driver = bambu
    await ready(driver)
    first = asyncio.Event()

    async def run() -> None:
        async for _ in driver.stream(write_gcode(tmp_path, numbered_moves_gcode(50)), job_id="c1"):
            first.set()

    job = asyncio.create_task(run())
    try:
        await asyncio.wait_for(first.wait(), 10)
        # The stop button in someone's app: a stop from another client, numbered "0".
        frame = {"print": {"sequence_id": "0", "command": "stop", "param": ""}}
        await sim.client.publish(sim.topics.request, json.dumps(frame), qos=1)
        with pytest.raises(PrinterError) as caught:
            await asyncio.wait_for(job, 10)
    finally:
        job.cancel()
    assert not isinstance(caught.value, PrinterFault) and caught.value.code == "cancelled"
    # The printer reported it as printers do: FAILED with 0x0300400C …
    assert (sim.state["gcode_state"], sim.state["print_error"]) == ("FAILED", CANCELLED)
    assert driver.status().state is PrinterState.IDLE  # … which is no fault
    sim.print_s = 0.5
    progress = [p async for p in driver.stream(write_gcode(tmp_path, "G28\n"), job_id="c2")]
    assert progress[-1].fraction == 1.0 and sim.state["gcode_state"] == "FINISH"


@pytest.mark.asyncio
@pytest.mark.parametrize("bambu", [{"pushall_min_interval_s": 300.0}], indirect=True)
async def test_pushall_is_not_repeated_within_its_interval(
    bambu: tuple[BambuSimulator, BambuDriver],
) -> None:
    # OpenBambuAPI: not more than one pushall every 5 minutes on a P1P. One on the first
    # connection; a reconnection right after relies on the incremental reports.
    sim, driver = bambu
    await ready(driver)
    await driver.send("M117 first")  # its echo comes after the pushall: the sim has seen it
    assert sim.pushalls == 1
    client = driver._client
    assert client is not None
    client.sever(0.0)
    async with asyncio.timeout(10):
        while client.connections < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await driver.send("M117 after the reconnection")
    assert sim.pushalls == 1 and driver.pushalls == 1
    assert driver.status().state is PrinterState.IDLE


def project_driver(sim: BambuSimulator, broker: Mosquitto, **options: Any) -> BambuDriver:
    return BambuDriver(
        "x1p",
        BambuConfig(
            host="127.0.0.1",
            serial=sim.serial,
            access_code=PLAIN_CODE,
            broker=broker.url,
            ftp_port=sim.ftp_port,
            ftp_tls=False,
            request_timeout_s=5.0,
            **options,
        ),
        PrinterProfile(name="generic-220"),
    )


@pytest.mark.asyncio
async def test_a_3mf_project_starts_through_project_file_with_the_clients_fields(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    sim, plain = await plain_pair(mosquitto_broker, print_s=0.5)
    await plain.stop()
    driver = project_driver(
        sim, mosquitto_broker, plate=2, use_ams=True, ams_mapping=[0], timelapse=True
    )
    await driver.start()
    try:
        await ready(driver)
        gcode = numbered_moves_gcode(80).encode()
        project = tmp_path / "part.gcode.3mf"
        project.write_bytes(build_project(gcode, title="part", plate=2))
        progress = [p async for p in driver.stream(project, job_id="p3")]
        assert progress[-1].fraction == 1.0
    finally:
        await driver.stop()
        await sim.stop()
    assert sim.files["p3.gcode.3mf"] == project.read_bytes()
    request = next(r for r in sim.requests if r["command"] == "project_file")
    assert request["param"] == "Metadata/plate_2.gcode"  # the plate, not the file
    assert request["url"] == "ftp:///p3.gcode.3mf"  # the file
    assert request["md5"] == file_md5(project.read_bytes())
    assert (request["use_ams"], request["ams_mapping"]) == (True, [0])
    assert (request["bed_leveling"], request["timelapse"]) == (True, True)
    assert request["subtask_name"] == "p3"
    assert (sim.state["gcode_file"], sim.state["subtask_name"]) == ("p3.gcode.3mf", "p3")


@pytest.mark.asyncio
async def test_gcode_file_is_still_there_to_choose(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    sim, plain = await plain_pair(mosquitto_broker, print_s=0.5)
    await plain.stop()
    driver = project_driver(sim, mosquitto_broker, print_as="gcode")
    await driver.start()
    try:
        await ready(driver)
        gcode = write_gcode(tmp_path, numbered_moves_gcode(40))
        progress = [p async for p in driver.stream(gcode, job_id="g1")]
        assert progress[-1].fraction == 1.0
    finally:
        await driver.stop()
        await sim.stop()
    assert sim.files["g1.gcode"] == gcode.read_bytes()
    assert [r["param"] for r in sim.requests if r["command"] == "gcode_file"] == [
        "/sdcard/g1.gcode"
    ]


@pytest.mark.asyncio
async def test_the_simulator_refuses_a_project_as_a_printer_does(
    bambu: tuple[BambuSimulator, BambuDriver],
) -> None:
    sim, driver = bambu
    await ready(driver)
    sim.files["x.gcode.3mf"] = build_project(b"G28\n", title="x")
    for fields, reason in (
        ({"param": "Metadata/plate_1.gcode", "url": "ftp:///gone.3mf"}, "not found"),
        ({"param": "x.gcode.3mf", "url": "ftp:///x.gcode.3mf"}, "is no plate"),
        (
            {"param": "Metadata/plate_1.gcode", "url": "file:///sdcard/x.gcode.3mf", "md5": "0"},
            "md5",
        ),
    ):
        with pytest.raises(PrinterError, match=reason) as caught:
            await driver._command("project_file", **fields)
        assert caught.value.code == "bambu_refused"
    assert sim.state["gcode_state"] == "IDLE"


@pytest.mark.asyncio
async def test_the_eta_follows_the_files_time_plan(
    bambu: tuple[BambuSimulator, BambuDriver], tmp_path: Path
) -> None:
    """Plain G-code: the printer's percent (the file's M73 P) is read on the file's time plan,
    worked out while the upload and the start go on, and corrected by the pace."""
    _sim, driver = bambu
    await ready(driver)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
    progress = [p async for p in driver.stream(gcode, job_id="b-eta")]
    planned = [p for p in progress[len(progress) // 2 :] if p.eta_source == "estimate"]
    assert planned, [p.eta_source for p in progress]
    for p in planned:
        assert p.eta_s is not None and p.finish_at is not None
        assert p.planned_s is not None and p.planned_s > 0
