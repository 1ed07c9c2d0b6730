"""`printforge run "REQUEST"`: the whole pipeline, with a live progress display per stage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from printforge.cli.progress import StageProgress, render_summary

__all__ = ["StageProgress", "job_summary", "register", "render_summary", "run_local"]

# Not PRINTFORGE_SERVER: the settings read PRINTFORGE_<SECTION> as a whole config section, so
# that name would break every command that loads settings (`serve`, `jobs`) in the same shell.
SERVER_ENV = "PRINTFORGE_SERVER_URL"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="research, model, slice and print a part described in words",
        description="Run the whole pipeline for one request and wait until it ends.",
    )
    p.add_argument("request", help='what to make, e.g. "a 20 mm calibration cube"')
    p.add_argument("--printer", help="printer name from config (default: the default printer)")
    p.add_argument("--material", help="material profile, e.g. PLA, PETG, ABS")
    p.add_argument(
        "--tag",
        action="append",
        dest="tags",
        metavar="TAG",
        help="only a printer with this tag ([printers.NAME] tags); repeat for more",
    )
    p.add_argument("--nozzle", type=float, metavar="MM", help="only a printer with this nozzle")
    p.add_argument(
        "--not-before",
        metavar="TIME",
        help="not dispatched before this time (ISO 8601 with a zone, e.g. 2026-12-08T06:00Z)",
    )
    p.add_argument("--out", metavar="DIR", help="also copy the job's artifacts into DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument(
        "--sim-speed",
        type=float,
        metavar="N",
        help="virtual printers run N times faster than real time (default from config: 200)",
    )
    p.add_argument("--provider", help="LLM provider order, e.g. openai,anthropic,offline")
    p.add_argument("--model", dest="llm_model", help="LLM model name for the first provider")
    p.add_argument("--engine", help="slicer engine: builtin, prusaslicer, curaengine or auto")
    p.add_argument("--layer-height", type=float, help="slicer layer height in mm")
    p.add_argument("--infill", type=float, help="infill density in percent")
    p.add_argument("--perimeters", type=int, help="number of perimeters")
    p.add_argument("--no-print", action="store_true", help="stop after slicing")
    p.add_argument("--font", metavar="FILE", help="draw text with this TrueType/OpenType font")
    p.add_argument(
        "--accept-partial",
        action="store_true",
        help="build even when part of the request cannot be built (listed as left out);"
        " without it such a request stops with a question",
    )
    remote = p.add_argument_group("on a server (`printforge serve`) instead of in this process")
    remote.add_argument(
        "--server",
        metavar="URL",
        help="submit to this server and follow the job, e.g. http://127.0.0.1:8470"
        f" (default: ${SERVER_ENV})",
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
    p.set_defaults(handler=_handle_run)


def job_summary(job: Any) -> dict[str, Any]:
    """The `--json` shape: a contract scripts rely on; extend it, never rename keys."""
    from printforge.models.view import JobView

    view = JobView.of(job)
    return {
        "job_id": view.job_id,
        "state": view.state,
        "request": view.request,
        "printer": view.printer,
        "stages": [
            {"name": s.name, "state": s.state, "duration_s": s.duration_s} for s in view.stages
        ],
        "artifacts": view.artifacts,
        "error": view.error.model_dump() if view.error else None,
        # Where an interrupted print stopped: the job's commands the printer acknowledged.
        "last_acked_line": view.last_acked_line,
        # What research found in the request and did with it; the question when it stopped.
        "requirements": view.requirements,
        "question": view.question,
    }


def _request_from(args: argparse.Namespace) -> Any:
    from printforge.models.request import PrintRequest, SliceOverrides
    from printforge.runtime.errors import InputError

    try:
        return PrintRequest(
            text=args.request,
            printer=args.printer,
            material=args.material,
            providers=[p.strip() for p in args.provider.split(",")] if args.provider else None,
            llm_model=args.llm_model,
            slice=SliceOverrides(
                engine=args.engine,
                layer_height=args.layer_height,
                infill_percent=args.infill,
                perimeters=args.perimeters,
            ),
            print=not args.no_print,
            accept_partial=args.accept_partial,
            font=args.font,
            tags=args.tags or [],
            nozzle_diameter=args.nozzle,
            not_before=args.not_before,
        )
    except ValueError as err:
        from printforge.cli.errors import validation_message

        raise InputError(f"invalid request: {validation_message(err)}") from None


def _load_virtual_spools(settings: Any, material: str | None, printer: str | None) -> None:
    """`run --material PETG` on a virtual printer: it has whatever spool is asked for, where
    a real printer's loaded material must match (the farm scheduler refuses a mismatch)."""
    if material is None:
        return
    wanted = settings.material(material).name  # an unknown material is refused here
    entries = settings.printers
    if any(e.material.casefold() == wanted.casefold() for e in entries.values()):
        return
    for name, entry in list(entries.items()):
        if entry.driver == "virtual" and printer in (None, name):
            entries[name] = entry.model_copy(update={"material": wanted})


def _check_out_dir(out: str | None) -> None:
    """Before anything runs: finding out after a two-hour print that --out names a file
    would leave the part printed and the command failed."""
    if out is None:
        return
    from printforge.runtime.errors import InputError

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {out}: is a file; give a folder for the job's files")
    parent = next((p for p in (path, *path.parents) if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):
        raise InputError(f"--out {out}: {parent} is not writable")


async def _handle_run(args: argparse.Namespace) -> int:
    _check_out_dir(args.out)
    server = args.server or os.environ.get(SERVER_ENV)
    if server:
        from printforge.cli.remote import run_remote

        if args.accept_partial:
            # The server has no way to take it yet; silently dropping it would build nothing
            # different from asking, so say so.
            from printforge.runtime.errors import InputError

            raise InputError("--accept-partial is not supported with --server yet")

        return await run_remote(args, server)

    from printforge.cli import load_cli_settings

    settings = load_cli_settings(args, sim_speed=args.sim_speed)
    _load_virtual_spools(settings, args.material, args.printer)
    request = _request_from(args)
    return await run_local(args, settings, lambda orch: orch.submit(request))


async def run_local(
    args: argparse.Namespace, settings: Any, start: Callable[[Any], Awaitable[Any]]
) -> int:
    """Start a job in this process with `start(orchestrator)` (a submit, or the answer to a
    job's question), follow it to its end and report it as `run` does."""
    from printforge.models.job import JobState
    from printforge.orchestrator.service import Orchestrator

    # One job from the command line: an interrupted print is reported, not silently retried.
    settings.orchestrator.requeue_interrupted = False
    # ...and a printer that is not there is said at once, not waited for.
    settings.orchestrator.wait_for_offline_printers = False
    async with Orchestrator(settings) as orch:
        sub = orch.bus.subscribe()
        job = await start(orch)
        try:
            if args.json:
                job = await _wait_quietly(orch, sub, job.id)
            else:
                job = await _watch(orch, sub, job.id)
        except asyncio.CancelledError:
            # Ctrl-C: leaving this block stops the orchestrator, and a print first stops its
            # printer safely. Say so, or a person presses Ctrl-C again and cuts that short.
            print(
                f"printforge: stopping job {job.id}; a print is stopped safely first"
                " (heaters off, nozzle up, bed presented). Ctrl-C again aborts that.",
                file=sys.stderr,
                flush=True,
            )
            raise
        sub.close()
    if args.out:
        _copy_artifacts(orch.job_dir(job.id), Path(args.out))
    if args.json:
        json.dump(job_summary(job), sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_summary(job, orch.job_dir(job.id), args.out)
    return 0 if job.state is JobState.COMPLETED else 1


async def _wait_quietly(orch: Any, sub: Any, job_id: str) -> Any:
    """--json: no display, but a job waiting for a person says so on stderr (a script's
    caller would otherwise watch it hang)."""

    async def tell() -> None:
        async for event in sub:
            if bed_wait_message(event, job_id):
                print(f"printforge: {event.message}", file=sys.stderr, flush=True)

    teller = asyncio.create_task(tell())
    try:
        return await orch.wait(job_id)
    finally:
        teller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await teller


def bed_wait_message(event: Any, job_id: str) -> bool:
    """True for the event that says the job waits for a printer's bed to be cleared."""
    return (
        getattr(event, "job_id", None) == job_id
        and getattr(event, "kind", None) == "log"
        and bool((getattr(event, "data", None) or {}).get("bed_clear"))
    )


async def _watch(orch: Any, sub: Any, job_id: str) -> Any:
    from printforge.models.event import JobEvent

    with StageProgress() as display:
        waiter = asyncio.create_task(orch.wait(job_id))
        try:
            async for event in sub:
                if not isinstance(event, JobEvent) or event.job_id != job_id:
                    if waiter.done():
                        break
                    continue
                display.apply(event)
                if event.kind == "state" and event.state.value in {
                    "completed",
                    "failed",
                    "cancelled",
                    "interrupted",
                    "needs_input",
                }:
                    break
            job = await waiter
        finally:
            # Interrupted: the waiter must not outlive the orchestrator's store.
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        display.mark_skipped({s.name.value: s.state.value for s in job.stages})
    return job


def _copy_artifacts(job_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in job_dir.iterdir():
        if path.is_file():
            shutil.copy2(path, out / path.name)


def _print_summary(job: Any, job_dir: Path, out: str | None) -> None:
    from printforge.models.view import JobView

    view = JobView.of(job)
    folder = Path(out) if out else job_dir
    facts: dict[str, Any] = {
        "job_id": view.job_id,
        "state": view.state,
        "request": view.request,
        "stages": [
            {"name": s.name, "state": s.state, "duration_s": s.duration_s} for s in view.stages
        ],
        "mesh": None
        if job.mesh is None
        else {
            "size_mm": job.mesh.size_mm,
            "triangles": job.mesh.triangles,
            "watertight": job.mesh.watertight,
        },
        "gcode": None
        if job.gcode is None
        else {
            "layers": job.gcode.layers,
            "filament_mm": job.gcode.filament_mm,
            "filament_g": job.gcode.filament_g,
            "estimated_time_s": job.gcode.estimated_time_s,
            "engine": job.gcode.engine,
        },
        "printer": view.printer,
        "error": view.error.model_dump() if view.error else None,
    }
    if view.printer and view.printed:
        facts["lines_acked"] = view.printed.get("lines_acked")
    if view.cad.get("warnings"):
        facts["warnings"] = list(view.cad["warnings"])
    if view.requirements:
        facts["requirements"] = view.requirements
    pictures = [str(folder / n) for n in ("preview.png", "layers.png") if (folder / n).is_file()]
    render_summary(facts, str(folder), pictures)
