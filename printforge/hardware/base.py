"""The printer driver contract and the lazy driver registry."""

from __future__ import annotations

import asyncio
import importlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from printforge.models.printer import (
    MaterialProfile,
    PrinterProfile,
    PrinterState,
    PrinterStatus,
    PrintProgress,
)
from printforge.runtime.errors import ConfigError, PrinterError

__all__ = ["DRIVERS", "DriverConfig", "LinkFacts", "PrinterDriver", "StatusListener", "load_driver"]

StatusListener = Callable[[PrinterStatus], None]


class DriverConfig(BaseModel):
    """Base of each driver's own config section; unknown keys fail at start-up."""

    model_config = ConfigDict(extra="forbid")


class LinkFacts(BaseModel):
    """What a print's summary says about the printer beyond its progress."""

    firmware: str | None = None
    watchdog_probes: int = 0


class PrinterDriver(ABC):
    """One printer. `__init__` does no I/O; `start()`/`stop()` are idempotent.

    A driver streams a G-code file with `stream()`, yielding progress as the printer
    acknowledges lines. It raises PrinterDisconnected (job -> interrupted) or PrinterFault
    (job -> failed, printer faulted) from `runtime.errors`; cancellation of the stream
    task runs the safe stop.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[DriverConfig]] = DriverConfig
    # Drivers of simulated machines say so; a real driver talking to a simulator (a node's
    # `--sim-moonraker`) is marked by whoever started the simulator (`mark_simulated`).
    simulated: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        config: DriverConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.profile = profile
        self.material = material
        self.connected = asyncio.Event()
        self._listeners: list[StatusListener] = []
        self._status = PrinterStatus(
            id=name,
            driver=self.kind,
            profile=profile.name,
            material=material.name if material else None,
            simulated=self.simulated,
        )

    # lifecycle -----------------------------------------------------------------------------
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # printing ------------------------------------------------------------------------------
    @abstractmethod
    async def send(self, line: str) -> None:
        """Send one command outside a job (and wait until the printer accepted it)."""

    @abstractmethod
    def stream(self, path: Path, *, job_id: str | None = None) -> AsyncIterator[PrintProgress]:
        """Stream a G-code file; yields progress; returns when every line was acknowledged."""

    @abstractmethod
    async def pause(self) -> None: ...

    @abstractmethod
    async def resume(self) -> None: ...

    @abstractmethod
    async def cancel(self) -> None: ...

    @abstractmethod
    async def emergency_stop(self) -> None: ...

    # objects of a plate ----------------------------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        """The labelled objects of the print running now: `[{id, name, cancelled}]`."""
        return [o.model_dump() for o in self._status.objects]

    async def cancel_object(self, ref: str | int) -> dict[str, Any]:
        """Stop printing one object of the plate (by id or name); the others print on.

        Drivers whose printers cannot leave out one object raise `unsupported`.
        """
        raise PrinterError(
            f"printer {self.name}: cancelling one object is not supported by the"
            f" {self.kind} driver",
            code="unsupported",
        )

    async def confirm_bed_clear(self) -> None:
        """A person removed the last print: a finished printer becomes idle again."""
        if self._status.state is PrinterState.FINISHED:
            self._set_status(state=PrinterState.IDLE, job_id=None, progress=None)

    def mark_simulated(self) -> None:
        """This driver talks to a simulator: everybody who sees the printer is told."""
        self._set_status(simulated=True)

    # status --------------------------------------------------------------------------------
    def link_facts(self) -> LinkFacts:
        """What the driver learnt of the machine and its link (the firmware, the host's lost-ok
        probes), for a print's summary; drivers that learn nothing say nothing."""
        return LinkFacts()

    def status(self) -> PrinterStatus:
        return self._status

    def add_listener(self, listener: StatusListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def load_material(self, material: MaterialProfile) -> None:
        """A person loaded another filament: the gate's limits and the status follow it."""
        self.material = material
        self._set_status(material=material.name)

    def _set_status(self, **changes: Any) -> None:
        from datetime import UTC, datetime

        self._status = self._status.model_copy(update={**changes, "updated_at": datetime.now(UTC)})
        for listener in list(self._listeners):
            listener(self._status)


# kind -> "module:Class". Imported only when a printer of that kind is configured.
DRIVERS: dict[str, str] = {
    "virtual": "printforge.hardware.virtual.driver:VirtualDriver",
    "marlin": "printforge.hardware.marlin.driver:MarlinDriver",
    "moonraker": "printforge.hardware.mqtt.moonraker:MoonrakerDriver",
    "bambu": "printforge.hardware.mqtt.bambu:BambuDriver",
    "bus": "printforge.hardware.mqtt.remote:RemotePrinterDriver",
}


def load_driver(kind: str) -> type[PrinterDriver]:
    """Resolve a driver class by kind: the built-in table first, then entry points."""
    target = DRIVERS.get(kind)
    if target is None:
        for ep in entry_points(group="printforge.drivers"):
            if ep.name == kind:
                target = ep.value
                break
    if target is None:
        known = ", ".join(sorted(DRIVERS))
        raise ConfigError(f"unknown printer driver {kind!r} (known: {known})")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"printer driver {kind!r} is not available: {err}") from err
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, PrinterDriver)):
        raise ConfigError(f"{target} is not a PrinterDriver")
    return cls
