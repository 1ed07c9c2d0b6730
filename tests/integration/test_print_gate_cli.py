"""`printforge print` and `printforge gcode-info` refuse what is not G-code (issue 11, item 3).

The board is a `printforge virtual-printer` process on a pty, as a user runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.vmarlin import cube_gcode, write_gcode

CLI = [sys.executable, "-m", "printforge"]
REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTFORGE_ENV": "development"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A virtual Marlin board; yields its device and its executed-move log."""
    log = tmp_path / "moves.log"
    command = [*CLI, "virtual-printer", "--baud", "1000000", "--sim-speed", "100000"]
    with subprocess.Popen([*command, "--log", str(log)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip(), log
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_print_refuses_prose_that_mentions_m112(tmp_path: Path, board: tuple[str, Path]) -> None:
    device, _log = board
    fun = write_gcode(tmp_path, "M112 is fun\n", name="fun.gcode")
    refused = _run("print", str(fun), "--port", device, "--baud", "1000000")
    assert refused.returncode == 1
    assert "not G-code: line 1" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Nothing reached the board: it was not halted, the next print goes through.
    good = write_gcode(tmp_path, cube_gcode(size=2.0, layer=0.5))
    done = _run("print", str(good), "--port", device, "--baud", "1000000", "--json")
    assert done.returncode == 0, done.stderr


def test_print_refuses_a_job_that_halts_the_machine(
    tmp_path: Path, board: tuple[str, Path]
) -> None:
    device, _log = board
    halt = write_gcode(tmp_path, "G28\nG1 X10 Y10 F3000\nM112\n", name="halt.gcode")
    refused = _run("print", str(halt), "--port", device, "--baud", "1000000")
    assert refused.returncode == 1
    assert "line 3: `M112`" in refused.stderr and "allowed_config_commands" in refused.stderr


@pytest.mark.parametrize("name", ["README.md", "pyproject.toml"])
def test_gcode_info_does_not_call_a_text_file_safe(name: str) -> None:
    done = _run("gcode-info", str(REPO / name))
    assert done.returncode == 1
    assert "safe for" not in done.stdout
    assert "not G-code: line" in done.stdout + done.stderr
