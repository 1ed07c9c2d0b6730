"""`printforge spools [add|update]`: the spools printforge tracks, with the grams left on each.

`printforge spools` lists them (`--archived` too), `spools add --material PLA --grams 1000
[--name N] [--printer NAME]` adds one (loaded on NAME), `spools update ID --grams 640` says what
a person weighed (`--archive` retires it). Against `--server URL` (or $PRINTFORGE_SERVER_URL, or
the `printforge serve` owning the data directory) they are the server's spool.list, spool.add
and spool.update; otherwise the job store in the data directory. `printforge printers spool
NAME ID` loads one on a printer. With `[spoolman] url` the spools are Spoolman's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["register"]

ACTIONS = ("list", "add", "update")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "spools",
        help="list spools and the grams left; add one; update one",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    p.add_argument("spool_id", nargs="?", type=int, metavar="ID", help="update: the spool")
    p.add_argument("--material", help="add/update: its material (a [materials.*] name)")
    p.add_argument("--grams", type=float, help="add/update: filament left on it, g")
    p.add_argument("--initial-grams", type=float, help="add: filament on it when new, g")
    p.add_argument("--name", help="add/update: what people call it")
    p.add_argument("--printer", help="add: load it on this printer")
    p.add_argument("--archive", action="store_true", help="update: retire it")
    p.add_argument("--unarchive", action="store_true", help="update: bring it back")
    p.add_argument("--archived", action="store_true", help="list: archived spools too")
    p.add_argument("--json", action="store_true")
    p.add_argument("--server", metavar="URL", help="a running `printforge serve`")
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        default="PRINTFORGE_API_KEY",
        help="environment variable holding the server's API key (default: PRINTFORGE_API_KEY)",
    )
    p.set_defaults(handler=_handle_spools)


def _params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from printforge.runtime.errors import InputError

    if args.action == "list":
        return "spool.list", {"archived": args.archived}
    if args.action == "add":
        if not args.material or args.grams is None:
            raise InputError("`printforge spools add` needs --material and --grams")
        params = {
            "material": args.material,
            "remaining_weight": args.grams,
            "initial_weight": args.initial_grams,
            "name": args.name,
            "printer": args.printer,
        }
        return "spool.add", {k: v for k, v in params.items() if v is not None}
    if args.spool_id is None:
        raise InputError("`printforge spools update` needs a spool id")
    archived = True if args.archive else (False if args.unarchive else None)
    params = {
        "spool_id": args.spool_id,
        "remaining_weight": args.grams,
        "material": args.material,
        "name": args.name,
        "archived": archived,
    }
    return "spool.update", {k: v for k, v in params.items() if v is not None}


async def _handle_spools(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.cli.printers import call_server, server_of_data_dir
    from printforge.cli.run import SERVER_ENV

    method, params = _params(args)
    server = args.server or os.environ.get(SERVER_ENV)
    if not server:
        settings = load_cli_settings(args)
        server = server_of_data_dir(settings.data_dir)
        if server is None:
            _show(args, await _local(settings, method, params))
            return 0
    _show(args, await call_server(server, args.api_key_env, method, params))
    return 0


async def _local(settings: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    from printforge.orchestrator.printers import PrinterManager
    from printforge.orchestrator.spools import SpoolTracker
    from printforge.orchestrator.store import JobStore
    from printforge.runtime.errors import DataDirBusy
    from printforge.runtime.lock import DataDirLock

    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as err:
        # A `printforge run` charges spools as it prints: changing them behind it is refused.
        raise DataDirBusy(
            f"a printforge command (pid {err.holder.get('pid', '?')}) owns {settings.data_dir};"
            " change spools when it has finished, or on a `printforge serve`",
            holder=err.holder,
        ) from None
    store = JobStore(settings.db_path)
    try:
        await store.open()
        tracker = SpoolTracker(settings, store, PrinterManager(settings))
        await tracker.start()
        try:
            if method == "spool.list":
                spools = tracker.spools(archived=params["archived"])
                source = "spoolman" if tracker.spoolman is not None else "printforge"
                return {"source": source, "spools": [s.model_dump(mode="json") for s in spools]}
            if method == "spool.add":
                spool = await tracker.add(**params)
            else:
                spool = await tracker.update(params.pop("spool_id"), **params)
            return spool.model_dump(mode="json")
        finally:
            await tracker.stop()
    finally:
        await store.close()
        lock.release()


def _show(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return
    spools = result.get("spools", [result])
    if not spools:
        print("no spools (add one: printforge spools add --material PLA --grams 1000)")
        return
    for s in spools:
        where = f" on {s['printer']}" if s.get("printer") else ""
        name = f" {s['name']}" if s.get("name") else ""
        archived = " (archived)" if s.get("archived") else ""
        print(f"{s['id']}: {s['material']}{name}, {s['remaining_weight']:.0f} g left{where}"
              f"{archived}")  # fmt: skip
