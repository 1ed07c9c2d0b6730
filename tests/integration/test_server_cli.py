"""`printforge serve` as a command: a port already taken is one clear line and a usage exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.fakes.serve_process import REPO


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PRINTFORGE_API_KEY": "cli-admin-key-0123456789"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "printforge", "serve", "--mock", "--port", str(port)]
        cmd += ["--data-dir", str(tmp_path / "data")]
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "--port" in proc.stderr
    assert "unexpected error" not in proc.stderr and "Traceback" not in proc.stderr
    assert "serving on" not in proc.stdout
