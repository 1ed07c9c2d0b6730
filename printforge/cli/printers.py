"""`printforge printers [clear|pause|resume|cancel NAME]`: what the API does for printers.

Without a subcommand it lists the printers and their live status. `clear NAME` confirms a
person removed the last print from NAME's bed; `pause`, `resume` and `cancel` act on NAME's
current print. Against `--server URL` (or $PRINTFORGE_SERVER_URL) the server's own methods do
it, with the API key from $PRINTFORGE_API_KEY (`--api-key-env` names another variable), as
`printforge run --server` does. Otherwise the local data directory: when a `printforge serve`
owns it, that server is asked; when a `printforge run` owns it and waits for a bed, `clear`
records the bed as clear and that run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["call_server", "register", "server_of_data_dir"]

# subcommand -> the server's JSON-RPC method
METHODS = {
    "list": "printer.list",
    "clear": "printer.confirm_bed_clear",
    "pause": "printer.pause",
    "resume": "printer.resume",
    "cancel": "printer.cancel",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "printers",
        help="list printers; clear a bed; pause, resume or cancel a printer's print",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=tuple(METHODS),
        help="list (default), clear (the bed is clear), pause, resume or cancel",
    )
    p.add_argument("printer", nargs="?", metavar="NAME", help="the printer to act on")
    p.add_argument("--json", action="store_true", help="print the server's JSON answer")
    p.add_argument(
        "--server",
        metavar="URL",
        help="a running `printforge serve`, e.g. http://127.0.0.1:8470 (default:"
        " $PRINTFORGE_SERVER_URL)",
    )
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        default="PRINTFORGE_API_KEY",
        help="environment variable holding the server's API key (default: PRINTFORGE_API_KEY)",
    )
    p.set_defaults(handler=_handle_printers)


async def _handle_printers(args: argparse.Namespace) -> int:
    from printforge.cli.run import SERVER_ENV
    from printforge.runtime.errors import InputError

    if args.action == "list" and args.printer:
        raise InputError(
            f"`printforge printers` lists them all; did you mean `clear {args.printer}`?"
        )
    if args.action != "list" and not args.printer:
        raise InputError(f"`printforge printers {args.action}` needs a printer name")
    params = {"printer": args.printer} if args.printer else {}
    server = args.server or os.environ.get(SERVER_ENV)
    if server:
        result = await _call_server(server, args.api_key_env, args.action, params)
    else:
        result = await _local(args, params)
    _show(args, result)
    return 0


async def _call_server(
    server: str, key_env: str, action: str, params: dict[str, Any]
) -> dict[str, Any]:
    return await call_server(server, key_env, METHODS[action], params)


async def call_server(
    server: str, key_env: str, method: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One JSON-RPC call to a running server, with the API key from `key_env`."""
    from printforge.cli.remote import RemoteConnection, server_url

    # The server's own method behind the same websocket `run --server` uses: the same
    # authentication, rate limits and error messages as every other door.
    conn = RemoteConnection(server_url(server), os.environ.get(key_env) or None, key_env)
    try:
        await conn.connect()
        result: dict[str, Any] = await conn.call(method, params)
    finally:
        await conn.close()
    return result


def server_of_data_dir(data_dir: Any) -> str | None:
    """The address of the `printforge serve` that owns a data directory, if one does."""
    from printforge.runtime.errors import DataDirBusy
    from printforge.runtime.lock import DataDirLock

    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except DataDirBusy as err:
        url = err.holder.get("url")
        return str(url) if url else None
    lock.release()
    return None


async def _local(args: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any]:
    from printforge.cli import load_cli_settings
    from printforge.runtime.errors import DataDirBusy
    from printforge.runtime.lock import DataDirLock

    settings = load_cli_settings(args)
    name = args.printer
    if name is not None:
        settings.printer(name)  # an unknown name fails here, listing the configured ones
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as err:
        url = err.holder.get("url")
        if url:
            # The server owns the printers: only it can act on them truthfully.
            print(f"printforge: asking the server that owns {settings.data_dir}: {url}",
                  file=sys.stderr)  # fmt: skip
            return await _call_server(str(url), args.api_key_env, args.action, params)
        if args.action == "clear":
            return _clear_record(settings, name, busy=True)
        pid = err.holder.get("pid", "?")
        raise DataDirBusy(
            f"a printforge command (pid {pid}) owns {settings.data_dir} and its printers;"
            f" only `printforge printers clear NAME` can reach it (Ctrl-C in its terminal"
            " stops its print)",
            holder=err.holder,
        ) from None
    try:
        if args.action == "clear":
            return _clear_record(settings, name, busy=False)
        if args.action == "list":
            return await _list_local(settings)
        from printforge.runtime.errors import InputError

        raise InputError(
            f"nothing is printing on {name}: no printforge process owns {settings.data_dir}"
            " (a server's prints: add --server URL)"
        )
    finally:
        lock.release()


def _clear_record(settings: Any, name: str, *, busy: bool) -> dict[str, Any]:
    from printforge.orchestrator.printers import clear_bed_record

    cleared = clear_bed_record(settings.data_dir, name)
    if not cleared:
        message = f"{name}: the bed was not waiting to be cleared"
    elif busy:
        message = f"{name}: bed clear; the running printforge command takes the next job on it"
    else:
        message = f"{name}: bed clear"
    return {"id": name, "bed_cleared": cleared, "message": message}


async def _list_local(settings: Any) -> dict[str, Any]:
    """Start the configured printers once, as `printforge health` does, and report them."""
    from printforge.orchestrator.printers import PrinterManager, occupied_beds
    from printforge.server.views import printer_view

    manager = PrinterManager(settings)
    await manager.start()
    try:
        out = []
        for status in manager.statuses():
            view = printer_view(status)
            view["bed_clear_required"] = manager.entry(status.id).bed_clear_required
            view["reserved_by"] = None
            out.append(view)
    finally:
        await manager.stop()
    waiting = set(occupied_beds(settings.data_dir))
    for view in out:
        if view["id"] in waiting and view["state"] == "idle":
            view.update(state="finished", message="waiting for bed clear")
    return {"printers": out}


def _show(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return
    if args.action != "list":
        if "message" in result and "state" not in result:
            print(result["message"])
        else:
            print(f"{result.get('id', args.printer)}: {result.get('state')}"
                  + (f" ({result['message']})" if result.get("message") else ""))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    printers = result.get("printers") or []
    console = Console()
    if not printers:
        console.print("no printers")
        return
    table = Table(header_style="bold")
    for col in ("name", "state", "driver", "profile", "material", "temperatures", "job", "note"):
        table.add_column(col)
    for p in printers:
        temps = " ".join(
            f"{k} {t['actual']:.0f}/{t['target']:.0f}°C"
            for k, t in (p.get("temperatures") or {}).items()
        )
        note = p.get("message") or ""
        if p.get("simulated"):
            note = f"simulated{'; ' + note if note else ''}"
        table.add_row(
            p["id"],
            p["state"],
            p.get("driver") or "",
            p.get("profile") or "",
            p.get("material") or "",
            temps,
            p.get("job_id") or "",
            note,
        )
    console.print(table)
