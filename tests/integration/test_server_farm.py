"""The farm scheduler behind the server, on real virtual printers: copies stay on the printer
profile their G-code was sliced for, and a bed_clear_required printer waits for a person after
any print that began on it, cancelled ones included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from printforge.models.job import Job
from printforge.models.request import PrintRequest
from printforge.orchestrator.printers import PrinterManager
from printforge.orchestrator.scheduler import FarmScheduler
from printforge.runtime.errors import InputError
from printforge.server.app import create_app
from printforge.settings import Settings, load_settings

KEY = "farm-admin-key-0123456789"
TIMEOUT = 60.0  # generous: a loaded 2-core CI machine


def farm_settings(tmp_path: Path, printers: dict[str, Any], sim_speed: float) -> Settings:
    return load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "mock": True,
            "sim_speed": sim_speed,
            "api_key": KEY,
            "printers": printers,
        }
    )


# The scheduler alone ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def two_profiles(tmp_path: Path) -> AsyncIterator[tuple[Settings, PrinterManager]]:
    settings = farm_settings(
        tmp_path,
        {
            "a": {"driver": "virtual", "profile": "generic-220", "material": "PLA"},
            "b": {"driver": "virtual", "profile": "prusa-mk3s", "material": "PLA"},
        },
        sim_speed=1000.0,
    )
    printers = PrinterManager(settings)
    await printers.start()
    try:
        yield settings, printers
    finally:
        await printers.stop()


@pytest.mark.asyncio
async def test_a_copy_targets_the_profile_its_original_was_sliced_for(
    two_profiles: tuple[Settings, PrinterManager],
) -> None:
    settings, printers = two_profiles
    scheduler = FarmScheduler(settings, printers)
    original = Job(request=PrintRequest(text="a 20 mm cube"))
    assert scheduler.target(original) == "a"
    assert original.sliced_for == "generic-220"
    # The original now prints on a; b (another profile, same material) is the only free one.
    printers.reserve("a", original.id)
    # The orchestrator gives a copy its original's profile from the store (typed state, not
    # the original's report.json); a re-queued copy keeps it.
    copy = Job(
        request=PrintRequest(text="a 20 mm cube"),
        copy_of=original.id,
        sliced_for=original.sliced_for,
    )
    assert scheduler.target(copy) == "a", "the copy would print G-code sliced for another bed"
    # A copy pinned to a printer of another profile is refused in words, not printed wrongly.
    pinned = Job(
        request=PrintRequest(text="a 20 mm cube", printer="b"),
        copy_of=original.id,
        sliced_for="generic-220",
    )
    with pytest.raises(InputError, match="sliced for generic-220"):
        scheduler.target(pinned)


# Through the server --------------------------------------------------------------------------


async def rpc(ws: aiohttp.ClientWebSocketResponse, msg_id: int, method: str, **params: Any) -> Any:
    await ws.send_str(
        json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    )
    while True:
        msg = await ws.receive(timeout=TIMEOUT)
        assert msg.type is WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if "method" not in data and data.get("id") == msg_id:
            assert "error" not in data, data
            return data["result"]


async def printer_state(ws: aiohttp.ClientWebSocketResponse, name: str, msg_id: int) -> Any:
    listed = await rpc(ws, msg_id, "printer.list")
    return next(p for p in listed["printers"] if p["id"] == name)


async def wait_job(
    ws: aiohttp.ClientWebSocketResponse, job_id: str, states: set[str], first_id: int
) -> Any:
    async with asyncio.timeout(TIMEOUT):
        n = first_id
        while True:
            job = await rpc(ws, n, "job.get", job_id=job_id)
            if job["state"] in states:
                return job
            n += 1
            await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_a_cancelled_print_leaves_a_bed_clear_printer_waiting(tmp_path: Path) -> None:
    # Slow enough that the print is still running when it is cancelled.
    settings = farm_settings(
        tmp_path,
        {"a": {"driver": "virtual", "material": "PLA", "bed_clear_required": True}},
        sim_speed=20.0,
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        ws = await client.ws_connect("/ws", headers={"Authorization": f"Bearer {KEY}"})
        first = (await rpc(ws, 1, "job.submit", request="a 20 mm cube"))["job_id"]
        await wait_job(ws, first, {"printing"}, 100)
        async with asyncio.timeout(TIMEOUT):
            n = 1000
            while (await printer_state(ws, "a", n))["state"] != "printing":
                n += 1
                await asyncio.sleep(0.05)
        await rpc(ws, 2, "printer.cancel", printer="a")
        assert (await wait_job(ws, first, {"cancelled"}, 2000))["state"] == "cancelled"
        # Half a part is on the bed: the next job must not start on top of it.
        status = await printer_state(ws, "a", 3)
        assert status["state"] == "finished", status
        assert status["message"] == "waiting for bed clear"
        second = (await rpc(ws, 4, "job.submit", request="a 10 mm cube"))["job_id"]
        await rpc(ws, 5, "printer.confirm_bed_clear", printer="a")
        done = await wait_job(ws, second, {"printing", "completed", "failed"}, 3000)
        assert done["state"] in ("printing", "completed") and done["printer"] == "a"
        await ws.close()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_jobs_prepared_together_aim_at_different_free_printers(
    two_profiles: tuple[Settings, PrinterManager],
) -> None:
    settings, printers = two_profiles
    scheduler = FarmScheduler(settings, printers)
    first = Job(request=PrintRequest(text="a 20 mm cube"))
    second = Job(request=PrintRequest(text="a 10 mm cube"))
    # Both printers are free while both jobs are designed: the second must not queue behind
    # the first for `a` (another profile, so it could never move) while `b` stays idle.
    assert scheduler.target(first) == "a"
    assert scheduler.target(second) == "b"
    # Once the first has its printer, it no longer counts against `a`.
    assert await scheduler.acquire(first, "a") == "a"
    printers.release("a", printed=False)
    third = Job(request=PrintRequest(text="a 12 mm cube"))
    assert scheduler.target(third) == "a"


@pytest.mark.asyncio
async def test_a_material_no_printer_has_loaded_is_refused_at_submission(tmp_path: Path) -> None:
    settings = farm_settings(
        tmp_path,
        {
            "a": {"driver": "virtual", "material": "PLA"},
            "b": {"driver": "virtual", "material": "PETG"},
        },
        sim_speed=5000.0,
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        ws = await client.ws_connect("/ws", headers={"Authorization": f"Bearer {KEY}"})
        await rpc(ws, 1, "events.subscribe", jobs="none", printers=False)
        # Before: accepted, sliced, then waiting for ever beside an idle printer.
        await ws.send_str(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "job.submit",
                    "params": {"request": "a 10 mm cube", "printer": "a", "material": "PETG"},
                }
            )
        )
        refused = json.loads((await ws.receive(timeout=TIMEOUT)).data)
        assert refused["error"]["code"] == -32602
        assert "printer a has PLA loaded, not PETG" in refused["error"]["message"]
        # Slicing only needs no printer; PETG without a printer goes to the one that has it.
        await rpc(
            ws, 3, "job.submit", request="a 10 mm cube", printer="a", material="PETG", print=False
        )
        job_id = (await rpc(ws, 4, "job.submit", request="a 10 mm cube", material="petg"))["job_id"]
        done = await wait_job(ws, job_id, {"completed", "failed"}, 100)
        assert done["state"] == "completed" and done["printer"] == "b", done
        await ws.close()
    finally:
        await client.close()
