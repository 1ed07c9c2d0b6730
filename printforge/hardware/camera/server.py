"""The virtual camera over HTTP, as a real camera serves itself.

    GET  /snapshot, /?action=snapshot, /webcam/?action=snapshot   one JPEG
    GET  /stream,   /?action=stream,   /webcam/?action=stream     MJPEG (multipart/x-mixed-replace)
    GET  /status                                                  the camera and its events, JSON
    POST /inject   {"kind", "layer"?, "layers"?, "params"?}      inject a failure or nuisance

The `?action=` forms are mjpg-streamer's (and OctoPrint's `/webcam/` proxy of it), so whatever
reads a real camera reads this one unchanged. `/inject` is for tests and the benchmark; the
server listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from printforge.hardware.camera.mjpeg import part_bytes, stream_content_type
from printforge.hardware.camera.virtual import VirtualCamera
from printforge.runtime.errors import InputError, TransientError

__all__ = ["CameraServer"]

log = logging.getLogger(__name__)

BOUNDARY = "printforgeframe"
_NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}
_PAGE = """<!doctype html><title>{name}</title>
<body style="margin:0;background:#111"><img src="/stream" style="max-width:100%"></body>
"""


class CameraServer:
    """Serves one virtual camera on host:port (port 0: a free one, see `port` after start)."""

    def __init__(self, camera: VirtualCamera, host: str = "127.0.0.1", port: int = 0) -> None:
        self.camera = camera
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the camera server is not started")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def snapshot_url(self) -> str:
        return f"{self.url}/snapshot"

    @property
    def stream_url(self) -> str:
        return f"{self.url}/stream"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._handle_root)
        app.router.add_get("/webcam/", self._handle_root)
        app.router.add_get("/snapshot", self._handle_snapshot)
        app.router.add_get("/stream", self._handle_stream)
        app.router.add_get("/status", self._handle_status)
        app.router.add_post("/inject", self._handle_inject)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise InputError(
                f"virtual camera cannot listen on {self.host}:{self.requested_port}:"
                f" {err.strerror or err}"
            ) from err
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        await self.camera.start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        for task in list(self._streams):
            task.cancel()
        if runner is not None:
            await runner.cleanup()
        await self.camera.stop()

    # handlers ------------------------------------------------------------------------------
    async def _handle_root(self, request: web.Request) -> web.StreamResponse:
        action = request.query.get("action")
        if action == "snapshot":
            return await self._handle_snapshot(request)
        if action == "stream":
            return await self._handle_stream(request)
        if action is not None:
            raise web.HTTPBadRequest(text=f"unknown action {action!r}: snapshot or stream\n")
        return web.Response(text=_PAGE.format(name=self.camera.name), content_type="text/html")

    async def _handle_snapshot(self, request: web.Request) -> web.Response:
        try:
            jpeg = await self.camera.frame()
        except TransientError as err:
            raise web.HTTPServiceUnavailable(text=f"{err}\n") from err
        return web.Response(body=jpeg, content_type="image/jpeg", headers=_NO_CACHE)

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            return await self._stream(request)
        finally:
            self._streams.discard(task)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": stream_content_type(BOUNDARY), **_NO_CACHE}
        )
        await resp.prepare(request)
        period = 1.0 / self.camera.options.fps
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        with contextlib.suppress(ConnectionResetError):
            while True:
                try:
                    # Viewers of one camera share its frames: one render per period.
                    jpeg = await self.camera.frame(max_age_s=period * 0.9)
                except TransientError as err:
                    log.warning("virtual camera %s: %s", self.camera.name, err)
                    jpeg = None
                if jpeg is not None:
                    await resp.write(part_bytes(BOUNDARY, jpeg))
                next_at = max(next_at + period, loop.time())
                await asyncio.sleep(next_at - loop.time())
        return resp

    async def _handle_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.camera.describe())

    async def _handle_inject(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='the body must be JSON: {"kind": ...}\n') from None
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            raise web.HTTPBadRequest(text='the body needs "kind": a failure or nuisance\n')
        extra = set(body) - {"kind", "layer", "layers", "params"}
        if extra:
            raise web.HTTPBadRequest(text=f"unknown keys: {', '.join(sorted(extra))}\n")
        try:
            layer = _int_or_none(body.get("layer"), "layer")
            layers = _int_or_none(body.get("layers"), "layers")
            params = body.get("params")
            if params is not None and not isinstance(params, dict):
                raise InputError("params must be an object")
            event = self.camera.inject(body["kind"], layer, layers, params)
        except InputError as err:
            raise web.HTTPBadRequest(text=f"{err.message}\n") from None
        return web.json_response(event.public())


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number")
    return value
