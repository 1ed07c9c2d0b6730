"""`printforge jobs [ID]`: the job store, newest first, or one job in full."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("jobs", help="list jobs, or show one", description=__doc__)
    p.add_argument("job_id", nargs="?", help="show this job in full")
    p.add_argument("--state", help="only jobs in this state (queued, printing, failed, ...)")
    p.add_argument(
        "--limit", type=_positive, default=20, help="show at most this many jobs (default 20)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_handle_jobs)


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
    from printforge.orchestrator.store import JobStore
    from printforge.runtime.errors import InputError

    settings = load_cli_settings(args)
    state = None
    if args.state:
        try:
            state = JobState(args.state)
        except ValueError:
            raise InputError(
                f"unknown state {args.state!r} (one of {', '.join(s.value for s in JobState)})"
            ) from None
    store = JobStore(settings.db_path)
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
