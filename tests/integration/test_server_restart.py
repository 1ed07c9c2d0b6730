"""`kill -9` of `printforge serve` mid-run loses no job: queued jobs stay queued, the running
print comes back interrupted, and the recovered work finishes after the restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from printforge.orchestrator.store import JobStore
from tests.fakes.serve_process import ServeProcess

KEY = "restart-admin-key-0123456789"


def api(server: ServeProcess, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_mid_print_loses_no_job(tmp_path: Path) -> None:
    config = tmp_path / "one-at-a-time.toml"
    # One job prepared at a time, so that at the kill one job prints, one waits for the printer
    # (prepared) and the rest are still queued.
    config.write_text("[orchestrator]\nmax_active_jobs = 1\n")
    data = tmp_path / "data"
    slow = ServeProcess(data, KEY, sim_speed=20.0, config=config).start()
    try:
        printing = api(slow, "POST", "/api/jobs", {"request": "a 20 mm calibration cube"})["job_id"]
        wait_for(
            lambda: api(slow, "GET", f"/api/jobs/{printing}")["state"] == "printing",
            60,
            "the first job to print",
        )
        others = [
            api(slow, "POST", "/api/jobs", {"request": f"a {size} mm cube"})["job_id"]
            for size in (10, 12, 14)
        ]
        wait_for(
            lambda: any(api(slow, "GET", f"/api/jobs/{j}")["state"] == "slicing" for j in others),
            30,
            "a second job to wait for the printer",
        )
        before = {j["job_id"]: j["state"] for j in api(slow, "GET", "/api/jobs")["jobs"]}
        assert before[printing] == "printing"
        assert "queued" in before.values()
    finally:
        slow.kill()
    assert slow.proc is not None and slow.proc.returncode == -9

    fast = ServeProcess(data, KEY, port=slow.port, sim_speed=5000.0, config=config).start()
    try:
        after = {j["job_id"]: j for j in api(fast, "GET", "/api/jobs")["jobs"]}
        assert set(after) == set(before), "a job was lost"
        assert after[printing]["state"] == "interrupted"
        assert after[printing]["error"]["code"] == "interrupted"
        # The interrupted print keeps its hashed G-code.
        gcode = urllib.request.urlopen(
            urllib.request.Request(
                fast.url + after[printing]["artifacts"]["gcode"],
                headers={"Authorization": f"Bearer {KEY}"},
            ),
            timeout=10,
        ).read()
        assert hashlib.sha256(gcode).hexdigest() == after[printing]["sha256"]["gcode"]
        # Everything that had not reached the printer runs again, and finishes.
        for job_id in others:
            done = wait_for(
                lambda j=job_id: (
                    lambda s: s if s in ("completed", "failed", "cancelled") else None
                )(api(fast, "GET", f"/api/jobs/{j}")["state"]),
                60,
                f"job {job_id} to finish",
            )
            assert done == "completed", job_id
        assert api(fast, "GET", f"/api/jobs/{printing}")["state"] == "interrupted"
    finally:
        assert fast.stop() == 0

    history = asyncio.run(_transitions(data / "printforge.sqlite3", [printing, *others]))
    assert ("printing", "interrupted") in [(f, t) for f, t, _, _ in history[printing]]
    for job_id in others:
        states = [t for _, t, _, _ in history[job_id]]
        if before[job_id] == "queued":
            # Queued at the kill: it simply stayed queued, never interrupted.
            assert "interrupted" not in states, states
        assert states[-1] == "completed"


async def _transitions(db: Path, ids: list[str]) -> dict[str, list[Any]]:
    store = JobStore(db)
    await store.open()
    try:
        return {job_id: await store.transitions(job_id) for job_id in ids}
    finally:
        await store.close()


def test_kill_9_mid_print_keeps_a_bed_clear_printer_waiting(tmp_path: Path) -> None:
    # The half-printed part is still on the bed after the crash: a printer that needs its bed
    # confirmed clear must not start the next queued job on top of it.
    config = tmp_path / "bed-clear.toml"
    config.write_text(
        '[printers.a]\ndriver = "virtual"\nmaterial = "PLA"\nbed_clear_required = true\n'
    )
    data = tmp_path / "data"
    slow = ServeProcess(data, KEY, sim_speed=20.0, config=config).start()
    try:
        printing = api(slow, "POST", "/api/jobs", {"request": "a 20 mm calibration cube"})["job_id"]
        wait_for(
            lambda: api(slow, "GET", "/api/printers")["printers"][0]["state"] == "printing",
            60,
            "the printer to print",
        )
        queued = api(slow, "POST", "/api/jobs", {"request": "a 10 mm cube"})["job_id"]
    finally:
        slow.kill()

    fast = ServeProcess(data, KEY, port=slow.port, sim_speed=5000.0, config=config).start()
    try:
        assert api(fast, "GET", f"/api/jobs/{printing}")["state"] == "interrupted"
        # The queued job is prepared (sliced) and then waits for the bed, not for nothing.
        wait_for(
            lambda: api(fast, "GET", f"/api/jobs/{queued}")["stages"][2]["state"] == "completed",
            60,
            "the queued job to be sliced",
        )
        printer = api(fast, "GET", "/api/printers")["printers"][0]
        assert printer["state"] == "finished" and printer["message"] == "waiting for bed clear"
        assert api(fast, "GET", f"/api/jobs/{queued}")["state"] not in ("printing", "completed")
        api(fast, "POST", "/api/printers/a/confirm_bed_clear")
        done = wait_for(
            lambda: (lambda s: s if s in ("completed", "failed", "cancelled") else None)(
                api(fast, "GET", f"/api/jobs/{queued}")["state"]
            ),
            60,
            "the queued job to finish after the bed was cleared",
        )
        assert done == "completed"
    finally:
        assert fast.stop() == 0
