"""The data-directory lock. With leases (the default, issue 16) orchestrators share it and a
start recovers only jobs whose instance is gone; a command beside a `printforge serve` still
finds the server (its instance mark carries the URL). With leases turned off, one orchestrator
per data directory: a second one is refused before it touches the store, so it can never
"recover" (interrupt and re-run) jobs a live server is printing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from printforge.models.job import JobState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.runtime.errors import ConfigError, DataDirBusy
from printforge.settings import load_settings
from tests.fakes.serve_process import REPO, ServeProcess

KEY = "lock-admin-key-0123456789"


def settings_for(data: Path, sim_speed: float = 5000.0, *, leases: bool = False):  # type: ignore[no-untyped-def]
    # Leases off unless asked: this module tests the exclusive lock they replace by default.
    return load_settings(
        overrides={
            "data_dir": str(data),
            "mock": True,
            "sim_speed": sim_speed,
            "store": {"leases": leases},
        }
    )


@pytest.mark.asyncio
async def test_without_leases_a_second_orchestrator_is_refused_and_the_first_keeps_its_job(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with Orchestrator(settings_for(data, sim_speed=50.0)) as first:
        job = await first.submit(PrintRequest(text="a 20 mm calibration cube"))
        second = Orchestrator(settings_for(data))
        with pytest.raises(DataDirBusy) as refused:
            await second.start()
        assert str(data) in refused.value.message
        assert f"pid {os.getpid()}" in refused.value.message
        assert refused.value.holder["pid"] == os.getpid()
        # The refused one never opened the store, so the running job was not "recovered".
        assert (await first.get(job.id)).state is not JobState.INTERRUPTED
        await first.cancel(job.id)
    # Released on stop: the directory is free again.
    async with Orchestrator(settings_for(data)) as third:
        assert third.lock.held


@pytest.mark.asyncio
async def test_a_failed_start_releases_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # A job store that is a directory cannot be opened: start fails after taking the lock.
    settings = settings_for(data)
    settings.db_path.mkdir(parents=True)
    broken = Orchestrator(settings)
    with pytest.raises(Exception):  # noqa: B017 - sqlite's own error, whatever its class
        await broken.start()
    assert not broken.lock.held
    settings.db_path.rmdir()
    async with Orchestrator(settings_for(data)) as again:
        assert again.lock.held


@pytest.mark.asyncio
async def test_a_data_dir_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"cannot use the data directory {occupied}.*--data-dir"):
        async with Orchestrator(settings_for(occupied / "data")):
            pass


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "printforge", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_beside_a_server_runs_and_other_commands_find_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Options before the command, as people type them: the mark still names `printforge serve`.
    server = ServeProcess(data, KEY, global_args=("--data-dir", str(data))).start()
    try:
        # Leases (the default): a `run` beside the server shares the store and finishes.
        ran = run_cli("run", "a 20 mm calibration cube", "--data-dir", str(data), "--json")
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["state"] == JobState.COMPLETED.value

        # Commands that act on the server's printers still find it, through its instance mark.
        health = run_cli("health", "--data-dir", str(data))
        assert health.returncode == 1
        assert f"{server.url}/health" in health.stderr
        assert "Traceback" not in health.stderr
        listed = run_cli("printers", "list", "--data-dir", str(data))
        assert f"asking the server that owns {data}: {server.url}" in listed.stderr

        # With leases turned off a `run` wants the directory to itself: refused, pointing at
        # the server.
        off = {"PRINTFORGE_STORE__LEASES": "false"}
        ran = run_cli("run", "a 20 mm calibration cube", "--data-dir", str(data), env=off)
        assert ran.returncode == 1
        assert "Traceback" not in ran.stderr
        message = ran.stderr.strip().removeprefix("printforge: ")
        assert len(message.splitlines()) == 1, message
        assert "in use by `printforge serve`" in message
        assert f"--server {server.url}" in message
        assert ran.stdout == ""
        # --json: the refusal is the one object a script reads on stdout.
        scripted = run_cli(
            "run", "a 20 mm calibration cube", "--data-dir", str(data), "--json", env=off
        )
        assert scripted.returncode == 1
        assert json.loads(scripted.stdout)["error"] == {"code": "data_dir_busy", "message": message}

        # A command with its own data directory is not affected.
        own = run_cli("design", "a 20 mm calibration cube", "--out", str(tmp_path / "c.stl"))
        assert own.returncode == 0, own.stderr
    finally:
        assert server.stop() == 0
    # Stopped cleanly: the lock file names no holder, and the server's mark is gone.
    assert (data / "printforge.lock").read_text() == ""
    assert list((data / "instances").glob("*.lock")) == []
