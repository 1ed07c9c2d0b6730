"""Options of a Marlin printer on a serial port (`[printers.NAME]` with `driver = "marlin"`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from printforge.hardware.base import DriverConfig

__all__ = ["MarlinConfig"]


class MarlinConfig(DriverConfig):
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0, or a pyserial URL")
    baud: int = Field(115200, gt=0)
    strategy: Literal["send_ahead", "ping_pong"] = Field(
        "send_ahead", description="ping_pong waits for each ok (the reference strategy)"
    )
    rx_buffer_bytes: int | None = Field(
        None, ge=32, description="the firmware's RX ring; default from the printer profile (128)"
    )
    command_slots: int | None = Field(
        None, ge=1, description="Marlin BUFSIZE; default from the printer profile (4)"
    )
    handshake_timeout_s: float = Field(10.0, gt=0, description="give up connecting after this")
    ok_timeout_s: float = Field(
        10.0, gt=0, description="silence with lines in flight before probing for a lost ok"
    )
    temp_interval_s: float = Field(2.0, gt=0, description="temperature report interval")
    resend_sends_ok: bool = Field(
        True, description="Marlin 2.1 follows `Resend:` with `ok`; some 2.0.x builds do not"
    )
    reconnect: bool = Field(True, description="reconnect after the printer vanishes")
    reconnect_max_s: float = Field(30.0, gt=0, description="cap of the reconnect backoff")
    safe_stop_timeout_s: float = Field(30.0, gt=0)
