"""The serial link: pyserial-asyncio-fast opened exclusively, bytes split into lines."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from typing import Any

from printforge.runtime.errors import ConnectionLost, InputError

__all__ = ["LineProtocol", "open_serial"]

OPEN_TIMEOUT_S = 5.0


class _QuietSerialErrors(logging.Filter):
    """serial_asyncio_fast reports a failed read or write (a board pulled off the bus, EIO) to
    the loop's exception handler, which logs a traceback on the `asyncio` logger. For our
    ports the same error reaches `LineProtocol.connection_lost`, and the driver reports the
    disconnect in one line; the traceback only frightened users (and failed a CLI test)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        ours = message.startswith("Fatal") and "serial transport" in message
        if ours and LineProtocol.__qualname__ in message:
            log.debug("%s", message.splitlines()[0], exc_info=record.exc_info)
            return False
        return True


log = logging.getLogger(__name__)
logging.getLogger("asyncio").addFilter(_QuietSerialErrors())


class LineProtocol(asyncio.Protocol):
    """Calls `on_line` for every non-empty line and `on_lost` once the port is gone."""

    def __init__(
        self,
        on_line: Callable[[str], None],
        on_lost: Callable[[LineProtocol, Exception | None], None],
    ) -> None:
        self.on_line = on_line
        self.on_lost = on_lost
        self.buffer = bytearray()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            raw = self.buffer[:end]
            del self.buffer[: end + 1]
            text = raw.decode("ascii", "replace").strip()
            if text:
                self.on_line(text)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost(self, exc)


async def open_serial(port: str, baud: int, protocol: LineProtocol) -> Any:
    """Open `port` exclusively for `protocol`; a clear error when it is missing or taken."""
    import serial
    import serial_asyncio_fast

    if "://" not in port and not await asyncio.to_thread(os.path.exists, port):
        raise InputError(f"serial port {port} does not exist (is the printer plugged in?)")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                loop, lambda: protocol, port, baudrate=baud, exclusive=True
            )
    except TimeoutError as err:
        raise ConnectionLost(f"opening serial port {port} timed out") from err
    except (serial.SerialException, OSError, ValueError) as err:
        text = str(err)
        # pyserial wraps the OSError, so its errno only shows in the text.
        if "Inappropriate ioctl" in text or f"[Errno {errno.ENOTTY}]" in text:
            raise InputError(
                f"{port} is not a serial device (a file or another kind of device);"
                " give the printer's port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."
            ) from err
        if "Permission denied" in text or f"[Errno {errno.EACCES}]" in text:
            raise InputError(
                f"no permission to open serial port {port}: add your user to the group that"
                " owns it (`ls -l` shows it, often dialout or uucp), then log in again"
            ) from err
        if "lock" in text.lower() or "busy" in text.lower():
            raise ConnectionLost(
                f"serial port {port} is busy (another program has it open)"
            ) from err
        raise ConnectionLost(f"cannot open serial port {port}: {text}") from err
    return transport
