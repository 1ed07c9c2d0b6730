"""`job.snapshots` and the pictures of a watched print over the API (issue 17): a printer with a
(virtual) camera prints a request; the job's snapshots, one per layer change, come back with
URLs that serve JPEGs, the job view points at the last one, and a made-up name is refused."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.test_server_api import Factory, auth, make_server  # noqa: F401

pytestmark = pytest.mark.timeout(600)


@pytest.mark.asyncio
async def test_a_watched_print_lists_and_serves_its_snapshots(make_server: Factory) -> None:  # noqa: F811
    client: TestClient = await make_server(
        sim_speed=20.0,
        printers={"cam": {"camera": {"timeout_s": 90, "virtual": {"seed": 2}}}},
        default_printer="cam",
    )
    resp = await client.post(
        "/api/jobs", json={"request": "a 12 mm cube", "printer": "cam"}, headers=auth()
    )
    assert resp.status == 202, await resp.text()
    job_id = (await resp.json())["job_id"]
    for _ in range(3000):  # each answer waits on the server; bounded by the test's timeout
        job = await (await client.get(f"/api/jobs/{job_id}", headers=auth())).json()
        if job["state"] in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.2)
    assert job["state"] == "completed", job["error"]
    resp = await client.get(f"/api/jobs/{job_id}/snapshots", headers=auth())
    assert resp.status == 200
    shots = await resp.json()
    assert shots["snapshots"][0]["layer"] == 0 and shots["last"] == shots["snapshots"][-1]
    assert shots["diagnosis"] is None
    assert job["vision"]["last_snapshot"] == shots["last"]["url"]
    picture = await client.get(shots["last"]["url"], headers=auth())
    assert picture.status == 200 and picture.headers["Content-Type"] == "image/jpeg"
    assert (await picture.read())[:2] == b"\xff\xd8"
    for name in ("report.json", "snapshots/../report.json", "snapshots/layer-1.jpg"):
        bad = await client.get(f"/api/jobs/{job_id}/pictures/{name}", headers=auth())
        assert bad.status == 404, name
    assert (await client.get(shots["last"]["url"])).status == 401  # no key, no picture
