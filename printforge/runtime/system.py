"""What the host gives this process: free space where the data lives, CPU time and memory.

Read from the standard library and /proc (psutil would be one more compiled dependency on a
Raspberry Pi for three numbers). Off Linux, what /proc would tell is given as None.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["data_dir_usage", "disk_full", "process_usage"]

_lock = threading.Lock()
_last_sample: tuple[float, float] | None = None  # (wall time, cpu seconds)


def _process_start() -> float:
    """The process's start as a unix time: from /proc (boot time + start ticks), else the
    import of this module, which the server does at start-up."""
    try:
        with open("/proc/self/stat", "rb") as f:
            # Field 22 (starttime) counts clock ticks since boot; the name in field 2 may hold
            # spaces, so count from after its closing parenthesis.
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


_STARTED = _process_start()


def data_dir_usage(data_dir: Path) -> dict[str, Any]:
    """Free and total bytes of the filesystem holding `data_dir` (or its nearest existing
    parent, so a data directory not made yet still reports the disk it will be made on)."""
    path = Path(data_dir)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return {
        "path": str(data_dir),
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "free_ratio": round(usage.free / usage.total, 4) if usage.total else None,
    }


def disk_full(err: BaseException) -> bool:
    """Whether `err` (from a file write or from SQLite), or an error it was raised from, means
    the disk or quota is full."""
    import errno
    import sqlite3

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        full = getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        if isinstance(cause, sqlite3.Error) and full:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _rss_bytes() -> tuple[int | None, str]:
    """Resident memory now (/proc), else the peak (getrusage), and which one it is."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "current"
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return (peak if sys.platform == "darwin" else peak * 1024), "peak"


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def process_usage() -> dict[str, Any]:
    """CPU time, the CPU share since the previous call (since start the first time), memory."""
    global _last_sample
    now, cpu = time.time(), _cpu_seconds()
    with _lock:
        since, cpu_before = _last_sample or (_STARTED, 0.0)
        _last_sample = (now, cpu)
    elapsed = now - since
    rss, rss_kind = _rss_bytes()
    return {
        "pid": os.getpid(),
        "uptime_s": round(now - _STARTED, 3),
        "cpu_seconds": round(cpu, 3),
        # Per cent of one core, averaged over the interval, as `top` shows it.
        "cpu_percent": round(100.0 * (cpu - cpu_before) / elapsed, 1) if elapsed > 0 else None,
        "cpu_percent_interval_s": round(elapsed, 3),
        "rss_bytes": rss,
        "rss_kind": rss_kind,
        "open_fds": _open_fds(),
        "threads": threading.active_count(),
    }
