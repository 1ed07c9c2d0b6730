"""Issue 11: who may move a printer, through a real `printforge serve` and real keys.

A viewer never moves a printer; an operator pauses, resumes or cancels only a printer running
its own job; a key with the `printer` capability (or an admin) any printer, and only such a key
confirms a bed clear. Refusals are JSON-RPC errors: -32003 (HTTP 403 on REST) with
`data.error = "forbidden"`, over REST, `/api/rpc` and the websocket alike.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.security.conftest import ADMIN_KEY, Server, run_cli

pytestmark = pytest.mark.security

CUBE = "a 20 mm calibration cube"
CONTROLS = ("pause", "resume", "cancel", "confirm_bed_clear")
FORBIDDEN = -32003


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Virtual printers at real speed (`--sim-speed 1`): a print lasts minutes, long enough to
    be paused and cancelled by the test, whatever the machine's load."""
    folder = tmp_path_factory.mktemp("serve-control")
    srv = Server(folder / "data", folder / "serve.log", ADMIN_KEY, sim_speed=1.0)
    try:
        yield srv.start()
    finally:
        srv.stop()


def _create(server: Server, name: str, role: str, caps: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "role": role}
    if caps is not None:
        body["capabilities"] = caps
    status, created = server.request("POST", "/api/auth/keys", body, key=ADMIN_KEY)
    assert status == 201, (status, created)
    return created  # type: ignore[no-any-return]


def _assert_forbidden_rest(answer: tuple[int, Any], what: str) -> None:
    status, body = answer
    assert status == 403, (what, status, body)
    assert body["error"]["code"] == FORBIDDEN, (what, body)
    assert body["error"]["data"] == {"error": "forbidden"}, (what, body)


def _assert_forbidden_rpc(answer: tuple[int, Any], what: str) -> None:
    # /api/rpc: a single call's error stays in a 200 JSON-RPC body.
    status, body = answer
    assert status == 200, (what, status, body)
    assert set(body) == {"jsonrpc", "id", "error"}, (what, body)
    assert body["error"]["code"] == FORBIDDEN, (what, body)
    assert body["error"]["data"] == {"error": "forbidden"}, (what, body)
    assert isinstance(body["error"]["message"], str), (what, body)


def _control(server: Server, key: str, printer: str, action: str) -> tuple[int, Any]:
    return server.request("POST", f"/api/printers/{printer}/{action}", key=key)


def _ws_call(server: Server, key: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One JSON-RPC call over the websocket; its answer (notifications skipped)."""

    async def exchange() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.ws_connect(f"{server.url}/ws", headers=headers) as ws,
        ):
            await ws.send_str(
                json.dumps({"jsonrpc": "2.0", "id": 5, "method": method, "params": params})
            )
            async with asyncio.timeout(20):
                while True:
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    data = json.loads(msg.data)
                    if data.get("id") == 5:
                        return data  # type: ignore[no-any-return]

    return asyncio.run(exchange())


def _job_on_printer(server: Server, printer: str) -> str | None:
    status, body = server.request("GET", "/api/printers", key=ADMIN_KEY)
    assert status == 200, (status, body)
    view = next(p for p in body["printers"] if p["id"] == printer)
    return view.get("reserved_by") or view.get("job_id")


def test_who_may_move_a_printing_printer(server: Server) -> None:
    owner = _create(server, "owner", "operator")["key"]
    other = _create(server, "other", "operator")["key"]
    viewer = _create(server, "wall", "viewer")["key"]
    tech = _create(server, "tech", "operator", ["printer"])["key"]

    status, submitted = server.request("POST", "/api/jobs", {"request": CUBE}, key=owner)
    assert status == 202, (status, submitted)
    job_id = submitted["job_id"]
    job = server.wait_job(job_id, {"printing", "failed", "cancelled"}, timeout=180)
    assert job["state"] == "printing", job
    printer = job["printer"]
    assert _job_on_printer(server, printer) == job_id

    # A viewer moves nothing, whichever way it asks.
    for action in CONTROLS:
        _assert_forbidden_rest(_control(server, viewer, printer, action), f"viewer {action}")
        answer = server.rpc(f"printer.{action}", {"printer": printer}, key=viewer)
        _assert_forbidden_rpc(answer, f"viewer rpc {action}")
    ws_answer = _ws_call(server, viewer, "printer.pause", {"printer": printer})
    assert ws_answer["error"]["code"] == FORBIDDEN, ws_answer

    # Another operator's key may not touch this print, nor say the bed is clear.
    for action in CONTROLS:
        answer = _control(server, other, printer, action)
        _assert_forbidden_rest(answer, f"other operator {action}")
        assert "printer capability" in answer[1]["error"]["message"], answer
    ws_answer = _ws_call(server, other, "printer.cancel", {"printer": printer})
    assert ws_answer["error"]["code"] == FORBIDDEN, ws_answer
    assert server.request("GET", f"/api/jobs/{job_id}", key=ADMIN_KEY)[1]["state"] == "printing"

    # The owner pauses and resumes its own print, but a bed clear is the printer tender's.
    status, body = _control(server, owner, printer, "pause")
    assert status == 200, (status, body)
    assert body["id"] == printer, body
    status, body = _control(server, owner, printer, "resume")
    assert status == 200, (status, body)
    _assert_forbidden_rest(
        _control(server, owner, printer, "confirm_bed_clear"), "owner confirm_bed_clear"
    )

    # A key with the printer capability moves any printer: pause, resume, then cancel the job.
    answer = server.rpc("printer.pause", {"printer": printer}, key=tech)
    assert answer[0] == 200 and "result" in answer[1], answer
    assert answer[1]["result"]["id"] == printer, answer
    status, body = _control(server, tech, printer, "resume")
    assert status == 200, (status, body)
    status, body = _control(server, tech, printer, "cancel")
    assert status == 200, (status, body)
    assert server.wait_job(job_id, {"cancelled"}, timeout=60)["state"] == "cancelled"


def test_an_idle_printer_moves_only_for_the_printer_capability(server: Server) -> None:
    operator = _create(server, "ops", "operator")["key"]
    tech = _create(server, "tech2", "operator", ["printer"])["key"]
    status, body = server.request("GET", "/api/printers", key=ADMIN_KEY)
    printer = body["printers"][0]["id"]
    # No job on it: no owner to exempt, so even the cancel of a bare stream needs the capability.
    for action in ("pause", "cancel", "confirm_bed_clear"):
        _assert_forbidden_rest(_control(server, operator, printer, action), f"operator {action}")
    status, body = _control(server, tech, printer, "confirm_bed_clear")
    assert status == 200, (status, body)
    status, body = _control(server, ADMIN_KEY, printer, "confirm_bed_clear")
    assert status == 200, (status, body)


def test_what_a_printer_holds_is_said_by_the_printer_capability(server: Server) -> None:
    """The loaded material and spool decide what prints on a printer and how hot: an operator
    key without the capability cannot change them (no owner exception here)."""
    operator = _create(server, "ops4", "operator")["key"]
    tech = _create(server, "tech4", "operator", ["printer"])["key"]
    status, body = server.request("GET", "/api/printers", key=ADMIN_KEY)
    printer = body["printers"][0]["id"]
    material = {"printer": printer, "material": "PLA"}
    path = f"/api/printers/{printer}/material"
    _assert_forbidden_rest(server.request("POST", path, material, key=operator), "set_material")
    _assert_forbidden_rpc(
        server.rpc("printer.set_material", material, key=operator), "rpc set_material"
    )
    spool = {"printer": printer, "spool_id": None}
    _assert_forbidden_rest(
        server.request("POST", f"/api/printers/{printer}/spool", spool, key=operator), "spool"
    )
    new_spool = {"material": "PLA", "remaining_weight": 900, "printer": printer}
    _assert_forbidden_rest(
        server.request("POST", "/api/spools", new_spool, key=operator), "spool.add on a printer"
    )
    # Adding a spool to the stock is still an operator's; loading it is the tender's.
    status, added = server.request(
        "POST", "/api/spools", {"material": "PLA", "remaining_weight": 900}, key=operator
    )
    assert status == 201, (status, added)
    status, body = server.request("POST", path, material, key=tech)
    assert status == 200 and body["material"] == "PLA", (status, body)
    load = {"printer": printer, "spool_id": added["id"]}
    status, body = server.request("POST", f"/api/printers/{printer}/spool", load, key=tech)
    assert status == 200 and body["spool"]["id"] == added["id"], (status, body)


def test_capabilities_are_shown_and_a_viewer_cannot_hold_one(server: Server) -> None:
    status, body = server.request(
        "POST",
        "/api/auth/keys",
        {"name": "wall2", "role": "viewer", "capabilities": ["printer"]},
        key=ADMIN_KEY,
    )
    assert status == 400, (status, body)
    assert body["error"]["code"] == -32602, body
    status, body = server.request(
        "POST",
        "/api/auth/keys",
        {"name": "x", "role": "operator", "capabilities": ["everything"]},
        key=ADMIN_KEY,
    )
    assert status == 400 and body["error"]["code"] == -32602, (status, body)

    created = _create(server, "tech3", "operator", ["printer"])
    assert created["capabilities"] == ["printer"], created
    plain = _create(server, "ops3", "operator")
    assert plain["capabilities"] == [], plain
    who = {
        key: server.request("GET", "/api/auth/whoami", key=key)[1]["capabilities"]
        for key in (created["key"], plain["key"], ADMIN_KEY)
    }
    assert who == {created["key"]: ["printer"], plain["key"]: [], ADMIN_KEY: ["printer"]}
    status, listed = server.request("GET", "/api/auth/keys", key=ADMIN_KEY)
    by_id = {k["id"]: k for k in listed["keys"]}
    assert by_id[created["key_id"]]["capabilities"] == ["printer"], listed
    assert by_id[plain["key_id"]]["capabilities"] == [], listed


def test_create_key_on_the_command_line_with_the_printer_capability(server: Server) -> None:
    made = run_cli(
        "serve",
        "--data-dir",
        str(server.data_dir),
        "--create-key",
        "bench-tech:operator",
        "--capability",
        "printer",
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    status, who = server.request("GET", "/api/auth/whoami", key=key)
    assert status == 200 and who["capabilities"] == ["printer"], (status, who)
    refused = run_cli(
        "serve",
        "--data-dir",
        str(server.data_dir),
        "--create-key",
        "wall-tech:viewer",
        "--capability",
        "printer",
    )
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "viewer key cannot have capabilities" in refused.stderr, refused.stderr
