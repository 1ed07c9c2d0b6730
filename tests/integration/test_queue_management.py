"""Issue 15, item 3: queue management on a real `printforge serve`, driven by the command line.

One preparation slot (`max_active_jobs = 1`) is held by a job whose research waits on a local
LLM endpoint that answers only when the test lets it, so the jobs behind it stay queued for as
long as the test needs: hold, move and update them, then watch the order they leave the queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from printforge.models.artifact import GcodeArtifact, MeshArtifact, file_sha256
from printforge.models.job import Job, StageName, StageState
from printforge.models.request import PrintRequest
from printforge.orchestrator.queue import _from_failed_stage
from tests.fakes.serve_process import REPO, ServeProcess, wait_for

KEY = "queue-admin-key-0123456789"
TERMINAL = {"completed", "failed", "cancelled"}


class HeldLLM:
    """An OpenAI-compatible endpoint that holds every request until released, then says 503."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests += 1
                owner.released.wait(120)  # bounded: a broken test never hangs the server
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[tuple[ServeProcess, HeldLLM]]:
    llm = HeldLLM()
    config = tmp_path / "farm.toml"
    config.write_text(
        "[orchestrator]\nmax_active_jobs = 1\n\n"
        f'[llm.provider.local]\nbase_url = "http://127.0.0.1:{llm.port}/v1"\n'
    )
    server = ServeProcess(tmp_path / "data", KEY, config=config).start()
    try:
        yield server, llm
    finally:
        llm.released.set()
        server.stop()
        llm.close()


def cli(server: ServeProcess, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(server.data_dir), *args, "--json"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_API_KEY": KEY,
             "PRINTFORGE_ENV": "development"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def job(server: ServeProcess, job_id: str) -> dict[str, Any]:
    result: dict[str, Any] = server.api("GET", f"/api/jobs/{job_id}")
    return result


def left_queue_at(server: ServeProcess, job_id: str) -> str:
    history = cli(server, "jobs", job_id)["transitions"]
    return str(next(t["at"] for t in history if t["from"] == "queued"))


def test_hold_move_update_release_and_retry_from_the_command_line(
    farm: tuple[ServeProcess, HeldLLM],
) -> None:
    server, llm = farm
    blocker = server.api("POST", "/api/jobs", {"request": "a 10 mm cube", "providers": ["local"]})
    wait_for(lambda: llm.requests, 60, "the first job's research to reach the LLM")
    ids = [server.api("POST", "/api/jobs", {"request": "a 10 mm cube"})["job_id"] for _ in "abc"]
    j2, j3, j4 = ids
    assert all(job(server, j)["state"] == "queued" for j in ids)

    # Without --server: the serve that owns the data directory is found and asked.
    held = cli(server, "jobs", "hold", j2)
    assert (held["job_id"], held["state"], held["held"]) == (j2, "queued", True)
    moved = cli(server, "jobs", "move", j4, "--before", j3, "--server", server.url)
    assert moved["job_id"] == j4
    updated = cli(server, "jobs", "update", j3, "--printer", "virtual", "--priority", "0")
    assert (updated["requested_printer"], updated["priority"]) == ("virtual", 0)

    llm.released.set()
    wait_for(lambda: job(server, blocker["job_id"])["state"] in TERMINAL, 120, "the blocker")
    wait_for(lambda: job(server, j3)["state"] == "completed", 180, "j3 completed")
    wait_for(lambda: job(server, j4)["state"] == "completed", 180, "j4 completed")
    # The moved job went first; the held one never left the queue.
    assert left_queue_at(server, j4) < left_queue_at(server, j3)
    assert job(server, j2)["state"] == "queued"
    assert job(server, j2)["held"] is True

    released = cli(server, "jobs", "release", j2)
    assert released["held"] is False
    wait_for(lambda: job(server, j2)["state"] == "completed", 180, "j2 completed once released")

    # A failed job again, as a new job that says which it retries.
    retried = cli(server, "jobs", "retry", blocker["job_id"], "--from", "start")
    assert retried["retry_of"] == blocker["job_id"]
    assert retried["job_id"] != blocker["job_id"]
    assert retried["state"] == "queued"


def test_queue_changes_on_jobs_that_are_not_queued_are_refused(
    farm: tuple[ServeProcess, HeldLLM],
) -> None:
    server, llm = farm
    llm.released.set()
    done = server.api("POST", "/api/jobs", {"request": "a 10 mm cube"})["job_id"]
    wait_for(lambda: job(server, done)["state"] == "completed", 180, "the job completed")
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(server.data_dir), "jobs", "hold",
         done],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "only a queued job" in proc.stderr


def test_retry_from_the_failed_stage_starts_from_the_gcode_or_the_model(tmp_path: Path) -> None:
    gcode, stl = tmp_path / "model.gcode", tmp_path / "model.stl"
    gcode.write_text("G28\n")
    stl.write_bytes(b"solid x\nendsolid x\n")
    old = Job(request=PrintRequest(text="a 10 mm cube", priority=3))
    old.mesh = MeshArtifact(path=stl, sha256=file_sha256(stl), size_bytes=19, triangles=0,
                            watertight=True, volume_mm3=0.0, size_mm=(1.0, 1.0, 1.0))  # fmt: skip
    old.stage(StageName.CAD).state = StageState.COMPLETED
    # Slicing failed: the model enters again at the slicer.
    again = _from_failed_stage(old, old.request)
    assert (again.text, again.model_path, again.priority) == (None, stl, 3)
    old.gcode = GcodeArtifact(path=gcode, sha256=file_sha256(gcode), size_bytes=4,
                              engine="builtin", lines=1, layers=0, estimated_time_s=0.0,
                              filament_mm=0.0, filament_g=0.0)  # fmt: skip
    old.stage(StageName.SLICER).state = StageState.COMPLETED
    # Printing failed: the same G-code enters at the printer.
    assert _from_failed_stage(old, old.request).gcode_path == gcode
    # An artifact changed on disk since is not trusted: from the start.
    gcode.write_text("G28\nG1 X10\n")
    stl.write_bytes(b"changed")
    assert _from_failed_stage(old, old.request).text == "a 10 mm cube"
