"""`printforge virtual-printer`: a virtual Marlin on a pseudo-terminal, served until stopped."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "virtual-printer",
        help="serve a virtual Marlin printer on a pseudo-terminal",
        description="Start a simulated Marlin board on a pty, print its device path and serve"
        " until interrupted. Any host program (printforge print, OctoPrint, Pronterface) can"
        " connect to the path as to a USB printer.",
    )
    p.add_argument("--profile", help="printer profile from config (default: generic-220)")
    p.add_argument("--baud", type=int, default=115200, help="modelled wire speed (8N1)")
    p.add_argument(
        "--sim-speed",
        type=float,
        default=1.0,
        metavar="N",
        help="run moves and heaters N times faster than real time",
    )
    p.add_argument(
        "--advanced-ok",
        action="store_true",
        help="ADVANCED_OK: answer ok N<acknowledged line> P<planner free> B<slots free>",
    )
    p.add_argument(
        "--no-emergency-parser",
        action="store_true",
        help="a build without EMERGENCY_PARSER: M108 and M112 wait their turn in the queue",
    )
    p.add_argument("--extruders", type=int, default=1)
    p.add_argument(
        "--noise-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of received lines corrupted on the wire",
    )
    p.add_argument(
        "--drop-ok-rate", type=float, default=0.0, metavar="P", help="share of oks that get lost"
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="one-way delay of a USB bridge, seconds",
    )
    p.add_argument("--disconnect-at-line", type=int, metavar="N")
    p.add_argument("--thermal-runaway-at-line", type=int, metavar="N")
    p.add_argument(
        "--heater-fails-at-line",
        type=int,
        metavar="N",
        help="on line N the heater stops heating (cartridge out, thermistor off);"
        " this board has no thermal protection, so only the host can notice",
    )
    p.add_argument(
        "--failing-heater",
        default="hotend",
        metavar="NAME",
        help="the heater of --heater-fails-at-line: hotend, hotend1.., bed",
    )
    p.add_argument(
        "--busy-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="echo:busy: processing every S seconds during long commands (0: never)",
    )
    p.add_argument(
        "--user-wait",
        type=float,
        default=5.0,
        metavar="S",
        help="the virtual user presses the printer's button S simulated seconds into a wait"
        " for the user (M0/M1, M600's filament change); 0: only M108 ends such a wait",
    )
    p.add_argument(
        "--answer-duplicates",
        action="store_true",
        help="answer a copy of the last line with Error and Resend, as Marlin did before"
        " 2022 (PR #24972); by default it is dropped without an answer",
    )
    p.add_argument(
        "--move-time",
        type=float,
        metavar="S",
        help="every move takes S simulated seconds (planner-bound tests)",
    )
    for key, what in (
        ("acceleration", "acceleration"),
        ("jerk", "jerk"),
        ("speed", "requested feedrates"),
    ):
        p.add_argument(
            f"--true-{key}",
            type=float,
            default=1.0,
            metavar="F",
            help=f"the simulated motion's {what} is F times the profile's (a real machine is"
            " not its profile; the host and the gate still see the profile)",
        )
    p.add_argument("--seed", type=int, help="random seed of the injected faults")
    p.add_argument("--link", metavar="PATH", help="also expose the port as this symlink")
    p.add_argument(
        "--reconnect-after",
        type=float,
        metavar="S",
        help="after a simulated disconnect, come back after S seconds",
    )
    p.add_argument("--log", metavar="FILE", help="append every executed move to FILE")
    p.set_defaults(handler=_handle)


def _config(args: argparse.Namespace) -> Any:
    from printforge.hardware.virtual.config import VirtualConfig
    from printforge.runtime.errors import InputError

    try:
        return VirtualConfig(
            sim_speed=args.sim_speed,
            baud=args.baud,
            advanced_ok=args.advanced_ok,
            emergency_parser=not args.no_emergency_parser,
            extruders=args.extruders,
            noise_rate=args.noise_rate,
            drop_ok_rate=args.drop_ok_rate,
            latency_s=args.latency,
            disconnect_at_line=args.disconnect_at_line,
            thermal_runaway_at_line=args.thermal_runaway_at_line,
            heater_fails_at_line=args.heater_fails_at_line,
            failing_heater=args.failing_heater,
            busy_interval_s=args.busy_interval or None,
            user_wait_s=args.user_wait or None,
            drop_duplicate_lines=not args.answer_duplicates,
            move_time_s=args.move_time,
            true_machine={
                "acceleration": args.true_acceleration,
                "jerk": args.true_jerk,
                "speed": args.true_speed,
            },
            seed=args.seed,
        )
    except ValueError as err:
        raise InputError(f"bad virtual printer option: {_option_problem(err)}") from None


# VirtualConfig fields whose flag is not simply the field's name with dashes.
_FLAGS = {
    "latency_s": "--latency",
    "busy_interval_s": "--busy-interval",
    "user_wait_s": "--user-wait",
    "drop_duplicate_lines": "--answer-duplicates",
    "move_time_s": "--move-time",
}


def _option_problem(err: ValueError) -> str:
    """Pydantic's report as the flags the user typed: `--noise-rate 2.0: input should be ...`."""
    from pydantic import ValidationError

    if not isinstance(err, ValidationError):
        return str(err)
    parts = []
    for item in err.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # a check across options names them itself
            parts.append(message)
            continue
        field = str(item["loc"][0])
        if field == "true_machine" and len(item["loc"]) > 1:
            field = f"true_{item['loc'][1]}"  # the factors' flags: --true-acceleration ...
        flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
        parts.append(f"{flag} {item.get('input')!r}: {message[:1].lower()}{message[1:]}")
    return "; ".join(parts)


def _handle(args: argparse.Namespace) -> Any:
    from printforge.runtime.errors import InputError

    link = Path(args.link).expanduser() if args.link else None
    log_path = Path(args.log).expanduser() if args.log else None
    # Checked before the board starts: a bad path found later left the board serving on.
    for flag, path in (("--link", link), ("--log", log_path)):
        if path is not None and not path.parent.is_dir():
            raise InputError(f"{flag} {path}: the folder {path.parent} does not exist")
    if log_path is not None:
        try:
            log_path.open("a", encoding="ascii").close()
        except OSError as err:
            raise InputError(f"--log {log_path}: cannot write to it ({err.strerror})") from None
    return _serve(args, link, log_path)


async def _serve(args: argparse.Namespace, link: Path | None, log_path: Path | None) -> int:
    import asyncio
    import signal

    from printforge.cli import load_cli_settings
    from printforge.hardware.virtual.pty_server import VirtualPrinterServer
    from printforge.runtime.errors import InputError

    config = _config(args)
    settings = load_cli_settings(args)
    name = args.profile or "generic-220"
    if name not in settings.printer_profiles:
        known = ", ".join(sorted(settings.printer_profiles))
        raise InputError(f"--profile: unknown printer profile {name!r} (known: {known})")
    server = VirtualPrinterServer(
        settings.printer_profiles[name],
        config,
        link=link,
        reconnect_after_s=args.reconnect_after,
    )
    path = await server.start()
    print(path, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    written = 0
    try:
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    await stop.wait()
            except TimeoutError:
                pass
            if log_path is not None and written < len(server.moves):
                written = await asyncio.to_thread(_append_moves, log_path, server.moves, written)
    finally:
        try:
            if log_path is not None:
                await asyncio.to_thread(_append_moves, log_path, server.moves, written)
        finally:
            await server.stop()  # even when the log cannot be written, the pty must close
    return 0


def _append_moves(path: Path, moves: list[Any], start: int) -> int:
    end = len(moves)
    with path.open("a", encoding="ascii", errors="replace") as out:
        for move in moves[start:end]:
            out.write(f"N{move.line} {move.command}\n")
    return end
