"""Server hardening (issue 11, item 7), against the real aiohttp app on loopback or a real
`printforge serve` process: artifacts, file modes, guess limiting, body and nesting limits,
the low-disk guard, who may cancel a job, and keys created beside a running server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from printforge.runtime.settings import load_settings
from printforge.server.app import create_app
from tests.fakes.serve_process import REPO, ServeProcess, wait_for

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
        if mode & 0o077 or mode not in (0o600, 0o700)
    }
    assert not loose, loose


# 2. guess limiting -------------------------------------------------------------------------------


async def _whoami(client: TestClient, key: str, xff: str | None = None) -> int:
    headers = auth(key)
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    resp = await client.get("/api/auth/whoami", headers=headers)
    await resp.release()
    return resp.status


@pytest.mark.asyncio
async def test_concurrent_guesses_are_throttled_like_sequential_ones(make_server: Factory) -> None:
    client = await make_server()
    statuses = await asyncio.gather(
        *(_whoami(client, f"wrong-guess-{n:04d}-padding") for n in range(49))
    )
    checked = statuses.count(401)
    # The burst of the guess bucket (10), however the guesses are timed.
    assert checked <= 10, statuses
    assert statuses.count(429) == 49 - checked


@pytest.mark.asyncio
async def test_guessing_locks_out_neither_generated_keys_nor_other_addresses(
    make_server: Factory,
) -> None:
    client = await make_server()
    resp = await client.post(
        "/api/auth/keys", json={"name": "op", "role": "operator"}, headers=auth()
    )
    operator = (await resp.json())["key"]
    key_id = operator.split("_", 2)[1]
    statuses = [await _whoami(client, f"wrong-guess-{n:04d}-padding") for n in range(40)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    # Another user's generated key, never used before, from the same address: let in.
    assert await _whoami(client, operator) == 200
    # Guesses at that key's secret are throttled per key id, concurrent or not.
    guesses = await asyncio.gather(
        *(_whoami(client, f"pf_{key_id}_wrong{n:04d}secretsecretsecret") for n in range(30))
    )
    assert guesses.count(401) <= 10 and guesses.count(429) >= 20, guesses
    # ...and the key holder, already verified, keeps working.
    assert await _whoami(client, operator) == 200


@pytest.mark.asyncio
async def test_forwarded_for_counts_only_from_trusted_proxies(make_server: Factory) -> None:
    behind = await make_server(server={"trusted_proxies": ["127.0.0.1/32"]})
    for n in range(40):
        await _whoami(behind, f"wrong-guess-{n:04d}-padding", xff="203.0.113.7")
    assert await _whoami(behind, "wrong-guess-last-padding", xff="203.0.113.7") == 429
    # Another client behind the same proxy is not throttled for the first one's guesses, nor
    # one who writes the throttled address further left in the header.
    assert await _whoami(behind, "wrong-guess-other-padding", xff="198.51.100.2") == 401
    assert await _whoami(behind, "wrong-guess-x-padding", xff="203.0.113.7, 198.51.100.3") == 401
    assert await _whoami(behind, ADMIN_KEY, xff="198.51.100.2") == 200

    direct = await make_server()
    for n in range(40):
        await _whoami(direct, f"wrong-guess-{n:04d}-padding", xff="203.0.113.7")
    # Not from a trusted proxy: the header is the client's own claim and is ignored.
    assert await _whoami(direct, "wrong-guess-other-padding", xff="198.51.100.2") == 429


# 3. body size and nesting ------------------------------------------------------------------------


def _deep(depth: int) -> str:
    return (
        '{"jsonrpc": "2.0", "id": 7, "method": "auth.whoami", "params": {"x": '
        + ("[" * depth + "]" * depth)
        + "}}"
    )


@pytest.mark.asyncio
async def test_json_bodies_over_the_limit_are_refused_with_413(make_server: Factory) -> None:
    client = await make_server()
    pad = "x" * (2 * 1024 * 1024)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.whoami", "pad": pad})
    resp = await client.post("/api/rpc", data=io.BytesIO(body.encode()), headers=auth())
    answer = await resp.json()
    assert resp.status == 413, answer
    assert answer["jsonrpc"] == "2.0" and answer["error"]["code"] == -32600
    assert "max_request_bytes" in answer["error"]["message"]
    resp = await client.post(
        "/api/jobs",
        data=io.BytesIO(json.dumps({"request": "a cube", "pad": pad}).encode()),
        headers=auth(),
    )
    assert resp.status == 413 and (await resp.json())["error"]["code"] == -32600
    # Uploads keep their own, larger limit.
    resp = await client.post(
        "/api/uploads",
        params={"filename": "big.gcode"},
        data=io.BytesIO(b"G1 X1 Y1\n" * 250_000),
        headers=auth(),
    )
    assert resp.status == 201, await resp.text()


@pytest.mark.asyncio
@pytest.mark.parametrize("depth", [40, 1000, 5000])
async def test_deep_json_is_a_json_rpc_error_over_http_and_websocket(
    make_server: Factory, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_server()
    resp = await client.post("/api/rpc", data=_deep(depth), headers=auth())
    answer = await resp.json()
    assert resp.status == 400, answer
    assert answer["error"]["code"] == -32600 and "nested deeper" in answer["error"]["message"]
    resp = await client.post(
        "/api/jobs", data='{"request": ' + "[" * depth + "]" * depth + "}", headers=auth()
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == -32600

    ws = await client.ws_connect("/ws", headers=auth())
    await ws.send_str(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "events.subscribe",
                "params": {"jobs": "none", "printers": False},
            }
        )
    )
    await ws.receive(timeout=10)
    await ws.send_str(_deep(depth))
    answer = json.loads((await ws.receive(timeout=10)).data)
    assert answer["error"]["code"] == -32600, answer
    # The socket is still open and answers.
    await ws.send_str('{"jsonrpc": "2.0", "id": 2, "method": "auth.whoami"}')
    answer = json.loads((await ws.receive(timeout=10)).data)
    assert answer["result"]["role"] == "admin"
    await ws.close()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.records


# 4. low disk -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_below_min_free_bytes_submits_are_refused_and_not_ready(
    make_server: Factory,
) -> None:
    # A floor above any disk's free space stands in for a full disk.
    client = await make_server(server={"min_free_bytes": 2**62})
    resp = await client.get("/health/ready")
    body = await resp.json()
    assert resp.status == 503 and body["disk"]["ok"] is False, body
    resp = await client.post("/api/jobs", json={"request": "a 20 mm cube"}, headers=auth())
    answer = await resp.json()
    assert resp.status == 503, answer
    assert answer["error"]["data"]["error"] == "insufficient_storage"
    assert "min_free_bytes" in answer["error"]["message"]
    resp = await client.post(
        "/api/uploads", params={"filename": "a.gcode"}, data=b"G28\n", headers=auth()
    )
    assert resp.status == 503
    assert (await (await client.get("/api/jobs", headers=auth())).json())["jobs"] == []

    fine = await make_server(server={"min_free_bytes": 0})
    assert (await fine.get("/health/ready")).status == 200


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root only), unmounted with bounded timeouts."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        timeout=20,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        # Lazy: a file still open in a leftover thread must not make teardown fail or hang.
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=20, check=False)


def _fill(disk: Path, leave: int) -> None:
    """Take all of `disk`'s space but `leave` bytes."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    with filler.open("r+b") as f:
        f.truncate(max(0, filler.stat().st_size - leave))


@pytest.mark.asyncio
async def test_a_job_that_fills_the_disk_fails_with_insufficient_storage(
    make_server: Factory, small_disk: Path
) -> None:
    client = await make_server(data_dir=small_disk / "data", server={"min_free_bytes": 0})
    gcode = b"G28\n" + b"G1 X10 Y10 Z0.3 E0.1 F1200\nG1 X20 Y20 E0.2\n" * 25_000
    resp = await client.post(
        "/api/uploads", params={"filename": "big.gcode"}, data=io.BytesIO(gcode), headers=auth()
    )
    assert resp.status == 201, await resp.text()
    upload = (await resp.json())["upload"]
    # Room for the submit (request.json, the store's rows) but not for the job's copy of the
    # G-code.
    _fill(small_disk, 256 * 1024)
    resp = await client.post("/api/jobs", json={"upload": upload, "print": False}, headers=auth())
    assert resp.status == 202, await resp.text()
    job = await wait_job(client, (await resp.json())["job_id"])
    assert job["state"] == "failed", job
    assert job["error"]["code"] == "insufficient_storage", job["error"]
    assert "no space left" in job["error"]["message"]

    # With no space at all, a submit is refused with the same error, not a 500.
    _fill(small_disk, 0)
    resp = await client.post("/api/jobs", json={"request": "a 20 mm cube"}, headers=auth())
    answer = await resp.json()
    assert resp.status == 503, answer
    assert answer["error"]["data"]["error"] == "insufficient_storage"


# 5. who may cancel -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_operator_cancels_only_its_own_jobs_an_admin_any(make_server: Factory) -> None:
    client = await make_server()
    keys = {}
    for name in ("alice", "bob"):
        resp = await client.post(
            "/api/auth/keys", json={"name": name, "role": "operator"}, headers=auth()
        )
        keys[name] = (await resp.json())["key"]
    jobs = {}
    for name in ("alice", "bob"):
        resp = await client.post(
            "/api/jobs", json={"request": "a 20 mm cube", "copies": 2}, headers=auth(keys[name])
        )
        assert resp.status == 202, await resp.text()
        jobs[name] = (await resp.json())["job_ids"]

    for job_id in jobs["alice"]:
        resp = await client.post(f"/api/jobs/{job_id}/cancel", headers=auth(keys["bob"]))
        answer = await resp.json()
        assert resp.status == 403, answer
        assert "another key" in answer["error"]["message"]
    # The same over JSON-RPC.
    resp = await client.post(
        "/api/rpc",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "job.cancel",
            "params": {"job_id": jobs["alice"][0]},
        },
        headers=auth(keys["bob"]),
    )
    assert (await resp.json())["error"]["code"] == -32003
    resp = await client.post(f"/api/jobs/{jobs['alice'][0]}/cancel", headers=auth(keys["alice"]))
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/jobs/{jobs['bob'][1]}/cancel", headers=auth())
    assert resp.status == 200, await resp.text()
    resp = await client.post("/api/jobs/nosuchjob/cancel", headers=auth(keys["bob"]))
    assert resp.status == 404


# 6. keys created beside a running server ---------------------------------------------------------


def _create_key_cli(data: Path, spec: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "printforge",
            "serve",
            "--data-dir",
            str(data),
            "--create-key",
            spec,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _status(url: str, key: str) -> int:
    req = urllib.request.Request(
        url + "/api/auth/whoami", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_a_key_created_beside_a_running_server_works_and_is_never_lost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServeProcess(data, ADMIN_KEY).start()
    try:
        cli_key = _create_key_cli(data, "ci:operator")
        assert _status(server.url, cli_key) == 200
        # The server writes the key store next (a key created through its API): the key the
        # command line added is still there, and still accepted.
        made = server.api("POST", "/api/auth/keys", {"name": "dash", "role": "viewer"})
        assert _status(server.url, made["key"]) == 200
        listed = {k["name"] for k in server.api("GET", "/api/auth/keys")["keys"]}
        assert {"ci", "dash"} <= listed
        assert _status(server.url, cli_key) == 200
        # And the other way round: a revoke through the API is seen by the next CLI write.
        server.api("POST", f"/api/auth/keys/{made['key_id']}/revoke", {})
        second = _create_key_cli(data, "ci2:viewer")
        assert _status(server.url, second) == 200
        assert _status(server.url, made["key"]) == 401
        assert _status(server.url, cli_key) == 200
    finally:
        server.stop()
    names = {k["name"] for k in json.loads((data / "api_keys.json").read_text())["keys"]}
    assert names == {"PRINTFORGE_API_KEY", "ci", "ci2"}
