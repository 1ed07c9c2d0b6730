"""`printforge node` as a real child process, for the tests that run one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.fakes.serve_process import REPO

__all__ = ["node_process", "ready_line", "stop"]


def node_process(url: str, prefix: str, node_id: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "printforge",
            "node",
            "--broker",
            url,
            "--topic-prefix",
            prefix,
            "--node-id",
            node_id,
            "--status-interval",
            "0.2",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PRINTFORGE_ENV": "development"},
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)  # also closes the pipes


async def ready_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
    if not line:
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"node exited: {err}")
    return line
