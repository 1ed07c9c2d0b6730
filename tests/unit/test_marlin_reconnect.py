"""The reconnect backoff: exponential, jittered, and never above reconnect_max_s."""

from __future__ import annotations

import pytest

from printforge.hardware.marlin.driver import reconnect_wait


@pytest.mark.parametrize(
    ("delay", "jitter", "expected"),
    [
        (0.5, 0.0, 0.25),  # half the delay at the low end of the jitter
        (0.5, 0.999, 0.7495),
        (16.0, 0.5, 16.0),
        (30.0, 0.999, 30.0),  # was 44.97: the jitter went past the cap
        (30.0, 0.0, 15.0),
    ],
)
def test_reconnect_wait_is_jittered_and_capped(
    delay: float, jitter: float, expected: float
) -> None:
    assert reconnect_wait(delay, 30.0, jitter) == pytest.approx(expected)


def test_a_failed_serial_write_is_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A board pulled off the bus fails a write with EIO: serial_asyncio_fast reports it to
    the loop's exception handler (a traceback on `asyncio`), and the driver already reports
    the disconnect itself through `connection_lost`."""
    import asyncio
    import logging

    from printforge.hardware.marlin.link import LineProtocol

    loop = asyncio.new_event_loop()
    try:
        protocol = LineProtocol(lambda _text: None, lambda _protocol, _exc: None)
        with caplog.at_level(logging.DEBUG):
            loop.call_exception_handler(
                {
                    "message": "Fatal write error on serial transport",
                    "exception": OSError(5, "Input/output error"),
                    "protocol": protocol,
                }
            )
            loop.call_exception_handler({"message": "something else broke"})
    finally:
        loop.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["something else broke"]
