"""Probes and metrics: /health/live, /health/ready, /health, /health/components and /metrics."""

from __future__ import annotations

import json

from aiohttp import web

from printforge.models.printer import PrinterState
from printforge.runtime import metrics
from printforge.runtime.system import data_dir_usage
from printforge.server.components import component_health, find_component
from printforge.server.rpc import CallContext
from printforge.server.state import PRINCIPAL_KEY, STATE_KEY

__all__ = ["add_health_routes"]


async def _handle_live(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _handle_ready(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    report = await state.orch.health_report()
    free = data_dir_usage(state.settings.data_dir)["free_bytes"]
    # Below the floor submits are refused: a balancer should send work elsewhere meanwhile.
    disk_ok = free >= state.settings.server.min_free_bytes
    ok = state.ready and bool(report["store"]["ok"]) and disk_ok
    body = {
        "status": "ready" if ok else "not_ready",
        "store": report["store"]["ok"],
        "disk": {"ok": disk_ok, "free_bytes": free},
    }
    return web.json_response(body, status=200 if ok else 503)


async def _handle_health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    ctx = CallContext(app=request.app, principal=request[PRINCIPAL_KEY], transport="http")
    report = await state.table.call(ctx, "health.get", {})
    status = 503 if report["status"] == "unhealthy" else 200
    return web.json_response(report, status=status, dumps=lambda o: json.dumps(o, default=str))


def _dumps(obj: object) -> str:
    return json.dumps(obj, default=str)


async def _handle_components(request: web.Request) -> web.Response:
    views = await component_health(request.app[STATE_KEY])
    return web.json_response({"components": views}, dumps=_dumps)


async def _handle_component(request: web.Request) -> web.Response:
    """One component; 503 when it is unhealthy (a probe's answer), 404 for an unknown name."""
    view = await find_component(
        request.app[STATE_KEY], request.match_info["name"], request.match_info.get("kind")
    )
    status = 503 if view["status"] == "unhealthy" else 200
    return web.json_response(view, status=status, dumps=_dumps)


async def _handle_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    metrics.WEBSOCKET_CLIENTS.set(len(state.broadcaster.clients) if state.broadcaster else 0)
    # Host and printer series are read when scraped, so they are never older than the scrape.
    metrics.observe_data_dir(state.settings.data_dir)
    metrics.observe_printer_states(
        ((s.id, s.state.value) for s in state.orch.printers.statuses()),
        (s.value for s in PrinterState),
    )
    metrics.JOBS_WAITING_FOR_PRINTER.set(len(state.orch.scheduler.waiting()))
    return web.Response(
        body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/health/live", _handle_live)
    app.router.add_get("/health/ready", _handle_ready)
    app.router.add_get("/health", _handle_health)
    app.router.add_get("/health/components", _handle_components)
    app.router.add_get("/health/components/{name}", _handle_component)
    app.router.add_get("/health/components/{kind}/{name}", _handle_component)
    app.router.add_get("/metrics", _handle_metrics)
