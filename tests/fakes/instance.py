"""One orchestrator instance as a child process, to be killed with `kill -9` (issue 16).

    python -m tests.fakes.instance SETTINGS_JSON [REQUEST_JSON ...]

Starts an Orchestrator with the given settings overrides, submits each request, prints
`ready` and each job id on stdout, and runs until it is killed (or its stdin closes).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.settings import load_settings

__all__ = ["start_instance"]


def start_instance(overrides: dict[str, object], *requests: PrintRequest) -> subprocess.Popen[str]:
    """The child, in a process group of its own (a kill takes its worker processes too)."""
    repo = Path(__file__).resolve().parents[2]
    args = [json.dumps(overrides), *(r.model_dump_json(by_alias=True) for r in requests)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.instance", *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


async def _main(settings_json: str, requests: list[str]) -> None:
    overrides = json.loads(settings_json)
    serve_like = overrides.pop("serve_like", False)
    settings = load_settings(overrides=overrides)
    if serve_like:
        # As `printforge serve`: the declared and discovered printers only.
        settings = settings.without_implicit_printer()
    async with Orchestrator(settings) as orch:
        print("ready", flush=True)
        for text in requests:
            request = PrintRequest.model_validate_json(text)
            if request.printer is not None:
                # A bus printer appears once its node's status arrives.
                async with asyncio.timeout(60):
                    while request.printer not in orch.printers.names():
                        await orch.printers.wait_changed(timeout=0.5)
            job = await orch.submit(request)
            print(job.id, flush=True)
        # Until the test kills us (or goes away and closes our stdin).
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2:]))
