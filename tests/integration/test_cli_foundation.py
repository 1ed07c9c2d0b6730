"""`printforge health`, `jobs` and error lines as an operator meets them: real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from printforge.cli import one_line


def printforge(
    *args: str, data_dir: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    return subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_health_of_a_printer_that_cannot_connect_is_unhealthy(tmp_path: Path) -> None:
    # A Marlin printer on a port that does not exist: the check must say so and fail.
    config = tmp_path / "farm.toml"
    port = tmp_path / "ttyNOPE0"
    config.write_text(f'[printers.mk3]\ndriver = "marlin"\nport = "{port}"\n')
    result = printforge("--config", str(config), "health", "--json", data_dir=tmp_path / "d")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "unhealthy"
    (mk3,) = [c for c in report["components"] if c["name"] == "mk3"]
    assert mk3["state"] == "unhealthy"
    assert str(port) in (mk3["last_error"] or "")

    table = printforge("--config", str(config), "health", data_dir=tmp_path / "d")
    assert table.returncode == 1
    assert "printforge is unhealthy" in table.stdout


def test_health_of_the_virtual_printer_is_healthy(tmp_path: Path) -> None:
    result = printforge("health", "--json", data_dir=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "healthy"
    agents = {c["name"] for c in report["components"] if c["component"] == "agent"}
    assert agents == {"research", "cad", "slicer", "printer"}


def test_jobs_limit_must_be_positive(tmp_path: Path) -> None:
    # `--limit 0` printed "no jobs yet" over a full store; -1 silently meant "all".
    for bad in ("0", "-1"):
        result = printforge("jobs", "--limit", bad, data_dir=tmp_path / "d")
        assert result.returncode == 2
        assert "--limit" in result.stderr


def test_an_error_with_several_lines_is_printed_as_one() -> None:
    text = (
        "invalid request: 1 validation error for PrintRequest\ntext\n"
        "  String should have at least 1 character [type=string_too_short]\n"
        "    For further information visit https://errors.pydantic.dev/2/v/string_too_short"
    )
    line = one_line(text)
    assert "\n" not in line
    assert "String should have at least 1 character" in line
    assert "errors.pydantic.dev" not in line


def test_an_empty_request_fails_with_one_line(tmp_path: Path) -> None:
    result = printforge("run", "", data_dir=tmp_path / "d")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("printforge: ")


def test_an_os_error_is_one_plain_line_not_an_unexpected_error(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file where --out wants a folder")
    result = printforge(
        "run",
        "a 20 mm calibration cube",
        "--out",
        str(taken),
        "--sim-speed",
        "5000",
        data_dir=tmp_path / "d",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    # Checked before the job runs (not after the print), in one plain line.
    assert lines == [f"printforge: --out {taken} is a file; give a folder for the files"]
    assert "unexpected" not in result.stderr


def test_an_os_error_from_any_command_is_one_plain_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import printforge.cli.jobs as jobs_cmd
    from printforge.cli import main

    def full_disk(args: object) -> int:
        raise OSError(28, "No space left on device", "/var/lib/printforge/jobs")

    monkeypatch.setattr(jobs_cmd, "_handle_jobs", full_disk)
    assert main(["jobs"]) == 1
    err = capsys.readouterr().err
    assert err == "printforge: /var/lib/printforge/jobs: No space left on device\n"


def test_jobs_says_when_it_shows_only_part_of_the_store(tmp_path: Path) -> None:
    import asyncio

    from printforge.models.job import Job
    from printforge.models.request import PrintRequest
    from printforge.orchestrator.store import JobStore

    data = tmp_path / "d"

    async def fill() -> list[str]:
        store = JobStore(data / "printforge.sqlite3")
        await store.open()
        ids = []
        for n in range(30):
            job = Job(request=PrintRequest(text=f"a {n + 5} mm cube"))
            await store.insert(job)
            ids.append(job.id)
        await store.close()
        return ids

    ids = asyncio.run(fill())
    listing = printforge("jobs", data_dir=data)
    assert listing.returncode == 0, listing.stderr
    assert "the newest 20 of 30 jobs" in listing.stdout
    assert ids[-1] in listing.stdout and ids[0] not in listing.stdout
    everything = printforge("jobs", "--limit", "50", "--json", data_dir=data)
    assert [j["job_id"] for j in json.loads(everything.stdout)] == ids[::-1]
    (data / "jobs" / ids[3]).mkdir(parents=True)
    one = printforge("jobs", ids[3], data_dir=data)
    assert one.returncode == 0 and "a 8 mm cube" in one.stdout
    assert f"files {data / 'jobs' / ids[3]}" in one.stdout
