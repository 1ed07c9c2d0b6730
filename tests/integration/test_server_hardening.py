"""Server hardening (issue 11, item 7), against the real aiohttp app on loopback or a real
`printforge serve` process: artifacts, file modes, guess limiting, body and nesting limits,
the low-disk guard, who may cancel a job, and keys created beside a running server."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from printforge.runtime.settings import load_settings
from printforge.server.app import create_app
from tests.fakes.serve_process import ServeProcess, wait_for

ADMIN_KEY = "hardening-admin-key-0123456789"
Factory = Callable[..., Awaitable[TestClient]]


@pytest_asyncio.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Factory]:
    clients: list[TestClient] = []

    async def make(**overrides: Any) -> TestClient:
        server_cfg = overrides.pop("server", {})
        settings = load_settings(
            overrides={
                "data_dir": str(overrides.pop("data_dir", tmp_path / f"data{len(clients)}")),
                "mock": True,
                "sim_speed": 5000.0,
                "api_key": ADMIN_KEY,
                "server": server_cfg,
                **overrides,
            }
        )
        client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def auth(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def wait_job(client: TestClient, job_id: str, key: str = ADMIN_KEY) -> dict[str, Any]:
    for _ in range(1200):
        job = await (await client.get(f"/api/jobs/{job_id}", headers=auth(key))).json()
        if job["state"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def data_dir_of(client: TestClient) -> Path:
    from printforge.server.state import STATE_KEY

    return client.server.app[STATE_KEY].settings.data_dir


# 1. artifacts and file modes ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_artifacts_refuse_symlinks_and_hard_links_to_other_files(
    make_server: Factory,
) -> None:
    client = await make_server()
    resp = await client.post(
        "/api/jobs", json={"request": "a 20 mm cube", "print": False}, headers=auth()
    )
    assert resp.status == 202, await resp.text()
    job_id = (await resp.json())["job_id"]
    assert (await wait_job(client, job_id))["state"] == "completed"
    data = data_dir_of(client)
    folder = data / "jobs" / job_id
    keys = data / "api_keys.json"
    assert keys.is_file()

    # The job's own files are served.
    resp = await client.get(f"/api/jobs/{job_id}/artifacts/gcode", headers=auth())
    assert resp.status == 200
    assert (await resp.read()).startswith(b";") or resp.content_length

    (folder / "request.json").unlink()
    (folder / "request.json").symlink_to(keys)
    (folder / "report.json").unlink()
    os.link(keys, folder / "report.json")
    for name in ("request", "report"):
        resp = await client.get(f"/api/jobs/{job_id}/artifacts/{name}", headers=auth())
        body = await resp.text()
        assert resp.status == 404, body
        assert '"keys"' not in body
    view = await (await client.get(f"/api/jobs/{job_id}", headers=auth())).json()
    assert "request" not in view["artifacts"] and "report" not in view["artifacts"]
    assert "gcode" in view["artifacts"]

    # A job folder that is itself a symlink is not followed either.
    (folder / "request.json").unlink()
    (folder / "report.json").unlink()
    other = data / "elsewhere"
    folder.rename(other)
    folder.symlink_to(other)
    resp = await client.get(f"/api/jobs/{job_id}/artifacts/gcode", headers=auth())
    assert resp.status == 404


def _modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_serve_keeps_its_data_dir_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # made by an older version: tightened at start
    server = ServeProcess(data, ADMIN_KEY).start()
    try:
        # An upload, and a job that writes its files.
        import urllib.request

        req = urllib.request.Request(
            server.url + "/api/uploads?filename=part.gcode",
            data=b"G28\nG1 X10 Y10 F3000\n",
            method="POST",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 201
        job = server.api("POST", "/api/jobs", {"request": "a 20 mm cube", "print": False})
        wait_for(
            lambda: server.api("GET", f"/api/jobs/{job['job_id']}")["state"] == "completed",
            120,
            "the job to complete",
        )
    finally:
        server.stop()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    modes = _modes(data)
    modes.pop("serve.log")  # the test's own log of the process
    assert "printforge.sqlite3" in modes and any(k.startswith("uploads/") for k in modes)
    assert any(k.startswith(f"jobs/{job['job_id']}/") for k in modes)
    loose = {
        path: oct(mode)
        for path, mode in modes.items()
        if mode & 0o077 or not (mode in (0o600, 0o700))
    }
    assert not loose, loose
