"""mypy, strict, over the lowest floors (`gcode/`, `models/`, `runtime/`) and the offline
reader (`llm/offline/`): the `[tool.mypy]` section of pyproject.toml names them, and this test
runs it so CI fails on a type error."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STRICT = {"printforge/gcode", "printforge/models", "printforge/runtime", "printforge/llm/offline"}
MYPY_S = 300  # a cold run takes about 20 s on a loaded two-core machine


def test_the_config_keeps_the_lowest_floors_strict() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert set(config["files"]) >= STRICT


def test_mypy_finds_no_errors() -> None:
    # The repo's own checkout first on the path: the editable install may point elsewhere.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=MYPY_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
