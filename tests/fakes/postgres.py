"""A PostgreSQL of our own for the tests and benchmarks: Debian's `initdb` and `pg_ctl` in a
temporary folder, on a free loopback port. Never the server a machine may already run (5432).

PostgreSQL refuses to run as root; under root the cluster is made and run as the `postgres`
user (Debian's package creates it), with the folder handed to that user. Authentication is
`trust` on loopback only: the cluster lives as long as the test session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from printforge.hardware.mqtt.sim.mosquitto import free_port

__all__ = ["LocalPostgres", "pg_bin"]

_TIMEOUT_S = 60.0


def pg_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL server's programs, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class LocalPostgres:
    """`start()` makes and starts a cluster; `url(db)` names a database in it; `stop()` is
    bounded (an immediate shutdown, then a kill)."""

    def __init__(self) -> None:
        self.port = 0
        self.root: Path | None = None
        self._bin = pg_bin()
        self._user: str | None = None

    @property
    def available(self) -> bool:
        return self._bin is not None

    def _cmd(self, *args: str) -> list[str]:
        assert self._bin is not None
        cmd = [str(self._bin / args[0]), *args[1:]]
        if self._user is not None:
            return ["runuser", "-u", self._user, "--", *cmd]
        return cmd

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> LocalPostgres:
        if self._bin is None:
            raise RuntimeError(
                "no PostgreSQL server installed (Debian: apt-get install postgresql)"
            )
        # Under /tmp, not pytest's tmp_path: that folder is root's own (0700), which the
        # `postgres` user could not enter.
        self.root = Path(tempfile.mkdtemp(prefix="printforge-pg-"))
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        self.port = free_port()
        # Sockets in our own folder (not /var/run/postgresql, the system server's); fsync off:
        # a test cluster need not survive a power cut, and it spares a busy machine's disk.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", str(int(_TIMEOUT_S)), "start")  # fmt: skip
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
                  "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
        return self.url(name)

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        try:
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.TimeoutExpired, RuntimeError):
                    self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "20",
                              "stop")  # fmt: skip
                self._kill_leftover(data)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _kill_leftover(self, data: Path) -> None:
        pid_file = data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 9)
