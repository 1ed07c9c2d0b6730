"""The command line's one error contract: what a failure looks like to a person and a script.

Every command ends through `main()`, which hands any exception to `report()` here. Without
`--json` a failure is one line on stderr; with `--json` it is one object on stdout,
`{"error": {"code", "message"}}`, with the same codes the API puts in an error's `data.error`.
Library exceptions (pydantic, aiohttp, sqlite, the OS) are translated into sentences first, so
their text never reaches a person; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import Any

from printforge.runtime.errors import ConfigError, InputError, PrintforgeError

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "emit",
    "exit_code",
    "one_line",
    "translate",
    "validation_message",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it

# Shown at the end of `printforge --help`; README's "Errors" section says the same.
EXIT_CODES_HELP = """\
exit codes (the same for every command):
  0    done
  1    refused or failed: bad input, an unsafe file, a failed job, a printer fault
  2    usage: an unknown option or a bad value argparse rejects, or a configuration error
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)

errors: one line on stderr; with --json, one object on stdout:
  {"error": {"code": "...", "message": "..."}} (the API's error codes); --debug adds the traceback
"""


def one_line(message: str) -> str:
    """An error is one line (the contract): a message that wraps an upstream one, such as
    pydantic's several-line report with its help link, is folded into one."""
    parts = [
        line.strip()
        for line in message.splitlines()
        if line.strip() and not line.strip().startswith("For further information visit")
    ]
    return "; ".join(parts)


def validation_message(err: Any, names: dict[str, str] | None = None) -> str:
    """pydantic's report as sentences: `text: the request is empty`, no type tags or links.

    Args:
        err: a pydantic `ValidationError`.
        names: what a person calls each field (a flag such as `--infill`), by field name.
    """
    parts = []
    for item in err.errors(include_url=False):
        loc = [str(p) for p in item.get("loc", ())]
        field = (names or {}).get(loc[0], ".".join(loc)) if loc else ""
        msg = str(item.get("msg", "is not valid"))
        msg = msg.removeprefix("Value error, ").replace("Input should be", "must be")
        # A message that already names its subject ("the request is empty") needs no field.
        parts.append(msg if not field or msg.startswith("the ") else f"{field}: {msg}")
    return "; ".join(parts) or "the input is not valid"


def translate(err: BaseException) -> PrintforgeError:
    """Any exception as a printforge error with a sentence a person can act on."""
    if isinstance(err, PrintforgeError):
        return err
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        return InputError(validation_message(err))
    if isinstance(err, sqlite3.Error):
        # "database is locked", "disk I/O error", "file is not a database": sqlite's words are
        # the cause; say which file it is about and what can be done.
        return PrintforgeError(
            f"the job store could not be used ({err}); check the data directory's disk space and"
            " permissions, or restore a backup with `printforge store restore`",
            code="store_error",
        )
    client_error = _client_error(err)
    if client_error is not None:
        return client_error
    if isinstance(err, TimeoutError):
        return PrintforgeError("timed out waiting for an answer; try again", code="timeout")
    if isinstance(err, OSError):
        # The machine said no (a path that is a file, a full disk, no permission): that is the
        # operator's to fix, not a bug, so say what and where without "unexpected".
        where = f"{err.filename}: " if err.filename else ""
        return PrintforgeError(f"{where}{err.strerror or err}", code="os_error")
    return PrintforgeError(
        f"unexpected error ({type(err).__name__}); run again with --debug for the traceback",
        code="internal_error",
    )


def _client_error(err: BaseException) -> PrintforgeError | None:
    """aiohttp's client errors (talking to a `printforge serve`) in words."""
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None or not isinstance(err, aiohttp.ClientError):
        return None
    if isinstance(err, aiohttp.ClientConnectorError):
        reason = err.os_error.strerror or str(err.os_error)
        return PrintforgeError(
            f"cannot connect to the server at {err.host}:{err.port} ({reason}); is"
            " `printforge serve` running there?",
            code="connection_lost",
        )
    if isinstance(err, aiohttp.ClientResponseError):
        return PrintforgeError(
            f"the server answered {err.status} {err.message}", code="connection_lost"
        )
    return PrintforgeError(
        "the connection to the server failed; check the address and try again",
        code="connection_lost",
    )


def exit_code(err: PrintforgeError) -> int:
    """2 for what is wrong before any command could run (the configuration); 1 for the rest."""
    return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_ERROR


def emit(code: str, message: str, *, as_json: bool) -> None:
    """Say one failure: one JSON object on stdout, or one line on stderr."""
    text = one_line(message)
    if as_json:
        sys.stdout.write(json.dumps({"error": {"code": code, "message": text}}) + "\n")
        sys.stdout.flush()
    else:
        print(f"printforge: {text}", file=sys.stderr)
