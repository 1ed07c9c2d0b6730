"""A real `printforge serve --log-format json`: every log line it writes is one JSON object,
the job's lines name the job, the printer's lines name the printer, and no key is in them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.serve_process import ServeProcess, wait_for

KEY = "json-logs-admin-key-0123456789"
# What the command itself prints (not log records): the line scripts wait for, and its goodbye.
_OUTPUT_LINES = ("printforge serving on http://", "printforge: stopped")


def test_serve_writes_json_lines_with_job_and_printer(tmp_path: Path) -> None:
    server = ServeProcess(
        tmp_path / "data",
        KEY,
        sim_speed=5000.0,
        extra_args=("--log-format", "json", "--debug"),
        # The key also sits in the environment the libraries see; it must reach no line.
        env={"PRINTFORGE_LOGGING__FORMAT": "text"},  # the flag wins over the variable
    ).start()
    try:
        job_id = server.api("POST", "/api/jobs", {"request": "a 10 mm calibration cube"})["job_id"]
        wait_for(
            lambda: server.api("GET", f"/api/jobs/{job_id}")["state"] == "completed",
            120,
            "the job to complete",
        )
    finally:
        assert server.stop() == 0
    text = server.log.read_text()
    assert KEY not in text
    records = []
    for line in text.splitlines():
        if line.startswith(_OUTPUT_LINES):
            continue
        record = json.loads(line)  # any other line that is not JSON fails here
        assert {"time", "level", "logger", "message"} <= set(record), line
        records.append(record)
    assert len(records) > 10
    mine = [r for r in records if r.get("job_id") == job_id]
    loggers = {r["logger"] for r in mine}
    # Research, slicing and the printer stage all ran in the job's task.
    assert {"printforge.agents.research", "printforge.agents.slicer"} <= loggers, loggers
    # The virtual printer's firmware lines come from its driver's own reader task.
    assert any(
        r.get("printer") == "virtual" and r["logger"] == "printforge.hardware.marlin.driver"
        for r in records
    )
    # Nothing outside a job claims one.
    assert all(r["job_id"] == job_id for r in records if "job_id" in r)
