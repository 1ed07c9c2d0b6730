"""The camera client against cameras that are not ours: a tiny MJPEG and snapshot server written
here, framing its stream the ways real servers do (mjpg-streamer and ustreamer with
Content-Length, IP cameras without it, a boundary declared with its dashes), and failing the
ways real ones fail. The virtual camera goes through this same client (test_virtual_camera)."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from printforge.hardware.camera.client import CameraClient, shown_url
from printforge.hardware.camera.config import CameraConfig
from printforge.runtime.errors import BadArtifact, ConnectionLost, OperationTimeout


def _jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 255 - shade, 90)).save(out, "JPEG")
    return out.getvalue()


FRAMES = [_jpeg(40 * i) for i in range(1, 6)]


class TinyCamera:
    """Serves FRAMES in several framings; `release` ends the streams and the stalled reply."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/snapshot.jpg", self.snapshot)
        app.router.add_get("/mjpg-streamer", self.with_length)
        app.router.add_get("/ipcam", self.without_length)
        app.router.add_get("/dashes", self.dashes)
        app.router.add_get("/snapshot-is-a-stream", self.with_length)
        app.router.add_get("/html", self.html)
        app.router.add_get("/stall", self.stall)
        app.router.add_get("/not-multipart", self.snapshot)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def snapshot(self, request: web.Request) -> web.Response:
        return web.Response(body=FRAMES[0], content_type="image/jpeg")

    async def _stream(
        self, request: web.Request, ctype: str, parts: list[bytes]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
        await self.release.wait()  # a live stream does not end
        return resp

    async def with_length(self, request: web.Request) -> web.StreamResponse:
        parts = [
            b"--boundarydonotcross\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n"
            b"X-Timestamp: 1.0\r\n\r\n" % len(f) + f + b"\r\n"
            for f in FRAMES
        ]
        return await self._stream(
            request, "multipart/x-mixed-replace;boundary=boundarydonotcross", parts
        )

    async def without_length(self, request: web.Request) -> web.StreamResponse:
        parts = [b"--my frame\r\nContent-Type: image/jpeg\r\n\r\n" + f + b"\r\n" for f in FRAMES]
        parts.append(b"--my frame\r\n")
        return await self._stream(request, 'multipart/x-mixed-replace; boundary="my frame"', parts)

    async def dashes(self, request: web.Request) -> web.StreamResponse:
        # Declared `--myboundary`, used as `--myboundary` (not the RFC's `----myboundary`).
        parts = [
            b"--myboundary\r\nContent-Length: %d\r\n\r\n" % len(f) + f + b"\r\n" for f in FRAMES
        ]
        return await self._stream(
            request, "multipart/x-mixed-replace; boundary=--myboundary", parts
        )

    async def html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    async def stall(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace;boundary=b"})
        await resp.prepare(request)
        await self.release.wait()
        return resp


@pytest_asyncio.fixture
async def camera() -> AsyncIterator[TinyCamera]:
    cam = TinyCamera()
    await cam.start()
    try:
        yield cam
    finally:
        async with asyncio.timeout(10):
            await cam.stop()


@pytest.mark.asyncio
async def test_snapshot_url(camera: TinyCamera) -> None:
    async with CameraClient(snapshot_url=camera.url + "/snapshot.jpg") as client:
        assert await client.snapshot() == FRAMES[0]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/mjpg-streamer", "/ipcam", "/dashes"])
async def test_every_framing_gives_the_same_frames(camera: TinyCamera, path: str) -> None:
    async with CameraClient(stream_url=camera.url + path, timeout_s=10) as client:
        assert await client.next_frame() in FRAMES
        assert await client.snapshot() in FRAMES  # no snapshot URL: a frame of the stream
        got = []
        async for frame in client.frames():
            got.append(frame)
            if frame == FRAMES[-1]:
                break
        assert got[-1] == FRAMES[-1] and set(got) <= set(FRAMES)


@pytest.mark.asyncio
async def test_a_snapshot_url_that_answers_with_a_stream(camera: TinyCamera) -> None:
    async with CameraClient(snapshot_url=camera.url + "/snapshot-is-a-stream") as client:
        assert await client.snapshot() in FRAMES


@pytest.mark.asyncio
async def test_from_config_is_the_same_client(camera: TinyCamera) -> None:
    config = CameraConfig(stream_url=camera.url + "/mjpg-streamer", timeout_s=5)
    async with CameraClient.from_config(config) as client:
        assert client.timeout_s == 5
        assert await client.snapshot() in FRAMES


@pytest.mark.asyncio
async def test_failures_are_named(camera: TinyCamera) -> None:
    async with CameraClient(snapshot_url=camera.url + "/html") as client:
        with pytest.raises(BadArtifact, match="not a JPEG"):
            await client.snapshot()
    async with CameraClient(snapshot_url=camera.url + "/nothing-here") as client:
        with pytest.raises(BadArtifact, match="answered 404"):
            await client.snapshot()
    async with CameraClient(stream_url=camera.url + "/not-multipart") as client:
        with pytest.raises(BadArtifact, match="did not send an MJPEG stream"):
            await client.next_frame()
    async with CameraClient(stream_url=camera.url + "/stall", timeout_s=0.5) as client:
        with pytest.raises(OperationTimeout, match=r"sent no frame within 0\.5 s"):
            await client.next_frame()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, not listening: the connection is refused
        async with CameraClient(snapshot_url=f"http://127.0.0.1:{closed}/snap") as client:
            with pytest.raises(ConnectionLost, match="cannot connect"):
                await client.snapshot()


def test_credentials_and_tokens_never_reach_a_message() -> None:
    url = "http://admin:hunter2@cam.lan:8080/snapshot.cgi?token=abc#x"
    assert shown_url(url) == "http://cam.lan:8080/snapshot.cgi"
