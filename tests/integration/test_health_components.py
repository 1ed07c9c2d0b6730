"""`/health/components/{name}` for every kind, on a real server with a real broker, a virtual
printer and an LLM provider that cannot be reached; host figures in /health and /metrics."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from printforge.server.app import create_app
from printforge.server.state import STATE_KEY
from printforge.settings import load_settings
from tests.fakes.broker import Mosquitto

KEY = "components-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
FIELDS = {"name", "component", "status", "last_check", "latency_s", "message", "detail"}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def client(
    tmp_path: Path,
    mosquitto_broker: Mosquitto,
) -> AsyncIterator[TestClient]:
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "mock": True,
            "sim_speed": 5000.0,
            "api_key": KEY,
            "bus": {"broker": mosquitto_broker.url, "topic_prefix": f"pf-health-{tmp_path.name}"},
            "llm": {
                # A local OpenAI-compatible server that is not running, then the offline parser.
                "providers": ["local", "offline"],
                "provider": {"local": {"base_url": f"http://127.0.0.1:{closed_port()}/v1"}},
                "max_attempts": 1,
            },
        }
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def get(client: TestClient, path: str, status: int = 200) -> Any:
    resp = await client.get(path, headers=AUTH)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def run_one_job(client: TestClient) -> None:
    resp = await client.post(
        "/api/jobs", json={"request": "a 10 mm cube", "print": True}, headers=AUTH
    )
    job_id = (await resp.json())["job_id"]
    orch = client.server.app[STATE_KEY].orch
    job = await orch.wait(job_id, timeout=120)
    assert job.state.value == "completed", job.error


@pytest.mark.asyncio
async def test_each_kind_by_name(client: TestClient) -> None:
    await run_one_job(client)
    listing = (await get(client, "/health/components"))["components"]
    kinds = {v["component"] for v in listing}
    assert kinds == {"agent", "printer", "store", "broker", "llm"}, listing
    for view in listing:
        assert set(view) == FIELDS

    research = await get(client, "/health/components/research")
    assert research["component"] == "agent" and research["status"] in ("healthy", "degraded")
    assert research["latency_s"] > 0 and datetime.fromisoformat(research["last_check"])
    assert research["detail"]["calls"] == 1

    printer = await get(client, "/health/components/virtual")
    assert printer["component"] == "printer" and printer["status"] == "healthy"
    assert printer["detail"]["state"] in ("idle", "finished") and printer["latency_s"] is None

    store = await get(client, "/health/components/store")
    assert store["status"] == "healthy" and store["latency_s"] > 0
    assert store["detail"]["jobs"]["completed"] == 1 and store["message"] == "1 job(s)"

    brokers = [v for v in listing if v["component"] == "broker"]
    broker = await get(client, f"/health/components/{brokers[0]['name']}")
    assert broker["status"] == "healthy" and broker["last_check"] is not None

    # The unreachable provider failed once (then the offline parser answered): degraded, with
    # the reason and the time of the failed call.
    local = await get(client, "/health/components/local")
    assert local["component"] == "llm" and local["status"] == "degraded"
    assert local["message"] and local["detail"]["failures"] == 1
    offline = await get(client, "/health/components/offline")
    assert offline["status"] == "healthy" and offline["latency_s"] is not None

    # The agent named "printer" and a printer of that name would clash; the kind picks one.
    agent = await get(client, "/health/components/agent/printer")
    assert agent["component"] == "agent" and agent["name"] == "printer"


@pytest.mark.asyncio
async def test_unknown_names_and_kinds_are_404_and_the_route_needs_a_key(
    client: TestClient,
) -> None:
    missing = await get(client, "/health/components/no-such-thing", status=404)
    assert "no-such-thing" in missing["error"]["message"]
    await get(client, "/health/components/spaceship/store", status=404)
    await get(client, "/health/components/printer/store", status=404)
    resp = await client.get("/health/components/store")
    assert resp.status == 401


@pytest.mark.asyncio
async def test_an_unhealthy_component_answers_503(client: TestClient) -> None:
    orch = client.server.app[STATE_KEY].orch
    await orch.store.close()  # the store goes away under a running server
    store = await get(client, "/health/components/store", status=503)
    assert store["status"] == "unhealthy" and "not open" in store["message"]
    await orch.store.open()


@pytest.mark.asyncio
async def test_health_and_metrics_show_disk_cpu_and_memory(
    client: TestClient, tmp_path: Path
) -> None:
    await run_one_job(client)
    report = await get(client, "/health")
    disk = report["system"]["data_dir"]
    truth = shutil.disk_usage(tmp_path)
    assert disk["total_bytes"] == truth.total
    # Free space moves as other tests write; within 1 GiB of what the kernel says now.
    assert abs(disk["free_bytes"] - truth.free) < 2**30
    process = report["system"]["process"]
    assert process["cpu_seconds"] > 0 and process["rss_bytes"] > 10 * 2**20
    assert process["cpu_percent"] is not None and process["rss_kind"] == "current"

    text = await (await client.get("/metrics")).text()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
        assert found, series
        return float(found.group(1))

    assert value("printforge_data_dir_size_bytes") == truth.total
    assert value("printforge_data_dir_free_bytes") > 0
    assert value("process_cpu_seconds_total") > 0
    assert value("process_resident_memory_bytes") > 10 * 2**20
    assert value('printforge_printer_state{printer="virtual",state="faulted"}') == 0
    idle = value('printforge_printer_state{printer="virtual",state="idle"}')
    finished = value('printforge_printer_state{printer="virtual",state="finished"}')
    assert idle + finished == 1
    assert value("printforge_jobs_waiting_for_printer") == 0
