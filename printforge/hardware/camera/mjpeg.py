"""MJPEG over HTTP (`multipart/x-mixed-replace`), as ustreamer, mjpg-streamer, crowsnest and
OctoPrint's webcam proxy serve it: pure parsing and framing, no I/O.

Each part is a boundary line, headers, a blank line and one JPEG. Servers differ in the details
this parser accepts: `Content-Length` present (ustreamer, mjpg-streamer) or not (many IP
cameras: the part then ends at the next boundary), a boundary parameter quoted or not, and a
boundary declared with its leading dashes (`boundary=--frame`) and used either way.
"""

from __future__ import annotations

import re

__all__ = [
    "JPEG_EOI",
    "JPEG_SOI",
    "MultipartJpegParser",
    "boundary_of",
    "is_jpeg",
    "part_bytes",
    "stream_content_type",
]

JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
MAX_PART_BYTES = 16 * 1024 * 1024  # a 4K JPEG is a few MB; beyond this it is not a frame
MAX_HEADER_BYTES = 8192

_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))""", re.IGNORECASE)


def boundary_of(content_type: str) -> str | None:
    """The boundary of a `multipart/x-mixed-replace; boundary=...` header, else None."""
    if not content_type.lower().lstrip().startswith("multipart/"):
        return None
    found = _BOUNDARY.search(content_type)
    if found is None:
        return None
    return found.group(1) or found.group(2)


def is_jpeg(data: bytes) -> bool:
    """Starts with a JPEG's start-of-image marker and has its end-of-image near the end."""
    return data[:2] == JPEG_SOI and JPEG_EOI in data[-64:]


def stream_content_type(boundary: str) -> str:
    return f"multipart/x-mixed-replace; boundary={boundary}"


def part_bytes(boundary: str, jpeg: bytes) -> bytes:
    """One part of a stream, as mjpg-streamer writes it (with Content-Length)."""
    head = (
        f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    ).encode("ascii")
    return head + jpeg + b"\r\n"


class MultipartJpegParser:
    """Feed it bytes as they arrive; it returns the complete JPEG frames found so far."""

    def __init__(self, boundary: str) -> None:
        # `boundary=--frame` may be used as `----frame` (the RFC) or as `--frame` (in practice).
        names = {boundary, boundary[2:]} if boundary.startswith("--") else {boundary}
        self._delimiters = sorted({f"--{n}".encode() for n in names}, key=len, reverse=True)
        self._buf = bytearray()
        self._length: int | None = None
        self._in_body = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            if not self._in_body and not self._read_headers():
                break
            frame = self._read_body()
            if frame is None:
                break
            if frame:
                frames.append(frame)
        return frames

    def _find_delimiter(self, start: int = 0) -> tuple[int, int]:
        """Position and length of the earliest boundary line at or after `start`."""
        best = (-1, 0)
        for d in self._delimiters:
            at = self._buf.find(d, start)
            while at > 0 and self._buf[at - 1 : at] not in (b"\n",):
                at = self._buf.find(d, at + 1)  # a boundary starts a line
            if at >= 0 and (best[0] < 0 or at < best[0]):
                best = (at, len(d))
        return best

    def _read_headers(self) -> bool:
        at, size = self._find_delimiter()
        if at < 0:
            # Keep only a tail that could be the start of a boundary split across reads.
            keep = max(len(d) for d in self._delimiters) + 2
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            return False
        end = self._buf.find(b"\r\n\r\n", at)
        sep = 4
        alt = self._buf.find(b"\n\n", at)
        if alt >= 0 and (end < 0 or alt < end):
            end, sep = alt, 2
        if end < 0:
            if len(self._buf) - at > MAX_HEADER_BYTES:
                raise ValueError("MJPEG part headers longer than 8 KiB: not an MJPEG stream")
            return False
        header = bytes(self._buf[at + size : end]).decode("latin-1")
        self._length = None
        for line in header.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                try:
                    self._length = int(value.strip())
                except ValueError:
                    raise ValueError(f"bad Content-Length in an MJPEG part: {value!r}") from None
                if not 0 <= self._length <= MAX_PART_BYTES:
                    raise ValueError(f"MJPEG part of {self._length} bytes: not a camera frame")
        del self._buf[: end + sep]
        self._in_body = True
        return True

    def _read_body(self) -> bytes | None:
        if self._length is not None:
            if len(self._buf) < self._length:
                return None
            frame = bytes(self._buf[: self._length])
            del self._buf[: self._length]
        else:
            at, _ = self._find_delimiter()
            if at < 0:
                if len(self._buf) > MAX_PART_BYTES:
                    raise ValueError("an MJPEG part without Content-Length never ended")
                return None
            frame = bytes(self._buf[:at]).rstrip(b"\r\n")
            del self._buf[:at]
        self._in_body = False
        return frame
