"""`printforge serve`: the websocket/HTTP API, the farm scheduler and the live dashboard."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

__all__ = ["register"]

log = logging.getLogger(__name__)

_ANY = {"", "0.0.0.0", "::"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the API, the websocket and the dashboard; schedule jobs on the farm",
        description=__doc__,
    )
    p.add_argument("--host", help="address to listen on (default from [server]: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default from [server]: 8470)")
    # Also accepted after the subcommand, as the usage line shows.
    p.add_argument("--data-dir", dest="serve_data_dir", metavar="DIR", help="jobs and store")
    p.add_argument("--config", dest="serve_config", metavar="FILE", help="one more TOML layer")
    p.add_argument("--mock", action="store_true", help="virtual printers and simulators")
    p.add_argument("--sim-speed", type=float, metavar="N", help="virtual printer speed-up")
    p.add_argument(
        "--virtual-cameras",
        action="store_true",
        help="a virtual camera for every virtual printer (its URL becomes the printer's camera)",
    )
    p.add_argument(
        "--create-key",
        metavar="NAME:ROLE",
        help="add an API key (role viewer, operator or admin), print it once and exit",
    )
    p.add_argument(
        "--capability",
        action="append",
        default=[],
        metavar="CAP",
        help="with --create-key: what the key may do beyond its role; `printer` lets an operator"
        " key pause, resume, cancel and clear any printer (repeatable)",
    )
    p.set_defaults(handler=_handle_serve)


async def _handle_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from printforge.cli import load_cli_settings
    from printforge.runtime.errors import ConfigError, InputError
    from printforge.server.app import create_app
    from printforge.server.auth import KeyStore, Role
    from printforge.server.state import STATE_KEY

    if args.serve_data_dir:
        args.data_dir = args.serve_data_dir
    if args.serve_config:
        args.config = args.serve_config
    overrides: dict[str, object] = {"sim_speed": args.sim_speed}
    if args.mock:
        overrides["mock"] = True
    if args.virtual_cameras:
        overrides["virtual_cameras"] = True
    server: dict[str, object] = {}
    if args.host:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if server:
        overrides["server"] = server
    settings = load_cli_settings(args, **overrides)
    # Everything the server writes (store, key store, job folders, uploads, reports) is for
    # its own account only; the data directory is 0700 as well (runtime.paths.private_dir).
    os.umask(0o077)
    if not settings.mock:
        # A server's printers are the declared and the discovered ones: a simulated printer
        # beside them would take real jobs and "complete" them (issue 15). `--mock` asks for it.
        settings = settings.without_implicit_printer()
        if not settings.printers and not settings.bus.broker:
            log.warning(
                "no printers: declare [printers.NAME], set [bus] broker to discover a farm's"
                " printers, or run with --mock for a simulated one"
            )

    if args.create_key:
        name, _, role = args.create_key.partition(":")
        if not name:
            raise InputError("--create-key takes NAME:ROLE, e.g. ci:operator")
        keys = KeyStore(settings.data_dir / "api_keys.json")
        keys.load()
        print(keys.create(name, Role.parse(role or "operator"), tuple(args.capability)))
        return 0
    if args.capability:
        raise InputError("--capability goes with --create-key")

    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await site.start()
        except OSError as err:
            # Usually a second `serve` on the same port: say so in one line, not a traceback.
            raise ConfigError(
                f"cannot listen on {settings.server.host}:{settings.server.port}:"
                f" {err.strerror or err}; is another server using that port? choose another"
                " with --port"
            ) from err
        port = runner.addresses[0][1] if runner.addresses else settings.server.port
        # Another command pointed at this data directory is told where to submit instead.
        local_host = settings.server.host if settings.server.host not in _ANY else "127.0.0.1"
        app[STATE_KEY].orch.describe(url=f"http://{local_host}:{port}")
        # One line on stdout that scripts (and the tests) wait for.
        print(f"printforge serving on http://{settings.server.host}:{port}/", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
    print("printforge: stopped", file=sys.stderr)
    return 0
