"""Issue 15, items 3 and 4 on a real `printforge serve`: materials, spools, constraints.

A job whose only fitting printer holds too short a spool waits and says so; once the spool is
weighed fuller it prints and the spool is charged with the G-code's filament, which sends
`spool.low` to a real local webhook receiver. Tags, nozzle and `not_before` are honoured; a job
no printer could ever take is refused with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest

from tests.fakes.serve_process import REPO, ServeProcess, wait_for

KEY = "spools-admin-key-0123456789"


class Hooks:
    """A local webhook receiver that records every event body."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hooks.events.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


@pytest.fixture
def farm(tmp_path: Path, hooks: Hooks) -> Iterator[ServeProcess]:
    config = tmp_path / "farm.toml"
    config.write_text(
        'default_printer = "enc"\n\n'
        '[printers.enc]\ndriver = "virtual"\ntags = ["enclosed", "0.4mm"]\n\n'
        '[printers.open]\ndriver = "virtual"\n\n'
        # Any print takes this spool under the threshold: spool.low is sent.
        "[spools]\nlow_weight = 499.5\n\n"
        f'[notify]\nwebhooks = [{{ url = "http://127.0.0.1:{hooks.port}/hook",'
        ' events = ["spool.low"] }]\n'
    )
    server = ServeProcess(tmp_path / "data", KEY, config=config).start()
    try:
        yield server
    finally:
        server.stop()


def cli(server: ServeProcess, *args: str, ok: bool = True) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(server.data_dir), *args, "--json"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    if not ok:
        return proc
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def job(server: ServeProcess, job_id: str) -> dict[str, Any]:
    result: dict[str, Any] = server.api("GET", f"/api/jobs/{job_id}")
    return result


def refused(server: ServeProcess, path: str, body: dict[str, Any]) -> str:
    with pytest.raises(HTTPError) as err:
        server.api("POST", path, body)
    assert err.value.code == 400
    message: str = json.loads(err.value.read())["error"]["message"]
    return message


def test_a_short_spool_holds_the_job_with_the_reason_then_is_charged(
    farm: ServeProcess, hooks: Hooks
) -> None:
    server = farm
    spool = cli(server, "spools", "add", "--material", "PLA", "--grams", "1", "--printer", "enc")
    assert (spool["id"], spool["printer"], spool["remaining_weight"]) == (1, "enc", 1.0)
    # The other printer gets PETG: a PLA job that needs the enclosure can only go to enc.
    loaded = cli(server, "printers", "material", "open", "PETG")
    assert loaded["material"] == "PETG"

    submitted = server.api("POST", "/api/jobs", {"request": "a 20 mm cube", "tags": ["enclosed"]})
    job_id = submitted["job_id"]
    waiting = wait_for(
        lambda: (job(server, job_id).get("waiting") or "").startswith("waiting: spool on enc"),
        120,
        "the job to say it waits for the spool",
    )
    assert waiting
    view = job(server, job_id)
    assert "has 1 g, job needs" in view["waiting"]
    assert view["state"] == "slicing" and view["tags"] == ["enclosed"]

    weighed = cli(server, "spools", "update", "1", "--grams", "500")
    assert weighed["remaining_weight"] == 500.0
    wait_for(lambda: job(server, job_id)["state"] == "completed", 120, "the job printed")
    done = job(server, job_id)
    assert done["printer"] == "enc" and done["waiting"] is None
    needed = done["gcode"]["filament_g"]
    assert needed > 0

    def charged() -> dict[str, Any] | None:
        spools = cli(server, "spools")["spools"]
        return spools[0] if spools[0]["remaining_weight"] < 500 else None

    spool = wait_for(charged, 30, "the spool charged")
    assert spool["remaining_weight"] == pytest.approx(500 - needed, abs=0.02)
    assert spool["used_weight"] == pytest.approx(needed, abs=0.02)
    low = wait_for(lambda: hooks.events, 30, "spool.low at the webhook")
    assert low[0]["event"] == "spool.low" and low[0]["printer"] == "enc"
    assert low[0]["data"]["spool_id"] == 1

    printers = {p["id"]: p for p in server.api("GET", "/api/printers")["printers"]}
    assert printers["open"]["material"] == "PETG" and printers["open"]["spool"] is None
    assert printers["enc"]["tags"] == ["enclosed", "0.4mm"]
    assert printers["enc"]["spool"]["id"] == 1


def test_constraints_no_printer_meets_are_refused_with_the_reason(farm: ServeProcess) -> None:
    server = farm
    message = refused(server, "/api/jobs", {"request": "a 20 mm cube", "tags": ["0.6mm"]})
    assert "no printer has tags 0.6mm" in message
    assert "enc lacks tag 0.6mm" in message
    message = refused(server, "/api/jobs", {"request": "a 20 mm cube", "nozzle_diameter": 0.6})
    assert "a 0.6 mm nozzle (has 0.4 mm)" in message
    # `run --server` sends them as job.submit's.
    proc = cli(server, "run", "a 20 mm cube", "--tag", "0.6mm", "--server", server.url, ok=False)
    assert proc.returncode == 1
    assert "no printer has tags 0.6mm" in json.loads(proc.stdout)["error"]["message"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    queued = server.api("POST", "/api/jobs", {"request": "a 20 mm cube", "not_before": later})
    # An update that no printer could meet is refused too; the job keeps what it had.
    message = refused(server, f"/api/jobs/{queued['job_id']}/update", {"tags": ["0.6mm"]})
    assert "no printer has tags 0.6mm" in message
    assert job(server, queued["job_id"])["tags"] == []


def test_not_before_keeps_a_job_queued_until_its_time_or_until_cleared(
    farm: ServeProcess,
) -> None:
    server = farm
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    job_id = server.api(
        "POST", "/api/jobs", {"request": "a 20 mm cube", "not_before": later.isoformat()}
    )["job_id"]
    # Another job, submitted after it, is dispatched and completes while it waits.
    other = server.api("POST", "/api/jobs", {"request": "a 10 mm cube"})["job_id"]
    wait_for(lambda: job(server, other)["state"] == "completed", 120, "the other job")
    view = job(server, job_id)
    assert view["state"] == "queued"
    assert view["not_before"] == later.isoformat()
    assert view["waiting"] == f"not before {later.isoformat()}"

    # A time a few seconds ahead: the job leaves the queue, but never before it.
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    updated = cli(server, "jobs", "update", job_id, "--not-before", soon, "--tag", "enclosed")
    assert updated["not_before"] == soon and updated["tags"] == ["enclosed"]
    wait_for(lambda: job(server, job_id)["state"] == "completed", 120, "the job at its time")
    history = cli(server, "jobs", job_id)["transitions"]
    left = next(t["at"] for t in history if t["from"] == "queued")
    assert datetime.fromisoformat(left) >= datetime.fromisoformat(soon)
    assert job(server, job_id)["printer"] == "enc"


def test_printers_material_and_spool_without_a_server_are_kept_for_the_next_start(
    tmp_path: Path,
) -> None:
    config = tmp_path / "farm.toml"
    config.write_text('[printers.mk3]\ndriver = "virtual"\n')
    data = tmp_path / "data"

    def local(*args: str, ok: bool = True) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "printforge", "--config", str(config), "--data-dir",
             str(data), *args, "--json"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert (proc.returncode == 0) is ok, proc.stderr
        return json.loads(proc.stdout)

    # `run` takes the constraints too, and refuses what no printer could take.
    refused = local("run", "a 10 mm cube", "--tag", "enclosed", "--nozzle", "0.6", ok=False)
    assert "no printer has tags enclosed and a 0.6 mm nozzle" in refused["error"]["message"]
    assert local("printers", "material", "mk3", "petg")["material"] == "PETG"
    spool = local("spools", "add", "--material", "PETG", "--grams", "750")
    assert local("printers", "spool", "mk3", str(spool["id"]))["spool"]["id"] == spool["id"]
    listed = {p["id"]: p for p in local("printers")["printers"]}
    assert listed["mk3"]["material"] == "PETG"
    assert listed["mk3"]["spool"]["remaining_weight"] == 750.0
    # A PLA spool loaded there makes the printer's material PLA.
    pla = local("spools", "add", "--material", "PLA", "--grams", "20", "--printer", "mk3")
    assert pla["printer"] == "mk3"
    listed = {p["id"]: p for p in local("printers")["printers"]}
    assert listed["mk3"]["material"] == "PLA"
    spools = {s["id"]: s for s in local("spools")["spools"]}
    assert spools[spool["id"]]["printer"] is None
