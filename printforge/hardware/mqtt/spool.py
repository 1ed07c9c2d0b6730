"""Where a node keeps the G-code it is sent: chunks assembled in order, checked by sha256.

A file is stored under its sha256, so a resent chunk or a job started twice costs nothing and
a corrupted transfer can never reach a printer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from printforge.hardware.mqtt.messages import UploadCommand
from printforge.runtime.errors import BadArtifact, ConnectionLost, InputError

__all__ = ["Spool"]

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 300.0


@dataclass
class _Upload:
    sha256: str
    size: int
    total: int
    part: Path
    next_index: int = 0
    received: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)


class Spool:
    """Uploads in progress and finished files of one node."""

    def __init__(self, folder: Path, *, max_uploads: int = 64, keep_files: int = 16) -> None:
        if keep_files < 1:
            raise ValueError("keep_files must be at least 1")
        self.folder = folder
        self._uploads: dict[str, _Upload] = {}
        self._max_uploads = max_uploads
        self._lock = asyncio.Lock()
        # Printers of one node share files (a farm prints the same part on many): a file stays
        # while any job uses it, and the most recent few stay after that, so a printer whose
        # upload found the file already here can still start it.
        self._keep = keep_files
        self._in_use: Counter[str] = Counter()
        self._recent: OrderedDict[str, None] = OrderedDict()

    def path_of(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.gcode"

    def has(self, sha256: str) -> bool:
        if self.path_of(sha256).is_file():
            self._touch(sha256)
            return True
        return False

    def _touch(self, sha256: str) -> None:
        self._recent[sha256] = None
        self._recent.move_to_end(sha256)

    def acquire(self, sha256: str) -> Path:
        """Mark a file in use by a job; it is not deleted until released."""
        self._in_use[sha256] += 1
        self._touch(sha256)
        return self.path_of(sha256)

    async def add_chunk(self, cmd: UploadCommand) -> dict[str, object]:
        """Append one chunk; returns {"received": n, "complete": bool}."""
        try:
            data = base64.b64decode(cmd.data, validate=True)
        except (binascii.Error, ValueError) as err:
            raise InputError(f"upload {cmd.upload_id}: chunk {cmd.index} is not base64") from err
        async with self._lock:
            if self.has(cmd.sha256):
                self._uploads.pop(cmd.upload_id, None)
                return {"received": cmd.size, "complete": True}
            up = self._uploads.get(cmd.upload_id)
            if up is None:
                if cmd.index != 0:
                    raise InputError(
                        f"upload {cmd.upload_id}: chunk {cmd.index} before chunk 0 (restart it)"
                    )
                if len(self._uploads) >= self._max_uploads:
                    oldest = next(iter(self._uploads))
                    await self._discard(oldest)
                up = _Upload(
                    sha256=cmd.sha256,
                    size=cmd.size,
                    total=cmd.total,
                    part=self.folder / f"{cmd.sha256}.{os.getpid()}.{cmd.upload_id}.part",
                )
                self._uploads[cmd.upload_id] = up
            if cmd.index < up.next_index:
                # A resend of a chunk we already have (its reply was lost): nothing to do.
                return {"received": up.received, "complete": False}
            if cmd.index > up.next_index or cmd.sha256 != up.sha256 or cmd.total != up.total:
                raise InputError(
                    f"upload {cmd.upload_id}: expected chunk {up.next_index}, got {cmd.index}"
                )
            up.hasher.update(data)
            up.received += len(data)
            last = up.next_index + 1 == up.total
            if last:
                del self._uploads[cmd.upload_id]
                digest = up.hasher.hexdigest()
                if digest != up.sha256 or up.received != up.size:
                    await asyncio.to_thread(up.part.unlink, missing_ok=True)
                    raise BadArtifact(
                        f"upload {cmd.upload_id}: sha256 {digest[:12]}… / {up.received} bytes"
                        f" does not match the announced {up.sha256[:12]}… / {up.size} bytes"
                    )
            # One thread hop per chunk: create, append and (last) rename together.
            final = self.path_of(up.sha256) if last else None
            await asyncio.to_thread(_write_chunk, up.part, data, up.next_index == 0, final)
            up.next_index += 1
            if not last:
                return {"received": up.received, "complete": False}
            self._touch(up.sha256)
            return {"received": up.received, "complete": True}

    async def fetch(self, url: str, sha256: str, *, max_bytes: int = 2**31) -> Path:
        """Download `url` into the spool and check it against `sha256`."""
        import aiohttp

        if self.has(sha256):
            return self.path_of(sha256)
        if not url.startswith(("http://", "https://")):
            raise InputError(f"G-code url must be http(s): {url!r}")
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        part = self.folder / f"{sha256}.{os.getpid()}.fetch.part"
        hasher = hashlib.sha256()
        size = 0
        try:
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                # No redirects: the node checked this URL's origin, not where it might point.
                session.get(url, allow_redirects=False) as resp,
            ):
                if resp.status != 200:
                    raise ConnectionLost(f"G-code url answered HTTP {resp.status}")
                f = await asyncio.to_thread(part.open, "wb")
                try:
                    async for chunk in resp.content.iter_chunked(256 * 1024):
                        size += len(chunk)
                        if size > max_bytes:
                            raise BadArtifact(f"G-code at {url} is larger than {max_bytes} bytes")
                        hasher.update(chunk)
                        await asyncio.to_thread(f.write, chunk)
                finally:
                    await asyncio.to_thread(f.close)
        except aiohttp.ClientError as err:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise ConnectionLost(f"cannot fetch G-code: {err}") from err
        except BaseException:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise
        if hasher.hexdigest() != sha256:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise BadArtifact(f"G-code at {url} does not match sha256 {sha256[:12]}…")
        await asyncio.to_thread(os.replace, part, self.path_of(sha256))
        self._touch(sha256)
        return self.path_of(sha256)

    async def release(self, sha256: str) -> None:
        """A job is done with a file; old unused files beyond the newest few are deleted."""
        self._in_use[sha256] -= 1
        if self._in_use[sha256] <= 0:
            del self._in_use[sha256]
        for old in list(self._recent)[: -self._keep or None]:
            if old not in self._in_use:
                del self._recent[old]
                await asyncio.to_thread(self.path_of(old).unlink, missing_ok=True)

    async def _discard(self, upload_id: str) -> None:
        up = self._uploads.pop(upload_id, None)
        if up is not None:
            await asyncio.to_thread(up.part.unlink, missing_ok=True)


def _write_chunk(part: Path, data: bytes, first: bool, final: Path | None) -> None:
    if first:
        part.parent.mkdir(parents=True, exist_ok=True)
    with part.open("wb" if first else "ab") as f:
        f.write(data)
    if final is not None:
        os.replace(part, final)
