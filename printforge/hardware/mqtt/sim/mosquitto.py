"""A private mosquitto on a free loopback port, for mock farms, benchmarks and tests.

It never touches a system broker: its own generated config (`mosquitto -c`), its own port, no
persistence, `set_tcp_nodelay` on (small command messages otherwise wait on Nagle and delayed
ACKs: about 40 ms per round trip on Linux loopback).
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalMosquitto", "TlsFiles", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class LocalMosquitto:
    """One mosquitto process with a generated config in `folder`."""

    def __init__(
        self,
        folder: Path,
        *,
        tls: TlsFiles | None = None,
        users: dict[str, str] | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or shutil.which("mosquitto")
        if found is None and Path("/usr/sbin/mosquitto").exists():
            found = "/usr/sbin/mosquitto"  # Debian installs it outside a user's PATH
        if found is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = found
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.users = users or {}
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        assert self.tls_port is not None, "this broker has no TLS listener"
        return f"mqtts://127.0.0.1:{self.tls_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _write_config(self) -> Path:
        lines = [
            f"user {getpass.getuser()}",  # no privilege drop: it must read files in `folder`
            "per_listener_settings false",
            "allow_anonymous true",
            "persistence false",
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            "log_type error",
            "log_type warning",
            f"log_dest file {self.log_path}",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
                "require_certificate false",
            ]
        if self.users:
            passwd = self.folder / "passwd"
            passwd.write_text("")
            passwd.chmod(0o600)
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {passwd}")
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        conf = self._write_config()
        with (self.folder / "stderr.log").open("ab") as stderr:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + timeout_s
        ports = [p for p in (self.port, self.tls_port) if p]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if all(_listening(p) for p in ports):
                return
            time.sleep(0.02)
        log = self.log_path.read_text() if self.log_path.exists() else ""
        err = (self.folder / "stderr.log").read_text()
        self.stop()
        raise RuntimeError(f"mosquitto did not start on {ports}: {err}{log}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes with every session and retained message."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()
