"""`printforge jobs [ID]`: the job store, newest first, or one job in full.

`printforge jobs hold|release|retry|move|update ID` changes the queue of the server that runs
it (`--server URL`, $PRINTFORGE_SERVER_URL, or the `printforge serve` owning the data
directory): the server's job.hold, job.release, job.retry, job.move and job.update.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "jobs",
        help="list jobs, show one, or hold|release|retry|move|update one",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "job_id",
        nargs="?",
        help="show this job in full; or an action: " + ", ".join(QUEUE_ACTIONS),
    )
    p.add_argument("target", nargs="?", metavar="ID", help="the job the action applies to")
    p.add_argument("--state", help="only jobs in this state (queued, printing, failed, ...)")
    p.add_argument(
        "--limit", type=_positive, default=20, help="show at most this many jobs (default 20)"
    )
    p.add_argument("--json", action="store_true")
    queue = p.add_argument_group("hold, release, retry, move, update (on the server)")
    queue.add_argument("--before", metavar="ID", help="move: before this queued job")
    queue.add_argument("--after", metavar="ID", help="move: after this queued job")
    queue.add_argument("--top", action="store_true", help="move: to the front of the queue")
    queue.add_argument("--priority", type=int, help="update: the new priority (-100..100)")
    queue.add_argument("--printer", help="update: the printer to print on")
    queue.add_argument("--material", help="update: the material to print with")
    queue.add_argument(
        "--tag",
        action="append",
        dest="tags",
        metavar="TAG",
        help="update: the printer must have this tag (repeat for more; --tag '' clears them)",
    )
    queue.add_argument(
        "--nozzle", type=float, metavar="MM", help="update: the printer's nozzle (0 clears it)"
    )
    queue.add_argument(
        "--not-before",
        metavar="TIME",
        help="update: not dispatched before this time (ISO 8601 with a zone, e.g."
        " 2026-12-08T06:00:00+01:00); --not-before now clears it",
    )
    queue.add_argument(
        "--from",
        dest="retry_from",
        choices=("failed", "start"),
        default="failed",
        help="retry: from the stage that failed (default) or from the start",
    )
    queue.add_argument(
        "--server",
        metavar="URL",
        help="a running `printforge serve` (default: $PRINTFORGE_SERVER_URL, or the one that"
        " owns the data directory)",
    )
    queue.add_argument(
        "--api-key-env",
        metavar="VAR",
        default="PRINTFORGE_API_KEY",
        help="environment variable holding the server's API key (default: PRINTFORGE_API_KEY)",
    )
    p.set_defaults(handler=_handle_jobs)


QUEUE_ACTIONS = ("hold", "release", "retry", "move", "update")


def _positive(text: str) -> int:
    # SQLite reads LIMIT 0 as "none" and a negative LIMIT as "all": both only mislead.
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return value


async def _handle_jobs(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.cli.run import job_summary
    from printforge.models.job import JobState
    from printforge.orchestrator.store import job_store
    from printforge.runtime.errors import InputError

    if args.job_id in QUEUE_ACTIONS:
        return await _queue_action(args)
    settings = load_cli_settings(args)
    state = None
    if args.state:
        try:
            state = JobState(args.state)
        except ValueError:
            raise InputError(
                f"unknown state {args.state!r} (one of {', '.join(s.value for s in JobState)})"
            ) from None
    store = job_store(settings)
    await store.open()
    try:
        if args.job_id:
            job = await store.get(args.job_id)
            if job is None:
                raise InputError(f"no job with id {args.job_id!r}", code="not_found")
            history = await store.transitions(job.id)
            if args.json:
                out = job_summary(job)
                out["transitions"] = [
                    {"from": f, "to": t, "at": at, "reason": r} for f, t, at, r in history
                ]
                json.dump(out, sys.stdout)
                sys.stdout.write("\n")
            else:
                _show(job, history, settings.jobs_dir / job.id)
            return 0
        jobs = await store.list(state, args.limit)
        counts = await store.counts()
    finally:
        await store.close()
    if args.json:
        json.dump([job_summary(j) for j in jobs], sys.stdout)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("id", "state", "printer", "created", "request"):
        table.add_column(col)
    colours = {"completed": "green", "failed": "red", "interrupted": "yellow"}
    for job in jobs:
        c = colours.get(job.state.value, "cyan")
        table.add_row(
            job.id,
            f"[{c}]{job.state.value}[/]",
            job.printer or "",
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            job.request.summary[:60],
        )
    console = Console()
    console.print(table if jobs else "no jobs yet")
    total = counts.get(state.value, 0) if state else sum(counts.values())
    if total > len(jobs):
        # A store of thousands shows its newest 20: say so, or the table reads as the whole.
        console.print(f"the newest {len(jobs)} of {total} jobs; --limit N shows more")
    return 0


def _show(job: Any, history: list[tuple[str | None, str, str, str | None]], folder: Path) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{job.id}[/] {job.state.value} — {job.request.summary}")
    for s in job.stages:
        duration = f"{s.duration_s:.2f} s" if s.duration_s is not None else ""
        err = f" [red]{s.error.message}[/]" if s.error else ""
        console.print(f"  {s.name.value:<8} {s.state.value:<11} {duration}{err}")
    console.print("transitions:")
    for f, t, at, reason in history:
        console.print(f"  {at}  {f or '-':>11} → {t:<11} {reason or ''}")
    if job.error:
        console.print(f"[red]error {job.error.code}: {job.error.message}")
    if folder.is_dir():
        # Where request.json, spec.json, model.stl, model.gcode and report.json are.
        console.print(f"files {folder}", soft_wrap=True)


async def _queue_action(args: argparse.Namespace) -> int:
    """The server's job.hold / release / retry / move / update on one job."""
    import os

    from printforge.cli import load_cli_settings
    from printforge.cli.printers import call_server, server_of_data_dir
    from printforge.cli.run import SERVER_ENV
    from printforge.runtime.errors import InputError

    action, job_id = args.job_id, args.target
    if not job_id:
        raise InputError(f"`printforge jobs {action}` needs a job id")
    params: dict[str, Any] = {"job_id": job_id}
    if action == "retry":
        params["start"] = args.retry_from
    elif action == "move":
        params.update(before=args.before, after=args.after, top=args.top)
    elif action == "update":
        params.update(priority=args.priority, printer=args.printer, material=args.material)
        if args.tags is not None:
            params["tags"] = [t for t in args.tags if t]
        params["nozzle_diameter"] = args.nozzle
        if args.not_before is not None and args.not_before.casefold() == "now":
            params["clear_not_before"] = True
        else:
            params["not_before"] = args.not_before
    params = {k: v for k, v in params.items() if v is not None and v is not False}
    server = args.server or os.environ.get(SERVER_ENV)
    if not server:
        settings = load_cli_settings(args)
        server = server_of_data_dir(settings.data_dir)
        if server is None:
            # The queue belongs to the process that dispatches it; editing the store behind
            # a `printforge run` (or before the next one) would surprise whoever starts it.
            raise InputError(
                f"no printforge serve owns {settings.data_dir}: the queue is changed on the"
                " server that runs it (start `printforge serve`, or add --server URL)"
            )
    view = await call_server(server, args.api_key_env, f"job.{action}", params)
    if args.json:
        json.dump(view, sys.stdout)
        sys.stdout.write("\n")
    elif action == "retry":
        print(f"{job_id}: retried as {view['job_id']} ({view['state']}, {view['source']})")
    else:
        held = " (held)" if view.get("held") else ""
        extra = "".join(
            f", {label} {value}"
            for label, value in (
                ("tags", ", ".join(view.get("tags") or [])),
                ("nozzle", view.get("nozzle_diameter")),
                ("not before", view.get("not_before")),
            )
            if value
        )
        print(f"{view['job_id']}: {view['state']}{held}, priority {view['priority']}{extra}")
    return 0
