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
