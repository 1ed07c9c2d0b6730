"""`printforge store backup|restore`: the job store, key store and state files, in one archive.

    printforge store backup --out FILE [--with-artifacts] [--json]
    printforge store restore FILE [--json]
    printforge store migrate [--url URL] [--json]
    printforge store copy --from URL --to URL [--json]

A backup is consistent while `printforge serve` runs on the same data directory (the store is
copied with its own online backup) and lists every job folder's files with their sha256;
`--with-artifacts` packs those files too. A restore is refused while a server runs on the data
directory, moves whatever it replaces into `before-restore-<time>/` in the data directory, and
says which artifacts are missing or differ. `migrate` brings a store's schema up to date
(`[store] url`, or --url); `copy` moves every job and transition into an empty store, e.g.
from `sqlite:////var/lib/printforge/printforge.sqlite3` to `postgresql://...` (stop the
servers first). Run both as the user the service runs as
(`sudo -u printforge printforge store backup ...`), so file owners stay right.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "store_backend"]

# Missing or differing artifacts listed by name up to this many; the rest are counted.
_LIST_AT_MOST = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "store",
        help="back up or restore the job store, key store and state files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    store_sub = p.add_subparsers(dest="store_command", metavar="COMMAND")
    b = store_sub.add_parser("backup", help="write a consistent backup, even while the server runs")
    b.add_argument("--out", required=True, metavar="FILE", help="the archive to write (.tar.gz)")
    b.add_argument(
        "--with-artifacts",
        action="store_true",
        help="pack the job folders and uploads too (default: list them with their sha256)",
    )
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.set_defaults(handler=_handle_backup)
    r = store_sub.add_parser(
        "restore", help="restore a backup into the data directory (the server must be stopped)"
    )
    r.add_argument("archive", metavar="FILE", help="an archive written by `store backup`")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(handler=_handle_restore)
    m = store_sub.add_parser("migrate", help="bring the job store's schema up to date")
    m.add_argument("--url", metavar="URL", help="the store (default: [store] url)")
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.set_defaults(handler=_handle_migrate)
    c = store_sub.add_parser(
        "copy", help="copy every job into an empty store (e.g. SQLite to PostgreSQL)"
    )
    c.add_argument("--from", dest="source", required=True, metavar="URL", help="sqlite:///...")
    c.add_argument("--to", dest="dest", required=True, metavar="URL", help="postgresql://...")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(handler=_handle_copy)
    p.set_defaults(handler=_handle_missing, store_parser=p)


def _handle_missing(args: argparse.Namespace) -> int:
    args.store_parser.print_help(sys.stderr)
    return 2


def store_backend(settings: Any) -> Any:
    """The backend for the configured job store (SQLite; a PostgreSQL `[store] url` would
    pick a pg_dump backend here, and is refused until there is one)."""
    from printforge.orchestrator.storecopy import SqliteBackend
    from printforge.runtime.errors import InputError

    url = settings.store_url
    if not url.startswith("sqlite:///"):
        raise InputError(
            "store backup and restore copy a SQLite store; a PostgreSQL store is backed up"
            " with PostgreSQL's own tools (pg_dump, or its replication)"
        )
    return SqliteBackend(Path(url.removeprefix("sqlite:///")))


async def _handle_migrate(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.orchestrator.storemove import migrate_store

    url = args.url or load_cli_settings(args).store_url
    name, version = await migrate_store(url)
    if args.json:
        print(json.dumps({"store": name, "schema_version": version}))
    else:
        print(f"the job store {name} is at schema version {version}")
    return 0


async def _handle_copy(args: argparse.Namespace) -> int:
    from printforge.orchestrator.storemove import copy_store

    report = await copy_store(args.source, args.dest)
    if args.json:
        print(json.dumps(report.__dict__))
    else:
        print(
            f"copied {report.jobs} job(s) and {report.transitions} transition(s) from"
            f" {report.source} to {report.dest} (schema version {report.schema_version})"
        )
    return 0


def _handle_backup(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.orchestrator.backup import create_backup

    settings = load_cli_settings(args)
    report = create_backup(
        settings.data_dir,
        store_backend(settings),
        Path(args.out),
        with_artifacts=args.with_artifacts,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    what = "packed" if report.packed else "listed with their sha256, not packed"
    print(
        f"backed up {report.jobs} job(s), {', '.join(report.state_files) or 'no state files'}"
        f" and {report.artifacts} artifact(s) ({report.artifact_bytes} bytes, {what})"
        f" from {settings.data_dir} to {report.out} ({report.archive_bytes} bytes)"
    )
    return 0


def _handle_restore(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.orchestrator.backup import restore_backup

    settings = load_cli_settings(args)
    report = restore_backup(Path(args.archive), settings.data_dir, store_backend(settings))
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(
        f"restored {report.jobs} job(s) and {', '.join(report.state_files) or 'no state files'}"
        f" into {report.data_dir}"
    )
    if report.relocated_from:
        print(f"artifact paths moved from {report.relocated_from} to {report.data_dir}")
    if report.moved_aside:
        print(f"what was there before is in {report.moved_aside}")
    total = len(report.ok) + len(report.missing) + len(report.differ)
    print(
        f"artifacts: {len(report.ok)} of {total} present and intact"
        + (f" ({report.unpacked} unpacked from the backup)" if report.unpacked else "")
    )
    for label, paths in (("missing", report.missing), ("differ", report.differ)):
        if paths:
            shown = ", ".join(paths[:_LIST_AT_MOST])
            more = f" and {len(paths) - _LIST_AT_MOST} more" if len(paths) > _LIST_AT_MOST else ""
            print(f"artifacts that {'are ' if label == 'missing' else ''}{label}: {shown}{more}")
    if report.missing or report.differ:
        print(
            "copy the job folders back (e.g. rsync -a OLD/jobs/ DATA_DIR/jobs/) or restore a"
            " backup made with --with-artifacts; jobs whose files are gone keep their records",
            file=sys.stderr,
        )
    return 0
