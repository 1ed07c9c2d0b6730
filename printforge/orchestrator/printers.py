"""The printers this process drives: built from config, watched, reserved one job at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from printforge.hardware.base import PrinterDriver, load_driver
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus
from printforge.runtime import metrics
from printforge.runtime.errors import ConfigError, InputError
from printforge.runtime.health import HealthRegistry, HealthState
from printforge.runtime.logsetup import log_context
from printforge.settings import PrinterEntry, Settings

__all__ = ["BEDS_FILE", "PrinterManager", "clear_bed_record", "occupied_beds"]

log = logging.getLogger(__name__)

Listener = Callable[[PrinterStatus], None]
# States in which a printer can take a new job.
READY_STATES = frozenset({PrinterState.IDLE})
# States in which a reserved printer has begun its job's G-code: from here on, something may be
# on the bed even if the print never completes (cancelled, faulted, or this process killed).
STREAMING_STATES = frozenset({PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.CANCELLING})
# Beds that may hold a part, kept across restarts: after a `kill -9` mid-print, the half-printed
# part is still there, and a bed_clear_required printer must not start the next job on top of it.
BEDS_FILE = "beds.json"
# Virtual printers are already simulated; bus printers are simulated (or not) on their own host.
_NEVER_MOCKED = frozenset({"virtual", "bus"})
_RETRY_FIRST_S = 2.0


class PrinterManager:
    """Owns every driver; a driver that fails to start is reported, not fatal."""

    def __init__(self, settings: Settings, health: HealthRegistry | None = None) -> None:
        self.settings = settings
        self.health = health or HealthRegistry()
        self._drivers: dict[str, PrinterDriver] = {}
        self._entries: dict[str, PrinterEntry] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._listeners: list[Listener] = []
        self._reserved: dict[str, str] = {}  # printer -> job id
        self._bed_dirty: set[str] = set()
        self._bed_in_use: set[str] = set()  # reserved printers whose job began streaming
        # Shared (bus) printers another orchestrator drives now (its printer lease, issue 16):
        # not available here until that lease ends.
        self._foreign: set[str] = set()
        # Replaced on every change, so each waiter sees exactly the changes after it started.
        self._changed = asyncio.Event()
        self._started = False
        self._retries: dict[str, asyncio.Task[None]] = {}
        self._cameras: Any = None  # hardware.camera.rig.VirtualCameraRig, once one is needed
        self._beds_seen: int | None = None  # beds.json's mtime_ns when this process last read it

    # construction --------------------------------------------------------------------------
    def build(self, name: str, entry: PrinterEntry) -> PrinterDriver:
        """Construct (not start) the driver a `[printers.NAME]` entry describes."""
        cls = load_driver(entry.driver)
        options = entry.driver_options
        if self.settings.mock and entry.driver not in _NEVER_MOCKED:
            # Mock mode rehearses a farm's configuration without its hardware: same names,
            # profiles and materials, virtual machines underneath.
            log.info("mock mode: printer %s (%s) runs as a virtual printer", name, entry.driver)
            cls, options = load_driver("virtual"), {}
        if "sim_speed" in cls.Config.model_fields and options.get("sim_speed") is None:
            options["sim_speed"] = self.settings.sim_speed
        config = cls.Config.model_validate(options)
        profile = self.settings.printer_profiles[entry.profile]
        material = self.settings.material(entry.material) if self.settings.materials else None
        return cls(name, config, profile, material)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        occupied = self._load_beds()
        for name, entry in self.settings.printers.items():
            if entry.enabled:
                if name in occupied and entry.bed_clear_required:
                    log.warning(
                        "printer %s may have a part on its bed from before printforge"
                        " stopped: waiting for its bed to be confirmed clear",
                        name,
                    )
                    self._bed_dirty.add(name)
                await self.add(self.build(name, entry), entry)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for task in list(self._retries.values()):
            task.cancel()
        errors: list[str] = []
        for name in reversed(list(self._drivers)):
            try:
                await self.remove(name)
            except Exception as err:  # collect, keep stopping the others
                errors.append(f"{name}: {err}")
        if errors:
            log.warning("printers did not stop cleanly: %s", "; ".join(errors))

    async def add(self, driver: PrinterDriver, entry: PrinterEntry | None = None) -> None:
        name = driver.name
        if name in self._drivers:
            raise ConfigError(f"a printer named {name!r} is already attached")
        self._drivers[name] = driver
        self._entries[name] = entry or PrinterEntry(
            driver=driver.kind,
            profile=driver.profile.name,
            material=driver.material.name if driver.material else self.settings.default_material,
        )
        self._unsubscribe[name] = driver.add_listener(self._on_status)
        # Tasks the driver (or the retry below) creates copy this context: their lines name it.
        with log_context(printer=name):
            try:
                await driver.start()
            except Exception as err:
                log.warning(
                    "printer %s did not start: %s; trying again in the background", name, err
                )
                self.health.record_failure(name, f"start failed: {err}", component="printer")
                self._retry_start(name)
            else:
                self.health.record_success(name, 0.0, component="printer")
            await self._attach_camera(driver)
        self._on_status(driver.status())

    async def _attach_camera(self, driver: PrinterDriver) -> None:
        """A virtual printer's camera is a virtual camera (issue 17): started here, and its
        URLs and pose become the printer's `camera` config, as a real camera's would be."""
        entry = self._entries[driver.name]
        if entry.camera is None and not self.settings.virtual_cameras:
            return
        if self._cameras is None:
            from printforge.hardware.camera.rig import VirtualCameraRig

            jobs = self.settings.jobs_dir
            self._cameras = VirtualCameraRig(
                lambda job: p if (p := jobs / job / "model.stl").is_file() else None,
                every_virtual=self.settings.virtual_cameras,
                truth_dir=self.settings.data_dir / "cameras",
            )
        camera = await self._cameras.attach(driver, entry.camera)
        self._entries[driver.name] = entry.model_copy(update={"camera": camera})

    def _retry_start(self, name: str) -> None:
        """A printer switched on (or plugged in) after printforge started is picked up."""
        if name not in self._retries:
            task = asyncio.create_task(self._keep_starting(name), name=f"printer-start-{name}")
            self._retries[name] = task

    async def _keep_starting(self, name: str) -> None:
        delay = min(_RETRY_FIRST_S, self.settings.orchestrator.printer_retry_max_s)
        try:
            while True:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                driver = self._drivers.get(name)
                if driver is None:
                    return
                try:
                    await driver.start()
                except Exception as err:
                    log.debug("printer %s still not started: %s", name, err)
                    self.health.record_failure(name, f"start failed: {err}", component="printer")
                    delay = min(delay * 2, self.settings.orchestrator.printer_retry_max_s)
                    continue
                log.info("printer %s started", name)
                self.health.record_success(name, 0.0, component="printer")
                self._on_status(driver.status())
                return
        finally:
            self._retries.pop(name, None)

    async def remove(self, name: str) -> None:
        retry = self._retries.pop(name, None)
        if retry is not None:
            retry.cancel()
        driver = self._drivers.pop(name, None)
        if driver is None:
            return
        self._entries.pop(name, None)
        self._reserved.pop(name, None)
        # Not saved: a printer leaving (or this process stopping) does not clear its bed.
        self._bed_dirty.discard(name)
        self._bed_in_use.discard(name)
        unsubscribe = self._unsubscribe.pop(name, None)
        try:
            if self._cameras is not None:
                await self._cameras.detach(name)
            await driver.stop()
        finally:
            if unsubscribe:
                unsubscribe()
            self._notify(driver.status().model_copy(update={"state": PrinterState.OFFLINE}))

    # lookups -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._drivers)

    def get(self, name: str) -> PrinterDriver:
        try:
            return self._drivers[name]
        except KeyError:
            known = ", ".join(sorted(self._drivers)) or "none"
            raise InputError(f"no printer named {name!r} (attached: {known})") from None

    def entry(self, name: str) -> PrinterEntry:
        self.get(name)
        return self._entries[name]

    def profile(self, name: str) -> PrinterProfile:
        """The profile the printer itself carries (a bus printer's comes from its node)."""
        return self.get(name).profile

    def statuses(self) -> list[PrinterStatus]:
        return [self._public_status(d) for d in self._drivers.values()]

    def _public_status(self, driver: PrinterDriver) -> PrinterStatus:
        status = driver.status()
        if driver.name in self._bed_dirty and status.state is PrinterState.IDLE:
            return status.model_copy(
                update={"state": PrinterState.FINISHED, "message": "waiting for bed clear"}
            )
        return status

    # status fan-out -------------------------------------------------------------------------
    def add_listener(self, cb: Listener) -> Callable[[], None]:
        self._listeners.append(cb)
        return lambda: self._listeners.remove(cb)

    def _on_status(self, status: PrinterStatus) -> None:
        driver = self._drivers.get(status.id)
        if (
            status.state in STREAMING_STATES
            and status.id in self._reserved
            and status.id not in self._bed_in_use
        ):
            self._bed_in_use.add(status.id)
            self._save_beds()
        self._notify(self._public_status(driver) if driver else status)

    def _notify(self, status: PrinterStatus) -> None:
        for heater, temp in status.temperatures.items():
            metrics.PRINTER_TEMPERATURE.labels(status.id, heater, "actual").set(temp.actual)
            metrics.PRINTER_TEMPERATURE.labels(status.id, heater, "target").set(temp.target)
        if status.progress is not None:
            metrics.PRINTER_PROGRESS.labels(status.id).set(status.progress.fraction)
        record = self.health.get(status.id, "printer")
        if status.state is PrinterState.FAULTED:
            record.state = HealthState.UNHEALTHY
            record.last_error = status.message or "printer faulted"
        elif status.state is PrinterState.OFFLINE:
            record.state = HealthState.DEGRADED
        else:
            record.state = HealthState.HEALTHY
        record.detail = {"state": status.state.value, "job_id": status.job_id}
        for cb in list(self._listeners):
            try:
                cb(status)
            except Exception:
                log.exception("printer status listener failed")
        self._wake()

    def poke(self) -> None:
        """Something a match depends on changed outside the printers (a spool weighed or
        loaded): the scheduler looks again now rather than at its next poll."""
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # reservation -----------------------------------------------------------------------------
    def available(self, name: str) -> bool:
        driver = self._drivers.get(name)
        return (
            driver is not None
            and name not in self._reserved
            and name not in self._bed_dirty
            and name not in self._foreign
            and driver.connected.is_set()
            and driver.status().state in READY_STATES
        )

    def shared(self, name: str) -> bool:
        """A printer other orchestrators can reach too (on the farm bus), so it is leased."""
        driver = self._drivers.get(name)
        return driver is not None and driver.kind == "bus"

    def set_foreign(self, names: set[str]) -> None:
        """The shared printers other instances drive now (from the lease sweep)."""
        if names != self._foreign:
            self._foreign = set(names)
            self._wake()

    def mark_foreign(self, name: str) -> None:
        """Another instance turned out to hold this printer's lease (until the next sweep)."""
        self.set_foreign(self._foreign | {name})

    def adopt(self, name: str, job_id: str) -> None:
        """A print another instance started here (it died): reserved for its job, bed in use."""
        self._reserved[name] = job_id
        self._bed_in_use.add(name)
        self._wake()

    def reserved_by(self, name: str) -> str | None:
        return self._reserved.get(name)

    def reserve(self, name: str, job_id: str) -> None:
        if not self.available(name):
            raise InputError(f"printer {name} is not available")
        self._reserved[name] = job_id

    def release(self, name: str, *, printed: bool) -> None:
        """Free a printer after a job. A print that began (finished, cancelled, interrupted) leaves
        the bed occupied if the printer is so configured."""
        self._reserved.pop(name, None)
        began = name in self._bed_in_use
        self._bed_in_use.discard(name)
        entry = self._entries.get(name)
        if (printed or began) and entry is not None and entry.bed_clear_required:
            self._bed_dirty.add(name)
        self._save_beds()
        driver = self._drivers.get(name)
        if driver is not None:
            self._on_status(driver.status())
        self._wake()

    async def confirm_bed_clear(self, name: str) -> None:
        driver = self.get(name)
        self._bed_dirty.discard(name)
        self._save_beds()
        await driver.confirm_bed_clear()
        self._on_status(driver.status())

    def set_material(self, name: str, material: str) -> None:
        """A person loaded another filament."""
        entry = self.entry(name)
        profile = self.settings.material(material)
        self._entries[name] = entry.model_copy(update={"material": profile.name})
        self.get(name).load_material(profile)
        self._wake()

    # beds across restarts ----------------------------------------------------------------------
    @property
    def _beds_path(self) -> Path:
        return Path(self.settings.data_dir) / BEDS_FILE

    def _load_beds(self) -> set[str]:
        try:
            self._beds_seen = self._beds_path.stat().st_mtime_ns
            names = json.loads(self._beds_path.read_text())
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as err:
            # Unreadable: every bed_clear_required printer waits, rather than print onto a part.
            log.warning("cannot read %s (%s): assuming every bed may be occupied", BEDS_FILE, err)
            return set(self.settings.printers)
        return {str(n) for n in names} if isinstance(names, list) else set()

    def _save_beds(self) -> None:
        """Write the beds that may hold a part; small, and only on a reservation's edges."""
        occupied = sorted(
            n
            for n in self._bed_dirty | self._bed_in_use
            if (entry := self._entries.get(n)) is not None and entry.bed_clear_required
        )
        path = self._beds_path
        if not occupied and not path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(occupied))
            os.replace(tmp, path)
            self._beds_seen = path.stat().st_mtime_ns
        except OSError as err:
            log.warning("cannot record occupied beds in %s: %s", path, err)

    def bed_dirty(self, name: str) -> bool:
        """True while the printer waits for a person to confirm its bed is clear."""
        return name in self._bed_dirty

    async def sync_beds(self) -> None:
        """Take in beds cleared by another process: `printforge printers clear NAME` beside a
        `printforge run` that holds the data directory edits beds.json, as nothing else can
        reach this process (issue 15). Cheap: one stat() unless the file changed."""
        if not self._bed_dirty:
            return
        try:
            seen = self._beds_path.stat().st_mtime_ns
        except OSError:
            return  # nobody wrote it: nothing to learn (a missing file never clears a bed)
        if seen == self._beds_seen:
            return
        occupied = self._load_beds()
        for name in sorted(self._bed_dirty - occupied - self._bed_in_use):
            log.info("printer %s: bed confirmed clear by another command", name)
            await self.confirm_bed_clear(name)

    async def wait_changed(self, timeout: float | None = None) -> None:
        """Block until a printer's status, reservation or bed changes (or the timeout)."""
        changed = self._changed
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
        # races with the wait finishing, leaving the caller's task unstoppable.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()


def occupied_beds(data_dir: Path) -> list[str]:
    """The printers whose bed may hold a part, as recorded in DATA_DIR/beds.json."""
    try:
        names = json.loads((data_dir / BEDS_FILE).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {data_dir / BEDS_FILE}: {err}") from err
    return [str(n) for n in names] if isinstance(names, list) else []


def clear_bed_record(data_dir: Path, name: str) -> bool:
    """Record that a person cleared NAME's bed, for a process that does not own the printers
    (nothing running, or a `printforge run` that picks it up through `sync_beds`). Returns
    whether the bed was recorded as occupied."""
    occupied = occupied_beds(data_dir)
    if name not in occupied:
        return False
    path = data_dir / BEDS_FILE
    tmp = path.with_suffix(".clear.tmp")
    tmp.write_text(json.dumps([n for n in occupied if n != name]))
    os.replace(tmp, path)
    return True
