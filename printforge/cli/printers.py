"""`printforge printers [clear|pause|resume|cancel NAME]`: what the API does for printers.

Without a subcommand it lists the printers and their live status. `clear NAME` confirms a
person removed the last print from NAME's bed; `pause`, `resume` and `cancel` act on NAME's
current print. `material NAME MATERIAL` says which filament is loaded on NAME; `spool NAME ID`
loads a tracked spool there (`none` takes it off; `printforge spools` lists them).
Against `--server URL` (or $PRINTFORGE_SERVER_URL) the server's own methods do
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
    "material": "printer.set_material",
    "spool": "printer.load_spool",
}
# Actions that take a value after the printer's name, and what the value is called.
_VALUES = {"material": "material", "spool": "spool_id"}


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
        help="list (default), clear (the bed is clear), pause, resume, cancel, material"
        " (MATERIAL is loaded) or spool (spool ID is loaded; none: taken off)",
    )
    p.add_argument("printer", nargs="?", metavar="NAME", help="the printer to act on")
    p.add_argument("value", nargs="?", metavar="MATERIAL|ID", help="for material and spool")
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
    params: dict[str, Any] = {"printer": args.printer} if args.printer else {}
    if args.action in _VALUES:
        if args.value is None:
            what = "a material, e.g. PETG" if args.action == "material" else "a spool id or none"
            raise InputError(f"`printforge printers {args.action} {args.printer}` needs {what}")
        params[_VALUES[args.action]] = _value(args.action, args.value)
    elif args.value is not None:
        raise InputError(f"`printforge printers {args.action}` takes no {args.value!r}")
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


def _value(action: str, text: str) -> Any:
    from printforge.runtime.errors import InputError

    if action != "spool":
        return text
    if text.casefold() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{text!r} is not a spool id (a number; none takes it off)") from None


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
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as err:
        url = err.holder.get("url")
        if url:
            # The server owns the printers: only it can act on them truthfully.
            print(f"printforge: asking the server that owns {settings.data_dir}: {url}",
                  file=sys.stderr)  # fmt: skip
            # The server's printers, which its own config (or the bus) names, not this one.
            return await _call_server(str(url), args.api_key_env, args.action, params)
        if name is not None:
            settings.printer(name)  # an unknown name fails here, listing the configured ones
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
        if name is not None:
            settings.printer(name)  # an unknown name fails here, listing the configured ones
        if args.action == "clear":
            return _clear_record(settings, name, busy=False)
        if args.action == "list":
            return await _list_local(settings)
        if args.action in _VALUES:
            return await _load_local(settings, args.action, params)
        from printforge.runtime.errors import InputError

        raise InputError(
            f"nothing is printing on {name}: no printforge process owns {settings.data_dir}"
            " (a server's prints: add --server URL)"
        )
    finally:
        lock.release()


async def _load_local(settings: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Record a loaded material or spool in the job store; the next process that starts the
    printer applies it (nothing runs it now)."""
    from printforge.orchestrator.printers import PrinterManager
    from printforge.orchestrator.spools import SpoolTracker
    from printforge.orchestrator.store import JobStore

    store = JobStore(settings.db_path)
    await store.open()
    tracker = SpoolTracker(settings, store, PrinterManager(settings))
    try:
        await tracker.start()
        name = params["printer"]
        if action == "material":
            material = await tracker.set_material(name, params["material"])
            spool = tracker.loaded(name)
        else:
            spool = await tracker.load(name, params["spool_id"])
            material = spool.material if spool is not None else settings.printer(name).material
    finally:
        await tracker.stop()
        await store.close()
    return {
        "id": name,
        "material": material,
        "spool": spool.model_dump(mode="json") if spool is not None else None,
        "message": f"{name}: {material} loaded"
        + (f" (spool {spool.id}, {spool.remaining_weight:.0f} g)" if spool else ""),
    }


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
    from printforge.orchestrator.spools import SpoolTracker
    from printforge.orchestrator.store import JobStore
    from printforge.server.views import printer_view

    manager = PrinterManager(settings)
    store = JobStore(settings.db_path)
    tracker = SpoolTracker(settings, store, manager)
    await manager.start()
    try:
        await store.open()
        await tracker.start()  # what a person loaded, recorded in the store
        out = []
        for status in manager.statuses():
            view = printer_view(status)
            entry = manager.entry(status.id)
            view["bed_clear_required"] = entry.bed_clear_required
            view["reserved_by"] = None
            view["tags"] = entry.tags
            view["material"] = entry.material
            spool = tracker.loaded(status.id)
            view["spool"] = spool.model_dump(mode="json") if spool is not None else None
            out.append(view)
    finally:
        await tracker.stop()
        await store.close()
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
    if args.action in _VALUES and "state" in result:
        spool = result.get("spool")
        held = f" (spool {spool['id']}, {spool['remaining_weight']:.0f} g)" if spool else ""
        print(f"{result['id']}: {result.get('material')} loaded{held}")
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
    for col in ("name", "state", "driver", "profile", "material", "spool", "temperatures", "job",
                "note"):  # fmt: skip
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
            f"{p['spool']['id']}: {p['spool']['remaining_weight']:.0f} g" if p.get("spool") else "",
            temps,
            p.get("job_id") or "",
            note,
        )
    console.print(table)
