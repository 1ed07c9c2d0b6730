"""A pause asked for while M109 holds the stream: accepted at once, parked once the heat-up ends.

Marlin runs one command at a time, so nothing the host sends can park the nozzle before a
heating wait returns. The pause used to wait for it inside the request and time out after
`safe_stop_timeout_s`: a bare TimeoutError, HTTP 500 "internal error".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus
from printforge.server.app import create_app
from printforge.server.rpc import ErrorCode, error_for
from printforge.server.state import STATE_KEY
from printforge.settings import load_settings
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

PROFILE = PrinterProfile(name="generic-220")
ADMIN_KEY = "test-admin-key-0123456789"
# At this speed M109 S210 from room temperature takes about 7 s, longer than the 5 s floor
# of the virtual printer's safe-stop timeout, which the old pause waited within.
SIM_SPEED = 15.0
HEAT_C = 210
GCODE = f"G1 Z0.3 F600\nM109 S{HEAT_C}\n" + numbered_moves_gcode(200)


async def _status_until(drv: VirtualDriver, check: Callable[[PrinterStatus], bool]) -> None:
    """Wait, listening to the driver, until its status passes `check` (bounded)."""
    changed = asyncio.Event()
    remove = drv.add_listener(lambda _s: changed.set())
    try:
        async with asyncio.timeout(60):
            while not check(drv.status()):
                changed.clear()
                await changed.wait()
    finally:
        remove()


def _heating(status: PrinterStatus) -> bool:
    hotend = status.temperatures.get("hotend")
    return hotend is not None and hotend.target == HEAT_C


async def _consume(drv: VirtualDriver, path: Path) -> None:
    async for _ in drv.stream(path):
        pass


@pytest.mark.asyncio
async def test_pause_during_m109_parks_once_the_heat_up_ends(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, GCODE)
    cfg = VirtualConfig.model_validate({"sim_speed": SIM_SPEED})
    async with VirtualDriver("v1", cfg, PROFILE) as drv:
        states: list[PrinterState] = []
        drv.add_listener(lambda s: states.append(s.state))
        printing = asyncio.create_task(_consume(drv, path))
        await _status_until(drv, _heating)  # M109 is the command running now
        await drv.pause()
        # Accepted, not done: the heating wait still holds the firmware.
        status = drv.status()
        assert status.state is PrinterState.PRINTING
        assert status.message == f"pausing after `M109 S{HEAT_C}` ends"
        await drv.pause()  # asking again is no error: the same pause
        await _status_until(drv, lambda s: s.state is PrinterState.PAUSED)
        machine = drv.machine
        assert machine is not None
        assert machine.hotends[0].actual(machine.now()) >= HEAT_C - 1  # M109 ran to its end
        assert drv._saved is not None and machine.pos["Z"] > drv._saved.z  # parked, lifted
        assert drv.status().message is None
        await drv.resume()
        async with asyncio.timeout(60):
            await printing
        assert drv.status().state is PrinterState.IDLE
        assert PrinterState.PAUSED in states


@pytest.mark.asyncio
async def test_resume_before_the_heat_up_ends_calls_the_pause_off(tmp_path: Path) -> None:
    path = write_gcode(tmp_path, GCODE)
    cfg = VirtualConfig.model_validate({"sim_speed": SIM_SPEED})
    async with VirtualDriver("v1", cfg, PROFILE) as drv:
        states: list[PrinterState] = []
        drv.add_listener(lambda s: states.append(s.state))
        printing = asyncio.create_task(_consume(drv, path))
        await _status_until(drv, _heating)
        await drv.pause()
        await drv.resume()
        assert drv.status().message is None
        async with asyncio.timeout(60):
            await printing
        assert PrinterState.PAUSED not in states  # nothing was parked
        assert drv.status().state is PrinterState.IDLE


@pytest.mark.asyncio
async def test_rest_pause_during_m109_is_accepted_not_a_500(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "mock": True,
            "sim_speed": SIM_SPEED,
            "api_key": ADMIN_KEY,
        }
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        resp = await client.get("/api/printers", headers=headers)
        name = (await resp.json())["printers"][0]["id"]
        drv = client.server.app[STATE_KEY].orch.printers.get(name)
        assert isinstance(drv, VirtualDriver)
        await _status_until(drv, lambda s: s.state is PrinterState.IDLE)
        printing = asyncio.create_task(_consume(drv, write_gcode(tmp_path, GCODE)))
        await _status_until(drv, _heating)
        resp = await client.post(f"/api/printers/{name}/pause", headers=headers)
        body = await resp.json()
        assert resp.status == 200, body
        assert body["state"] == "printing"
        assert body["message"] == f"pausing after `M109 S{HEAT_C}` ends"
        await _status_until(drv, lambda s: s.state is PrinterState.PAUSED)
        resp = await client.post(f"/api/printers/{name}/resume", headers=headers)
        assert resp.status == 200, await resp.text()
        async with asyncio.timeout(60):
            await printing
    finally:
        await client.close()


def test_a_timeout_in_a_handler_is_a_clear_503_not_an_internal_error() -> None:
    err = error_for(TimeoutError())
    assert (err.code, err.http_status) == (ErrorCode.UNAVAILABLE, 503)
    assert err.data == {"error": "timeout"} and "timed out" in err.message
