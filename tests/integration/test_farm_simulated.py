"""Issue 15, item 1: simulated printers only when asked, and marked as simulated.

Real processes on loopback: a mosquitto started by the tests, `printforge serve` (with and
without `--mock`), `printforge node --virtual 2`, and the one-shot `printforge health`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.broker import Mosquitto
from tests.fakes.serve_process import REPO, ServeProcess, wait_for

pytestmark = pytest.mark.mqtt

KEY = "farm-simulated-admin-key-0123456789"


def node_process(url: str, prefix: str, node_id: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "printforge", "node", "--broker", url, "--topic-prefix", prefix,
         "--node-id", node_id, "--status-interval", "0.2", *extra],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_ENV": "development"},
    )  # fmt: skip


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def printers(server: ServeProcess) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in server.api("GET", "/api/printers")["printers"]}


@pytest.fixture
def bus_farm(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> Iterator[tuple[ServeProcess, str]]:
    """A plain `serve` (no --mock) discovering a node's two virtual printers over MQTT."""
    prefix = f"s{uuid.uuid4().hex[:10]}/v1"
    node_id = "hostA"
    node = node_process(mosquitto_broker.url, prefix, node_id, "--virtual", "2")
    server = ServeProcess(
        tmp_path / "data",
        KEY,
        mock=False,
        env={
            "PRINTFORGE_ENV": "development",
            "PRINTFORGE_BUS__BROKER": mosquitto_broker.url,
            "PRINTFORGE_BUS__TOPIC_PREFIX": prefix,
        },
    )
    try:
        server.start()
        yield server, node_id
    finally:
        server.stop()
        stop(node)


def test_serve_with_discovered_printers_has_no_builtin_virtual(
    bus_farm: tuple[ServeProcess, str],
) -> None:
    server, node_id = bus_farm
    wanted = {f"{node_id}.virtual-1", f"{node_id}.virtual-2"}

    def discovered() -> dict[str, dict[str, Any]] | None:
        found = printers(server)
        return found if wanted <= set(found) else None

    found = wait_for(discovered, 30, "discovered printers")
    assert "virtual" not in found, "serve without --mock attached its built-in virtual printer"
    assert set(found) == wanted
    # The node's printers are simulations, and say so on the bus and in the API.
    assert all(found[name]["simulated"] is True for name in wanted)
    health = server.api("GET", "/api/health")
    assert {p["id"] for p in health["printers"]} == wanted
    assert all(p["simulated"] is True for p in health["printers"])
    assert set(server.api("GET", "/api/info")["printers"]) == wanted


def test_plain_serve_has_no_simulated_printer_and_mock_is_the_switch(tmp_path: Path) -> None:
    env = {"PRINTFORGE_ENV": "development"}
    plain = ServeProcess(tmp_path / "plain", KEY, mock=False, env=env).start()
    try:
        assert printers(plain) == {}
    finally:
        plain.stop()
    mocked = ServeProcess(tmp_path / "mocked", KEY, mock=True, env=env).start()
    try:
        found = printers(mocked)
        assert set(found) == {"virtual"}
        assert found["virtual"]["simulated"] is True
    finally:
        mocked.stop()


def test_a_declared_real_printer_is_not_marked_simulated(tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    # A Marlin on a port that does not exist: it stays offline, but it is real hardware.
    config.write_text(
        '[printers.mk3]\ndriver = "marlin"\nport = "/nonexistent/ttyACM9"\nbaud = 115200\n'
    )
    server = ServeProcess(
        tmp_path / "data", KEY, mock=False, config=config, env={"PRINTFORGE_ENV": "development"}
    ).start()
    try:
        found = printers(server)
        assert set(found) == {"mk3"}
        assert found["mk3"]["simulated"] is False
    finally:
        server.stop()


def test_one_shot_command_with_nothing_configured_gets_the_simulated_virtual(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", "health", "--json", "--data-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_ENV": "development"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout)
    assert [(p["id"], p["simulated"]) for p in report["printers"]] == [("virtual", True)]
