"""`printforge node` as a real process: discovery by subscription, jobs over the bus, and a
node killed with SIGKILL (its printers go offline through the last will; the job is reported
interrupted, never forgotten)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from printforge.hardware.mqtt.client import BusClient
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.discovery import BusDiscovery
from printforge.hardware.mqtt.remote import RemotePrinterDriver
from printforge.models.printer import PrinterState
from printforge.orchestrator.printers import PrinterManager
from printforge.runtime.errors import PrinterDisconnected
from printforge.settings import Settings, load_settings
from tests.fakes.broker import Mosquitto, make_tls_files
from tests.fakes.node import node_process, ready_line, stop
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt

REPO = Path(__file__).resolve().parents[2]


def finish(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> tuple[str, str]:
    """A process expected to exit by itself; killed when it does not, so none outlives a test."""
    try:
        return proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate(timeout=10)
        raise AssertionError(f"the node did not exit within {timeout_s:g}s: {err}") from None


def settings_for(url: str, prefix: str, tmp: Path) -> Settings:
    return load_settings(
        overrides={
            "data_dir": str(tmp / "data"),
            "bus": {
                "broker": url,
                "topic_prefix": prefix,
                "stale_after_s": 3.0,
                "offline_grace_s": 0.5,
                "command_retry_s": 0.5,
                "reconnect_initial_s": 0.05,
            },
        }
    )


@pytest_asyncio.fixture
async def discovery(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> AsyncIterator[tuple[BusDiscovery, str]]:
    prefix = f"n{uuid.uuid4().hex[:10]}/v1"
    settings = settings_for(mosquitto_broker.url, prefix, tmp_path)
    manager = PrinterManager(settings)
    disc = BusDiscovery(settings, manager)
    await disc.start(wait_s=5)
    try:
        yield disc, prefix
    finally:
        await disc.stop()


async def wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - state spread over several objects
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_node_printers_are_discovered_and_print(
    discovery: tuple[BusDiscovery, str],
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    disc, prefix = discovery
    proc = node_process(
        mosquitto_broker.url, prefix, "alpha", "--virtual", "2", "--sim-speed", "500"
    )
    try:
        line = await ready_line(proc)
        assert "alpha.virtual-1" in line and "alpha.virtual-2" in line
        await wait_for(lambda: {"alpha.virtual-1", "alpha.virtual-2"} <= set(disc.manager.names()))
        driver = disc.manager.get("alpha.virtual-2")
        assert isinstance(driver, RemotePrinterDriver)
        await wait_for(lambda: disc.manager.available("alpha.virtual-2"))
        assert disc.manager.entry("alpha.virtual-2").driver == "bus"
        gcode = write_gcode(tmp_path, numbered_moves_gcode(200))
        progress = [p async for p in driver.stream(gcode, job_id="remote-job")]
        assert progress[-1].fraction == 1.0
        # A graceful stop leaves the printers known but offline.
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 15)
        await wait_for(lambda: driver.status().state is PrinterState.OFFLINE)
        assert driver.status().message == "node stopped"
        assert "alpha.virtual-2" in disc.manager.names()
        # Clearing the retained status decommissions the printer.
        topic = disc.farm.topics.status("alpha.virtual-2")
        await disc.farm.client.publish(topic, b"", qos=1, retain=True)
        await wait_for(lambda: "alpha.virtual-2" not in disc.manager.names())
        assert "alpha.virtual-1" in disc.manager.names()
    finally:
        stop(proc)


@pytest.mark.asyncio
async def test_kill_9_node_mid_print_interrupts_the_job(
    discovery: tuple[BusDiscovery, str],
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    disc, prefix = discovery
    proc = node_process(mosquitto_broker.url, prefix, "beta", "--virtual", "1", "--sim-speed", "1")
    try:
        await ready_line(proc)
        await wait_for(lambda: disc.manager.available("beta.virtual-1"))
        driver = disc.manager.get("beta.virtual-1")
        statuses: list[PrinterState] = []
        disc.manager.add_listener(lambda s: statuses.append(s.state))
        gcode = write_gcode(tmp_path, numbered_moves_gcode(2000, feed=600))
        killed = False
        with pytest.raises(PrinterDisconnected) as info:
            async for progress in driver.stream(gcode, job_id="doomed"):
                if not killed and progress.lines_acked > 5:
                    killed = True
                    os.kill(proc.pid, signal.SIGKILL)
        assert killed
        # The interruption says how far the printer got, so the job can be resumed or re-run.
        assert info.value.last_acked_line is not None and info.value.last_acked_line > 5
        assert driver.status().state is PrinterState.OFFLINE
        assert driver.status().message == "node connection lost"  # the last will
        assert PrinterState.OFFLINE in statuses
        assert not disc.manager.available("beta.virtual-1")
    finally:
        stop(proc)


@pytest.mark.asyncio
async def test_mock_farm_of_moonraker_simulators_prints_over_the_bus(
    discovery: tuple[BusDiscovery, str],
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # orchestrator -> farm bus -> node -> Moonraker driver -> JSON-RPC/HTTP -> Klipper simulator
    disc, prefix = discovery
    proc = node_process(mosquitto_broker.url, prefix, "delta", "--sim-moonraker", "2")
    try:
        line = await ready_line(proc)
        assert "delta.klipper-1" in line and "delta.klipper-2" in line
        await wait_for(lambda: disc.manager.available("delta.klipper-2"))
        driver = disc.manager.get("delta.klipper-2")
        gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
        progress = [p async for p in driver.stream(gcode, job_id="via-klipper")]
        assert progress[-1].fraction == 1.0
        assert disc.farm.statuses["delta.klipper-2"].driver == "moonraker"
    finally:
        stop(proc)


@pytest.mark.asyncio
async def test_a_hand_configured_bus_printer_is_not_discovered_twice(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    prefix = f"n{uuid.uuid4().hex[:10]}/v1"
    settings = settings_for(mosquitto_broker.url, prefix, tmp_path)
    bus = settings.bus.model_dump()
    settings.printers["far"] = settings.printers["virtual"].model_copy(update={"driver": "bus"})
    manager = PrinterManager(settings)
    from printforge.hardware.mqtt.remote import RemoteConfig

    far = RemotePrinterDriver(
        "far",
        RemoteConfig(printer_id="eps.virtual-1", bus=bus),
        settings.printer_profiles["generic-220"],
    )
    await manager.add(far)
    disc = BusDiscovery(settings, manager)
    await disc.start(wait_s=5)
    proc = node_process(mosquitto_broker.url, prefix, "eps", "--virtual", "2")
    try:
        await ready_line(proc)
        await wait_for(lambda: "eps.virtual-2" in manager.names())
        await wait_for(lambda: manager.available("far"))
        # Both printers' statuses have reached discovery; once it has applied them, the one
        # configured by hand (far) must still be the only way to eps.virtual-1.
        await wait_for(lambda: {"eps.virtual-1", "eps.virtual-2"} <= disc.farm.statuses.keys())
        await asyncio.wait_for(disc.settled(), 15)
        assert "eps.virtual-1" not in manager.names()
        assert "eps.virtual-1" in disc.farm.statuses
    finally:
        stop(proc)
        await disc.stop()
        await manager.remove("far")


@pytest.mark.asyncio
async def test_mock_farm_of_bambu_simulators_prints_and_stops_cleanly(
    discovery: tuple[BusDiscovery, str],
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # orchestrator -> farm bus -> node -> Bambu driver -> report/request topics + FTP -> simulator
    disc, prefix = discovery
    proc = node_process(mosquitto_broker.url, prefix, "zeta", "--sim-bambu", "2")
    printers = ("zeta.bambu-1", "zeta.bambu-2")
    try:
        line = await ready_line(proc)
        assert all(p in line for p in printers)
        # Both retained statuses on the bus, each printer driven by the Bambu driver.
        await wait_for(lambda: all(disc.manager.available(p) for p in printers))
        assert {disc.farm.statuses[p].driver for p in printers} == {"bambu"}
        driver = disc.manager.get("zeta.bambu-1")
        gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
        progress = [p async for p in driver.stream(gcode, job_id="via-bambu")]
        assert progress[-1].fraction == 1.0
        # SIGTERM (as Ctrl-C's SIGINT): the node says goodbye for every printer, retained,
        # then lets go of its simulators, and exits without an error.
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, err
        assert "printforge node: stopped" in err
        assert "Traceback" not in err
        for p in printers:
            await wait_for(lambda p=p: disc.farm.statuses[p].state is PrinterState.OFFLINE)
            assert disc.farm.statuses[p].message == "node stopped"
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sim-bambu", "-1"], "--sim-bambu takes a count of 0 or more"),
        (["--sim-bambu", "two"], "invalid int value: 'two'"),
        (["--sim-moonraker", "-2"], "--sim-moonraker takes a count of 0 or more"),
        # Fault injection flags out of range: the reason, not "unexpected error".
        (["--virtual", "1", "--drop-at", "2"], "--drop-at takes a fraction from 0 to 1"),
        (["--virtual", "1", "--reply-delay", "-1"], "--reply-delay takes seconds, 0 or more"),
        # A CA for a plain mqtt:// broker would be ignored, the password sent in the clear.
        (["--virtual", "1", "--tls-ca", "ca.pem"], "give the broker as mqtts://"),
        # No printer configured and no farm asked for: the message lists every way to get one.
        ([], "--sim-bambu N"),
    ],
)
def test_a_bad_simulator_count_is_refused_with_the_reason(
    mosquitto_broker: Mosquitto,
    flags: list[str],
    message: str,
) -> None:
    proc = node_process(mosquitto_broker.url, "bad/v1", "bad", *flags)
    out, err = finish(proc)
    assert proc.returncode != 0
    assert message in err
    assert "unexpected error" not in err
    assert out == ""  # no ready line: nothing was exposed


def test_bambu_simulators_on_a_broker_that_checks_bblp_fail_clearly(
    tls_broker: Mosquitto,
) -> None:
    # The plain listener of the TLS broker knows bblp with another password: the per-run
    # access code is refused, and the node says why instead of waiting forever.
    proc = node_process(tls_broker.url, "auth/v1", "auth", "--sim-bambu", "1")
    out, err = finish(proc)
    assert proc.returncode != 0
    assert "refused user bblp" in err
    assert out == ""


def test_a_node_whose_password_the_broker_refuses_stops_saying_so(
    tls_broker: Mosquitto,
) -> None:
    # Retrying a rejected password forever would look alive while no printer reaches the farm.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "printforge",
            "node",
            "--broker",
            tls_broker.url,
            "--topic-prefix",
            "pw/v1",
            "--node-id",
            "pw",
            "--virtual",
            "1",
            "--username",
            "bblp",
            "--password-env",
            "PF_TEST_BUS_PASSWORD",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PRINTFORGE_ENV": "development", "PF_TEST_BUS_PASSWORD": "wr0ng-pw"},
    )
    out, err = finish(proc)
    assert proc.returncode != 0
    assert "refused user bblp" in err and "--password-env" in err
    assert "wr0ng-pw" not in err + out
    assert "Traceback" not in err
    assert out == ""  # no ready line: nothing was exposed


@pytest.mark.asyncio
async def test_one_node_runs_a_mock_farm_of_every_protocol(
    discovery: tuple[BusDiscovery, str],
    mosquitto_broker: Mosquitto,
) -> None:
    disc, prefix = discovery
    proc = node_process(
        mosquitto_broker.url,
        prefix,
        "omega",
        *("--virtual", "1", "--sim-printers", "1", "--sim-moonraker", "1", "--sim-bambu", "1"),
    )
    drivers = {
        "omega.virtual-1": "virtual",
        "omega.sim-1": "sim",
        "omega.klipper-1": "moonraker",
        "omega.bambu-1": "bambu",
    }
    try:
        line = await ready_line(proc)
        assert all(p in line for p in drivers)
        await wait_for(lambda: all(disc.manager.available(p) for p in drivers))
        assert {p: disc.farm.statuses[p].driver for p in drivers} == drivers
        # Ctrl-C: every printer's retained status says the node stopped, and the Moonraker
        # simulator leaves its retained "offline" behind, as its will would have.
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, err
        for p in drivers:
            await wait_for(lambda p=p: disc.farm.statuses[p].state is PrinterState.OFFLINE)
            assert disc.farm.statuses[p].message == "node stopped"
        assert await retained(mosquitto_broker.url, "omega-klipper-1/moonraker/status") == (
            b'{"server": "offline"}'
        )
    finally:
        stop(proc)


async def retained(url: str, topic: str) -> bytes:
    """The retained message on `topic`, as a fresh subscriber gets it."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_message(_topic: str, payload: bytes, is_retained: bool) -> None:
        if is_retained and not got.done():
            got.set_result(payload)

    client = BusClient(
        BusSettings(broker=url),
        client_id=f"retained-{uuid.uuid4().hex[:8]}",
        on_message=on_message,
        subscriptions=[(topic, 1)],
    )
    await client.start(wait_s=10)
    try:
        return await asyncio.wait_for(got, 10)
    finally:
        await client.stop()


@pytest.mark.asyncio
async def test_bambu_simulators_keep_tls_on_a_tls_broker(tmp_path: Path) -> None:
    # mqtts:// with the broker's CA: simulators and their drivers verify the broker, by name.
    tls = await asyncio.to_thread(make_tls_files, tmp_path / "tls")
    broker = Mosquitto(tmp_path / "broker", tls=tls)
    await asyncio.to_thread(broker.start)
    assert broker.tls is not None
    proc = node_process(
        broker.tls_url, "tls/v1", "theta", "--tls-ca", str(broker.tls.ca), "--sim-bambu", "1"
    )
    settings = settings_for(broker.tls_url, "tls/v1", tmp_path)
    settings.bus.tls_ca = str(broker.tls.ca)
    disc = BusDiscovery(settings, PrinterManager(settings))
    try:
        await disc.start(wait_s=10)
        assert "theta.bambu-1" in await ready_line(proc)
        await wait_for(lambda: disc.manager.available("theta.bambu-1"))
        assert disc.farm.statuses["theta.bambu-1"].driver == "bambu"
    finally:
        stop(proc)
        await disc.stop()
        await asyncio.to_thread(broker.stop)
