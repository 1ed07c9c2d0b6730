"""docs/deploy.md's two-host farm, on loopback, run the way systemd would run it.

`farm broker-config` writes the broker's passwords and ACL and each side's environment file;
a real mosquitto runs with that configuration; `service install` renders the orchestrator's
and two nodes' units; each unit's ExecStart is then run with exactly the environment its
Environment= and EnvironmentFile= lines give it (systemd itself does not run here), the nodes
in mock mode (the docs' rehearsal: the declared printers run as virtual ones). Jobs submitted
to the orchestrator print on the nodes' printers.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.broker import ConfiguredMosquitto
from tests.fakes.serve_process import REPO, free_port, wait_for

pytestmark = pytest.mark.mqtt

KEY = "walkthrough-admin-key-0123456789"
EXEC = f"{sys.executable} -m printforge"


def printforge(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments and blanks skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"')
    return env


def unit_process(
    unit: Path, instance: str, stand_ins: dict[str, Path], log: Path
) -> subprocess.Popen[str]:
    """Start a unit's ExecStart as systemd would: its Environment= and EnvironmentFile= lines
    (a leading '-' means optional), %i replaced; `stand_ins` maps the directories systemd would
    create (StateDirectory=, CacheDirectory=) to folders of the test."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "HOME": str(log.parent)}
    argv: list[str] = []
    for line in unit.read_text().replace("%i", instance).splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key == "EnvironmentFile":
            path = Path(value.removeprefix("-"))
            if path.exists() or not value.startswith("-"):
                env.update(environment_file(path))
        elif key == "ExecStart":
            argv = shlex.split(value)
    for name, value in list(env.items()):
        for system_dir, stand_in in stand_ins.items():
            if value.startswith(system_dir):
                env[name] = str(stand_in) + value[len(system_dir) :]
    assert argv, f"no ExecStart in {unit}"
    with log.open("w") as out:
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[dict[str, object]]:
    etc, units, var = tmp_path / "etc", tmp_path / "units", tmp_path / "var"
    broker = ConfiguredMosquitto(tmp_path / "broker", tmp_path / "broker-config" / "mosquitto.conf")
    # 1. The broker: passwords, ACL and every side's environment file.
    printforge(
        "farm", "broker-config", "--out", str(tmp_path / "broker-config"),
        "--node", "hostA", "--node", "hostB", "--broker", broker.url,
    )  # fmt: skip
    broker.start()
    procs: list[subprocess.Popen[str]] = []
    try:
        # 2. Each host installs its unit (here all into one folder) and gets its secrets.
        common = ("--unit-dir", str(units), "--config-dir", str(etc), "--exec", EXEC)
        printforge("service", "install", *common, "--data-dir", str(var / "orchestrator"))
        for node in ("hostA", "hostB"):
            printforge("service", "install", "--node", node, *common, "--data-dir", str(var))
            shutil.copy(tmp_path / "broker-config" / f"node-{node}.env", etc / f"node-{node}.env")
        env = (tmp_path / "broker-config" / "orchestrator.env").read_text()
        (etc / "printforge.env").write_text(env + f"PRINTFORGE_API_KEY={KEY}\n")
        port = free_port()
        (etc / "printforge.toml").write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n'
            # The docs' orchestrator drives no printer of its own: only the farm's.
            "[printers.virtual]\nenabled = false\n"
        )
        for node, printer, profile in (
            ("hostA", "mk3-1", "prusa-mk3s"),
            ("hostB", "ender", "ender3"),
        ):
            (etc / f"node-{node}.toml").write_text(
                "mock = true\nsim_speed = 5000.0\n\n"
                f'[printers.{printer}]\ndriver = "marlin"\nprofile = "{profile}"\n'
                'port = "/dev/ttyACM0"\n'
            )
        # 3. The services start (systemd's StateDirectory/CacheDirectory stand-ins in var/).
        stand_ins = {"/var/cache/printforge": var / "cache"}
        for node in ("hostA", "hostB"):
            unit = units / "printforge-node@.service"
            procs.append(unit_process(unit, node, stand_ins, tmp_path / f"node-{node}.log"))
        procs.append(
            unit_process(units / "printforge.service", "", stand_ins, tmp_path / "serve.log")
        )
        for name in ("node-hostA", "node-hostB", "serve"):
            log = tmp_path / f"{name}.log"
            wait_for(
                lambda log=log: " on mqtt://" in log.read_text() or "serving on" in log.read_text(),
                60,
                f"{name} to start: {log.read_text() if log.exists() else ''}",
            )
        yield {"url": f"http://127.0.0.1:{port}", "procs": procs, "tmp": tmp_path}
    finally:
        for proc in reversed(procs):
            stop(proc)
        broker.stop()


def test_a_two_host_farm_as_the_guide_sets_it_up(farm: dict[str, object]) -> None:
    from tests.fakes.serve_process import ServeProcess

    tmp = Path(str(farm["tmp"]))
    client = ServeProcess(tmp / "client", KEY)  # only its REST helper, pointed at the farm
    url = str(farm["url"])

    def printers() -> dict[str, str]:
        listed = client.api("GET", "/api/printers", base=url)["printers"]
        return {p["id"]: p["state"] for p in listed}

    wait_for(
        lambda: printers().get("hostA.mk3-1") == "idle" and printers().get("hostB.ender") == "idle",
        60,
        "both nodes' printers to be discovered",
    )
    assert "virtual" not in printers()
    # One job for each host's printer (a job that names none goes wherever the scheduler likes).
    jobs = {
        client.api(
            "POST", "/api/jobs", {"request": f"a {size} mm cube", "printer": printer}, base=url
        )["job_id"]: printer
        for size, printer in ((10, "hostA.mk3-1"), (12, "hostB.ender"))
    }
    done = {}
    for job_id in jobs:
        done[job_id] = wait_for(
            lambda job_id=job_id: (
                j
                if (j := client.api("GET", f"/api/jobs/{job_id}", base=url))["state"]
                in ("completed", "failed", "cancelled")
                else None
            ),
            180,
            f"job {job_id} to finish",
        )
    for job_id, job in done.items():
        assert job["state"] == "completed", job["error"]
        assert job["printer"] == jobs[job_id]
    # The nodes logged in with the generated credentials: the ACL let them through.
    assert all(proc.poll() is None for proc in farm["procs"])  # type: ignore[attr-defined]
