"""Issue 11: `printforge gcode-info` and `printforge print` on files that are not G-code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.conftest import REPO, run_cli

pytestmark = pytest.mark.security


README = "readme"
# Today `print` refuses README.md for its line 3's length (a serial limit) before the gate can
# say what the file is; the contract is "not G-code: line N".


@pytest.fixture(params=[README, "m112-prose"])
def not_gcode(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == README:
        return REPO / "README.md"
    path = tmp_path / "fun.gcode"
    path.write_text("M112 is fun\n")
    return path


def test_gcode_info_says_not_gcode(not_gcode: Path, tmp_path: Path) -> None:
    done = run_cli("gcode-info", str(not_gcode), "--data-dir", str(tmp_path / "data"))
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "not G-code" in out, out
    assert "gate safe" not in out, out


@pytest.mark.parametrize("not_gcode", [README, "m112-prose"], indirect=True)
def test_print_refuses_what_is_not_gcode(not_gcode: Path, tmp_path: Path) -> None:
    done = run_cli(
        "print", str(not_gcode), "--printer", "virtual", "--data-dir", str(tmp_path / "data")
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "not G-code" in out, out
