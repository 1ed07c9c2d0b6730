"""The six printer drivers, each started against its real counterpart, behind one fixture.

`rig` is parametrised over the driver kinds; a test gets a `Rig` whose `start(slow=...)` builds
and starts the driver (and whatever it talks to) and whose teardown stops everything with a
bound. `slow` asks for a print that lasts long enough to be cancelled half way; the fast one
finishes in about a second.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from printforge.hardware.base import PrinterDriver
from printforge.hardware.marlin.config import MarlinConfig
from printforge.hardware.marlin.driver import MarlinDriver
from printforge.hardware.mqtt.bambu import BambuConfig, BambuDriver
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.farm import FarmClient
from printforge.hardware.mqtt.moonraker import MoonrakerConfig, MoonrakerDriver
from printforge.hardware.mqtt.node import BusNode
from printforge.hardware.mqtt.remote import RemoteConfig, RemotePrinterDriver
from printforge.hardware.mqtt.sim.bambu import BambuSimulator
from printforge.hardware.mqtt.sim.moonraker import MoonrakerSimulator
from printforge.hardware.mqtt.sim.printer import SimPrinter, SimPrinterConfig
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.hardware.virtual.pty_server import VirtualPrinterServer
from printforge.models.printer import PrinterProfile
from tests.fakes.broker import Mosquitto

PROFILE = PrinterProfile(name="generic-220")
KINDS = ["marlin", "virtual", "sim", "moonraker", "bambu", "bus"]
STOP_S = 15.0  # the bound on any teardown step
BAMBU_CODE = "24681357"

Cleanup = Callable[[], Awaitable[None]]


@dataclass
class Rig:
    kind: str
    broker: Mosquitto
    tmp: Path
    cleanups: list[Cleanup] = field(default_factory=list)
    driver: PrinterDriver | None = None

    async def start(self, *, slow: bool = False) -> PrinterDriver:
        """Build the driver and its counterpart, start both, and wait until connected."""
        driver = await BUILDERS[self.kind](self, slow)
        self.cleanups.append(driver.stop)
        await driver.start()
        await asyncio.wait_for(driver.connected.wait(), 10)
        self.driver = driver
        return driver

    async def close(self) -> None:
        # Newest first: the driver lets go before its counterpart stops. Every step runs even
        # when one fails (a broker or pty left behind would hang the next test); the first
        # failure is raised at the end.
        failure: BaseException | None = None
        for cleanup in reversed(self.cleanups):
            try:
                await asyncio.wait_for(cleanup(), STOP_S)
            except Exception as err:
                failure = failure or err
        self.cleanups.clear()
        if failure is not None:
            raise failure


def bus_settings(url: str) -> BusSettings:
    # A prefix per rig: the session broker is shared and retained messages outlive tests.
    return BusSettings.model_validate(
        {
            "broker": url,
            "topic_prefix": f"c{uuid.uuid4().hex[:10]}/v1",
            "node_id": "h1",
            "status_interval_s": 0.2,
            "command_retry_s": 0.5,
            "command_timeout_s": 10.0,
            "offline_grace_s": 0.5,
            "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.5,
            "chunk_bytes": 4096,
        }
    )


async def _marlin(rig: Rig, slow: bool) -> PrinterDriver:
    """The serial host against the virtual Marlin on a real pty."""
    server = VirtualPrinterServer(
        PROFILE, VirtualConfig(baud=1_000_000, sim_speed=10.0 if slow else 1e6)
    )
    await server.start()
    rig.cleanups.append(server.stop)
    cfg = MarlinConfig(port=server.path, baud=1_000_000, ok_timeout_s=0.5)
    return MarlinDriver("c-marlin", cfg, PROFILE)


async def _virtual(rig: Rig, slow: bool) -> PrinterDriver:
    return VirtualDriver("c-virtual", VirtualConfig(sim_speed=10.0 if slow else 5000.0), PROFILE)


async def _sim(rig: Rig, slow: bool) -> PrinterDriver:
    return SimPrinter("c-sim", SimPrinterConfig(sim_speed=2.0 if slow else 50.0), PROFILE)


async def _moonraker(rig: Rig, slow: bool) -> PrinterDriver:
    """The Moonraker driver against the repo's Moonraker simulator over a real mosquitto."""
    instance = f"klipper-{uuid.uuid4().hex[:8]}"
    sim = MoonrakerSimulator(
        BusSettings(broker=rig.broker.url, reconnect_initial_s=0.05),
        instance,
        bytes_per_s=2_000 if slow else 20_000,
        status_interval_s=0.05,
    )
    await sim.start()
    rig.cleanups.append(sim.stop)
    cfg = MoonrakerConfig(
        broker=rig.broker.url,
        instance=instance,
        http_url=sim.http_url,
        offline_grace_s=0.5,
        request_timeout_s=3.0,
    )
    return MoonrakerDriver("c-moonraker", cfg, PROFILE)


async def _bambu(rig: Rig, slow: bool) -> PrinterDriver:
    """The Bambu driver against the Bambu simulator: plain MQTT and plain FTP, as a mock farm."""
    serial = f"SIM{uuid.uuid4().hex[:8].upper()}"
    sim = BambuSimulator(
        BusSettings(broker=rig.broker.url, reconnect_initial_s=0.05),
        serial,
        BAMBU_CODE,
        ftps_context=None,
        print_s=4.0 if slow else 1.0,
        report_interval_s=0.05,
        idle_report_s=0.25,
    )
    await sim.start()
    rig.cleanups.append(sim.stop)
    cfg = BambuConfig(
        host="127.0.0.1",
        serial=serial,
        access_code=BAMBU_CODE,
        broker=rig.broker.url,
        ftp_port=sim.ftp_port,
        ftp_tls=False,
        request_timeout_s=5.0,
    )
    return BambuDriver("c-bambu", cfg, PROFILE)


async def _bus(rig: Rig, slow: bool) -> PrinterDriver:
    """The bus driver against a node (as `printforge node` runs one) holding a virtual printer."""
    settings = bus_settings(rig.broker.url)
    local = VirtualDriver("p1", VirtualConfig(sim_speed=10.0 if slow else 5000.0), PROFILE)
    await local.start()
    rig.cleanups.append(local.stop)
    node = BusNode(settings, [local], spool_dir=rig.tmp / "spool")
    await node.start(wait_s=5)
    rig.cleanups.append(node.stop)
    farm = FarmClient(settings)
    await farm.start(wait_s=5)
    rig.cleanups.append(farm.stop)
    return RemotePrinterDriver("h1.p1", RemoteConfig(), PROFILE, farm=farm)


BUILDERS: dict[str, Callable[[Rig, bool], Awaitable[PrinterDriver]]] = {
    "marlin": _marlin,
    "virtual": _virtual,
    "sim": _sim,
    "moonraker": _moonraker,
    "bambu": _bambu,
    "bus": _bus,
}


@pytest_asyncio.fixture(params=KINDS)
async def rig(
    request: pytest.FixtureRequest, mosquitto_broker: Mosquitto, tmp_path: Path
) -> AsyncIterator[Rig]:
    rig = Rig(request.param, mosquitto_broker, tmp_path)
    try:
        yield rig
    finally:
        await rig.close()
