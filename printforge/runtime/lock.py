"""One orchestrator per data directory.

Starting an orchestrator recovers the store: every job left running is marked interrupted and
re-queued. A second process on the same data directory (a `printforge run` beside a
`printforge serve`) would therefore "recover" the live server's jobs and print them twice, on
its own printers. An exclusive flock on `DATA_DIR/printforge.lock` prevents that; the kernel
drops it when its holder dies, even by `kill -9`, so a crash never leaves a stale lock behind.
The file also says who holds it, so the refusal can point at the server to use instead.

With leases (`[store] leases`, on by default since issue 16) orchestrators share the directory:
each takes the lock shared, and claims every job it works on with a lease in the store. A
command that needs the directory to itself (a restore, a command with leases turned off) still
takes it exclusively, and is refused while any of them runs. Shared holders cannot all speak in
one file, so each describes itself in its own liveness mark, `DATA_DIR/instances/<id>.lock`
(flocked for its life, see orchestrator/leases.py); a refusal reads the live marks to name a
holder, and the URL of a `printforge serve` among them, which other commands talk to.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printforge.runtime.errors import ConfigError, DataDirBusy
from printforge.runtime.paths import private_dir

__all__ = [
    "DataDirLock",
    "holder_info",
    "live_instances",
    "name_command",
    "read_mark",
    "write_mark",
]

LOCK_NAME = "printforge.lock"
INSTANCES = "instances"

# What the holder calls itself in the lock file, e.g. "printforge serve"; the CLI sets it from
# the parsed command, since argv alone (`printforge --data-dir D serve`) does not say which.
_command_name: str | None = None


def name_command(name: str) -> None:
    """Say which command this process is, for the refusal another process reads."""
    global _command_name
    _command_name = name


class DataDirLock:
    def __init__(self, data_dir: Path, *, shared: bool = False) -> None:
        self.path = data_dir / LOCK_NAME
        self.shared = shared
        self._fd: int | None = None
        self._info: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            # Name the data directory and the way out, not just the errno of one path in it.
            raise ConfigError(
                f"cannot use the data directory {self.path.parent}: {err.strerror or err};"
                " choose another with --data-dir or PRINTFORGE_DATA_DIR"
            ) from err
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            if not holder:
                # Held shared, by instances with leases: name one, a server first.
                holder = _pick(live_instances(self.path.parent))
            raise DataDirBusy(_busy_message(self.path.parent, holder), holder=holder) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._info = holder_info()
        self._write()

    def describe(self, **info: Any) -> None:
        """Add what others should know about the holder, e.g. the URL a server listens on."""
        self._info.update(info)
        if self._fd is not None:
            self._write()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Empty the file before unlocking so nobody reads a holder that is gone (shared
        # holders never wrote it: the others may still be running).
        if not self.shared:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _write(self) -> None:
        assert self._fd is not None
        if self.shared:
            return  # one file, several holders: none of them speaks for the others
        data = json.dumps(self._info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


def holder_info() -> dict[str, Any]:
    """What a holder says of itself: its pid, its command and since when."""
    return {
        "pid": os.getpid(),
        "command": _command(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_mark(fd: int, info: dict[str, Any]) -> None:
    """Write an instance's description into its (locked) mark."""
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def read_mark(fd: int) -> dict[str, Any]:
    """An instance mark's description; a mark written before it was JSON held the bare id."""
    try:
        raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        return {}
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except ValueError:
        return {"instance": raw}
    return info if isinstance(info, dict) else {"instance": raw}


def live_instances(data_dir: Path) -> list[dict[str, Any]]:
    """The descriptions of the instances sharing a data directory whose process is alive.

    A mark is alive while its owner holds its exclusive flock: a shared try that fails says so
    without disturbing it (one that succeeds is a dead instance's, left for its sweep)."""
    found: list[dict[str, Any]] = []
    try:
        paths = sorted((data_dir / INSTANCES).glob("*.lock"))
    except OSError:
        return found
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # removed meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                info = read_mark(fd)
                if info:
                    found.append(info)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return found


def _pick(instances: list[dict[str, Any]]) -> dict[str, Any]:
    """The holder a refusal names: a server (its URL is the way on), else any live instance."""
    for info in instances:
        if info.get("url"):
            return info
    return instances[0] if instances else {}


def _read(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _command() -> str:
    if _command_name is not None:
        return _command_name
    argv = [Path(sys.argv[0]).name, *sys.argv[1:2]] if sys.argv and sys.argv[0] else []
    if argv and argv[0] in {"__main__.py", "-m"}:
        argv[0] = "printforge"
    return " ".join(argv) or "printforge"


def _busy_message(data_dir: Path, holder: dict[str, Any]) -> str:
    if not holder:
        # Shared holders (orchestrators with leases) leave the file empty, and none was found.
        return (
            f"the data directory {data_dir} is in use by printforge instances that share it"
            " with leases; run this command with leases on (PRINTFORGE_STORE__LEASES=true, the"
            " default) to join them, or give it its own --data-dir"
        )
    who = f"`{holder.get('command', 'another printforge')}` (pid {holder.get('pid', '?')}"
    if holder.get("since"):
        who += f", since {holder['since']}"
    who += ")"
    url = holder.get("url")
    hint = (
        f"submit to it with `printforge run --server {url} ...`" if url else "wait for it to finish"
    )
    return (
        f"the data directory {data_dir} is in use by {who}; {hint}, "
        "or give this command its own --data-dir"
    )
