"""`job.cancel_object` over JSON-RPC and its REST mirror, on a server with a virtual printer
(the Marlin host on the virtual board): the job's view lists the plate's objects."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.test_marlin_cancel_object import two_objects_gcode
from tests.integration.test_server_api import (  # noqa: F401 - make_server is a fixture
    Factory,
    auth,
    make_server,
    wait_job,
)


async def _rpc(client: TestClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    resp = await client.post("/api/rpc", json=body, headers=auth())
    return await resp.json()


async def _printing(client: TestClient, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            job = await (await client.get(f"/api/jobs/{job_id}", headers=auth())).json()
            if job["state"] == "printing" and job["objects"] and (job["progress"] or 0) > 0:
                return job
            assert job["state"] in ("queued", "slicing", "printing", "pending"), job
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_cancel_object_by_rpc_and_rest(make_server: Factory) -> None:  # noqa: F811
    client = await make_server(sim_speed=40.0)
    text, _e = two_objects_gcode(layers=80)
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename="plate.gcode")
    up = await (await client.post("/api/uploads", data=form, headers=auth())).json()
    resp = await client.post("/api/jobs", json={"upload": up["upload"]}, headers=auth())
    job_id = (await resp.json())["job_id"]
    refused = await _rpc(client, "job.cancel_object", {"job_id": "nosuchjob", "object": 0})
    assert "error" in refused
    job = await _printing(client, job_id)
    assert job["objects"] == [
        {"id": 0, "name": "left", "cancelled": False},
        {"id": 1, "name": "right", "cancelled": False},
    ]
    unknown = await _rpc(client, "job.cancel_object", {"job_id": job_id, "object": "middle"})
    assert "no object 'middle'" in unknown["error"]["message"]
    done = await _rpc(client, "job.cancel_object", {"job_id": job_id, "object": "left"})
    assert done["result"]["object"] == {"id": 0, "name": "left", "cancelled": True}
    view = await (await client.get(f"/api/jobs/{job_id}", headers=auth())).json()
    assert [o["cancelled"] for o in view["objects"]] == [True, False]
    # The REST mirror, by index.
    resp = await client.post(
        f"/api/jobs/{job_id}/cancel_object", json={"object": 1}, headers=auth()
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["object"]["name"] == "right"
    finished = await wait_job(client, job_id)
    assert finished["state"] == "completed"
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["paths"]["/api/jobs/{job_id}/cancel_object"]["post"]["operationId"] == (
        "job.cancel_object"
    )
