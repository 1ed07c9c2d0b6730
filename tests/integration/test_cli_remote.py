"""`printforge run --server URL`: the real CLI against a real `printforge serve` on loopback.

Both sides are subprocesses, as an operator runs them; the server is in mock mode (virtual
printers), the key reaches the CLI only through the environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from printforge.cli.run import job_summary
from printforge.models.job import Job
from printforge.models.request import PrintRequest
from tests.fakes.serve_process import REPO, ServeProcess, free_port

KEY = "remote-admin-key-0123456789"
KEY_ENV = "PF_TEST_SERVER_KEY"


def printforge(
    *args: str, key: str | None = KEY, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(key),
        cwd=REPO,
        check=False,
    )


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "printforge", "run", *args, "--api-key-env", KEY_ENV]


def _env(key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env.pop(KEY_ENV, None)
    if key is not None:
        env[KEY_ENV] = key
    return env


def api(server: ServeProcess, path: str) -> Any:
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def printing_job(server: ServeProcess) -> str | None:
    jobs = api(server, "/api/jobs?state=printing")["jobs"]
    return jobs[0]["job_id"] if jobs else None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("serve") / "data", KEY).start()
    yield proc
    proc.stop()


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[ServeProcess]:
    """Virtual printers at 50× real time: a 60 mm cube prints for minutes, long enough to
    interrupt the client or the server in the middle of it."""
    proc = ServeProcess(tmp_path / "data", KEY, sim_speed=50.0).start()
    yield proc
    proc.stop()


def local_shape() -> tuple[set[str], set[str], set[str]]:
    local = job_summary(Job(request=PrintRequest(text="a 20 mm cube")))
    return set(local), {"name", "state", "duration_s"}, set(local["artifacts"])


def test_remote_json_has_the_local_shape_and_four_completed_stages(server: ServeProcess) -> None:
    result = printforge("a 20 mm calibration cube", "--server", server.url, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    keys, stage_keys, artifact_keys = local_shape()
    assert set(summary) == keys
    assert set(summary["artifacts"]) == artifact_keys
    assert all(set(s) == stage_keys for s in summary["stages"])
    assert summary["state"] == "completed"
    assert summary["error"] is None
    assert summary["request"] == "a 20 mm calibration cube"
    assert summary["printer"] == "virtual"
    assert [s["name"] for s in summary["stages"]] == ["research", "cad", "slicer", "printer"]
    assert all(s["state"] == "completed" for s in summary["stages"])
    assert all(isinstance(s["duration_s"], float) for s in summary["stages"])
    # The server never reveals its paths: artifacts are the addresses it serves them at.
    stl = summary["artifacts"]["stl"]
    assert stl.startswith(server.url)
    req = urllib.request.Request(stl, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert len(resp.read()) > 84  # more than an empty binary STL
    assert api(server, f"/api/jobs/{summary['job_id']}")["state"] == "completed"


def test_remote_shows_progress_summary_and_downloads_with_out(
    server: ServeProcess, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    flags = ["--no-print", "--layer-height", "0.3", "--out", str(out)]
    result = printforge("a 15 mm cube", "--server", server.url, *flags)
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout
    assert "15.0 × 15.0 × 15.0 mm" in result.stdout
    assert "50 layers" in result.stdout  # 15 mm at the 0.3 mm the flag asked for
    for label in ("Research", "CAD", "Slicer", "Printer"):
        assert label in result.stderr  # the progress display goes to stderr
    assert "skipped" in result.stderr
    assert (out / "model.gcode").is_file() and (out / "model.stl").is_file()
    assert f"files   {out}" in result.stdout


def test_wrong_key_is_refused_without_showing_a_key(server: ServeProcess) -> None:
    wrong = "pf_nosuch_this-key-is-wrong-0123"
    result = printforge("a 20 mm cube", "--server", server.url, "--json", key=wrong)
    assert result.returncode == 1
    # --json: the refusal is the one object on stdout (issue 18's error contract).
    said = json.loads(result.stdout)["error"]["message"]
    assert f"refused the API key from ${KEY_ENV}" in said
    assert "401" in said
    assert result.stderr == ""
    for secret in (wrong, KEY, "nosuch"):
        assert secret not in result.stdout + result.stderr


def test_missing_key_says_which_variable_to_set(server: ServeProcess) -> None:
    result = printforge("a 20 mm cube", "--server", server.url, key=None)
    assert result.returncode == 1
    assert f"needs an API key (HTTP 401): set ${KEY_ENV}" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_server_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = printforge("a 20 mm cube", "--server", url, "--json")
    assert result.returncode == 1
    said = f"cannot reach the printforge server at {url}: connection refused"
    # --json: the one object on stdout (issue 18); without it, one line on stderr.
    assert json.loads(result.stdout) == {"error": {"code": "connection_lost", "message": said}}
    assert result.stderr == ""
    plain = printforge("a 20 mm cube", "--server", url)
    assert plain.returncode == 1 and plain.stderr.strip() == f"printforge: {said}"


def test_nonsense_request_fails_with_the_servers_reason(server: ServeProcess) -> None:
    result = printforge("the smell of rain", "--server", server.url, "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["state"] == "failed"
    assert summary["error"]["code"] == "invalid_input"
    assert "cannot design 'the smell of rain'" in summary["error"]["message"]
    assert "Traceback" not in result.stderr

    human = printforge("the smell of rain", "--server", server.url)
    assert human.returncode == 1
    assert "error   invalid_input: cannot design 'the smell of rain'" in human.stdout


def test_a_question_ends_the_command_and_the_job_waits_on_the_server(
    server: ServeProcess,
) -> None:
    result = printforge("a knob for my stove", "--server", server.url, "--json", "--no-print")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "needs_input"
    assert summary["error"]["code"] == "needs_input"
    assert "stove" in summary["question"] and summary["error"]["message"] == summary["question"]
    # The job waits on the server for job.answer; it was not failed.
    assert api(server, f"/api/jobs/{summary['job_id']}")["state"] == "needs_input"


def test_answer_over_the_server_continues_the_job(server: ServeProcess) -> None:
    """`printforge answer JOB "TEXT" --server URL` is the server's job.answer, then the job
    is followed to its end as `run --server` follows one."""
    asked = json.loads(
        printforge("a knob for my desk lamp", "--server", server.url, "--json", "--no-print").stdout
    )
    assert asked["state"] == "needs_input"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "printforge",
            "answer",
            asked["job_id"],
            "a 6 mm round shaft",
            "--server",
            server.url,
            "--json",
            "--api-key-env",
            KEY_ENV,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(KEY),
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["job_id"] == asked["job_id"] and summary["state"] == "completed"
    assert api(server, f"/api/jobs/{asked['job_id']}")["state"] == "completed"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--material", "unobtainium"], "printforge: unknown material 'unobtainium'"),
        (["--printer", "nope"], "printforge: no printer named 'nope'"),
        (["--layer-height", "5"], "printforge: invalid params: slice.layer_height"),
    ],
)
def test_a_refused_submission_surfaces_the_servers_message(
    server: ServeProcess, flags: list[str], message: str
) -> None:
    result = printforge("a 20 mm cube", "--server", server.url, "--json", *flags)
    assert result.returncode == 1
    # --json: one object on stdout; without it, the same message is one line on stderr.
    assert json.loads(result.stdout)["error"]["message"].startswith(
        message.removeprefix("printforge: ")
    )
    plain = printforge("a 20 mm cube", "--server", server.url, *flags)
    assert plain.returncode == 1 and plain.stderr.startswith(message)
    assert len(plain.stderr.strip().splitlines()) == 1


def test_flags_the_server_cannot_take_are_refused_not_dropped(server: ServeProcess) -> None:
    before = len(api(server, "/api/jobs?limit=1000")["jobs"])
    result = printforge("a 20 mm cube", "--server", server.url, "--sim-speed", "5")
    assert result.returncode == 1
    assert "--sim-speed cannot be sent to a server" in result.stderr
    assert len(api(server, "/api/jobs?limit=1000")["jobs"]) == before


def test_the_provider_order_reaches_the_server(server: ServeProcess) -> None:
    result = printforge(
        "a 12 mm cube", "--server", server.url, "--provider", "offline", "--no-print", "--json"
    )
    assert result.returncode == 0, result.stderr
    job = api(server, f"/api/jobs/{json.loads(result.stdout)['job_id']}")
    assert job["research"]["provider"] == "offline"


def test_a_provider_the_server_does_not_have_is_refused(server: ServeProcess) -> None:
    before = len(api(server, "/api/jobs?limit=1000")["jobs"])
    result = printforge("a 20 mm cube", "--server", server.url, "--provider", "nosuch,offline")
    assert result.returncode == 1
    assert "unknown LLM provider 'nosuch'" in result.stderr
    assert len(api(server, "/api/jobs?limit=1000")["jobs"]) == before


def test_server_url_from_the_environment(server: ServeProcess) -> None:
    env = {**_env(KEY), "PRINTFORGE_SERVER_URL": server.url}
    result = subprocess.run(
        _command("a 10 mm cube", "--no-print", "--json"),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    assert api(server, f"/api/jobs/{job_id}")["state"] == "completed"


def test_ctrl_c_stops_watching_but_leaves_the_job_running(slow_server: ServeProcess) -> None:
    proc = subprocess.Popen(
        _command("a 60 mm cube", "--server", slow_server.url, "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(KEY),
        cwd=REPO,
    )
    try:
        job_id = wait_for(lambda: printing_job(slow_server), 90, "the job to print")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert json.loads(out) == {"error": {"code": "interrupted", "message": "interrupted"}}
    assert f"job {job_id} keeps running on {slow_server.url}" in err
    assert f"POST {slow_server.url}/api/jobs/{job_id}/cancel" in err
    assert KEY not in err
    assert api(slow_server, f"/api/jobs/{job_id}")["state"] == "printing"


def test_server_gone_for_good_gives_up_naming_the_job(slow_server: ServeProcess) -> None:
    proc = subprocess.Popen(
        _command("a 60 mm cube", "--server", slow_server.url, "--json", "--reconnect-timeout", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(KEY),
        cwd=REPO,
    )
    try:
        job_id = wait_for(lambda: printing_job(slow_server), 90, "the job to print")
        slow_server.kill()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    # --json: the failure is the one object on stdout (issue 18).
    error = json.loads(out)["error"]
    assert error["code"] == "connection_lost"
    last = error["message"]
    assert last.startswith(f"lost the connection to {slow_server.url}")
    assert "within 3 s" in last
    assert f"job {job_id} may still be running there" in last
    assert "Traceback" not in err


def test_reconnects_after_a_restart_and_reports_the_interrupted_print(
    slow_server: ServeProcess,
) -> None:
    proc = subprocess.Popen(
        _command("a 60 mm cube", "--server", slow_server.url, "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(KEY),
        cwd=REPO,
    )
    restarted: ServeProcess | None = None
    try:
        job_id = wait_for(lambda: printing_job(slow_server), 90, "the job to print")
        slow_server.kill()
        restarted = ServeProcess(slow_server.data_dir, KEY, port=slow_server.port).start()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if restarted is not None:
            restarted.stop()
    # A print cut off by a crash stays interrupted (half a part may be on the bed): the client
    # reconnected, re-read the job and reports exactly that.
    assert proc.returncode == 1, err
    summary = json.loads(out)
    assert summary["job_id"] == job_id
    assert summary["state"] == "interrupted"
    assert summary["error"]["code"] == "interrupted"
    assert "reconnecting" in err and "reconnected" in err
