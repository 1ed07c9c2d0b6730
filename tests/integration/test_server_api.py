"""The server on loopback with a real Orchestrator and virtual printers: JSON-RPC framing and
errors, websocket notifications, the REST mirror, auth and roles, uploads, limits and probes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from printforge.runtime.errors import (
    AuthError,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ConnectionLost,
    InputError,
    InvalidTransition,
    PrinterDisconnected,
    PrinterFault,
    PrintforgeError,
    RateLimited,
)
from printforge.server.app import create_app
from printforge.server.auth import KeyStore, Role
from printforge.server.rpc import Forbidden, error_for
from printforge.settings import load_settings

ADMIN_KEY = "test-admin-key-0123456789"
Factory = Callable[..., Awaitable[TestClient]]


@pytest_asyncio.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Factory]:
    clients: list[TestClient] = []

    async def make(**overrides: Any) -> TestClient:
        server_cfg = overrides.pop("server", {})
        settings = load_settings(
            overrides={
                "data_dir": str(tmp_path / f"data{len(clients)}"),
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


@pytest_asyncio.fixture
async def client(make_server: Factory) -> TestClient:
    return await make_server()


def auth(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(
    ws: aiohttp.ClientWebSocketResponse, method: str, params: Any = None, msg_id: int = 1
) -> dict[str, Any]:
    """Send one request and return its reply, skipping notifications that arrive meanwhile."""
    await ws.send_str(
        json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}})
    )
    return await reply(ws, msg_id)


async def reply(ws: aiohttp.ClientWebSocketResponse, msg_id: int | None) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if "method" not in data and data.get("id") == msg_id:
            return data


def cube_stl(size: float = 10.0) -> bytes:
    s = size
    v = [(0, 0, 0), (s, 0, 0), (s, s, 0), (0, s, 0), (0, 0, s), (s, 0, s), (s, s, s), (0, s, s)]
    faces = [
        (0, 2, 1),
        (0, 3, 2),
        (4, 5, 6),
        (4, 6, 7),
        (0, 1, 5),
        (0, 5, 4),
        (1, 2, 6),
        (1, 6, 5),
        (2, 3, 7),
        (2, 7, 6),
        (3, 0, 4),
        (3, 4, 7),
    ]
    out = bytearray(b"\0" * 80) + struct.pack("<I", len(faces))
    for a, b, c in faces:
        out += struct.pack("<3f", 0, 0, 0)
        for i in (a, b, c):
            out += struct.pack("<3f", *v[i])
        out += b"\0\0"
    return bytes(out)


# websocket framing -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_websocket_handshake_needs_a_valid_key(client: TestClient) -> None:
    for kwargs in ({}, {"headers": auth("wrong-key-wrong-key")}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect("/ws", **kwargs)
        assert info.value.status == 401
    ws = await client.ws_connect(f"/ws?token={ADMIN_KEY}")
    assert (await call(ws, "auth.whoami"))["result"]["role"] == "admin"
    await ws.close()


@pytest.mark.asyncio
async def test_every_bad_message_gets_its_error_and_the_socket_stays_open(
    client: TestClient,
) -> None:
    ws = await client.ws_connect("/ws", headers=auth())
    await call(ws, "events.subscribe", {"jobs": "none", "printers": False})
    cases: list[tuple[str, int]] = [
        ("{not json", -32700),
        ('"just a string"', -32600),
        ('{"jsonrpc": "1.0", "id": 7, "method": "job.list"}', -32600),
        ('{"jsonrpc": "2.0", "id": 7, "method": "job.fly"}', -32601),
        ('{"jsonrpc": "2.0", "id": 7, "method": "job.list", "params": {"limit": "many"}}', -32602),
        ('{"jsonrpc": "2.0", "id": 7, "method": "job.get", "params": [1]}', -32602),
        ('{"jsonrpc": "2.0", "id": 7, "method": "job.submit", "params": {}}', -32602),
        ('{"jsonrpc": "2.0", "id": 7, "method": "job.get", "params": {"job_id": "nope"}}', -32004),
        (
            '{"jsonrpc": "2.0", "id": 7, "method": "job.submit",'
            ' "params": {"request": "a cube", "material": "unobtainium"}}',
            -32602,
        ),
        (
            '{"jsonrpc": "2.0", "id": 7, "method": "job.submit",'
            ' "params": {"request": "a cube", "printer": "ghost"}}',
            -32602,
        ),
        (
            # Could never print: the only printer has PLA loaded.
            '{"jsonrpc": "2.0", "id": 7, "method": "job.submit",'
            ' "params": {"request": "a cube", "material": "PETG"}}',
            -32602,
        ),
        (
            '{"jsonrpc": "2.0", "id": 7, "method": "job.submit",'
            ' "params": {"request": "a cube", "material": "PETG", "printer": "virtual"}}',
            -32602,
        ),
        ("[]", -32600),
        ('{"jsonrpc": "2.0", "id": {"a": 1}, "method": "auth.whoami"}', -32600),
        ('{"jsonrpc": "2.0", "id": true, "method": "auth.whoami"}', -32600),
    ]
    for text, code in cases:
        await ws.send_str(text)
        msg = json.loads((await ws.receive(timeout=10)).data)
        assert msg["jsonrpc"] == "2.0"
        assert msg["error"]["code"] == code, (text, msg)
        assert msg["error"]["message"]
    await ws.send_bytes(b"\x00\x01")
    assert json.loads((await ws.receive(timeout=10)).data)["error"]["code"] == -32600
    # A batch answers each member; a notification (no id) gets no answer.
    await ws.send_str(
        json.dumps(
            [
                {"jsonrpc": "2.0", "id": "a", "method": "auth.whoami"},
                {"jsonrpc": "2.0", "method": "auth.whoami"},
                {"jsonrpc": "2.0", "id": "b", "method": "nope"},
            ]
        )
    )
    batch = json.loads((await ws.receive(timeout=10)).data)
    assert [m["id"] for m in batch] == ["a", "b"]
    assert batch[0]["result"]["name"] == "PRINTFORGE_API_KEY"
    assert batch[1]["error"]["code"] == -32601
    assert not ws.closed
    assert (await call(ws, "job.list"))["result"] == {"jobs": []}
    await ws.close()


@pytest.mark.asyncio
async def test_a_batch_over_max_batch_is_refused_whole(make_server: Factory) -> None:
    client = await make_server(server={"max_batch": 5})
    ws = await client.ws_connect("/ws", headers=auth())
    await call(ws, "events.subscribe", {"jobs": "none", "printers": False})
    # Cheap invalid members: before the cap, each got its own error in one huge reply.
    await ws.send_str("[" + ",".join(["1"] * 6) + "]")
    refused = json.loads((await ws.receive(timeout=10)).data)
    assert isinstance(refused, dict), "a too-long batch must not be answered member by member"
    assert refused["error"]["code"] == -32600 and "at most 5" in refused["error"]["message"]
    await ws.send_str("[" + ",".join(["1"] * 5) + "]")
    assert len(json.loads((await ws.receive(timeout=10)).data)) == 5
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "x"}] * 6
    resp = await client.post("/api/rpc", json=batch, headers=auth())
    assert (await resp.json())["error"]["code"] == -32600  # JSON-RPC over HTTP: errors in the body
    assert (await call(ws, "auth.whoami", msg_id=2))["result"]["role"] == "admin"
    await ws.close()


@pytest.mark.asyncio
async def test_a_message_over_the_size_limit_closes_only_that_socket(
    make_server: Factory,
) -> None:
    client = await make_server(server={"max_ws_message_bytes": 4096})
    other = await client.ws_connect("/ws", headers=auth())
    ws = await client.ws_connect("/ws", headers=auth())
    await ws.send_str(
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "job.submit", "params": {"request": "x" * 10_000}}
        )
    )
    msg = await ws.receive(timeout=10)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == WSCloseCode.MESSAGE_TOO_BIG
    assert (await call(other, "auth.whoami"))["result"]["role"] == "admin"
    await other.close()


@pytest.mark.asyncio
async def test_submit_over_websocket_streams_events_until_the_print_completes(
    client: TestClient,
) -> None:
    ws = await client.ws_connect("/ws", headers=auth())
    submitted = await call(ws, "job.submit", {"request": "a 20 mm calibration cube"})
    job_id = submitted["result"]["job_id"]
    assert submitted["result"]["state"] == "queued"
    states, stages, printer_status = [], set(), []
    while True:
        msg = json.loads((await ws.receive(timeout=30)).data)
        if msg.get("method") == "printer.status":
            printer_status.append(msg["params"])
            continue
        assert msg["method"] == "job.event"
        event = msg["params"]
        if event["job_id"] != job_id:
            continue
        assert {"job_id", "state", "stage", "progress", "kind", "ts"} <= set(event)
        if event["stage"]:
            stages.add(event["stage"])
        if event["kind"] == "state":
            states.append(event["state"])
        if event["state"] in ("completed", "failed", "cancelled"):
            break
    assert states[-1] == "completed", states
    assert "printing" in states
    assert stages == {"research", "cad", "slicer", "printer"}
    assert any(s["id"] == "virtual" and s["state"] == "printing" for s in printer_status)
    job = (await call(ws, "job.get", {"job_id": job_id}, msg_id=2))["result"]
    assert job["state"] == "completed" and job["printer"] == "virtual"
    assert job["eta_s"] == 0.0 and job["gcode"]["estimated_time_s"] > 0
    assert {"stl", "gcode", "report", "request"} <= set(job["artifacts"])
    # Artifacts carry hashes, and the download is the hashed file.
    resp = await client.get(job["artifacts"]["gcode"], headers=auth())
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).hexdigest() == job["sha256"]["gcode"]
    await ws.close()


@pytest.mark.asyncio
async def test_own_subscription_gets_only_its_jobs(client: TestClient) -> None:
    watcher = await client.ws_connect("/ws", headers=auth())
    await call(watcher, "events.subscribe", {"jobs": "own", "printers": False})
    other = await client.ws_connect("/ws", headers=auth())
    others = await call(other, "job.submit", {"request": "a 10 mm cube", "print": False})
    mine = (
        await call(watcher, "job.submit", {"request": "a 12 mm cube", "print": False}, msg_id=2)
    )["result"]["job_id"]
    seen = set()
    while True:
        msg = json.loads((await watcher.receive(timeout=30)).data)
        assert msg["method"] == "job.event"
        seen.add(msg["params"]["job_id"])
        if msg["params"]["state"] == "completed":
            break
    assert seen == {mine}
    assert others["result"]["job_id"] not in seen
    await watcher.close()
    await other.close()


# REST, OpenAPI -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rest_mirror_submit_list_get_cancel_and_errors(client: TestClient) -> None:
    resp = await client.post(
        "/api/jobs",
        json={"request": "a 15 mm cube", "priority": 5, "copies": 2, "print": False},
        headers=auth(),
    )
    assert resp.status == 202
    body = await resp.json()
    assert len(body["job_ids"]) == 2 and body["job_ids"][0] == body["job_id"]
    resp = await client.get("/api/jobs", params={"limit": "10"}, headers=auth())
    listed = {j["job_id"]: j for j in (await resp.json())["jobs"]}
    assert set(body["job_ids"]) <= set(listed)
    assert listed[body["job_id"]]["priority"] == 5
    resp = await client.post(f"/api/jobs/{body['job_id']}/cancel", headers=auth())
    assert resp.status == 200
    assert (await resp.json())["state"] in ("cancelled", "completed", "failed")
    resp = await client.get("/api/jobs/doesnotexist", headers=auth())
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == -32004
    resp = await client.post("/api/jobs", data=b"{oops", headers=auth())
    assert resp.status == 400 and (await resp.json())["error"]["code"] == -32700
    resp = await client.get("/api/jobs", params={"state": "melting"}, headers=auth())
    assert resp.status == 400 and (await resp.json())["error"]["code"] == -32602
    resp = await client.get(f"/api/jobs/{body['job_id']}/artifacts/secrets", headers=auth())
    assert resp.status == 404
    resp = await client.post(
        "/api/rpc",
        json={"jsonrpc": "2.0", "id": 3, "method": "job.list", "params": {"limit": 1}},
        headers=auth(),
    )
    assert len((await resp.json())["result"]["jobs"]) == 1


@pytest.mark.asyncio
async def test_openapi_document_covers_the_handler_table(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {
        "job.submit",
        "job.get",
        "job.list",
        "job.cancel",
        "printer.list",
        "printer.pause",
        "printer.confirm_bed_clear",
        "health.get",
        "upload",
        "artifact",
    } <= ops
    submit = doc["paths"]["/api/jobs"]["post"]
    ref = submit["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"request", "upload", "copies", "priority", "printer", "material"} <= set(
        schema["properties"]
    )
    # Every reference resolves inside the document.
    text = json.dumps(doc)
    for ref in {r.split('"')[0] for r in text.split('"$ref": "')[1:]}:
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


# auth and roles ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_roles_and_key_lifecycle(client: TestClient, tmp_path: Path) -> None:
    resp = await client.post(
        "/api/auth/keys", json={"name": "wall", "role": "viewer"}, headers=auth()
    )
    assert resp.status == 201
    viewer = (await resp.json())["key"]
    resp = await client.post(
        "/api/auth/keys", json={"name": "ops", "role": "operator"}, headers=auth()
    )
    operator = await resp.json()
    # Keys are stored hashed: neither key appears in the store.
    stored = (tmp_path / "data0" / "api_keys.json").read_text()
    assert viewer not in stored and operator["key"] not in stored and ADMIN_KEY not in stored
    resp = await client.get("/api/jobs", headers=auth(viewer))
    assert resp.status == 200
    resp = await client.post("/api/jobs", json={"request": "a cube"}, headers=auth(viewer))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == -32003
    resp = await client.post("/api/auth/keys", json={"name": "x"}, headers=auth(operator["key"]))
    assert resp.status == 403
    ws = await client.ws_connect(f"/ws?token={viewer}")
    assert (await call(ws, "job.cancel", {"job_id": "x"}))["error"]["code"] == -32003
    await ws.close()
    resp = await client.post(f"/api/auth/keys/{operator['key_id']}/revoke", headers=auth())
    assert resp.status == 200
    resp = await client.get("/api/jobs", headers=auth(operator["key"]))
    assert resp.status == 401


@pytest.mark.asyncio
async def test_revoking_a_key_closes_its_open_websockets(client: TestClient) -> None:
    resp = await client.post(
        "/api/auth/keys", json={"name": "leaked", "role": "operator"}, headers=auth()
    )
    created = await resp.json()
    leaked = await client.ws_connect("/ws", headers=auth(created["key"]))
    admin = await client.ws_connect("/ws", headers=auth())
    await call(leaked, "events.subscribe", {"jobs": "none", "printers": False})
    assert (await call(leaked, "auth.whoami", msg_id=2))["result"]["name"] == "leaked"
    revoked = await call(admin, "auth.revoke_key", {"key_id": created["key_id"]}, msg_id=3)
    assert revoked["result"] == {"revoked": created["key_id"]}
    # The open socket of a revoked (say leaked) key must not keep submitting jobs.
    await leaked.send_str(
        json.dumps({"jsonrpc": "2.0", "id": 4, "method": "job.submit", "params": {"request": "x"}})
    )
    while True:
        msg = await leaked.receive(timeout=10)
        if msg.type is not WSMsgType.TEXT:
            break
        data = json.loads(msg.data)
        assert "result" not in data, data
    assert leaked.close_code == WSCloseCode.POLICY_VIOLATION
    assert (await call(admin, "job.list", msg_id=5))["result"] == {"jobs": []}
    await admin.close()


@pytest.mark.asyncio
async def test_rate_limit_answers_429_with_retry_after(make_server: Factory) -> None:
    client = await make_server(server={"rate_limit_per_minute": 60, "rate_limit_burst": 3})
    statuses = [(await client.get("/api/jobs", headers=auth())).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = await client.get("/api/jobs", headers=auth())
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == -32029


@pytest.mark.asyncio
async def test_cors_allows_only_configured_origins(make_server: Factory) -> None:
    client = await make_server(server={"cors_origins": ["https://farm.example"]})
    pre = await client.options(
        "/api/jobs",
        headers={"Origin": "https://farm.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://farm.example"
    resp = await client.get("/api/jobs", headers={**auth(), "Origin": "https://evil.example"})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


# uploads -----------------------------------------------------------------------------------------


async def wait_job(client: TestClient, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job = await (await client.get(f"/api/jobs/{job_id}", headers=auth())).json()
        if job["state"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.asyncio
async def test_uploads_model_and_gcode_then_print_the_gcode(client: TestClient) -> None:
    stl = cube_stl()
    resp = await client.post(
        "/api/uploads", params={"filename": "cube.stl"}, data=stl, headers=auth()
    )
    assert resp.status == 201, await resp.text()
    up = await resp.json()
    assert up["sha256"] == hashlib.sha256(stl).hexdigest() and up["kind"] == "model"
    assert up["upload"] == f"{up['sha256']}.stl"
    # Slice a part without printing, download its G-code, upload it as a user's own file.
    resp = await client.post(
        "/api/jobs", json={"request": "a 10 mm cube", "print": False}, headers=auth()
    )
    sliced = await wait_job(client, (await resp.json())["job_id"])
    assert sliced["state"] == "completed" and sliced["stages"][3]["state"] == "skipped"
    gcode = await (await client.get(sliced["artifacts"]["gcode"], headers=auth())).read()
    form = aiohttp.FormData()
    form.add_field("file", gcode, filename="own.gcode")
    resp = await client.post("/api/uploads", data=form, headers=auth())
    assert resp.status == 201, await resp.text()
    up = await resp.json()
    assert up["kind"] == "gcode"
    resp = await client.post("/api/jobs", json={"upload": up["upload"]}, headers=auth())
    assert resp.status == 202
    job = await wait_job(client, (await resp.json())["job_id"])
    assert job["state"] == "completed", job
    assert job["source"] == "gcode"
    assert [s["state"] for s in job["stages"]] == ["skipped", "skipped", "skipped", "completed"]


@pytest.mark.asyncio
async def test_bad_uploads_are_refused(client: TestClient) -> None:
    form = aiohttp.FormData()
    form.add_field("file", b"this is not a mesh at all" * 10, filename="part.stl")
    resp = await client.post("/api/uploads", data=form, headers=auth())
    assert resp.status == 400 and "STL" in (await resp.json())["error"]["message"]
    resp = await client.post(
        "/api/uploads", params={"filename": "x.exe"}, data=b"MZ", headers=auth()
    )
    assert resp.status == 400
    resp = await client.post("/api/jobs", json={"upload": "../../etc/passwd"}, headers=auth())
    assert resp.status == 400
    resp = await client.post("/api/jobs", json={"upload": "0" * 64 + ".stl"}, headers=auth())
    assert resp.status == 404


@pytest.mark.asyncio
async def test_request_size_limit(make_server: Factory) -> None:
    client = await make_server(server={"max_upload_bytes": 2048})
    resp = await client.post(
        "/api/uploads", params={"filename": "big.gcode"}, data=b"G1 X1\n" * 1000, headers=auth()
    )
    assert resp.status == 413
    assert (await client.get("/health/live")).status == 200


# printers, health, metrics, shutdown -------------------------------------------------------------


@pytest.mark.asyncio
async def test_printer_methods(client: TestClient) -> None:
    ws = await client.ws_connect("/ws", headers=auth())
    printers = (await call(ws, "printer.list"))["result"]["printers"]
    assert [p["id"] for p in printers] == ["virtual"]
    assert printers[0]["state"] == "idle" and "hotend" in printers[0]["temperatures"]
    cleared = await call(ws, "printer.confirm_bed_clear", {"printer": "virtual"}, msg_id=2)
    assert cleared["result"]["state"] == "idle"
    missing = await call(ws, "printer.pause", {"printer": "ghost"}, msg_id=3)
    assert missing["error"]["code"] == -32602 and "ghost" in missing["error"]["message"]
    await ws.close()


@pytest.mark.asyncio
async def test_health_probes_and_metrics(client: TestClient) -> None:
    assert (await client.get("/health/live")).status == 200
    ready = await client.get("/health/ready")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    assert (await client.get("/health")).status == 401
    detail = await (await client.get("/health", headers=auth())).json()
    assert detail["status"] in ("healthy", "degraded")
    assert {c["component"] for c in detail["components"]} >= {"printer"}
    assert detail["store"]["ok"] is True
    ws = await client.ws_connect("/ws", headers=auth())
    await call(ws, "job.list")
    text = await (await client.get("/metrics")).text()
    for series in (
        "printforge_websocket_clients 1.0",
        "printforge_rpc_calls_total",
        "printforge_printer_temperature_celsius",
        "printforge_queue_depth",
    ):
        assert series in text, series
    await ws.close()


@pytest.mark.asyncio
async def test_shutdown_closes_websockets_with_going_away(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"data_dir": str(tmp_path), "api_key": ADMIN_KEY, "mock": True}
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    ws = await client.ws_connect("/ws", headers=auth())
    await call(ws, "events.subscribe", {"jobs": "none", "printers": False})
    # Stop the server only; the client must see the server's close frame.
    closing = asyncio.create_task(client.server.close())
    msg = await ws.receive(timeout=10)
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == WSCloseCode.GOING_AWAY
    await closing
    await client.close()


@pytest.mark.asyncio
async def test_fresh_data_dir_without_a_key_creates_one_admin_key_file(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path), "mock": True})
    assert settings.api_key is None
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        key_file = tmp_path / "admin.key"
        assert key_file.stat().st_mode & 0o077 == 0
        key = key_file.read_text().strip()
        resp = await client.get("/api/auth/whoami", headers=auth(key))
        assert (await resp.json())["role"] == "admin"
    finally:
        await client.close()


def test_grafana_dashboard_queries_only_series_we_export() -> None:
    import re

    from printforge.runtime import metrics

    path = Path(__file__).resolve().parents[2] / "config" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exported = set(re.findall(r"^# TYPE (\S+)", metrics.render().decode(), re.M))
    used = {n for e in exprs for n in re.findall(r"printforge_[a-z_]+", e)}
    assert used
    for name in used:
        base = re.sub(r"_(bucket|total|count|sum)$", "", name)
        assert name in exported or base in exported, name


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InputError("bad"), -32602, 400),
        (InputError("gone", code="not_found"), -32004, 404),
        (AuthError("who?"), -32001, 401),
        (Forbidden("no"), -32003, 403),
        (RateLimited("slow down", retry_after=2.0), -32029, 429),
        (BudgetExceeded("spent"), -32029, 429),
        (InvalidTransition("done already"), -32009, 409),
        (PrinterFault("thermal runaway"), -32009, 409),
        (PrinterDisconnected("unplugged"), -32010, 503),
        (CircuitOpen("open"), -32010, 503),
        (ConnectionLost("lost"), -32010, 503),
        (ConfigError("broken config"), -32603, 500),
        (KeyError("secret detail"), -32603, 500),
    ],
)
def test_error_mapping(error: Exception, code: int, status: int) -> None:
    wire = error_for(error)
    assert (int(wire.code), wire.http_status) == (code, status)
    if isinstance(error, PrintforgeError):
        assert wire.message == error.message
        assert wire.data["error"] == error.code
    else:
        assert "secret detail" not in json.dumps(wire.to_dict())
    if isinstance(error, RateLimited):
        assert wire.retry_after == 2.0


@pytest.mark.asyncio
async def test_key_store_bootstrap_rotation_and_wrong_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.load()
    store.bootstrap("first-bootstrap-key-0001")
    assert (await store.verify("first-bootstrap-key-0001")).role is Role.ADMIN
    store.bootstrap("second-bootstrap-key-002")  # PRINTFORGE_API_KEY changed: the old one dies
    with pytest.raises(AuthError):
        await store.verify("first-bootstrap-key-0001")
    key = store.create("ci", Role.OPERATOR)
    reloaded = KeyStore(tmp_path / "keys.json")
    reloaded.load()
    assert (await reloaded.verify(key)).name == "ci"
    key_id = key.split("_")[1]
    for wrong in (key[:-1] + ("x" if key[-1] != "x" else "y"), f"pf_{key_id}_", "pf_nope_x"):
        with pytest.raises(AuthError):
            await reloaded.verify(wrong)
    with pytest.raises(AuthError, match="at least 16"):
        store.bootstrap("short")
