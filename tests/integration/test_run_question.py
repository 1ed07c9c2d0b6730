"""`printforge run` with a request it cannot fully build: the job stops at research with one
question (error code needs_input, exit 1, the requirement list in --json); --accept-partial
runs it through, saying what was left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_design_cli import printforge

TEXT = "a 60 x 40 x 4 mm plate with 2 holes and a magnet pocket"


@pytest.mark.asyncio
async def test_run_asks_instead_of_building_something_else(tmp_path: Path) -> None:
    code, stdout, stderr = await printforge(
        "run", TEXT, "--no-print", "--json", data_dir=tmp_path / "d"
    )
    assert code == 1, stderr
    job = json.loads(stdout)
    # The job waits for an answer (state needs_input, as on the server); to the command it
    # ends as a failure with the question as its error.
    assert job["state"] == "needs_input" and job["error"]["code"] == "needs_input"
    assert "magnet" in job["question"] and job["question"] == job["error"]["message"]
    assert [s["state"] for s in job["stages"]] == ["pending", "pending", "pending", "pending"]
    assert any(r["status"] == "not_built" and r["text"] == "magnet" for r in job["requirements"])
    assert job["artifacts"]["stl"] is None

    code, stdout, stderr = await printforge(
        "run", TEXT, "--no-print", "--json", "--accept-partial", data_dir=tmp_path / "d"
    )
    assert code == 0, stderr
    job = json.loads(stdout)
    assert job["state"] == "completed" and job["error"] is None
    assert job["artifacts"]["stl"] and job["artifacts"]["gcode"]
    assert {r["status"] for r in job["requirements"]} >= {"built", "not_built"}


@pytest.mark.asyncio
async def test_answer_continues_a_job_that_asked_on_the_local_data_dir(tmp_path: Path) -> None:
    """`printforge answer JOB "TEXT"`: the answer is added to the request, read again, and the
    job runs on from research, in this process when no server owns the data directory."""
    data = tmp_path / "d"
    code, stdout, stderr = await printforge(
        "run", "a knob for my coffee grinder", "--no-print", "--json", data_dir=data
    )
    assert code == 1, stderr
    asked = json.loads(stdout)
    assert asked["state"] == "needs_input"

    code, stdout, stderr = await printforge(
        "answer", asked["job_id"], "it has a 5 mm D shaft", "--json", data_dir=data
    )
    assert code == 0, stderr
    job = json.loads(stdout)
    assert job["job_id"] == asked["job_id"]
    assert job["state"] == "completed" and job["error"] is None
    assert job["artifacts"]["stl"] and job["artifacts"]["gcode"]
    assert "5 mm D shaft" in job["request"]

    # Answering a job that no longer waits is refused with the reason, not re-run.
    code, stdout, stderr = await printforge(
        "answer", asked["job_id"], "again", "--json", data_dir=data
    )
    assert code == 1
    assert "not waiting for an answer" in json.loads(stdout)["error"]["message"]
    code, stdout, stderr = await printforge("answer", "nosuchjob", "x", data_dir=data)
    assert code == 1 and "no job with id 'nosuchjob'" in stderr
