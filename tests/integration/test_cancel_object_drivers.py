"""Cancelling one object on the other drivers: Klipper through Moonraker (`EXCLUDE_OBJECT`, on
the Moonraker simulator over a real mosquitto), a bus printer (forwarded to a real
`printforge node` process), Bambu (refused: `unsupported`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from printforge.hardware.mqtt.bambu import BambuConfig, BambuDriver
from printforge.hardware.mqtt.discovery import BusDiscovery
from printforge.hardware.mqtt.moonraker import MoonrakerDriver
from printforge.hardware.mqtt.remote import RemotePrinterDriver
from printforge.hardware.mqtt.sim.moonraker import MoonrakerSimulator
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError, InvalidTransition, PrinterError
from tests.integration.test_marlin_cancel_object import two_objects_gcode
from tests.integration.test_moonraker import klipper  # noqa: F401 - fixture
from tests.integration.test_node_gate import node  # noqa: F401 - fixture

pytestmark = pytest.mark.mqtt


def klipper_gcode(layers: int = 40) -> str:
    """Two labelled squares as the built-in slicer writes them for `firmware = "klipper"`."""
    out = [
        "EXCLUDE_OBJECT_DEFINE NAME=left CENTER=15,15 POLYGON=[[10,10],[20,10],[20,20],[10,20]]",
        "EXCLUDE_OBJECT_DEFINE NAME=right CENTER=45,45 POLYGON=[[40,40],[50,40],[50,50],[40,50]]",
        "G28",
        "M83",
    ]
    for n in range(layers):
        out.append(f"G1 Z{0.2 * (n + 1):.2f} F600")
        for name, a, b in (("left", 10, 20), ("right", 40, 50)):
            out.append(f"EXCLUDE_OBJECT_START NAME={name}")
            out.append(f"G0 X{a} Y{a} F9000")
            for x, y in ((b, a), (b, b), (a, b), (a, a)):
                out.append(f"G1 X{x} Y{y} E0.5 F1800 ; {name} wall {n}")
            out.append(f"EXCLUDE_OBJECT_END NAME={name}")
    return "\n".join(out) + "\n"


@pytest.mark.asyncio
async def test_klipper_excludes_the_object_and_the_simulator_skips_it(
    klipper: tuple[MoonrakerSimulator, MoonrakerDriver],  # noqa: F811
    tmp_path: Path,
) -> None:
    sim, driver = klipper
    path = tmp_path / "plate.gcode"
    path.write_text(klipper_gcode())
    with pytest.raises(InvalidTransition):
        await driver.cancel_object("left")
    answers = []
    async for _progress in driver.stream(path, job_id="k-obj"):
        if not answers:
            # Listed from the file's definitions as soon as the print starts.
            assert [o["name"] for o in driver.objects()] == ["LEFT", "RIGHT"]
            with pytest.raises(InputError, match="no object 'middle'"):
                await driver.cancel_object("middle")
            answers.append(await driver.cancel_object("left"))
            assert [(o["name"], o["cancelled"]) for o in driver.objects()] == [
                ("LEFT", True),
                ("RIGHT", False),
            ]
    assert answers == [{"id": 0, "name": "LEFT", "cancelled": True}]
    assert sim.tree["exclude_object"]["excluded_objects"] == ["LEFT"]
    assert sim.tree["print_stats"]["state"] == "complete"
    assert sim.skipped_bytes > 0
    # By index too, and a second time is harmless (Klipper keeps the list unique).
    sim._gcode("EXCLUDE_OBJECT NAME=left")
    assert sim.tree["exclude_object"]["excluded_objects"] == ["LEFT"]


@pytest.mark.asyncio
async def test_a_bus_printer_forwards_the_cancel_to_its_node(
    node: tuple[BusDiscovery, RemotePrinterDriver],  # noqa: F811
    tmp_path: Path,
) -> None:
    _disc, driver = node
    text, _e = two_objects_gcode(layers=60)
    path = tmp_path / "plate.gcode"
    path.write_text(text)
    with pytest.raises(InvalidTransition):
        await driver.cancel_object("left")  # the node's printer is not printing
    answers = []
    async for progress in driver.stream(path, job_id="bus-obj"):
        if not answers and progress.lines_acked > 0:
            with pytest.raises(InputError, match="no object 'middle'"):
                await driver.cancel_object("middle")
            answers.append(await driver.cancel_object(1))
    assert answers == [{"id": 1, "name": "right", "cancelled": True}]
    assert driver.objects() == answers


@pytest.mark.asyncio
async def test_bambu_says_unsupported() -> None:
    driver = BambuDriver(
        "x1",
        BambuConfig(host="127.0.0.1", serial="01S00A000000000", access_code="12345678"),
        PrinterProfile(name="generic-220"),
    )
    with pytest.raises(PrinterError, match="not supported on Bambu") as info:
        await asyncio.wait_for(driver.cancel_object("left"), 5)
    assert info.value.code == "unsupported"
