"""A virtual Marlin on a real pseudo-terminal, reached through pyserial like a USB printer.

The server keeps the slave end open itself, so a host closing the port is not an error for the
master; a simulated disconnect closes both ends (the host's reads fail as on a pulled cable),
and with `reconnect_after_s` a fresh board appears after that delay, at the same `link` path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pty
import tty
from pathlib import Path

from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.firmware import VirtualMarlin
from printforge.hardware.virtual.machine import ExecutedMove, VirtualMachine
from printforge.models.printer import PrinterProfile

__all__ = ["VirtualPrinterServer"]

log = logging.getLogger(__name__)


class VirtualPrinterServer:
    def __init__(
        self,
        profile: PrinterProfile,
        config: VirtualConfig,
        *,
        link: Path | None = None,
        reconnect_after_s: float | None = None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.link = link
        self.reconnect_after_s = (
            reconnect_after_s if reconnect_after_s is not None else config.reconnect_after_s
        )
        self.moves: list[ExecutedMove] = []  # survives board resets: the whole session's log
        self.machine: VirtualMachine | None = None
        self.firmware: VirtualMarlin | None = None
        self.device: str | None = None
        self.boots = 0
        self._master = -1
        self._slave = -1
        self._pending = bytearray()
        self._reconnect: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def path(self) -> str:
        """Where a host should connect: the stable link if there is one, else the pty."""
        if self.link is not None:
            return str(self.link)
        assert self.device is not None
        return self.device

    async def start(self) -> str:
        if self.firmware is None:
            self._boot()
        return self.path

    def _boot(self) -> None:
        loop = asyncio.get_running_loop()
        master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.device = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self.device, tmp)
            os.replace(tmp, self.link)
        # Faults that end a session fire once; a rebooted board behaves.
        config = (
            self.config
            if self.boots == 0
            else self.config.model_copy(
                update={
                    "disconnect_at_line": None,
                    "thermal_runaway_at_line": None,
                    "heater_fails_at_line": None,
                }
            )
        )
        self.machine = VirtualMachine(
            self.profile,
            sim_speed=config.sim_speed or 1.0,
            extruders=config.extruders,
            move_time_s=config.move_time_s,
            true_limits=config.true_machine.limits(self.profile),
            speed_factor=config.true_machine.speed,
        )
        self.machine.moves = self.moves
        self.firmware = VirtualMarlin(
            self.machine, config, self._write, on_disconnect=self._disconnected
        )
        loop.add_reader(master, self._readable)
        self.firmware.start()
        self.boots += 1
        self.closed.clear()

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:
            return  # no host has the port open
        if data and self.firmware is not None:
            self.firmware.feed(data)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        if self._pending:
            self._pending += data
            return
        try:
            sent = os.write(self._master, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data):
            self._pending += data[sent:]
            asyncio.get_running_loop().add_writer(self._master, self._flush)

    def _flush(self) -> None:
        try:
            sent = os.write(self._master, self._pending)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self._pending)
        del self._pending[:sent]
        if not self._pending:
            asyncio.get_running_loop().remove_writer(self._master)

    def _close_fds(self) -> None:
        loop = asyncio.get_running_loop()
        if self._master >= 0:
            loop.remove_reader(self._master)
            loop.remove_writer(self._master)
            os.close(self._master)
        if self._slave >= 0:
            os.close(self._slave)
        self._master = self._slave = -1
        self._pending.clear()

    def _disconnected(self) -> None:
        self._close_fds()
        self.closed.set()
        firmware = self.firmware
        self._reconnect = asyncio.create_task(self._after_disconnect(firmware))

    async def _after_disconnect(self, firmware: VirtualMarlin | None) -> None:
        if firmware is not None:
            await firmware.stop()
        if self.reconnect_after_s is None:
            return
        await asyncio.sleep(self.reconnect_after_s)
        self.firmware = None
        self._boot()

    async def stop(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None
        if self.firmware is not None:
            await self.firmware.stop()
            self.firmware = None
        self._close_fds()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.link.is_symlink():
                    self.link.unlink()
        self.closed.set()
