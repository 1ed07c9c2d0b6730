"""The MJPEG (multipart/x-mixed-replace) parser: the framings real camera servers use."""

from __future__ import annotations

import pytest

from printforge.hardware.camera.mjpeg import (
    MultipartJpegParser,
    boundary_of,
    is_jpeg,
    part_bytes,
)

# Not real pictures, only what the parser looks at: start and end markers around a body that
# holds CR LF and dashes, as compressed data does.
FRAMES = [
    b"\xff\xd8first\r\n--not-a-boundary\r\n\xff\xd9",
    b"\xff\xd8" + bytes(range(256)) * 3 + b"\xff\xd9",
    b"\xff\xd8third\xff\xd9",
]


def _with_length(boundary: str) -> bytes:
    """ustreamer / mjpg-streamer: each part says its Content-Length."""
    return b"".join(part_bytes(boundary, f) for f in FRAMES)


def _without_length(boundary: str) -> bytes:
    """Many IP cameras: no Content-Length, the part ends at the next boundary line."""
    out = b""
    for f in FRAMES:
        out += f"--{boundary}\r\nContent-Type: image/jpeg\r\n\r\n".encode() + f + b"\r\n"
    return out + f"--{boundary}\r\n".encode()


def _bare_lf(boundary: str) -> bytes:
    """Headers ended by bare LF, and an X-Timestamp header as ustreamer sends."""
    out = b""
    for f in FRAMES:
        head = f"--{boundary}\nContent-Type: image/jpeg\nContent-Length: {len(f)}\n"
        out += (head + "X-Timestamp: 17.5\n\n").encode() + f + b"\n"
    return out


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("multipart/x-mixed-replace;boundary=boundarydonotcross", "boundarydonotcross"),
        ('multipart/x-mixed-replace; boundary="frame boundary"', "frame boundary"),
        ("multipart/x-mixed-replace; boundary=--myboundary; charset=x", "--myboundary"),
        ("Multipart/X-Mixed-Replace; BOUNDARY=abc", "abc"),
        ("image/jpeg", None),
        ("multipart/x-mixed-replace", None),
    ],
)
def test_boundary_of(content_type: str, expected: str | None) -> None:
    assert boundary_of(content_type) == expected


@pytest.mark.parametrize("framing", [_with_length, _without_length, _bare_lf])
@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_frames_come_out_whole_however_the_bytes_arrive(framing: object, chunk: int) -> None:
    data = framing("boundarydonotcross")  # type: ignore[operator]
    parser = MultipartJpegParser("boundarydonotcross")
    got: list[bytes] = []
    for start in range(0, len(data), chunk):
        got += parser.feed(data[start : start + chunk])
    assert got == FRAMES


def test_boundary_declared_with_its_dashes_is_found_either_way() -> None:
    # `boundary=--frame`: the RFC delimiter is `----frame`; many servers write `--frame`.
    rfc = b"".join(part_bytes("--frame", f) for f in FRAMES)
    loose = rfc.replace(b"----frame", b"--frame")
    for data in (rfc, loose):
        assert MultipartJpegParser("--frame").feed(data) == FRAMES


def test_a_preamble_before_the_first_boundary_is_skipped() -> None:
    data = b"HTTP junk a proxy left\r\n" + _with_length("b")
    assert MultipartJpegParser("b").feed(data) == FRAMES


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"--b\r\nContent-Length: lots\r\n\r\n", "bad Content-Length"),
        (b"--b\r\nContent-Length: 99999999999\r\n\r\n", "not a camera frame"),
        (b"--b\r\n" + b"X: y\r\n" * 2000, "longer than 8 KiB"),
    ],
)
def test_garbage_is_refused_with_the_reason(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        MultipartJpegParser("b").feed(data)


def test_is_jpeg() -> None:
    assert is_jpeg(FRAMES[0])
    assert not is_jpeg(b"<html>not found</html>")
    assert not is_jpeg(b"\xff\xd8 cut short")
