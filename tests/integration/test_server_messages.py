"""The server's log as an operator reads it (issue 18): a client that leaves is not an error."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.serve_process import ServeProcess

KEY = "pf-test-messages-key-0123456789"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    # --debug: the log shows what the server made of each departure.
    proc = ServeProcess(tmp_path / "data", KEY, extra_args=("--debug",)).start()
    yield proc
    proc.stop()


def _leave_mid_handshake(port: int) -> None:
    """A browser tab closed while its websocket upgrade is on the wire: request, then RST."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {KEY}\r\n\r\n"
            ).encode()
        )
        # Linger 0: close() resets the connection instead of a polite FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_browser_leaving_mid_handshake_is_not_an_error(server: ServeProcess) -> None:
    # Whether the server sees the reset before it answers depends on the scheduler, so leave
    # until it has seen one (each attempt is a real departure), then read what it logged.
    seen = ""
    for _ in range(500):
        _leave_mid_handshake(server.port)
        seen = server.log.read_text()
        if "left during GET /ws" in seen or "ConnectionResetError" in seen:
            break
    assert "ConnectionResetError" not in seen and " ERROR " not in seen, seen[-3000:]
    assert "DEBUG printforge.server.http: client 127.0.0.1 left during GET /ws" in seen


def test_an_unexpected_error_is_one_error_line_and_a_debug_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from printforge.server.rpc import error_for

    caplog.set_level(logging.DEBUG, logger="printforge.server.rpc")
    try:
        {}["missing"]  # a real KeyError with a real traceback
    except KeyError as err:
        wire = error_for(err)
    assert wire.message == "internal error" and wire.data == {"error": "KeyError"}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "KeyError" in errors[0].getMessage()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(debug) == 1
