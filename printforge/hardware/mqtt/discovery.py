"""Printers of other hosts appear in this process's PrinterManager as they appear on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from printforge.hardware.base import PrinterDriver
from printforge.hardware.entry import PrinterEntry
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.farm import FarmClient
from printforge.hardware.mqtt.messages import StatusMessage
from printforge.hardware.mqtt.remote import RemoteConfig, RemotePrinterDriver
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.health import HealthRegistry

__all__ = ["BusDiscovery", "DiscoverySettings", "PrinterRegistry"]


class DiscoverySettings(Protocol):
    """What discovery reads of the settings tree (`printforge.settings.Settings` has it all);
    a protocol, because the tree is composed on a floor above the hardware."""

    bus: BusSettings
    default_material: str
    printer_profiles: dict[str, PrinterProfile]
    materials: dict[str, MaterialProfile]

    def material_key(self, name: str) -> str | None: ...

    def material(self, name: str) -> MaterialProfile: ...


class PrinterRegistry(Protocol):
    """The printers of this process that discovery keeps in step with the bus (the
    orchestrator's PrinterManager), seen from the hardware floor."""

    health: HealthRegistry

    async def add(self, driver: PrinterDriver, entry: PrinterEntry | None = None) -> None: ...

    async def remove(self, name: str) -> None: ...

    def names(self) -> list[str]: ...

    def get(self, name: str) -> PrinterDriver: ...


log = logging.getLogger(__name__)


class BusDiscovery:
    """Subscribes to `{prefix}/printers/+/status` and keeps the manager in step with the farm.

    A printer seen for the first time is added as a RemotePrinterDriver (named by its bus id);
    an offline status (the node's last will) leaves it attached but offline, so the job it was
    running is interrupted and nothing dispatches to it; an empty retained status (the printer
    was decommissioned) removes it.
    """

    def __init__(self, settings: DiscoverySettings, manager: PrinterRegistry) -> None:
        self.settings = settings
        self.manager = manager
        self.farm = FarmClient(settings.bus, health=manager.health)
        self._known: set[str] = set()
        self._ops: asyncio.Queue[tuple[str, str, StatusMessage | None]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._unlisten = None
        self.discovered = asyncio.Event()

    async def start(self, *, wait_s: float | None = None) -> None:
        if self._worker is not None:
            return
        self._unlisten = self.farm.add_listener(self._on_status)
        # Manager changes run one at a time, in arrival order, off the MQTT callback.
        self._worker = asyncio.create_task(self._apply(), name="bus-discovery")
        await self.farm.start(wait_s=wait_s)

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for name in list(self._known):
            with contextlib.suppress(Exception):
                await self.manager.remove(name)
        self._known.clear()
        await self.farm.stop()

    def printers(self) -> list[str]:
        return sorted(self._known)

    def _on_status(self, printer_id: str, msg: StatusMessage | None) -> None:
        if msg is None and printer_id in self._known:
            self._ops.put_nowait(("remove", printer_id, None))
        elif msg is not None and printer_id not in self._known:
            self._known.add(printer_id)
            self._ops.put_nowait(("add", printer_id, msg))

    async def _apply(self) -> None:
        while True:
            op, printer_id, msg = await self._ops.get()
            try:
                if op == "add" and msg is not None:
                    await self._add(printer_id, msg)
                elif op == "remove":
                    self._known.discard(printer_id)
                    await self.manager.remove(printer_id)
                    log.info("printer %s left the farm", printer_id)
            except Exception:
                log.exception("discovery could not %s printer %s", op, printer_id)
            finally:
                self._ops.task_done()

    async def settled(self) -> None:
        """Return once every status seen so far has been applied to the manager."""
        await self._ops.join()

    async def _add(self, printer_id: str, msg: StatusMessage) -> None:
        if printer_id in self.manager.names():
            log.warning("bus printer %s has the name of a local printer: ignored", printer_id)
            return
        for name in self.manager.names():
            existing = self.manager.get(name)
            if isinstance(existing, RemotePrinterDriver) and existing.printer_id == printer_id:
                return  # configured by hand as [printers.NAME] driver = "bus": already here
        profile = self._profile(msg)
        material = self._material(msg.material)
        driver = RemotePrinterDriver(
            printer_id,
            RemoteConfig(printer_id=printer_id),
            profile,
            material,
            farm=self.farm,
        )
        entry = PrinterEntry(
            driver="bus",
            profile=profile.name,
            material=material.name if material else self.settings.default_material,
            tags=msg.tags,  # published by its node (issue 15); none from an older node
        )
        await self.manager.add(driver, entry)
        log.info("printer %s joined the farm (node %s)", printer_id, msg.node)
        self.discovered.set()

    def _profile(self, msg: StatusMessage) -> PrinterProfile:
        summary = msg.profile
        if summary is None:
            return self.settings.printer_profiles["generic-220"]
        local = self.settings.printer_profiles.get(summary.name)
        if local is not None:
            return local
        # A profile only the remote host knows: its summary is enough to slice for the bed,
        # and registering it lets the rest of this process look it up by name.
        profile = summary.to_profile()
        self.settings.printer_profiles[profile.name] = profile
        return profile

    def _material(self, name: str | None) -> MaterialProfile | None:
        if not self.settings.materials:
            return None
        key = self.settings.material_key(name) if name else None
        return self.settings.material(key or self.settings.default_material)
