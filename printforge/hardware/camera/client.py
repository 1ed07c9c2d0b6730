"""Fetch pictures from a camera: one JPEG from a snapshot URL, or the next frame of an MJPEG
stream. Real cameras and the virtual camera go through this same client.

Every fetch runs under a timeout; failures are printforge errors: `OperationTimeout` and
`ConnectionLost` (transient: the camera may be back soon) or `BadArtifact` (what came back is
not a picture, or the camera refused: the URL is wrong). URLs are shown without credentials
or query strings, which often carry tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp

from printforge.hardware.camera.config import CameraConfig
from printforge.hardware.camera.mjpeg import MultipartJpegParser, boundary_of, is_jpeg
from printforge.runtime.errors import BadArtifact, ConnectionLost, OperationTimeout

__all__ = ["CameraClient", "shown_url"]

READ_CHUNK = 64 * 1024
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024


def shown_url(url: str) -> str:
    """A URL fit for logs and errors: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class CameraClient:
    """Pictures from one camera. Use as `async with CameraClient(...) as cam`."""

    def __init__(
        self,
        snapshot_url: str | None = None,
        stream_url: str | None = None,
        *,
        timeout_s: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if snapshot_url is None and stream_url is None:
            raise ValueError("a camera client needs a snapshot URL or a stream URL")
        self.snapshot_url = snapshot_url
        self.stream_url = stream_url
        self.timeout_s = timeout_s
        self._session = session
        self._own_session = session is None

    @classmethod
    def from_config(
        cls, config: CameraConfig, *, session: aiohttp.ClientSession | None = None
    ) -> CameraClient:
        return cls(
            config.snapshot_url, config.stream_url, timeout_s=config.timeout_s, session=session
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # pictures ------------------------------------------------------------------------------
    async def snapshot(self) -> bytes:
        """One JPEG: from the snapshot URL, or else the next frame of the stream."""
        if self.snapshot_url is None:
            return await self.next_frame()
        url = self.snapshot_url
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client().get(url) as resp:
                    self._check_status(resp, url)
                    ctype = resp.headers.get("Content-Type", "")
                    if boundary_of(ctype) is not None:
                        # Some cameras answer a snapshot URL with their stream: take a frame.
                        return await self._first_frame(resp, url)
                    data = await resp.content.read(MAX_SNAPSHOT_BYTES + 1)
        except TimeoutError:
            raise OperationTimeout(
                f"camera {shown_url(url)} sent no snapshot within {self.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as err:
            raise ConnectionLost(f"camera {shown_url(url)}: {_reason(err)}") from err
        return self._jpeg(data, url)

    async def next_frame(self) -> bytes:
        """The next complete frame of the MJPEG stream (opens and closes the stream)."""
        async with contextlib.aclosing(self.frames()) as frames:
            async for frame in frames:
                return frame
        raise ConnectionLost(f"camera {shown_url(self._stream())} ended its stream")

    async def frames(self) -> AsyncGenerator[bytes, None]:
        """Frames of the MJPEG stream as they come; each must arrive within the timeout."""
        url = self._stream()
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self._client().get(url)
        except TimeoutError:
            raise OperationTimeout(
                f"camera {shown_url(url)} did not answer within {self.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as err:
            raise ConnectionLost(f"camera {shown_url(url)}: {_reason(err)}") from err
        try:
            self._check_status(resp, url)
            boundary = boundary_of(resp.headers.get("Content-Type", ""))
            if boundary is None:
                raise BadArtifact(
                    f"camera {shown_url(url)} did not send an MJPEG stream"
                    f" (Content-Type {resp.headers.get('Content-Type', 'none')!r})"
                )
            parser = MultipartJpegParser(boundary)
            while True:
                frame = await self._read_frame(resp, parser, url)
                yield frame
        finally:
            resp.close()  # an endless stream is never read to its end: drop the connection

    def _stream(self) -> str:
        if self.stream_url is None:
            raise BadArtifact("this camera has no stream_url")
        return self.stream_url

    async def _first_frame(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        boundary = boundary_of(resp.headers.get("Content-Type", ""))
        assert boundary is not None
        return await self._read_frame(resp, MultipartJpegParser(boundary), url)

    async def _read_frame(
        self, resp: aiohttp.ClientResponse, parser: MultipartJpegParser, url: str
    ) -> bytes:
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    chunk = await resp.content.readany()
                    if not chunk:
                        raise ConnectionLost(f"camera {shown_url(url)} ended its stream")
                    try:
                        frames = parser.feed(chunk)
                    except ValueError as err:
                        raise BadArtifact(f"camera {shown_url(url)}: {err}") from None
                    if frames:
                        # Only the newest matters; older ones in the same read are stale.
                        return self._jpeg(frames[-1], url)
        except TimeoutError:
            raise OperationTimeout(
                f"camera {shown_url(url)} sent no frame within {self.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as err:
            raise ConnectionLost(f"camera {shown_url(url)}: {_reason(err)}") from err

    @staticmethod
    def _check_status(resp: aiohttp.ClientResponse, url: str) -> None:
        if resp.status >= 500:
            raise ConnectionLost(f"camera {shown_url(url)} answered {resp.status} {resp.reason}")
        if resp.status >= 400:
            raise BadArtifact(f"camera {shown_url(url)} answered {resp.status} {resp.reason}")

    @staticmethod
    def _jpeg(data: bytes, url: str) -> bytes:
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise BadArtifact(f"camera {shown_url(url)} sent more than 16 MiB for one picture")
        if not is_jpeg(data):
            raise BadArtifact(f"camera {shown_url(url)} sent something that is not a JPEG")
        return data


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    with contextlib.suppress(Exception):
        if isinstance(err, aiohttp.ClientConnectorError):
            text = f"cannot connect ({err.os_error.strerror or err.os_error})"
    return text
