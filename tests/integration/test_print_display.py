"""Issue 15, item 2: `printforge print` shows the heaters live while the board heats, with their
targets, and labels its times. A real `printforge print` on the virtual printer, its display
on a pseudo-terminal (as a person sees it), stopped with Ctrl-C once the display was seen."""

from __future__ import annotations

import gzip
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.serve_process import REPO

DATA = Path(__file__).resolve().parents[1] / "data" / "gcode"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The file heats the hotend to 215 °C and waits (M109) before the first move.
HEATING = re.compile(r"hotend (\d+)/215°C")


def test_print_shows_heaters_climbing_to_their_targets_and_labels_its_times(
    tmp_path: Path,
) -> None:
    gcode = tmp_path / "cube.gcode"
    gcode.write_bytes(gzip.decompress((DATA / "xyz-cube-builtin.gcode.gz").read_bytes()))
    master, slave = pty.openpty()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PRINTFORGE_ENV": "development",
        "PRINTFORGE_SIM_SPEED": "20",  # heating takes some seconds of wall time
        "COLUMNS": "160",
        "TERM": "xterm",
    }
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "printforge", "--data-dir", str(tmp_path / "data"), "print",
         str(gcode), "--printer", "virtual"],
        cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    screen = ""
    climbing: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536).decode(errors="replace")
            except OSError:
                break
            screen += ANSI.sub("", chunk)
            climbing |= {int(t) for t in HEATING.findall(screen) if 30 < int(t) < 205}
            # Two different temperatures on the way up: the display follows the heater.
            if len(climbing) >= 2 and "elapsed" in screen and "remaining" in screen:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: the safe stop runs
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        os.close(master)
    assert len(climbing) >= 2, (
        f"no live heater temperatures with their target in:\n{screen[-3000:]}"
    )
    assert "elapsed" in screen
    assert "remaining" in screen
