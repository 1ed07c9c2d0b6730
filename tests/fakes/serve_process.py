"""`printforge serve` as a real subprocess on a free loopback port (restart, browser tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ServeProcess", "free_port", "wait_for"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until `predicate` returns something true; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class ServeProcess:
    def __init__(
        self,
        data_dir: Path,
        api_key: str,
        *,
        port: int | None = None,
        sim_speed: float = 2000.0,
        config: Path | None = None,
        extra_args: tuple[str, ...] = (),
        global_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        mock: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.api_key = api_key
        self.port = port or free_port()
        self.sim_speed = sim_speed
        self.config = config
        self.extra_args = extra_args
        # Options before the command (`printforge --data-dir D serve`), as people type them.
        self.global_args = global_args
        self.env = env or {}
        self.mock = mock
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, body: Any = None, *, base: str | None = None) -> Any:
        """One REST call with the server's key; the JSON answer (HTTP errors raise)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            (base or self.url) + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def start(self, timeout: float = 30.0) -> ServeProcess:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PRINTFORGE_API_KEY"},
            # api_key "": no key configured, as on a fresh machine (the server makes admin.key).
            **({"PRINTFORGE_API_KEY": self.api_key} if self.api_key else {}),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [
            sys.executable,
            "-m",
            "printforge",
            *self.global_args,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--sim-speed",
            str(self.sim_speed),
        ]
        if self.mock:
            cmd.append("--mock")
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        cmd += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log.open("a")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"printforge serve exited:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    if "serving on" in self.log.read_text():
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"printforge serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode
