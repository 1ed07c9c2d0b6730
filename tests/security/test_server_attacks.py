"""Issue 11: attacks on `printforge serve`, a real server process on a free loopback port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.security.conftest import ADMIN_KEY, Server, run_cli, wait_until

pytestmark = pytest.mark.security

CUBE = "a 20 mm calibration cube"


def _error_code(body: Any) -> Any:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


# --- guessing keys ---------------------------------------------------------------------------

# Documented in docs/server.md: wrong keys drain a per-address bucket of 30/min, burst 10.
GUESS_BURST = 10
GUESS_PER_S = 30 / 60


@pytest.fixture(scope="module")
def guess_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: guessing drains the loopback address's bucket."""
    folder = tmp_path_factory.mktemp("serve-guess")
    srv = Server(folder / "data", folder / "serve.log", ADMIN_KEY)
    try:
        srv.start()
        # Made before any guess: afterwards the admin key may be throttled too (today's code).
        srv.valid_key = srv.create_key("guess-victim", "operator")  # type: ignore[attr-defined]
        yield srv
    finally:
        srv.stop()


def _whoami(srv: Server, key: str) -> int:
    status, _ = srv.request("GET", "/api/auth/whoami", key=key)
    return status


def _wrong_key() -> str:
    return f"pf_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"


def test_concurrent_wrong_keys_are_throttled_like_sequential_ones(guess_server: Server) -> None:
    guesses = 50
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(guesses) as pool:
        statuses = list(pool.map(lambda _: _whoami(guess_server, _wrong_key()), range(guesses)))
    elapsed = time.monotonic() - started
    checked = statuses.count(401)
    assert set(statuses) <= {401, 429}, statuses
    # At most the burst plus what the bucket refilled while the guesses ran.
    allowed = GUESS_BURST + int(elapsed * GUESS_PER_S) + 1
    assert checked <= allowed, f"{checked} of {guesses} concurrent guesses checked ({allowed=})"


def test_a_valid_key_from_a_guessing_address_is_not_locked_out(guess_server: Server) -> None:
    valid = guess_server.valid_key  # type: ignore[attr-defined]
    wait_until(
        lambda: _whoami(guess_server, _wrong_key()) == 429, 60.0, "wrong keys to be throttled"
    )
    assert _whoami(guess_server, valid) == 200


# --- bodies ---------------------------------------------------------------------------------


def _post_partial_body(srv: Server, key: str, declared: int, sent: int) -> bytes:
    """POST /api/rpc declaring `declared` bytes but sending only `sent`; the answer's bytes.

    A server that reads the whole body before refusing would never answer: the socket
    timeout then fails the test, so "quickly" is checked without timing anything.
    """
    head = (
        f"POST /api/rpc HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    start = b'{"jsonrpc": "2.0", "id": 1, "method": "auth.whoami", "params": {"pad": "'
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as sock:
        sock.sendall(head)
        # The server may answer and close before the body is sent.
        with contextlib.suppress(OSError):
            sock.sendall(start + b"a" * (sent - len(start)))
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pytest.fail("no answer while the declared body was still unsent")
        except ConnectionResetError:
            pass
    return answer


def test_a_63_mb_body_to_rpc_is_refused_with_413_before_it_is_read(server: Server) -> None:
    viewer = server.create_key("big-body", "viewer")
    answer = _post_partial_body(server, viewer, declared=63 * 1024 * 1024, sent=2 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    status, _ = server.request("GET", "/health/live")
    assert status == 200


def _deep_rpc(depth: int = 1000) -> str:
    nested = "[" * depth + "]" * depth
    return '{"jsonrpc": "2.0", "id": 7, "method": "auth.whoami", "params": {"x": ' + nested + "}}"


def test_deeply_nested_json_over_http_is_a_jsonrpc_error(server: Server) -> None:
    status, body = server.request("POST", "/api/rpc", raw=_deep_rpc().encode(), key=ADMIN_KEY)
    assert status in (400, 413), (status, body)
    assert isinstance(_error_code(body), int), body


def test_deeply_nested_json_over_websocket_is_a_jsonrpc_error(server: Server) -> None:
    async def exchange() -> list[dict[str, Any]]:
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.ws_connect(f"{server.url}/ws?token={ADMIN_KEY}") as ws,
        ):
            await ws.send_str(_deep_rpc())
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "auth.whoami"}))
            answers: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                while not any(a.get("id") == 8 for a in answers):
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    data = json.loads(msg.data)
                    if "id" in data:  # notifications are not answers
                        answers.append(data)
            return answers

    answers = asyncio.run(exchange())
    # JSON-RPC 2.0 (section 5): when the id cannot be read from an invalid request, the
    # error's id MUST be null; a server that refuses the depth before parsing cannot know it.
    deep = next(a for a in answers if a.get("id") in (7, None) and "error" in a)
    assert _error_code(deep) in (-32600, -32700), deep
    assert "500" not in json.dumps(deep) and "Traceback" not in json.dumps(deep), deep
    assert "Traceback" not in server.output()
    assert next(a for a in answers if a.get("id") == 8).get("result"), answers


# --- low disk -------------------------------------------------------------------------------


def test_low_disk_refuses_submits_and_is_not_ready(tmp_path: Path) -> None:
    # More free bytes than any disk has: the server is "below" the limit from the start.
    srv = Server(
        tmp_path / "data",
        tmp_path / "serve.log",
        ADMIN_KEY,
        env={"PRINTFORGE_SERVER__MIN_FREE_BYTES": str(10**18)},
    )
    try:
        srv.start()
        status, body = srv.request("POST", "/api/jobs", {"request": CUBE}, key=ADMIN_KEY)
        assert status not in (202, 500), (status, body)
        assert "insufficient_storage" in json.dumps(body), body
        status, _ = srv.request("GET", "/health/ready")
        assert status == 503
    finally:
        srv.stop()


# --- keys made beside a running server ------------------------------------------------------


def test_create_key_while_serving_never_gives_a_key_the_server_rejects(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", tmp_path / "serve.log", ADMIN_KEY).start()
    try:
        done = run_cli(
            "serve", "--data-dir", str(srv.data_dir), "--create-key", "ci:operator", timeout=60
        )
        keys = re.findall(r"pf_[A-Za-z0-9_\-]{8,}", done.stdout)
        if done.returncode != 0:  # refusing while a server runs is one contract answer
            assert keys == [], done.stdout
            return
        assert keys, done.stdout
        key = keys[0]
        assert _whoami(srv, key) == 200, "the running server rejects the key just created"
        srv.create_key("after", "viewer")  # the server's next key-store write
        assert _whoami(srv, key) == 200, "the server's key-store write lost the key"
    finally:
        srv.stop()


# --- jobs, artifacts, ownership, permissions ------------------------------------------------


@pytest.fixture(scope="module")
def finished_job(server: Server) -> dict[str, Any]:
    """A job that stopped after slicing: its folder holds model.stl and model.gcode."""
    status, body = server.request(
        "POST", "/api/jobs", {"request": CUBE, "print": False}, key=ADMIN_KEY
    )
    assert status == 202, body
    job = server.wait_job(body["job_id"], {"completed", "failed", "cancelled"}, timeout=180)
    assert job["state"] == "completed", job
    return job


def _job_file(srv: Server, job_id: str, name: str) -> Path:
    found = [p for p in (srv.data_dir / "jobs").rglob(name) if job_id in str(p)]
    assert len(found) == 1, found
    return found[0]


def test_artifact_download_refuses_a_symlink_in_the_job_folder(
    server: Server, finished_job: dict[str, Any]
) -> None:
    job_id = finished_job["job_id"]
    stl = _job_file(server, job_id, "model.stl")
    secret = server.data_dir / "api_keys.json"
    assert secret.exists()
    stl.unlink()
    stl.symlink_to(secret)
    status, body = server.request("GET", f"/api/jobs/{job_id}/artifacts/stl", key=ADMIN_KEY)
    assert 400 <= status < 500, (status, body)
    assert secret.read_text() not in (body if isinstance(body, str) else json.dumps(body))


def test_an_operator_cannot_cancel_another_keys_job_but_an_admin_can(server: Server) -> None:
    owner = server.create_key("owner", "operator")
    other = server.create_key("other", "operator")
    status, body = server.request("POST", "/api/jobs", {"request": CUBE}, key=owner)
    assert status == 202, body
    job_id = body["job_id"]
    status, body = server.request("POST", f"/api/jobs/{job_id}/cancel", key=other)
    assert status in (403, 404), (status, body)
    status, job = server.request("GET", f"/api/jobs/{job_id}", key=ADMIN_KEY)
    assert job["state"] != "cancelled", job
    status, body = server.request("POST", f"/api/jobs/{job_id}/cancel", key=ADMIN_KEY)
    assert status == 200, (status, body)
    server.wait_job(job_id, {"cancelled"}, timeout=60)


def test_data_dir_is_0700_and_its_files_0600(server: Server, finished_job: dict[str, Any]) -> None:
    status, body = server.request(
        "POST",
        "/api/uploads?filename=part.gcode",
        raw=b"G28\nG90\nG1 X10 Y10 Z0.3 F3000\n",
        key=ADMIN_KEY,
    )
    assert status in (200, 201), (status, body)
    loose = []
    for root, dirs, files in os.walk(server.data_dir):
        for name in [*dirs, *files, ""] if root == str(server.data_dir) else [*dirs, *files]:
            path = Path(root, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue  # the symlink test's, not the server's
            if stat.S_IMODE(mode) & 0o077:
                loose.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(server.data_dir)}")
    assert loose == [], "readable by others:\n" + "\n".join(loose)
