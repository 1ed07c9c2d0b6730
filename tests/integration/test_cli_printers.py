"""Issue 15, item 2: the command line does for printers what the API does.

Real processes: `printforge run` twice on a printer whose bed must be cleared (the second waits
and says how), `printforge printers clear` from another process lets it go on; against a real
`printforge serve`, `printforge printers --server` lists, clears, pauses, resumes and cancels.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.fakes.serve_process import REPO, ServeProcess, wait_for

KEY = "cli-printers-admin-key-0123456789"
MK3 = '[printers.mk3]\ndriver = "virtual"\nbed_clear_required = true\n'


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_ENV": "development", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """stderr lines as they come, read by a thread so the test can wait with a bound."""
    out: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            out.put(line)
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


def wait_line(lines: queue.Queue[str | None], wanted: str, timeout: float) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if wanted in " ".join(s.strip() for s in seen[-3:]):
            return "".join(seen)
    raise AssertionError(f"never saw {wanted!r} in:\n{''.join(seen)}")


def test_a_run_waiting_for_a_bed_says_which_and_printers_clear_lets_it_go_on(
    tmp_path: Path,
) -> None:
    config = tmp_path / "farm.toml"
    config.write_text(MK3)
    common = ("--config", str(config), "--data-dir", str(tmp_path / "data"))
    run = ("run", "a 10 mm cube", "--printer", "mk3", "--sim-speed", "2000", "--json")
    assert json.loads(cli(*common, *run))["state"] == "completed"

    second = subprocess.Popen(
        [sys.executable, "-m", "printforge", *common, *run],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRINTFORGE_ENV": "development",
             "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        lines = lines_of(second)
        said = wait_line(lines, "printforge printers clear mk3", 60)
        assert "bed of mk3" in said
        # Another terminal, the same data directory: the waiting run goes on.
        assert "mk3: bed clear" in cli(*common, "printers", "clear", "mk3")
        out, _ = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate(timeout=10)
    assert second.returncode == 0
    assert json.loads(out)["state"] == "completed"

    # Nothing holds the data directory now: the list starts the printers once and reports.
    listed = json.loads(cli(*common, "printers", "--json"))["printers"]
    assert [(p["id"], p["state"], p["simulated"]) for p in listed] == [("mk3", "finished", True)]
    assert "mk3: bed clear" in cli(*common, "printers", "clear", "mk3")
    listed = json.loads(cli(*common, "printers", "--json"))["printers"]
    assert listed[0]["state"] == "idle"


def test_printers_against_a_server(tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    config.write_text(MK3)
    server = ServeProcess(tmp_path / "data", KEY, sim_speed=20.0, config=config).start()
    env = {"PRINTFORGE_API_KEY": KEY}
    remote = ("--server", server.url, "--json")
    try:

        def printer() -> dict[str, Any]:
            found = json.loads(cli("printers", *remote, env=env))["printers"]
            return next(p for p in found if p["id"] == "mk3")

        assert printer()["state"] == "idle"
        job = server.api("POST", "/api/jobs", {"request": "a 20 mm cube", "printer": "mk3"})

        def past_heating() -> bool:
            # Pausing while an M109 holds the stream times out on the server today (HTTP 500,
            # also on main; reported): pause once moves are being acknowledged.
            p = printer()
            return (
                p["state"] == "printing"
                and ((p.get("progress") or {}).get("lines_acked") or 0) > 200
            )

        wait_for(past_heating, 120, "mk3 printing its moves")
        paused = json.loads(cli("printers", "pause", "mk3", *remote, env=env))
        assert paused["state"] == "paused"
        resumed = json.loads(cli("printers", "resume", "mk3", *remote, env=env))
        assert resumed["state"] == "printing"
        cli("printers", "cancel", "mk3", *remote, env=env)
        wait_for(
            lambda: server.api("GET", f"/api/jobs/{job['job_id']}")["state"] == "cancelled",
            60,
            "the job cancelled",
        )
        # A print that began leaves the bed occupied; the command line confirms it clear.
        wait_for(lambda: printer()["message"] == "waiting for bed clear", 60, "bed to clear")
        cleared = json.loads(cli("printers", "clear", "mk3", *remote, env=env))
        assert cleared["state"] == "idle"
        # Without --server, the data directory's owner is found and asked.
        text = cli("--data-dir", str(server.data_dir), "printers", env=env)
        assert "mk3" in text
        assert "idle" in text
    finally:
        server.stop()
