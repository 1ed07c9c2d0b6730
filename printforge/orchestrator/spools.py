"""Spools and loaded materials (issue 15): grams left on each spool, the spool and material each
printer has loaded, and each print's filament charged to the spool it came from.

The source of spools is printforge's own store (tables in the job store's database) or, with
`[spoolman] url`, a Spoolman server (orchestrator/spoolman.py). Either way the scheduler asks
`loaded(printer)` synchronously before it hands a job to a printer, so a print's grams are
taken off the cached spool the moment the printer is released, before the next job is matched;
the store (or Spoolman) is written right after, on a task this class owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from printforge.models.job import Job, JobState
from printforge.models.printer import PrinterStatus
from printforge.models.spool import Spool
from printforge.notify.events import NotifyEvent
from printforge.orchestrator.printers import PrinterManager
from printforge.orchestrator.spoolman import SpoolmanClient
from printforge.orchestrator.storesql import SqlJobStore
from printforge.runtime.errors import ConfigError, InputError, PrintforgeError
from printforge.settings import Settings

__all__ = ["SpoolTracker"]

log = logging.getLogger(__name__)

# Stopping waits this long for the last charges to reach the store or Spoolman.
_STOP_GRACE_S = 5.0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _some(changes: dict[str, Any]) -> None:
    if not changes:
        raise InputError(
            "spool.update needs at least one of remaining_weight, material, name, archived"
        )


class SpoolTracker:
    def __init__(self, settings: Settings, store: SqlJobStore, printers: PrinterManager) -> None:
        self.settings = settings
        self.store = store
        self.printers = printers
        # Where spool.low goes (Notifier.publish), when notifications are configured.
        self.notify: Callable[[NotifyEvent], None] | None = None
        self._spools: dict[int, Spool] = {}
        self._loads: dict[str, int] = {}  # printer -> the spool loaded on it
        self._materials: dict[str, str] = {}  # printer -> material a person set (no spool)
        self._progress: dict[str, tuple[str, float]] = {}  # printer -> (job id, fraction)
        self._low_told: set[int] = set()
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()  # uses sent to Spoolman, and reading its spools
        self._unsubscribe: Callable[[], None] | None = None
        cfg = settings.spoolman
        self.spoolman = SpoolmanClient(cfg) if cfg.enabled else None

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        for printer, material, spool_id in await self.store.fetchall(
            "SELECT printer, material, spool_id FROM printer_loads"
        ):
            if material:
                self._materials[str(printer)] = str(material)
            if spool_id is not None:
                self._loads[str(printer)] = int(spool_id)
        if self.spoolman is not None:
            await self.spoolman.start()
            try:
                await self.refresh()
            except PrintforgeError as err:
                # Spoolman down at start: jobs print as if no spool were tracked, and say so.
                log.warning("spools: %s; reading again every %g s", err,
                            self.settings.spoolman.refresh_s)  # fmt: skip
            self._refresher = asyncio.create_task(self._refresh_loop(), name="spoolman-refresh")
        else:
            for (data,) in await self.store.fetchall("SELECT data FROM spools"):
                spool = Spool.model_validate_json(data)
                self._spools[spool.id] = spool
        self._unsubscribe = self.printers.add_listener(self._on_status)
        for name in self.printers.names():
            self._apply(name)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=_STOP_GRACE_S)
            for task in pending:
                task.cancel()
        if self.spoolman is not None:
            await self.spoolman.close()

    async def settle(self, timeout: float = _STOP_GRACE_S) -> None:
        """Wait until every charge so far is written to the store (and sent to Spoolman, or
        kept to be sent again)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # reads -----------------------------------------------------------------------------------
    def loaded(self, printer: str) -> Spool | None:
        """The spool on `printer`, if one is tracked there."""
        spool_id = self._loads.get(printer)
        spool = self._spools.get(spool_id) if spool_id is not None else None
        return spool.model_copy(update={"printer": printer}) if spool is not None else None

    def any_loaded(self) -> bool:
        return bool(self._loads)

    def spools(self, *, archived: bool = False) -> list[Spool]:
        where = {spool_id: printer for printer, spool_id in self._loads.items()}
        return [
            s.model_copy(update={"printer": where.get(s.id)})
            for s in sorted(self._spools.values(), key=lambda s: s.id)
            if archived or not s.archived
        ]

    def get(self, spool_id: int) -> Spool:
        spool = self._spools.get(spool_id)
        if spool is None:
            raise InputError(f"no spool with id {spool_id}", code="not_found")
        where = next((p for p, s in self._loads.items() if s == spool_id), None)
        return spool.model_copy(update={"printer": where})

    # writes ----------------------------------------------------------------------------------
    async def add(
        self,
        *,
        material: str,
        remaining_weight: float,
        initial_weight: float | None = None,
        name: str | None = None,
        printer: str | None = None,
    ) -> Spool:
        if self.spoolman is not None:
            raise InputError(
                f"spools come from Spoolman ({self.settings.spoolman.url}): add the spool there;"
                " it is listed here within a refresh"
            )
        material = self._material_name(material)
        spool = Spool(
            id=0,
            material=material,
            name=name,
            initial_weight=initial_weight if initial_weight is not None else remaining_weight,
            remaining_weight=remaining_weight,
        )
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(
                "INSERT INTO spools (archived, data) VALUES (0, ?) RETURNING id",
                (spool.model_dump_json(),),
            )
            spool = spool.model_copy(update={"id": int(rows[0][0])})
            await tx.execute(
                "UPDATE spools SET data = ? WHERE id = ?", (spool.model_dump_json(), spool.id)
            )
        self._spools[spool.id] = spool
        if printer is not None:
            await self.load(printer, spool.id)
        return self.get(spool.id)

    async def update(
        self,
        spool_id: int,
        *,
        remaining_weight: float | None = None,
        material: str | None = None,
        name: str | None = None,
        archived: bool | None = None,
    ) -> Spool:
        old = self.get(spool_id)
        if self.spoolman is not None:
            if material is not None or name is not None:
                raise InputError("a Spoolman spool's filament is changed in Spoolman")
            changes: dict[str, Any] = {}
            if remaining_weight is not None:
                changes["remaining_weight"] = remaining_weight
            if archived is not None:
                changes["archived"] = archived
            _some(changes)
            spool = await self.spoolman.update(spool_id, changes)
        else:
            changes = {
                k: v
                for k, v in (
                    ("remaining_weight", remaining_weight),
                    ("name", name),
                    ("archived", archived),
                    ("material", None if material is None else self._material_name(material)),
                )
                if v is not None
            }
            _some(changes)
            spool = old.model_copy(
                update={**changes, "printer": None, "updated_at": datetime.now(UTC)}
            )
            await self._save(spool)
        self._spools[spool.id] = spool
        if spool.remaining_weight >= self.settings.spools.low_weight:
            self._low_told.discard(spool.id)
        if spool.archived:
            for printer in [p for p, s in self._loads.items() if s == spool.id]:
                await self.load(printer, None)
        for printer in [p for p, s in self._loads.items() if s == spool.id]:
            self._apply(printer)
        self.printers.poke()
        return self.get(spool.id)

    async def load(self, printer: str, spool_id: int | None) -> Spool | None:
        """Put a spool on a printer (None: take it off); the printer's material becomes the
        spool's. A spool is on one printer at a time."""
        self._known(printer)
        if spool_id is None:
            self._loads.pop(printer, None)
            await self._save_load(printer)
            self.printers.poke()
            return None
        if self.spoolman is not None and spool_id not in self._spools:
            self._spools[spool_id] = await self.spoolman.spool(spool_id)
        spool = self.get(spool_id)
        if spool.archived:
            raise InputError(f"spool {spool_id} is archived: unarchive it first")
        self._material_name(spool.material)  # a material printforge knows how to print
        for other in [p for p, s in self._loads.items() if s == spool_id and p != printer]:
            self._loads.pop(other)
            await self._save_load(other)
        self._loads[printer] = spool_id
        self._materials[printer] = spool.material
        await self._save_load(printer)
        self._apply(printer)
        self.printers.poke()
        return self.loaded(printer)

    async def set_material(self, printer: str, material: str) -> str:
        """A person loaded another filament on `printer`. A tracked spool of another material
        is taken off it (its grams no longer say anything about what is loaded)."""
        self._known(printer)
        name = self._material_name(material)
        spool = self.loaded(printer)
        if spool is not None and spool.material.casefold() != name.casefold():
            log.info("printer %s: %s loaded, spool %d (%s) taken off", printer, name, spool.id,
                     spool.material)  # fmt: skip
            self._loads.pop(printer, None)
        self._materials[printer] = name
        await self._save_load(printer)
        self._apply(printer)
        return name

    def _known(self, printer: str) -> None:
        """An attached printer, or one configured (the command line edits the store for a
        printer no process runs now; it is applied when one starts it)."""
        if printer not in self.settings.printers:
            self.printers.get(printer)  # unknown: the attached printers are named

    def _material_name(self, material: str) -> str:
        try:
            return self.settings.material(material).name
        except ConfigError as err:
            raise InputError(err.message) from None

    def _apply(self, printer: str) -> None:
        """Make the printer's loaded material the one set here (spool first)."""
        spool = self.loaded(printer)
        material = spool.material if spool is not None else self._materials.get(printer)
        if material is None or printer not in self.printers.names():
            return
        try:
            if self.printers.entry(printer).material.casefold() != material.casefold():
                self.printers.set_material(printer, material)
        except (ConfigError, InputError) as err:
            log.warning("printer %s: cannot load %s: %s", printer, material, err)

    async def _save(self, spool: Spool) -> None:
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE spools SET data = ?, archived = ? WHERE id = ?",
                (spool.model_dump_json(), int(spool.archived), spool.id),
            )

    async def _save_load(self, printer: str) -> None:
        async with self.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO printer_loads (printer, material, spool_id, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(printer) DO UPDATE SET material = excluded.material,"
                " spool_id = excluded.spool_id, at = excluded.at",
                (printer, self._materials.get(printer), self._loads.get(printer), _now()),
            )

    # charging --------------------------------------------------------------------------------
    def _on_status(self, status: PrinterStatus) -> None:
        if status.id not in self._seen:
            # A printer discovered after start (the bus) gets what was loaded on it before.
            self._seen.add(status.id)
            self._apply(status.id)
        if status.job_id and status.progress is not None:
            self._progress[status.id] = (status.job_id, status.progress.fraction)

    def charge(self, job: Job, printer: str) -> float:
        """Take what the job's print used off the spool on `printer`: all its filament when it
        completed, else the part its progress reached. Returns the grams charged."""
        spool = self.loaded(printer)
        if spool is None or job.gcode is None:
            return 0.0
        if job.state is JobState.COMPLETED:
            fraction = 1.0
        else:
            seen_job, seen = self._progress.get(printer, ("", 0.0))
            fraction = seen if seen_job == job.id else 0.0
        self._progress.pop(printer, None)
        grams = round(max(0.0, job.gcode.filament_g * min(1.0, fraction)), 2)
        if grams <= 0:
            return 0.0
        left = max(0.0, spool.remaining_weight - grams)
        self._spools[spool.id] = spool.model_copy(
            update={
                "remaining_weight": left,
                "used_weight": spool.used_weight + grams,
                "printer": None,
                "updated_at": datetime.now(UTC),
            }
        )
        self._own(self._record_use(job, printer, spool.id, grams))
        if left < self.settings.spools.low_weight and spool.id not in self._low_told:
            self._low_told.add(spool.id)
            self._tell_low(printer, self._spools[spool.id])
        return grams

    def _own(self, coro: Any) -> None:
        task = asyncio.create_task(coro, name="spool-charge")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_use(self, job: Job, printer: str, spool_id: int, grams: float) -> None:
        source = "spoolman" if self.spoolman is not None else "printforge"
        async with self.store.transaction() as tx:
            added = await tx.execute(
                "INSERT INTO spool_usage (job_id, attempt, printer, spool_id, source,"
                " grams, sent, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (job.id, job.print_attempts, printer, spool_id, source, grams,
                 int(self.spoolman is None), _now()),
            )  # fmt: skip
            if added == 0:
                return  # charged already (the same attempt released twice)
            if self.spoolman is None:
                spool = self._spools[spool_id]
                await tx.execute(
                    "UPDATE spools SET data = ? WHERE id = ?", (spool.model_dump_json(), spool_id)
                )
        if self.spoolman is not None:
            async with self._sending:
                await self._send_use(job.id, job.print_attempts, spool_id, grams)

    async def _send_use(self, job_id: str, attempt: int, spool_id: int, grams: float) -> bool:
        assert self.spoolman is not None
        try:
            spool = await self.spoolman.use(spool_id, grams)
        except PrintforgeError as err:
            log.warning("spools: %.1f g of job %s not yet told to Spoolman (%s); sent again"
                        " at the next refresh", grams, job_id, err)  # fmt: skip
            return False
        self._spools[spool.id] = spool
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE spool_usage SET sent = 1 WHERE job_id = ? AND attempt = ?",
                (job_id, attempt),
            )
        return True

    def _tell_low(self, printer: str, spool: Spool) -> None:
        message = (
            f"spool {spool.id} ({spool.name or spool.material}) on {printer} has"
            f" {spool.remaining_weight:.0f} g left"
        )
        log.warning("%s", message)
        if self.notify is not None:
            self.notify(
                NotifyEvent(
                    event="spool.low",
                    printer=printer,
                    message=message,
                    data={
                        "spool_id": spool.id,
                        "material": spool.material,
                        "remaining_weight": spool.remaining_weight,
                    },
                )
            )

    # Spoolman --------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read every spool from Spoolman again; first send it the usage it has not had."""
        assert self.spoolman is not None
        # No use is sent while the spools are read: one sent then would be in neither what
        # Spoolman answers nor the unsent rows taken off it below.
        async with self._sending:
            for job_id, attempt, spool_id, grams in await self._unsent():
                if not await self._send_use(job_id, attempt, spool_id, grams):
                    break
            fresh = {s.id: s for s in await self.spoolman.spools()}
            # What Spoolman has not had yet stays taken off what it says.
            for _job_id, _attempt, spool_id, grams in await self._unsent():
                if spool_id in fresh:
                    s = fresh[spool_id]
                    left = max(0.0, s.remaining_weight - grams)
                    fresh[spool_id] = s.model_copy(update={"remaining_weight": left})
            self._spools = fresh
        for printer in list(self._loads):
            self._apply(printer)

    async def _unsent(self) -> list[tuple[str, int, int, float]]:
        rows = await self.store.fetchall(
            "SELECT job_id, attempt, spool_id, grams FROM spool_usage"
            " WHERE sent = 0 AND source = ? ORDER BY at",
            ("spoolman",),
        )
        return [(str(j), int(a), int(s), float(g)) for j, a, s, g in rows]

    async def _refresh_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.spoolman.refresh_s)
            try:
                await self.refresh()
            except PrintforgeError as err:
                if not failing:
                    log.warning("spools: %s", err)
                failing = True
            else:
                if failing:
                    log.info("spools: Spoolman reachable again")
                failing = False
