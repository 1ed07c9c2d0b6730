"""The farm scheduler: which printer a job is sliced for, and which free printer prints it next.

A job is sliced for a target printer's profile before it needs a printer, so research, CAD and
slicing overlap other prints. When its G-code is ready it waits for a printer with the same
profile and the right material loaded that is idle and has a clear bed; among waiting jobs the
highest priority, then the oldest, is served first. At most `server.max_heating` printers heat
up at once, because a farm's heaters together can trip a breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from printforge.hardware.base import PrinterDriver
from printforge.models.job import Job
from printforge.models.printer import PrinterProfile, PrinterStatus
from printforge.models.request import PrintRequest
from printforge.models.spool import Spool, spool_short_reason
from printforge.orchestrator.printers import PrinterManager
from printforge.runtime.errors import InputError
from printforge.settings import Settings

__all__ = ["FarmScheduler", "HeatGate"]

log = logging.getLogger(__name__)

# A job aimed at a printer but never printing (failed, or print=false) stops counting after this.
_AIM_TTL_S = 3600.0


@dataclass(order=True)
class _Waiter:
    sort_key: tuple[int, int]
    job_id: str = field(compare=False)
    profile: str = field(compare=False)
    material: str = field(compare=False)
    printer: str | None = field(compare=False)  # explicitly requested printer
    future: asyncio.Future[str] = field(compare=False)
    tags: frozenset[str] = field(default=frozenset(), compare=False)
    nozzle: float | None = field(default=None, compare=False)
    needs_g: float = field(default=0.0, compare=False)  # the G-code's filament


class FarmScheduler:
    def __init__(self, settings: Settings, printers: PrinterManager) -> None:
        self.settings = settings
        self.printers = printers
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        # Jobs being prepared for a printer and not yet printing: job id -> (printer, when).
        # Jobs started together would otherwise all aim at the first free printer, and on a
        # farm of mixed profiles the others stay idle while they queue for it. An entry ends
        # when the job gets its printer; one that never does (failed, print=false) ages out.
        self._aimed: dict[str, tuple[str, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self.heat_gate = HeatGate(settings.server.max_heating)
        # Told when the printers a waiting job could take all wait for a bed to be cleared
        # (job id, those printers); the orchestrator says so on the job's events (issue 15).
        self.on_bed_wait: Callable[[str, list[str]], None] | None = None
        self._bed_waits: dict[str, tuple[str, ...]] = {}
        # The spool loaded on a printer (SpoolTracker.loaded), when spools are tracked; told
        # when a waiting job's every compatible printer has too little filament (issue 15).
        self.spool_of: Callable[[str], Spool | None] = lambda name: None
        self.spools_loaded: Callable[[], bool] = lambda: False
        self.on_spool_wait: Callable[[str, str, list[str]], None] | None = None
        self._spool_waits: dict[str, str] = {}

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._match_loop(), name="farm-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters.clear()
        self._aimed.clear()

    # constraints: tags and nozzle ----------------------------------------------------------
    def unmet(self, request: PrintRequest, name: str) -> str | None:
        """What printer `name` lacks of the job's constraints (tags, nozzle); None if nothing."""
        missing = sorted(set(request.tags) - set(self.printers.entry(name).tags))
        lacks = []
        if missing:
            lacks.append(f"tag {', '.join(missing)}")
        nozzle = request.nozzle_diameter
        if nozzle is not None:
            has = self.printers.profile(name).nozzle_diameter
            if abs(has - nozzle) > 1e-3:
                lacks.append(f"a {nozzle:g} mm nozzle (has {has:g} mm)")
        return " and ".join(lacks) or None

    def check_constraints(self, request: PrintRequest, names: list[str] | None = None) -> None:
        """Refuse a job no attached printer could ever take: it would wait silently for ever."""
        if not request.tags and request.nozzle_diameter is None:
            return
        names = self.printers.names() if names is None else names
        if not names:
            return  # none attached yet (a farm still discovering its printers): nothing to judge
        reasons = {n: self.unmet(request, n) for n in names}
        if any(r is None for r in reasons.values()):
            return
        wanted = []
        if request.tags:
            wanted.append(f"tags {', '.join(request.tags)}")
        if request.nozzle_diameter is not None:
            wanted.append(f"a {request.nozzle_diameter:g} mm nozzle")
        said = "; ".join(f"{n} lacks {r}" for n, r in reasons.items())
        raise InputError(
            f"no printer has {' and '.join(wanted)} ({said}): change the job's constraints"
            " (job.update), or add the tags in [printers.NAME] tags"
        )

    # choosing what to slice for -------------------------------------------------------------
    def material_for(self, job: Job, printer: str) -> str:
        if job.request.material:
            return self.settings.material(job.request.material).name
        return self.printers.entry(printer).material

    def target(self, job: Job) -> str:
        """The printer whose profile the job is designed and sliced for."""
        name = self._choose_target(job)
        self._aimed[job.id] = (name, time.monotonic())
        # Recorded in the job (saved with it) so that its copies, which print this G-code
        # without slicing again, go only to printers of the same profile.
        job.sliced_for = self.printers.entry(name).profile
        return name

    def _choose_target(self, job: Job) -> str:
        names = self.printers.names()
        profile = self._profile_of_original(job)
        if job.request.printer:
            entry = self.printers.entry(job.request.printer)  # clear error for an unknown name
            self.check_constraints(job.request, [job.request.printer])
            if profile is not None and entry.profile != profile:
                raise InputError(
                    f"printer {job.request.printer} has profile {entry.profile}, but this copy's"
                    f" G-code was sliced for {profile}"
                )
            wanted = job.request.material
            if wanted and job.request.print_ and entry.material.casefold() != wanted.casefold():
                # It would wait for ever: acquire() only matches the loaded material.
                raise InputError(
                    f"printer {job.request.printer} has {entry.material} loaded, not {wanted}"
                )
            return job.request.printer
        if not names:
            raise InputError("no printers are attached")
        self.check_constraints(job.request, names)
        names = [n for n in names if self.unmet(job.request, n) is None]
        wanted = job.request.material

        def loaded_ok(name: str) -> bool:
            loaded = self.printers.entry(name).material
            return wanted is None or loaded.casefold() == wanted.casefold()

        if profile is not None:
            names = [n for n in names if self.printers.entry(n).profile == profile]
            if not names:
                raise InputError(
                    f"no attached printer has profile {profile}, which this copy's G-code was"
                    " sliced for"
                )
        candidates = [n for n in names if loaded_ok(n)]
        if not candidates:
            loaded = sorted({self.printers.entry(n).material for n in names})
            raise InputError(
                f"no printer has {wanted} loaded (loaded: {', '.join(loaded)}); load it and set"
                f' material = "{wanted}" in a printer\'s [printers.NAME] table, or ask for one'
                " that is loaded"
            )
        return self._prefer(candidates, job)

    def _prefer(self, candidates: list[str], job: Job) -> str:
        default = self.settings.default_printer
        free = [n for n in candidates if self.printers.available(n)]
        if free:
            # The default printer first, then config order; but a free printer that fewer
            # jobs in preparation aim at wins (min keeps the first of equals).
            free.sort(key=lambda n: n != default)
            aimed = self._aimed_counts(exclude=job.id)
            return min(free, key=lambda n: aimed.get(n, 0))
        if default in candidates:
            return default
        # All busy: wait for one that is at least connected, not for one that vanished.
        online = [n for n in candidates if self.printers.get(n).connected.is_set()]
        return (online or candidates)[0]

    # fitting the part to a printer --------------------------------------------------------
    def _free_choice(self, job: Job) -> bool:
        """A job the scheduler may move: no printer named, and not a copy of sliced G-code."""
        return not job.request.printer and job.copy_of is None

    def _loaded_candidates(self, job: Job) -> list[str]:
        wanted = job.request.material
        return [
            n
            for n in self.printers.names()
            if (wanted is None or self.printers.entry(n).material.casefold() == wanted.casefold())
            and self.unmet(job.request, n) is None
        ]

    def _profile(self, name: str) -> PrinterProfile:
        return self.printers.profile(name)

    def _fits(self, name: str, size: tuple[float, float, float]) -> bool:
        p = self._profile(name)
        x, y, z = size
        return x <= p.bed_x and y <= p.bed_y and z <= p.max_z

    def design_profile(self, job: Job, target: str) -> PrinterProfile | None:
        """The volume the part is designed against, or None for the target's own. For a job
        that names no printer in a farm of different printers, the room of the roomiest on each
        axis: a part too big for the first choice must not be refused while a bigger printer
        stands in the farm (`retarget` then picks one it fits, or the slicer says none does)."""
        if not self._free_choice(job):
            return None
        names = self._loaded_candidates(job)
        profiles = {self.printers.entry(n).profile: self._profile(n) for n in names}
        if len(profiles) < 2:
            return None
        room = list(profiles.values())
        return self._profile(target).model_copy(
            update={
                "name": " or ".join(sorted(profiles)),
                "bed_x": max(p.bed_x for p in room),
                "bed_y": max(p.bed_y for p in room),
                "max_z": max(p.max_z for p in room),
            }
        )

    def retarget(self, job: Job, target: str, size: tuple[float, float, float]) -> str:
        """After CAD: the target if the part fits it, else the preferred printer it fits."""
        if not self._free_choice(job) or self._fits(target, size):
            return target
        fitting = [n for n in self._loaded_candidates(job) if self._fits(n, size)]
        if not fitting:
            return target  # the slicer refuses it, naming the volume
        choice = self._prefer(fitting, job)
        log.info("job %s: %.0f x %.0f x %.0f mm does not fit %s; sliced for %s", job.id,
                 *size, target, choice)  # fmt: skip
        self._aimed[job.id] = (choice, time.monotonic())
        job.sliced_for = self.printers.entry(choice).profile
        return choice

    def _aimed_counts(self, exclude: str) -> dict[str, int]:
        now = time.monotonic()
        for job_id, (_, since) in list(self._aimed.items()):
            if now - since > _AIM_TTL_S:
                del self._aimed[job_id]
        counts: dict[str, int] = {}
        for job_id, (name, _) in self._aimed.items():
            if job_id != exclude:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def _profile_of_original(self, job: Job) -> str | None:
        """For a copy: the printer profile its original's G-code was sliced for. The
        orchestrator copies it from the original in the store before the copy is targeted
        (and a re-queued copy keeps it)."""
        return job.sliced_for if job.copy_of is not None else None

    # waiting for a printer -------------------------------------------------------------------
    async def acquire(self, job: Job, target: str) -> str:
        """Wait until a compatible printer is free, reserve it for the job and return its name."""
        entry = self.printers.entry(target)
        waiter = _Waiter(
            sort_key=(-job.request.priority, next(self._order)),
            job_id=job.id,
            profile=entry.profile,
            material=self.material_for(job, target),
            printer=job.request.printer,
            future=asyncio.get_running_loop().create_future(),
            tags=frozenset(job.request.tags),
            nozzle=job.request.nozzle_diameter,
            needs_g=job.gcode.filament_g if job.gcode is not None else 0.0,
        )
        self._waiters.append(waiter)
        self._waiters.sort()
        self._match()
        self._tell_bed_waits()
        self._tell_spool_waits()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                # A printer was reserved for us just as we were cancelled: give it back.
                self.printers.release(waiter.future.result(), printed=False)
            raise
        finally:
            self._aimed.pop(job.id, None)
            self._bed_waits.pop(job.id, None)
            self._spool_waits.pop(job.id, None)
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def waiting(self) -> list[str]:
        return [w.job_id for w in self._waiters]

    def _compatible(self, waiter: _Waiter, name: str, *, spool: bool = True) -> bool:
        if waiter.printer is not None and waiter.printer != name:
            return False
        entry = self.printers.entry(name)
        # The G-code was sliced for one profile: the same profile means the same bed, volume,
        # nozzle and start/end G-code, so matching on it covers size and nozzle at once.
        if entry.profile != waiter.profile:
            return False
        if waiter.tags and not waiter.tags <= set(entry.tags):
            return False
        nozzle = waiter.nozzle
        if nozzle is not None and abs(self.printers.profile(name).nozzle_diameter - nozzle) > 1e-3:
            return False
        if entry.material.casefold() != waiter.material.casefold():
            return False
        return not spool or self._spool_short(waiter, name) is None

    def _spool_short(self, waiter: _Waiter, name: str) -> str | None:
        loaded = self.spool_of(name)
        if loaded is None or waiter.needs_g <= 0:
            return None  # no spool tracked there: nothing to go by
        return spool_short_reason(name, loaded, waiter.needs_g)

    def spool_waits(self) -> dict[str, tuple[str, list[str]]]:
        """Waiting jobs whose every otherwise compatible printer has too short a spool: the
        reason, and those printers."""
        out: dict[str, tuple[str, list[str]]] = {}
        if not self.spools_loaded():
            return out  # run on every wake of a busy farm: nothing to do without spools
        names = self.printers.names()
        for waiter in self._waiters:
            fitting = [n for n in names if self._compatible(waiter, n, spool=False)]
            short = {n: r for n in fitting if (r := self._spool_short(waiter, n)) is not None}
            if short and len(short) == len(fitting):
                out[waiter.job_id] = ("; ".join(short.values()), list(short))
        return out

    def _tell_spool_waits(self) -> None:
        if self.on_spool_wait is None or not (self._waiters or self._spool_waits):
            return
        waits = self.spool_waits()
        for job_id in set(self._spool_waits) - set(waits):
            del self._spool_waits[job_id]
        for job_id, (reason, printers) in waits.items():
            if self._spool_waits.get(job_id) != reason:
                self._spool_waits[job_id] = reason
                self.on_spool_wait(job_id, reason, printers)

    def wait_reason(self, job_id: str) -> str | None:
        """Why a job waiting for a printer still waits, when it is not merely busy printers."""
        if job_id in self._spool_waits:
            return f"waiting: {self._spool_waits[job_id]}"
        if job_id in self._bed_waits:
            return f"waiting for the bed of {', '.join(self._bed_waits[job_id])} to be cleared"
        return None

    def _match(self) -> None:
        for name in self.printers.names():
            if not self.printers.available(name):
                continue
            for waiter in self._waiters:
                if waiter.future.done() or not self._compatible(waiter, name):
                    continue
                self.printers.reserve(name, waiter.job_id)
                waiter.future.set_result(name)
                self._waiters.remove(waiter)
                break

    def bed_waits(self) -> dict[str, list[str]]:
        """Waiting jobs whose every compatible printer is idle but for an uncleared bed."""
        out: dict[str, list[str]] = {}
        names = self.printers.names()
        # Run on every wake of a busy farm: nothing to do unless some bed waits (the usual case).
        dirty = [n for n in names if self.printers.bed_dirty(n)]
        if not dirty:
            return out
        clean = [n for n in names if not self.printers.bed_dirty(n)]
        for waiter in self._waiters:
            beds = [n for n in dirty if self._compatible(waiter, n)]
            if beds and not any(self._compatible(waiter, n) for n in clean):
                out[waiter.job_id] = beds
        return out

    def _tell_bed_waits(self) -> None:
        if self.on_bed_wait is None or not (self._waiters or self._bed_waits):
            return
        waits = self.bed_waits()
        for job_id in set(self._bed_waits) - set(waits):
            del self._bed_waits[job_id]  # told again if its printers need clearing again
        for job_id, beds in waits.items():
            if self._bed_waits.get(job_id) != tuple(beds):
                self._bed_waits[job_id] = tuple(beds)
                self.on_bed_wait(job_id, beds)

    async def _match_loop(self) -> None:
        while True:
            await self.printers.wait_changed(timeout=1.0)
            try:
                await self.printers.sync_beds()
                self._match()
                self._tell_bed_waits()
                self._tell_spool_waits()
            except Exception:
                log.exception("scheduler match failed")


def _heated(status: PrinterStatus) -> bool:
    targets = [t for t in status.temperatures.values() if t.target > 0]
    return bool(targets) and all(t.actual >= t.target - 2.0 for t in targets)


class HeatGate:
    """At most `limit` printers heat up at once; a slot frees when the heaters reach target."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)
        self.heating: set[str] = set()

    @contextlib.asynccontextmanager
    async def heating_slot(self, driver: PrinterDriver) -> AsyncIterator[None]:
        await self._sem.acquire()
        self.heating.add(driver.name)
        seen_target = False
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.heating.discard(driver.name)
                self._sem.release()

        def on_status(status: PrinterStatus) -> None:
            nonlocal seen_target
            if any(t.target > 0 for t in status.temperatures.values()):
                seen_target = True
            if seen_target and _heated(status):
                release()

        unsubscribe = driver.add_listener(on_status)
        try:
            yield
        finally:
            unsubscribe()
            release()
