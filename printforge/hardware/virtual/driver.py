"""The in-process virtual printer: the real MarlinDriver talking to a virtual Marlin in memory.

Mock mode therefore exercises the same protocol code as a USB printer: numbering, checksums,
the send-ahead window, resends and faults. Only the pty is left out. The wire, like the moves
and heaters, runs `sim_speed` times faster than real time, so a print finishes in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from printforge.hardware.marlin.config import MarlinConfig
from printforge.hardware.marlin.driver import MarlinDriver
from printforge.hardware.marlin.link import LineProtocol
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.firmware import VirtualMarlin
from printforge.hardware.virtual.machine import ExecutedMove, VirtualMachine
from printforge.models.printer import MaterialProfile, PrinterProfile

__all__ = ["VirtualDriver"]

log = logging.getLogger(__name__)

# Executed moves kept in `moves` (between this many and twice as many, newest): enough for any
# test's print, and a mock farm that runs for weeks does not keep every move it ever made.
MOVES_KEPT = 20_000


class _MemoryTransport:
    """Stands in for the serial transport: host bytes go straight to the virtual board."""

    def __init__(self, protocol: LineProtocol) -> None:
        self.protocol = protocol
        self.firmware: VirtualMarlin | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed and self.firmware is not None:
            self.firmware.feed(data)

    def deliver(self, data: bytes) -> None:
        if not self.closed:
            self.protocol.data_received(data)

    def vanish(self) -> None:
        """The board dropped off the bus: the host sees its port fail."""
        self._lose(ConnectionError("virtual printer disconnected"))

    def close(self) -> None:
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, exc)


class VirtualDriver(MarlinDriver):
    kind: ClassVar[str] = "virtual"
    simulated: ClassVar[bool] = True
    Config: ClassVar[type[VirtualConfig]] = VirtualConfig  # type: ignore[assignment]

    def __init__(
        self,
        name: str,
        config: VirtualConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        speed = config.sim_speed or 1.0
        host = MarlinConfig(
            port=f"virtual:{name}",
            baud=max(1, round(config.baud * speed)),
            # Host timeouts follow the simulated clock, with a floor for event-loop jitter.
            ok_timeout_s=max(0.5, 10.0 / speed),
            temp_interval_s=max(0.5, 2.0 / speed),
            handshake_timeout_s=5.0,
            reconnect=config.reconnect_after_s is not None,
            reconnect_max_s=max(0.2, (config.reconnect_after_s or 1.0) / speed),
            safe_stop_timeout_s=max(5.0, 30.0 / speed),
            # The watchdog's periods are the printer's seconds, which pass `speed` times faster.
            thermal=config.thermal.scaled(speed),
        )
        super().__init__(name, host, profile, material)
        self.config = config
        self.vcfg = config
        self.speed = speed
        self.moves: list[ExecutedMove] = []  # every board's executed moves, in order (bounded)
        self.machine: VirtualMachine | None = None
        self.board: VirtualMarlin | None = None  # `firmware` is what M115 reported
        self._boots = 0

    async def _open(self) -> None:
        cfg = self.vcfg
        update: dict[str, Any] = {
            "baud": self.cfg.baud,
            "latency_s": cfg.latency_s / self.speed,
            "busy_interval_s": cfg.busy_interval_s / self.speed if cfg.busy_interval_s else None,
        }
        if self._boots:
            # Faults that end a session fire once; the board that comes back behaves.
            update |= {
                "disconnect_at_line": None,
                "thermal_runaway_at_line": None,
                "heater_fails_at_line": None,
            }
        board = cfg.model_copy(update=update)
        machine = VirtualMachine(
            self.profile,
            sim_speed=self.speed,
            extruders=cfg.extruders,
            move_time_s=cfg.move_time_s,
            true_limits=cfg.true_machine.limits(self.profile),
            speed_factor=cfg.true_machine.speed,
        )
        machine.moves = self.moves
        machine.moves_limit = MOVES_KEPT
        protocol = LineProtocol(self._on_line, self._on_connection_lost)
        transport = _MemoryTransport(protocol)
        firmware = VirtualMarlin(
            machine,
            board,
            transport.deliver,
            on_disconnect=transport.vanish,
            line_label=self._job_line,
        )
        transport.firmware = firmware
        protocol.connection_made(transport)  # type: ignore[arg-type]
        self._transport, self._protocol = transport, protocol
        self.machine, self.board = machine, firmware
        self._boots += 1
        firmware.start()

    def _prior_pace(self) -> float:
        return 1.0 / self.speed  # the simulated clock runs `speed` times faster

    def _job_line(self, number: int) -> int | None:
        engine = self.engine
        return engine.job_line(number) if engine is not None else None

    async def _close_link(self) -> None:
        firmware = self.board
        await super()._close_link()
        if firmware is not None:
            await firmware.stop()

    def _on_connection_lost(self, protocol: LineProtocol, exc: Exception | None) -> None:
        firmware = self.board
        if protocol is self._protocol and firmware is not None:
            self._spawn(self._stop_board(firmware), "board-stop")
        super()._on_connection_lost(protocol, exc)

    @staticmethod
    async def _stop_board(firmware: VirtualMarlin) -> None:
        with contextlib.suppress(Exception):
            await firmware.stop()
