"""A question reaches websocket and REST clients: a request research cannot build as asked puts
the job in state needs_input with the question; job.answer adds the answer to the request and
the job runs again. On loopback with a real Orchestrator and the virtual printer."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.test_server_api import ADMIN_KEY, auth, call, make_server  # noqa: F401


async def _until_settled(ws: aiohttp.ClientWebSocketResponse, job_id: str) -> list[dict[str, Any]]:
    """The job's state events until it completes, fails, is cancelled or asks."""
    events = []
    while True:
        msg = json.loads((await ws.receive(timeout=60)).data)
        if msg.get("method") != "job.event" or msg["params"]["job_id"] != job_id:
            continue
        event = msg["params"]
        if event["kind"] == "state":
            events.append(event)
            if event["state"] in ("completed", "failed", "cancelled", "needs_input"):
                return events


@pytest.mark.asyncio
async def test_a_question_over_the_websocket_and_its_answer_builds_the_part(
    make_server: Any,  # noqa: F811
) -> None:
    client: TestClient = await make_server()
    ws = await client.ws_connect("/ws", headers=auth())
    await call(ws, "events.subscribe", {"jobs": "all", "printers": False})
    submitted = await call(
        ws, "job.submit", {"request": "a knob for my stove", "print": False}, msg_id=2
    )
    job_id = submitted["result"]["job_id"]
    asked = (await _until_settled(ws, job_id))[-1]
    assert asked["state"] == "needs_input"
    assert "stove" in asked["message"] and asked["data"]["question"] == asked["message"]
    assert any(r["status"] == "not_built" for r in asked["data"]["requirements"])
    job = (await call(ws, "job.get", {"job_id": job_id}, msg_id=3))["result"]
    assert job["state"] == "needs_input" and job["question"] == asked["message"]
    assert job["error"] is None
    research = next(s for s in job["stages"] if s["name"] == "research")
    assert research["state"] == "pending"

    answered = await call(
        ws, "job.answer", {"job_id": job_id, "text": "the shaft is 6 mm with a D flat"}, msg_id=4
    )
    assert answered["result"]["state"] == "queued"
    assert answered["result"]["question"] is None
    assert (await _until_settled(ws, job_id))[-1]["state"] == "completed"
    job = (await call(ws, "job.get", {"job_id": job_id}, msg_id=5))["result"]
    assert job["state"] == "completed" and job["mesh"]["watertight"]
    assert "6 mm with a d flat" in job["request"].lower()
    await ws.close()


@pytest.mark.asyncio
async def test_answer_over_rest_and_the_errors_of_answering(
    make_server: Any,  # noqa: F811
) -> None:
    client: TestClient = await make_server()
    resp = await client.post(
        "/api/jobs",
        json={"request": "a 40mm cube with a working motor inside", "print": False},
        headers=auth(),
    )
    job_id = (await resp.json())["job_id"]
    ws = await client.ws_connect("/ws", headers=auth())
    # The job may already have asked before this socket subscribed: read its state instead.
    job = (await call(ws, "job.get", {"job_id": job_id}))["result"]
    if job["state"] != "needs_input":
        assert (await _until_settled(ws, job_id))[-1]["state"] == "needs_input"
    resp = await client.get(f"/api/jobs/{job_id}", headers=auth())
    assert "motor" in (await resp.json())["question"]
    # Answering a job that is not waiting is a conflict; an unknown job is not found.
    resp = await client.post("/api/jobs/nosuchjob/answer", json={"text": "x"}, headers=auth())
    assert resp.status == 404
    resp = await client.post(f"/api/jobs/{job_id}/answer", json={"text": ""}, headers=auth())
    assert resp.status == 400
    resp = await client.post(
        f"/api/jobs/{job_id}/answer", json={"text": "ok, just the plain cube"}, headers=auth()
    )
    assert resp.status == 200 and (await resp.json())["state"] == "queued"
    # Still asks: the motor is still in the request (the answer is added, not a replacement).
    assert (await _until_settled(ws, job_id))[-1]["state"] == "needs_input"
    resp = await client.post(f"/api/jobs/{job_id}/cancel", headers=auth())
    assert (await resp.json())["state"] == "cancelled"
    resp = await client.post(f"/api/jobs/{job_id}/answer", json={"text": "40"}, headers=auth())
    assert resp.status == 409
    await ws.close()
