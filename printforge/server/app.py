"""The aiohttp application: state, routes and the start/stop order around the Orchestrator."""

from __future__ import annotations

import asyncio
import html
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from printforge.runtime.paths import private_dir
from printforge.server.api import build_table
from printforge.server.auth import KeyStore, Role
from printforge.server.health import add_health_routes
from printforge.server.http import add_routes, middlewares
from printforge.server.limits import RateLimiter
from printforge.server.openapi import openapi_document
from printforge.server.state import STATE_KEY, ServerState
from printforge.server.ws import Broadcaster, handle_ws

if TYPE_CHECKING:
    from printforge.orchestrator.service import Orchestrator
    from printforge.settings import Settings

__all__ = ["BOOTSTRAP_KEY_FILE", "create_app"]

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
BOOTSTRAP_KEY_FILE = "admin.key"


def _bootstrap_keys(state: ServerState) -> None:
    keys = state.keys
    keys.load()
    settings = state.settings
    if settings.api_key is not None:
        keys.bootstrap(settings.api_key.get_secret_value())
    elif settings.server.auth_required and len(keys) == 0:
        # A fresh machine must be usable without reading the docs first; the key goes to a
        # file only its owner can read, never to the log.
        key = keys.create("first admin", Role.ADMIN)
        path = settings.data_dir / BOOTSTRAP_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        log.warning("no API key was configured; created an admin key in %s", path)


async def _on_startup(app: web.Application) -> None:
    state = app[STATE_KEY]
    private_dir(state.settings.data_dir)
    _bootstrap_keys(state)
    if state.own_orchestrator:
        await state.orch.start()
    state.broadcaster = Broadcaster(state.orch.bus, state.settings.server.status_interval_s)
    state.broadcaster.start()
    state.ready = True


async def _on_shutdown(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.ready = False
    if state.broadcaster is not None:
        await state.broadcaster.close_all()


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE_KEY]
    if state.broadcaster is not None:
        await state.broadcaster.stop()
    if state.own_orchestrator:
        await state.orch.stop()


async def _handle_index(request: web.Request) -> web.Response:
    page = await asyncio.to_thread((DASHBOARD_DIR / "index.html").read_text, "utf-8")
    hint = html.escape(_key_hint(request.app[STATE_KEY].settings))
    return web.Response(
        text=page.replace("<!--login-hint-->", hint),
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


def _key_hint(settings: Settings) -> str:
    """Where the sign-in box's key comes from: without it a first user has only a WARNING line
    in the server's log to go by. A path, never the key."""
    if settings.api_key is not None:
        return "The admin key is the one this server was started with (PRINTFORGE_API_KEY)."
    path = settings.data_dir / BOOTSTRAP_KEY_FILE
    if path.is_file():
        return (
            f"No key was configured, so the server made the first admin key: it is in {path}"
            " on the server (readable by its owner only)."
        )
    return "Ask the server's operator for a key (`printforge serve --create-key NAME:ROLE`)."


async def _handle_openapi(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response(openapi_document(state.table))


def create_app(settings: Settings, orch: Orchestrator | None = None) -> web.Application:
    """The server app. Without `orch` it builds one and starts/stops it with the app."""
    if orch is None:
        from printforge.orchestrator.service import Orchestrator

        orch = Orchestrator(settings)
        own = True
    else:
        own = False
    cfg = settings.server
    table = build_table()
    limiter = RateLimiter(cfg.rate_limit_per_minute, cfg.rate_limit_burst)
    table.limiter = limiter
    table.max_batch = cfg.max_batch
    table.max_depth = cfg.max_json_depth
    state = ServerState(
        settings=settings,
        orch=orch,
        keys=KeyStore(settings.data_dir / "api_keys.json"),
        table=table,
        limiter=limiter,
        auth_failures=RateLimiter(30, 10),
        own_orchestrator=own,
    )
    app = web.Application(middlewares=middlewares(), client_max_size=cfg.max_request_bytes)
    app[STATE_KEY] = state
    app.router.add_get("/", _handle_index)
    app.router.add_static("/static/", DASHBOARD_DIR, append_version=True)
    app.router.add_get("/ws", handle_ws)
    app.router.add_get("/api/openapi.json", _handle_openapi)
    add_routes(app, state)
    add_health_routes(app)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app
