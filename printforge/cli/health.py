"""`printforge health`: start every component once and report its health."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health", help="check agents, printers, providers and the job store", description=__doc__
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_handle_health)


async def _handle_health(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.orchestrator.service import Orchestrator
    from printforge.runtime.errors import DataDirBusy
    from printforge.runtime.lock import live_instances

    settings = load_cli_settings(args)
    try:
        # With leases this command could join a running server's data directory; its printers
        # are the server's to report, so it is asked instead, as without leases.
        for info in live_instances(settings.data_dir):
            if info.get("url"):
                raise DataDirBusy("a printforge serve shares this data directory", holder=info)
        async with Orchestrator(settings) as orch:
            for name, agent in orch.agents.items():
                record = await agent.health()
                if record is not None:
                    orch.health.put(record)
                else:
                    # Loaded and started is all an agent without its own check can show; it
                    # is listed all the same, so the report names all four agents.
                    orch.health.get(name)
            report = await orch.health_report()
    except DataDirBusy as err:
        url = err.holder.get("url")
        if not url:
            raise
        # The running server owns the printers; its own health report is the true one.
        raise DataDirBusy(
            f"printforge serve (pid {err.holder.get('pid', '?')}) owns {settings.data_dir};"
            f" ask it: {url}/health (with an API key) or {url}/health/ready",
            holder=err.holder,
        ) from None
    _unreachable_printers_are_unhealthy(report)
    if args.json:
        if report["status"] == "unhealthy":
            # The CLI's error contract: a failure carries {"code", "message"}.
            sick = [
                f"{c['component']} {c['name']}: {c.get('last_error') or c['state']}"
                for c in report["components"]
                if c["state"] == "unhealthy"
            ]
            report["error"] = {"code": "unhealthy", "message": "; ".join(sick) or "unhealthy"}
        json.dump(report, sys.stdout, default=str)
        sys.stdout.write("\n")
    else:
        from rich.console import Console
        from rich.table import Table

        colours = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}
        console = Console()
        status = report["status"]
        console.print(f"[bold {colours.get(status, 'white')}]printforge is {status}[/]")
        table = Table(header_style="bold")
        for col in ("component", "name", "state", "detail"):
            table.add_column(col)
        for c in report["components"]:
            detail = c.get("last_error") or _detail_text(c.get("detail") or {})
            state = c["state"]
            table.add_row(
                c["component"], c["name"], f"[{colours.get(state, 'white')}]{state}[/]", detail
            )
        console.print(table)
        jobs = report["store"]["jobs"]
        counts = ", ".join(f"{n} {state}" for state, n in jobs.items() if n) or "empty"
        console.print(f"job store {report['store']['path']}: {counts}")
    return 0 if report["status"] != "unhealthy" else 1


def _detail_text(detail: dict[str, Any]) -> str:
    """`engine builtin; installed builtin, prusaslicer`: words, never a Python dict's repr."""
    parts = []
    for key, value in detail.items():
        if value is None or value == {} or value == []:
            continue  # "job_id=None" says nothing a person needs
        if isinstance(value, dict):
            if all(isinstance(v, bool) for v in value.values()):
                # {"builtin": True, "curaengine": False}: the ones that are there.
                value = ", ".join(k for k, v in value.items() if v) or "none"
            else:
                value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts)


# A printer in one of these states after start-up cannot take a job.
_NOT_READY = frozenset({"offline", "connecting", "faulted"})


def _unreachable_printers_are_unhealthy(report: dict[str, Any]) -> None:
    """This command starts every printer once and asks: can it print now? One that did not
    connect (a Marlin on a port that does not exist) is unhealthy, and so is the answer,
    whatever the printer's status listener last recorded."""
    down = {p["id"] for p in report.get("printers", []) if p.get("state") in _NOT_READY}
    if not down:
        return
    for c in report["components"]:
        if c["component"] == "printer" and c["name"] in down:
            c["state"] = "unhealthy"
            if not c.get("last_error"):
                state = next(p["state"] for p in report["printers"] if p["id"] == c["name"])
                c["last_error"] = f"printer is {state}"
    report["status"] = "unhealthy"
