"""The `printforge` command. Each subcommand lives in its own module with a `register()`.

This dispatcher is the one place that checks flags before a command runs (`cli/checks.py`) and
reports how it ended (`cli/errors.py`): one line on stderr, or with `--json` one object on
stdout, and the same exit codes for every command. `--debug` shows the traceback too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from printforge import __version__
from printforge.cli.checks import OUT_KIND, OUTPUT_FLAGS, check_args, check_with_settings
from printforge.cli.errors import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    emit,
    exit_code,
    one_line,
    translate,
)
from printforge.runtime.errors import InputError

__all__ = ["COMMANDS", "main", "one_line"]

# Subcommand modules under printforge.cli; each defines register(subparsers).
COMMANDS: tuple[str, ...] = (
    "run",
    "answer",
    "design",
    "slice",
    "jobs",
    "printers",
    "spools",
    "health",
    "gcode_info",
    "print_cmd",
    "virtual_printer",
    "virtual_camera",
    "providers",
    "node",
    "farm",
    "serve",
    "store",
    "service",
)


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error under `--json` is the contract's JSON object."""

    json_errors = False

    def error(self, message: str) -> Any:  # type: ignore[override]
        if _Parser.json_errors:
            emit("usage", f"{self.prog}: {message}", as_json=True)
            self.exit(EXIT_USAGE)
        return super().error(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="printforge",
        description="From a sentence to a printed part.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"printforge {__version__}")
    parser.add_argument("--config", metavar="FILE", help="one more TOML config layer")
    parser.add_argument("--data-dir", metavar="DIR", help="where jobs and the job store live")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or JSON (see [logging])"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"printforge.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"printforge.cli.{name}":
                continue  # a command not built yet is simply absent
            raise
        module.register(sub)
    # People write `printforge run ... --data-dir D` as often as `printforge --data-dir D run`:
    # every command accepts the global options too (SUPPRESS keeps an absent one from
    # overwriting the value given before the command).
    # Commands with their own subcommands (`store backup`) accept them at every level.
    commands = list(sub.choices.values())
    while commands:
        command = commands.pop()
        for flags, options in _GLOBAL_OPTIONS:
            if not any(flag in command._option_string_actions for flag in flags):
                command.add_argument(*flags, default=argparse.SUPPRESS, **options)
        # checks.py tells a folder given for a file (and the reverse) by each output's metavar.
        outputs = {
            action.dest: str(action.metavar or "FILE")
            for flag in OUTPUT_FLAGS
            if (action := command._option_string_actions.get(flag)) is not None
        }
        if outputs:
            command.set_defaults(**{OUT_KIND: outputs})
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                commands.extend(action.choices.values())
    return parser


_GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--config",), {"metavar": "FILE", "help": "one more TOML config layer"}),
    (("--data-dir",), {"metavar": "DIR", "help": "where jobs and the job store live"}),
    (("--debug",), {"action": "store_true", "help": "show tracebacks and debug logs"}),
    (
        ("--log-format",),
        {"choices": ("text", "json"), "help": "log lines as text or JSON (see [logging])"},
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Known before parsing, so that even a usage error answers a script in JSON.
    _Parser.json_errors = "--json" in argv
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from printforge.runtime.lock import name_command
    from printforge.runtime.logsetup import configure_logging

    # The data-dir lock names its holder by the command, whatever options came before it.
    name_command(f"printforge {args.command}")
    # Until a command loads its settings (which may choose another format), the flag or the
    # variable decides, so even a configuration error is reported in the chosen format.
    configure_logging(_early_log_format(args), logging.DEBUG if args.debug else logging.WARNING)
    as_json = bool(getattr(args, "json", False))
    stdout = _Watched(sys.stdout)
    try:
        with contextlib.redirect_stdout(stdout) if as_json else contextlib.nullcontext():
            check_args(args)
            result: Any = args.handler(args)
            if inspect.iscoroutine(result):
                result = asyncio.run(_terminate_like_interrupt(result))
        return int(result or 0)
    except KeyboardInterrupt:
        emit("interrupted", "interrupted", as_json=as_json and not stdout.written)
        return EXIT_INTERRUPTED
    except _Terminated:
        emit("terminated", "terminated", as_json=as_json and not stdout.written)
        return EXIT_TERMINATED
    except BrokenPipeError:
        # `printforge jobs --json | head`: the reader left; say nothing more to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as err:
        if args.debug:
            raise
        error = translate(err)
        # A command that already answered with its own object (a print's summary with its
        # error) is not followed by a second one: the line goes to stderr then.
        emit(error.code, error.message, as_json=as_json and not stdout.written)
        return exit_code(error)


class _Watched:
    """stdout, noting whether the command wrote to it: under --json, one object in all."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.written = False

    def write(self, text: str) -> int:
        if text:
            self.written = True
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _early_log_format(args: argparse.Namespace) -> str:
    chosen = getattr(args, "log_format", None) or os.environ.get("PRINTFORGE_LOGGING__FORMAT")
    return chosen if chosen in ("text", "json") else "text"


class _Terminated(Exception):
    """SIGTERM ended the command after it unwound like Ctrl-C."""


async def _terminate_like_interrupt(coro: Any) -> Any:
    """SIGTERM (systemd, docker stop, kill) unwinds the command as Ctrl-C does, so a print
    stops its printer safely instead of the process dying with the heaters on. Commands that
    install their own SIGTERM handler (serve, node) replace this one."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    # Not the main thread, or a platform without loop signal handlers: SIGTERM stays default.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await coro
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise


def load_cli_settings(args: argparse.Namespace, **overrides: Any):  # type: ignore[no-untyped-def]
    """Settings for a command: the global --config and --data-dir, plus command overrides."""
    from printforge.runtime.logsetup import configure_logging
    from printforge.settings import load_settings

    extra = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "data_dir", None):
        extra["data_dir"] = args.data_dir
    if getattr(args, "log_format", None):
        extra["logging"] = {"format": args.log_format}
    settings = load_settings(args.config, overrides=extra or None)
    configure_logging(settings.logging.format, logging.DEBUG if args.debug else settings.log_level)
    check_with_settings(args, settings)
    return settings


def require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)
