"""Running an external slicer: off the event loop, under a deadline, killed on cancel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from printforge.runtime.errors import OperationTimeout

__all__ = ["run_engine"]


async def run_engine(
    cmd: list[str],
    timeout: float,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of `cmd`; OperationTimeout after `timeout` seconds.

    Args:
        on_line: called with each stdout line as it arrives (live progress).
    """
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    out_lines: list[str] = []

    async def read_stdout() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            out_lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))

    try:
        async with asyncio.timeout(timeout):
            _, err_b, _ = await asyncio.gather(read_stdout(), proc.stderr.read(), proc.wait())
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise OperationTimeout(f"{Path(cmd[0]).name} took longer than {timeout:g} s") from None
    except asyncio.CancelledError:
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    return "".join(out_lines), err_b.decode("utf-8", "replace"), proc.returncode or 0


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
