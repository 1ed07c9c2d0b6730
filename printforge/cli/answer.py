"""`printforge answer JOB_ID "TEXT"`: answer the question a job stopped on, and follow it.

A request with something the design cannot build stops in state `needs_input` with one
question (docs/llm.md, "Requirements: right, or say so"). The answer is added to the request,
which is read again from the start, as the server's `job.answer` does. The job is answered on
the server that owns it (`--server URL`, $PRINTFORGE_SERVER_URL, or the `printforge serve`
owning the data directory), else in this process on the local data directory, and followed to
its end as `printforge run` follows a job (same display, same `--json` object, same exit codes).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "answer",
        help="answer the question of a job waiting in state needs_input, and follow it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("job_id", help="the job that asked (its id, as `printforge jobs` lists it)")
    p.add_argument("text", help='the answer, e.g. "the shaft is 6 mm with a D flat"')
    p.add_argument("--out", metavar="DIR", help="also copy the job's artifacts into DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    remote = p.add_argument_group("on a server (`printforge serve`) instead of in this process")
    remote.add_argument(
        "--server",
        metavar="URL",
        help="the server the job is on (default: $PRINTFORGE_SERVER_URL, or the one that"
        " owns the data directory)",
    )
    remote.add_argument(
        "--api-key-env",
        metavar="VAR",
        default="PRINTFORGE_API_KEY",
        help="environment variable holding the server's API key (default: PRINTFORGE_API_KEY)",
    )
    remote.add_argument(
        "--reconnect-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up after S seconds without the server when the connection drops (default 60)",
    )
    p.set_defaults(handler=_handle_answer)


async def _handle_answer(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.cli.printers import server_of_data_dir
    from printforge.cli.run import SERVER_ENV, _check_out_dir, run_local
    from printforge.runtime.errors import InputError

    if not args.text.strip():
        raise InputError("the answer is empty: say what the question asked for")
    _check_out_dir(args.out)
    server = args.server or os.environ.get(SERVER_ENV)
    settings = None
    if not server:
        settings = load_cli_settings(args)
        # A server owns the data directory: the job is its to continue, not this process's.
        server = server_of_data_dir(settings.data_dir)
    if server:
        from printforge.cli.remote import run_remote

        return await run_remote(args, server, answer=(args.job_id, args.text))
    assert settings is not None

    async def start(orch: Any) -> Any:
        return await orch.answer(args.job_id, args.text)

    return await run_local(args, settings, start)
