"""The dashboard's server side (issue 15): `printer.gcode` lines through a stateful gate, admin
only, and `job.layer`'s toolpaths, on a real server with a real Orchestrator on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from printforge.server.app import create_app
from printforge.settings import load_settings

ADMIN_KEY = "test-console-admin-key-0123456789"


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "mock": True,
            "sim_speed": 5000.0,
            "api_key": ADMIN_KEY,
        }
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    yield client
    await client.close()


async def rpc(client: TestClient, method: str, params: Any, key: str = ADMIN_KEY) -> Any:
    resp = await client.post(
        "/api/rpc",
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        headers={"Authorization": f"Bearer {key}"},
    )
    return await resp.json()


async def gcode(client: TestClient, line: str, key: str = ADMIN_KEY) -> Any:
    return await rpc(client, "printer.gcode", {"printer": "virtual", "line": line}, key)


@pytest.mark.asyncio
async def test_console_lines_pass_the_gate_judged_by_the_lines_before(client: TestClient) -> None:
    refused = await gcode(client, "G1 X10 Y10")
    assert refused["error"]["code"] == -32009
    assert "home first" in refused["error"]["message"]
    assert (await gcode(client, "G28"))["result"]["homed"] is True
    # Relative mode is remembered: 10 mm down from z 0 is below the bed.
    assert "result" in await gcode(client, "G91")
    below = await gcode(client, "G1 Z-10")
    assert below["error"]["data"]["error"] == "unsafe_gcode"
    assert "Z" in below["error"]["message"]
    assert "result" in await gcode(client, "G1 Z5")
    assert "result" in await gcode(client, "G90")
    assert "result" in await gcode(client, "G1 X10 Y10 Z5 F3000")
    hot = await gcode(client, "M104 S400")
    assert "400" in hot["error"]["message"]
    two = await gcode(client, "G28\nM104 S200")
    assert "one line at a time" in two["error"]["message"]


@pytest.mark.asyncio
async def test_console_is_for_admins_only(client: TestClient) -> None:
    for role in ("operator", "viewer"):
        made = await rpc(client, "auth.create_key", {"name": role, "role": role})
        answer = await gcode(client, "G28", made["result"]["key"])
        assert answer["error"]["code"] == -32003, answer


@pytest.mark.asyncio
async def test_layer_toolpaths_of_a_sliced_job(client: TestClient) -> None:
    submitted = await rpc(client, "job.submit", {"request": "a 10 mm cube", "print": False})
    job_id = submitted["result"]["job_id"]
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    # Waits on the job's own events, bounded: the settled state comes on the websocket.
    async with client.ws_connect("/ws", headers=headers) as ws:
        job = (await rpc(client, "job.get", {"job_id": job_id}))["result"]
        while job["state"] not in ("completed", "failed"):
            msg = await ws.receive_json(timeout=60)
            if msg.get("method") == "job.event" and msg["params"]["job_id"] == job_id:
                job = (await rpc(client, "job.get", {"job_id": job_id}))["result"]
    assert job["state"] == "completed", job
    top = (await rpc(client, "job.layer", {"job_id": job_id}))["result"]
    assert top["layer"] == top["layers"] == job["gcode"]["layers"]
    assert top["current"] is None  # not printing
    first = await client.get(f"/api/jobs/{job_id}/layer?layer=1", headers=headers)
    layer1 = await first.json()
    assert layer1["layer"] == 1 and layer1["z"] < top["z"]
    segs = layer1["segments"]
    assert len(segs) == 4 * layer1["shown"] > 0
    x0, y0, x1, y1 = layer1["bounds"]
    assert all(x0 <= x <= x1 for x in segs[0::2]) and all(y0 <= y <= y1 for y in segs[1::2])
    assert 10.0 <= x1 - x0 <= 30.0  # a 10 mm cube and its skirt, on a 220 mm bed
    beyond = await rpc(client, "job.layer", {"job_id": job_id, "layer": top["layers"] + 1})
    assert "layers" in beyond["error"]["message"]
    missing = await rpc(client, "job.layer", {"job_id": "nosuchjob"})
    assert missing["error"]["code"] == -32004
