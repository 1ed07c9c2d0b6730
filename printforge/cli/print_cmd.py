"""`printforge print FILE.gcode --port DEVICE`: stream a G-code file to a Marlin printer.

Exits 0 only when the printer acknowledged every line. The file's commands go out exactly as
written (comments and blank lines aside).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "print",
        help="stream a G-code file to a Marlin printer on a serial port",
        description="Send a G-code file to a Marlin-compatible printer, as fast as the wire"
        " allows, and wait until every line is acknowledged. While it prints, Ctrl-Z pauses"
        " (park, heaters kept) and Ctrl-Z again resumes, Ctrl-C cancels with a safe stop and"
        " Ctrl-\\ is the emergency stop (M112).",
    )
    p.add_argument("file", help="G-code file")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", help="serial device, e.g. /dev/ttyUSB0")
    target.add_argument("--printer", help="a configured printer (driver marlin or virtual)")
    p.add_argument("--baud", type=int, default=None, help="baud rate (default 115200)")
    p.add_argument(
        "--strategy",
        choices=["send_ahead", "ping_pong"],
        default=None,
        help="ping_pong waits for each ok (slow, for comparison)",
    )
    p.add_argument("--profile", help="printer profile for --port (default: generic-220)")
    p.add_argument(
        "--no-gate",
        action="store_true",
        help="send the file even if the safety gate refuses it (off the bed, too hot, changes"
        " stored settings); you answer for what it does",
    )
    p.add_argument("--handshake-timeout", type=float, metavar="S", default=None)
    p.add_argument(
        "--no-thermal-watchdog",
        action="store_true",
        help="leave thermal protection to the firmware alone (not recommended)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_handle)


def _driver(args: argparse.Namespace, settings: Any) -> Any:
    from printforge.hardware.base import load_driver
    from printforge.hardware.marlin.config import MarlinConfig
    from printforge.hardware.marlin.driver import MarlinDriver
    from printforge.runtime.errors import ConfigError, InputError

    extra: dict[str, Any] = {}
    if args.baud is not None:
        extra["baud"] = args.baud
    if args.strategy is not None:
        extra["strategy"] = args.strategy
    if args.handshake_timeout is not None:
        extra["handshake_timeout_s"] = args.handshake_timeout
    if args.no_thermal_watchdog:
        extra["thermal"] = {"enabled": False}
    if args.port:
        name = args.profile or "generic-220"
        if name not in settings.printer_profiles:
            known = ", ".join(sorted(settings.printer_profiles))
            raise InputError(f"--profile: unknown printer profile {name!r} (known: {known})")
        # A one-off command: fail fast instead of waiting for the printer to come back.
        try:
            config = MarlinConfig(port=args.port, reconnect=False, **extra)
        except ValueError as err:
            raise InputError(_flag_problem(err)) from None
        return MarlinDriver(args.port, config, settings.printer_profiles[name])
    entry = settings.printer(args.printer)
    cls = load_driver(entry.driver)
    options = {**entry.driver_options, **extra}
    if args.no_thermal_watchdog:
        options["thermal"] = {**entry.driver_options.get("thermal", {}), "enabled": False}
    if "sim_speed" in cls.Config.model_fields and options.get("sim_speed") is None:
        options["sim_speed"] = settings.sim_speed
    if "reconnect" in cls.Config.model_fields:
        options["reconnect"] = False
    try:
        config = cls.Config.model_validate(options)
    except ValueError as err:
        raise ConfigError(f"printers.{args.printer}: {_flag_problem(err)}") from None
    material = settings.material(entry.material)
    return cls(args.printer, config, settings.printer_profile(args.printer), material)


def _gate(path: Path, driver: Any) -> Any:
    """The same safety gate every job passes, before the port is opened: a file that would
    leave this printer's volume, overheat it or rewrite its stored settings is refused.
    Returns the analysis (`gcode.analysis.Analysed`): the job's import and the printer
    agent's gate take it rather than analyse the file twice more."""
    from printforge.gcode.analysis import Analysed
    from printforge.gcode.gate import check_gcode
    from printforge.models.artifact import file_sha256
    from printforge.runtime.errors import UnsafeGcode

    sha256 = file_sha256(path)  # before the analysis: a file changed since is analysed again
    try:
        analysis = check_gcode(path, driver.profile, getattr(driver, "material", None))
        return Analysed(sha256, driver.profile, analysis)
    except UnsafeGcode as err:
        raise UnsafeGcode(
            f"{err.message}. Not sent. If the file is right for this printer, give its profile"
            f" (--profile, now {driver.profile.name}) or --printer; --no-gate sends it anyway"
        ) from None


_FLAGS = {"baud": "--baud", "handshake_timeout_s": "--handshake-timeout"}


def _flag_problem(err: ValueError) -> str:
    """One line per bad value, naming the flag the user typed (pydantic's text names fields)."""
    from pydantic import ValidationError

    if not isinstance(err, ValidationError):
        return str(err)
    parts = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"])
        parts.append(f"{_FLAGS.get(field, field)} {item.get('input')!r}: {item['msg'].lower()}")
    return "; ".join(parts)


def _handle(args: argparse.Namespace) -> Any:
    # Paths are resolved here, outside the event loop; the coroutine does the printing.
    path = Path(args.file).expanduser()
    return _print(args, path, path.is_file())


async def _print(args: argparse.Namespace, path: Path, exists: bool) -> int:
    # SIGTERM (a service manager, `kill`) stops a print the way Ctrl-C does: the stream is
    # cancelled, which runs the driver's safe stop, and the command exits 130. Left to its
    # default, SIGTERM ends the process at once with the heaters on.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await _print_file(args, path, exists)
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None  # reported like Ctrl-C: "interrupted", 130
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _print_file(args: argparse.Namespace, path: Path, exists: bool) -> int:
    from printforge.cli import load_cli_settings
    from printforge.runtime.errors import InputError, PrintforgeError

    started = time.monotonic()
    summary: dict[str, Any] = {"file": str(path), "ok": False}
    program = None
    seen: list[Any] = [None]  # the latest progress, kept when the stream ends in an error
    try:
        if not exists:
            raise InputError(f"G-code file not found: {path}")
        settings = load_cli_settings(args)
        driver = _driver(args, settings)
        summary["printer"] = driver.name
        # Refuse a bad file before touching the printer (opening a Marlin board's port resets
        # it; the printer agent gates the file again, as every job's). The gate goes first: a
        # file that is not G-code at all (a README, prose) is refused as such, not for its
        # first long line.
        from printforge.hardware.marlin.gcode_file import load_gcode

        analysed = None
        if not args.no_gate:
            analysed = await asyncio.to_thread(_gate, path, driver)
        program = await asyncio.to_thread(load_gcode, path, driver.profile.max_line_bytes)
        summary["lines_total"] = len(program)
        async with driver, _pause_signals(driver):
            view = await _through_pipeline(args, settings, driver, path, seen, analysed)
        if not view.ok:
            raise _job_error(view)
        printed = view.printed
        _counts(summary, seen[0], started)
        summary.update(
            lines_acked=printed.get("lines_acked", 0),
            bytes_acked=printed.get("bytes_acked", 0),
            resends=printed.get("resends", 0),
            lines_total=printed.get("lines_total", summary.get("lines_total")),
        )
        summary["lines_per_s"] = round(summary["lines_acked"] / max(summary["elapsed_s"], 1e-9), 1)
        summary.update(
            ok=summary["lines_acked"] == summary["lines_total"],
            firmware=printed.get("firmware"),
            watchdog_probes=printed.get("watchdog_probes", 0),
        )
    except asyncio.CancelledError:
        # Ctrl-C or SIGTERM: the safe stop has run; a script reading --json still gets an answer.
        if args.json:
            _counts(summary, seen[0], started)
            # Not "stopped safely": a safe stop can time out, and its warning says so.
            message = "interrupted by Ctrl-C or SIGTERM"
            summary["error"] = {"code": "interrupted", "message": message}
            print(json.dumps(summary), flush=True)
        raise
    except PrintforgeError as err:
        last_line = getattr(err, "last_acked_line", None)
        # Where to resume from: the count of acknowledged commands, and the line of the file
        # the last of them came from (comments and blank lines make the two differ).
        file_line = None
        if last_line and program is not None and last_line <= len(program):
            file_line = program.source_lines[last_line - 1]
        if not args.json:
            if last_line is not None:
                where = f" (file line {file_line})" if file_line is not None else ""
                total = summary.get("lines_total", "?")
                print(
                    f"printforge: last acknowledged command: {last_line} of {total}{where}",
                    file=sys.stderr,
                )
            raise
        if program is not None:
            _counts(summary, seen[0], started)
        summary["error"] = err.to_dict()
        if last_line is not None:
            summary["lines_acked"] = last_line  # exact, where progress is sampled
            summary["last_acked_line"] = last_line
            summary["last_acked_file_line"] = file_line
        print(json.dumps(summary))
        return 1
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"printed {summary['lines_acked']}/{summary['lines_total']} lines in"
            f" {summary['elapsed_s']:.1f} s ({summary['lines_per_s']:.0f} lines/s,"
            f" {summary['resends']} resends)"
        )
    return 0 if summary["ok"] else 1


def _job_error(view: Any) -> Any:
    """The error the print ended with, as the exception the command reports."""
    from printforge.runtime.errors import PrinterDisconnected, PrintforgeError

    error = view.error
    if error is None:
        return PrintforgeError(f"the print ended {view.state}")
    if error.code == PrinterDisconnected.code:
        return PrinterDisconnected(error.message, last_acked_line=view.last_acked_line)
    return PrintforgeError(error.message, code=error.code)


async def _through_pipeline(
    args: argparse.Namespace,
    settings: Any,
    driver: Any,
    path: Path,
    seen: list[Any],
    analysed: Any = None,
) -> Any:
    """The pipeline's print span for this file on this printer: the printer agent gates and
    streams it, as it does every job's; its progress events draw the bar."""
    from printforge.models.job import SPANS
    from printforge.models.request import PrintRequest
    from printforge.models.view import JobView
    from printforge.orchestrator.local import LocalPipeline

    options = {"gate": not args.no_gate, "material_from": "printer"}
    async with LocalPipeline(
        settings, SPANS["print"], driver=driver, printer_agent=options
    ) as local:
        sub = local.bus.subscribe()
        job = await local.submit(PrintRequest(gcode_path=path))
        runner = asyncio.create_task(
            local.run(job, target=driver.name, analysed=analysed), name="print"
        )
        try:
            await _follow(sub, job.id, runner, driver, quiet=args.json, seen=seen)
            job = await runner
        finally:
            sub.close()
            if not runner.done():
                runner.cancel()  # Ctrl-C: the stream's cancellation runs the safe stop
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
        return JobView.of(job)


def _counts(summary: dict[str, Any], last: Any, started: float) -> None:
    """The progress figures of the JSON summary, the same keys whether the print ended or not."""
    elapsed = time.monotonic() - started
    acked = last.lines_acked if last else 0
    summary.update(
        lines_acked=acked,
        bytes_acked=last.bytes_acked if last else 0,
        resends=last.resends if last else 0,
        elapsed_s=round(elapsed, 3),
        lines_per_s=round(acked / max(elapsed, 1e-9), 1),
    )
    if last is not None:
        summary["lines_total"] = last.lines_total


@contextlib.asynccontextmanager
async def _pause_signals(driver: Any) -> AsyncIterator[None]:
    """Pause and resume from the terminal, as a host's Pause button does.

    Ctrl-Z (SIGTSTP) would otherwise freeze the host while the printer empties its queue and
    sits on the part with the heaters on. Here it pauses (retract, lift, park, heaters kept)
    and a second Ctrl-Z resumes; SIGUSR1 pauses and SIGUSR2 resumes for scripts and other
    terminals. One request runs at a time, in the order given. Ctrl-\\ is the emergency stop.
    """
    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()
    paused = False  # what was last asked for

    from printforge.models.printer import PrinterState
    from printforge.runtime.errors import PrintforgeError

    async def apply(pause: bool) -> None:

        async with lock:
            try:
                if pause:
                    _say(f"pausing {driver.name}: waiting for the queued moves, then parking")
                    await driver.pause()
                    status = driver.status()
                    if status.state is not PrinterState.PAUSED:
                        # A heating wait runs: the pause parks once it is over.
                        _say(f"pause accepted: {status.message or 'after the running command'}")
                    else:
                        _say(
                            f"paused (heaters kept on); Ctrl-Z again or `kill -USR2 {os.getpid()}`"
                            " resumes, Ctrl-C cancels"
                        )
                else:
                    _say(f"resuming {driver.name}: heating back up and returning to the part")
                    await driver.resume()
                    _say("resumed")
            except PrintforgeError as err:
                _say(f"cannot {'pause' if pause else 'resume'}: {err.message}")
                # The next Ctrl-Z asks for the opposite of what the printer is now doing.
                nonlocal paused
                paused = driver.status().state is PrinterState.PAUSED

    def request(pause: bool) -> None:
        nonlocal paused
        paused = pause
        task = loop.create_task(apply(pause))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def emergency() -> None:
        # Ctrl-\ (SIGQUIT) ended the host at once, with the heaters on; here it is the
        # emergency stop button: M112 ahead of the queue, the print ends failed.
        _say(f"emergency stop: M112 sent to {driver.name}; reset the printer before the next print")
        task = loop.create_task(driver.emergency_stop())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    handlers = {
        signal.SIGTSTP: lambda: request(not paused),
        signal.SIGUSR1: lambda: request(True),
        signal.SIGUSR2: lambda: request(False),
        signal.SIGQUIT: emergency,
    }
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        yield
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _say(text: str) -> None:
    print(f"printforge: {text}", file=sys.stderr, flush=True)


async def _follow(
    sub: Any, job_id: str, runner: asyncio.Task[Any], driver: Any, *, quiet: bool, seen: list[Any]
) -> None:
    """Until the job's task ends: keep its latest progress and, unless quiet, draw it."""
    from printforge.models.event import JobEvent
    from printforge.models.printer import PrintProgress

    def on_event(event: Any) -> bool:
        if not isinstance(event, JobEvent) or event.job_id != job_id:
            return False
        data = event.data or {}
        if event.kind == "stage.progress" and "lines_total" in data:
            seen[0] = PrintProgress(
                lines_acked=data.get("lines_acked") or 0,
                lines_total=data.get("lines_total") or 0,
                bytes_acked=data.get("bytes_acked") or 0,
                resends=data.get("resends") or 0,
                eta_s=data.get("eta_s"),
                finish_at=data.get("finish_at"),
            )
            return True
        return False

    async def events() -> None:
        async for event in sub:
            if on_event(event):
                draw(seen[0])

    draw: Any = lambda progress: None  # noqa: E731 - replaced by the bar below
    if quiet:
        await _until_done(events(), runner, sub)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=sys.stderr)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[temps]}"),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[remaining]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(driver.name, total=None, temps="", remaining="")

        def draw(progress: Any) -> None:
            bar.update(
                task,
                completed=progress.lines_acked,
                total=progress.lines_total,
                remaining=_remaining_text(progress.eta_s, progress.finish_at),
            )

        def on_status(status: Any) -> None:
            # Every status the printer reports, not only acknowledged lines: an M109 holds the
            # stream for minutes while the heaters climb, and that is when people watch them.
            bar.update(task, temps=_temps_text(status.temperatures))

        unlisten = driver.add_listener(on_status)
        on_status(driver.status())
        try:
            await _until_done(events(), runner, sub)
        finally:
            unlisten()


def _temps_text(temps: dict[str, Any]) -> str:
    # "actual/target": a target of 0 means the heater is off, not that it is cold.
    return " ".join(
        f"{k} {t.actual:.0f}/{t.target:.0f}°C" if t.target else f"{k} {t.actual:.0f}°C (off)"
        for k, t in temps.items()
    )


def _remaining_text(eta_s: float | None, finish_at: Any = None) -> str:
    if eta_s is None:
        return "remaining -:--:--"
    seconds = max(0, round(eta_s))
    text = f"remaining {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if finish_at is not None:
        # The finish as the wall clock here shows it: what a person plans the day by.
        text += f", done at {finish_at.astimezone().strftime('%H:%M')}"
    return text


async def _until_done(follow: Any, runner: asyncio.Task[Any], sub: Any) -> None:
    """Follow events until the runner ends (the bus does not close by itself), then read what
    it published before it ended: the last progress of a print that stopped on a fault is
    where the summary's acknowledged-line count comes from."""
    watcher = asyncio.create_task(follow)
    try:
        await asyncio.wait({watcher, runner}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done() and not watcher.done():
            sub.close()  # the iteration ends once the queued events are read
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(watcher)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
