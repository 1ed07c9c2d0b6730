"""The systemd units: `systemd-analyze verify` passes on the shipped files and on what
`printforge service install` writes; install's dry run, its refusal without systemd, and the
commands it runs where systemd runs.

systemd-analyze works without a running systemd: `--root` gives it a directory to treat as
the file system (the host's unit library copied in, and an executable where ExecStart points),
or a unit whose ExecStart names an existing executable is verified in place.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from printforge.cli import main
from printforge.cli.service import units_dir

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "SupplementaryGroups": "dialout",
    "Restart": "on-failure",
    "User": "printforge",
}


@pytest.fixture(scope="module")
def analyze() -> str:
    if not Path(ANALYZE).exists():
        pytest.fail("systemd-analyze is missing: scripts/setup installs Debian's systemd package")
    return ANALYZE


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def verify(analyze: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *args], capture_output=True, text=True, timeout=120
    )
    # systemd-analyze exits 0 on some problems (an unknown key only warns): any output fails.
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stderr
    return proc


def fake_root(tmp_path: Path, units: list[Path], exec_path: str) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    binary = root / exec_path.lstrip("/")
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    for unit in units:
        shutil.copy(unit, root / "etc" / "systemd" / "system" / unit.name)
    return root


def test_the_shipped_units_verify_and_are_hardened(analyze: str, tmp_path: Path) -> None:
    units = [SHIPPED / "printforge.service", SHIPPED / "printforge-node@.service"]
    assert units_dir() == SHIPPED
    root = fake_root(tmp_path, units, "/usr/local/bin/printforge")
    verify(analyze, f"--root={root}", "printforge.service", "printforge-node@hostA.service")
    for unit in units:
        found = directives(unit.read_text())
        for key, value in HARDENING.items():
            assert found.get(key) == [value], (unit.name, key)
        assert found["StartLimitBurst"] and found["StartLimitIntervalSec"]
        assert any(v.startswith("-/etc/printforge/") for v in found["EnvironmentFile"])
        assert found["StateDirectory"][0].startswith("printforge")
        # Longer than the orchestrator's shutdown grace (45 s), so a print stops safely.
        assert int(found["TimeoutStopSec"][0]) > 45
    node = directives(units[1].read_text())
    assert node["ExecStart"] == [
        "/usr/local/bin/printforge node --node-id %i --config /etc/printforge/node-%i.toml"
    ]
    assert node["EnvironmentFile"] == ["-/etc/printforge/node-%i.env"]
    # systemd's own exposure score (0 best, 10 worst); "OK" is below 5.
    for name in ("printforge.service", "printforge-node@hostA.service"):
        proc = subprocess.run(
            [analyze, "security", "--offline=yes", f"--root={root}", name],
            capture_output=True,
            text=True,
            timeout=120,
        )
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout)
        assert score and float(score.group(1)) <= 2.5, proc.stdout[-400:]


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_prints_every_file_and_command_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units, config = tmp_path / "units", tmp_path / "etc"
    code, out, _err = run_cli(
        "service", "install", "--dry-run", "--unit-dir", str(units), "--config-dir",
        str(config), "--exec", "/opt/printforge/bin/printforge", "--user", "pf-test-nobody",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0
    assert not units.exists() and not config.exists()
    assert f"# --- {units}/printforge.service (mode 0644)" in out
    assert f"# --- {config}/printforge.env (mode 0600, only if it does not exist)" in out
    assert (
        f"ExecStart=/opt/printforge/bin/printforge serve --config {config}/printforge.toml" in out
    )
    assert f"EnvironmentFile=-{config}/printforge.env" in out
    assert "User=pf-test-nobody\nGroup=pf-test-nobody\n" in out
    commands = out.split("# --- commands\n", 1)[1].splitlines()
    assert commands == [
        "# systemd is not running on this host: these run on the host that runs the unit",
        "useradd --system --user-group --home-dir /var/lib/printforge --no-create-home"
        " --shell /usr/sbin/nologin pf-test-nobody",
        "systemctl daemon-reload",
        "systemctl enable printforge.service",
    ]


def test_without_systemd_it_refuses_unless_told_where_to_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], analyze: str
) -> None:
    assert not Path("/run/systemd/system").exists(), "this test expects no running systemd"
    code, out, err = run_cli("service", "install", capsys=capsys)
    assert code == 2 and out == ""
    assert err.strip() == (
        "printforge: systemd is not running on this host (no /run/systemd/system): nothing was"
        " written; see what would be installed with --dry-run, or write the files anyway with"
        " --unit-dir DIR (and --config-dir DIR)"
    )

    # With --unit-dir: the files are written, nothing is enabled, and the next steps are named.
    units, config = tmp_path / "units", tmp_path / "etc"
    exec_cmd = f"{sys.executable} -m printforge"
    for extra in ((), ("--node", "hostA", "--data-dir", "/srv/printforge")):
        code, out, err = run_cli(
            "service", "install", "--unit-dir", str(units), "--config-dir", str(config),
            "--exec", exec_cmd, *extra, capsys=capsys,
        )  # fmt: skip
        assert code == 0, err
        assert "systemd is not running on this host: wrote the files" in err
        assert "systemctl daemon-reload" in err
    assert "systemctl enable printforge-node@hostA.service" in err
    assert "install -d -o printforge -g printforge -m 0750 /srv/printforge/node-hostA" in err
    env = config / "printforge.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert stat.S_IMODE((config / "node-hostA.env").stat().st_mode) == 0o600
    node = directives((units / "printforge-node@.service").read_text())
    assert node["Environment"][1] == "PRINTFORGE_DATA_DIR=/srv/printforge/node-%i"
    assert node["ReadWritePaths"] == ["/srv/printforge/node-%i"]
    assert "StateDirectory" not in node and "StateDirectoryMode" not in node

    # What was written verifies in place: ExecStart names this Python, which exists.
    verify(analyze, str(units / "printforge.service"))
    verify(analyze, str(units / "printforge-node@hostA.service"))

    # A second install replaces the unit and keeps the settings and secrets as they are.
    env.write_text("PRINTFORGE_API_KEY=kept-as-it-was-0123456789\n")
    code, out, _err = run_cli(
        "service", "install", "--unit-dir", str(units), "--config-dir", str(config),
        "--exec", exec_cmd, capsys=capsys,
    )  # fmt: skip
    assert f"kept {env} (exists)" in out and f"wrote {units}/printforge.service" in out
    assert env.read_text() == "PRINTFORGE_API_KEY=kept-as-it-was-0123456789\n"


def test_a_data_dir_under_home_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(
        "service", "install", "--dry-run", "--data-dir", "/home/pi/printforge", capsys=capsys
    )
    assert code == 1 and "ProtectHome=yes" in err


def test_where_systemd_runs_it_creates_the_user_reloads_and_enables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """This container has no systemd (PID 1 is not systemd), so the check that says it runs is
    patched, and `useradd`/`systemctl` are small scripts on PATH that record their arguments."""
    calls = tmp_path / "calls"
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("useradd", "systemctl"):
        script = tools / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        script.chmod(0o755)
    units, config = tmp_path / "units", tmp_path / "etc"
    path = f"{tools}{os.pathsep}{os.environ['PATH']}"
    with (
        mock.patch("printforge.cli.service.systemd_running", return_value=True),
        mock.patch.dict(os.environ, {"PATH": path}),
    ):
        code, out, err = run_cli(
            "service", "install", "--node", "hostB", "--now", "--user", "pf-test-nobody",
            "--unit-dir", str(units), "--config-dir", str(config), "--exec", "/bin/true",
            capsys=capsys,
        )  # fmt: skip
    assert code == 0, err
    assert calls.read_text().splitlines() == [
        "useradd --system --user-group --home-dir /var/lib/printforge --no-create-home"
        " --shell /usr/sbin/nologin pf-test-nobody",
        "systemctl daemon-reload",
        "systemctl enable --now printforge-node@hostB.service",
    ]
    assert "printforge-node@hostB.service installed and started" in out
    assert (units / "printforge-node@.service").is_file()
