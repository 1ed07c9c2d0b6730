"""The `printforge` command as a person runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def printforge(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def test_run_json_reports_four_stages_completed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = printforge(
        "run", "a 20 mm calibration cube", "--json", "--out", str(out), data_dir=tmp_path / "d"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) >= {"job_id", "state", "request", "stages", "artifacts", "error"}
    assert summary["state"] == "completed"
    assert summary["error"] is None
    assert summary["request"] == "a 20 mm calibration cube"
    assert [s["name"] for s in summary["stages"]] == ["research", "cad", "slicer", "printer"]
    assert all(s["state"] == "completed" for s in summary["stages"])
    assert all(isinstance(s["duration_s"], float) for s in summary["stages"])
    for key in ("spec", "stl", "gcode"):
        assert Path(summary["artifacts"][key]).is_file()
    assert (out / "model.gcode").is_file() and (out / "report.json").is_file()

    listed = printforge("jobs", "--json", data_dir=tmp_path / "d")
    assert listed.returncode == 0, listed.stderr
    assert [j["job_id"] for j in json.loads(listed.stdout)] == [summary["job_id"]]


def test_run_shows_progress_and_a_summary(tmp_path: Path) -> None:
    result = printforge("run", "a 15 mm cube", data_dir=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout
    assert "15.0 × 15.0 × 15.0 mm" in result.stdout
    for label in ("Research", "CAD", "Slicer", "Printer"):
        assert label in result.stderr  # the progress display goes to stderr


def test_nonsense_exits_non_zero_with_one_clear_line(tmp_path: Path) -> None:
    result = printforge("run", "the smell of rain", "--json", data_dir=tmp_path / "d")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["state"] == "failed"
    assert summary["error"]["code"] == "invalid_input"
    assert "Traceback" not in result.stderr


def test_bad_config_names_the_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[slicer]\nlayer_hieght = 0.3\n")
    result = printforge("--config", str(config), "jobs", data_dir=tmp_path / "d")
    assert result.returncode == 2
    assert "slicer.layer_hieght" in result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_printer_is_a_clear_error(tmp_path: Path) -> None:
    result = printforge("run", "a 20 mm cube", "--printer", "nope", data_dir=tmp_path / "d")
    # Bad input said before any work (issue 18), exit 1 like any other.
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "printforge: --printer nope: unknown printer; configured printers are virtual"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["jobs", "health"])
def test_read_only_commands_work_on_an_empty_data_dir(command: str, tmp_path: Path) -> None:
    result = printforge(command, data_dir=tmp_path / "d")
    assert result.returncode == 0, result.stderr


def test_global_options_also_work_after_the_command(tmp_path: Path) -> None:
    data = tmp_path / "d"
    config = tmp_path / "c.toml"
    config.write_text("[slicer]\nperimeters = 3\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "printforge",
            "run",
            "a 10 mm cube",
            "--no-print",
            "--json",
            "--data-dir",
            str(data),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    report = json.loads((data / "jobs" / job_id / "report.json").read_text())
    assert report["report"]["slicer"]["settings"]["perimeters"] == 3


def interrupt_mid_print(data: Path, sig: int, sim_speed: str) -> tuple[int, str, list[str]]:
    """Run one job, send `sig` once it prints; its exit code, stderr and the jobs' states."""
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    command = [sys.executable, "-m", "printforge", "run", "a 20 mm cube", "--sim-speed"]
    proc = subprocess.Popen(
        [*command, sim_speed, "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            jobs = json.loads(printforge("jobs", "--json", data_dir=data).stdout or "[]")
            if jobs and jobs[0]["state"] == "printing":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        else:
            raise AssertionError("the job never started printing")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    jobs = json.loads(printforge("jobs", "--json", data_dir=data).stdout)
    return proc.returncode, err, [j["state"] for j in jobs]


def test_ctrl_c_mid_print_stops_safely_and_records_the_job(tmp_path: Path) -> None:
    import signal

    code, err, states = interrupt_mid_print(tmp_path / "data", signal.SIGINT, "20")
    assert code == 130
    assert "stopping job" in err and "stopped safely first" in err
    assert "Traceback" not in err and "never retrieved" not in err, err
    assert states == ["interrupted"]


def test_ctrl_c_while_the_printer_heats_stops_at_once(tmp_path: Path) -> None:
    # At --sim-speed 5 the virtual bed needs some 30 s to reach 60 °C, and the job's first
    # lines wait for it (M190, then M109). The virtual board has EMERGENCY_PARSER, so the
    # safe stop ends the wait with M108 instead of queueing behind it until its timeout.
    import signal

    code, err, states = interrupt_mid_print(tmp_path / "data", signal.SIGINT, "5")
    assert code == 130, err
    assert "stopped safely first" in err
    assert "safe stop incomplete" not in err, err
    assert "Traceback" not in err and "never retrieved" not in err, err
    assert states == ["interrupted"]


def test_sigterm_mid_print_stops_safely_like_ctrl_c(tmp_path: Path) -> None:
    # systemd, docker stop and kill send SIGTERM: the print must still stop its printer safely.
    import signal

    code, err, states = interrupt_mid_print(tmp_path / "data", signal.SIGTERM, "20")
    assert code == 143, err
    assert "stopped safely first" in err and "printforge: terminated" in err
    assert "Traceback" not in err, err
    assert states == ["interrupted"]


def test_run_shows_the_printability_warnings(tmp_path: Path) -> None:
    result = printforge("run", "a 40 mm sphere", "--no-print", data_dir=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stdout and "overhangs more than 45" in result.stdout


def test_an_out_path_that_is_a_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    result = printforge("run", "a 20 mm cube", "--out", str(taken), data_dir=tmp_path / "d")
    assert result.returncode == 1
    assert "--out" in result.stderr and "is a file" in result.stderr
    jobs = printforge("jobs", "--json", data_dir=tmp_path / "d")
    assert json.loads(jobs.stdout or "[]") == []


def test_the_built_in_virtual_printer_has_whatever_material_is_asked_for(
    tmp_path: Path,
) -> None:
    result = printforge(
        "run", "a 10 mm cube", "--material", "PETG", "--json", data_dir=tmp_path / "d"
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["state"] == "completed"
    gcode = Path(job["artifacts"]["gcode"]).read_text()
    assert "M104 S235" in gcode or "M109 S235" in gcode  # PETG's first-layer temperature


def test_an_interrupted_print_says_where_it_stopped_in_json(tmp_path: Path) -> None:
    import time

    link = tmp_path / "ttyVM0"
    board = subprocess.Popen(
        [sys.executable, "-m", "printforge", "virtual-printer", "--link", str(link),
         "--sim-speed", "2000", "--disconnect-at-line", "200", "--data-dir", str(tmp_path / "vp")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not link.exists():
            assert time.monotonic() < deadline and board.poll() is None, board.communicate()
            time.sleep(0.1)
        config = tmp_path / "vm.toml"
        config.write_text(f'[printers.vm]\ndriver = "marlin"\nport = "{link}"\nreconnect = false\n')
        result = printforge(
            "--config", str(config), "run", "a 20 mm cube", "--json", data_dir=tmp_path / "d"
        )
    finally:
        board.terminate()
        board.communicate(timeout=30)
    summary = json.loads(result.stdout)
    assert summary["state"] == "interrupted", result.stderr
    assert isinstance(summary["last_acked_line"], int) and summary["last_acked_line"] > 0
    shown = json.loads(
        printforge("jobs", summary["job_id"], "--json", data_dir=tmp_path / "d").stdout
    )
    assert shown["last_acked_line"] == summary["last_acked_line"]
