"""Leases on jobs (issue 16): the one mechanism by which orchestrators share a job store.

An instance has an id (`host/pid/random`). It claims a queued job with a lease in the store
before it runs it (`SqlJobStore.claim`), renews the lease as each stage starts
(`SqlJobStore.hold`, which also fences: an instance that lost the job stops before the stage),
and renews every lease it holds on a heartbeat, every third of the lease. When an instance dies
its leases are no longer renewed; once one expires, the next sweep of any instance takes the
job over: it is marked interrupted and queued again (a print stays interrupted, or is adopted
with its bus printer, see docs/server.md).

On one host there is no need to wait for the expiry: each instance holds an exclusive flock on
`DATA_DIR/instances/<id>.lock` for its life, which the kernel drops when the process dies, even
by `kill -9`. A mark that can be locked is a dead instance's, whose leases are taken at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Protocol

from printforge.models.job import Job, StageName
from printforge.orchestrator.storesql import SqlJobStore
from printforge.runtime.lock import INSTANCES, holder_info, read_mark, write_mark
from printforge.runtime.paths import private_dir

__all__ = ["InstanceMark", "LeaseKeeper", "LeaseLost", "instance_id"]

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """This instance's lease on a job was taken by another: stop working on it, persist nothing.

    Not a PrintforgeError, so no handler records it as the job's failure."""


def instance_id() -> str:
    """A new id for this orchestrator: which host and process, and unique across restarts."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _file_name(instance: str) -> str:
    return instance.replace("/", "_") + ".lock"


class InstanceMark:
    """This instance's liveness mark in the data directory, and the marks of dead ones."""

    def __init__(self, data_dir: Path, instance: str) -> None:
        self.folder = data_dir / INSTANCES
        self.instance = instance
        self._fd: int | None = None
        # Who this is, for commands that look for a running server (runtime/lock.py): the id
        # the sweeps read, and what the shared data-dir lock cannot say of its holders.
        self._info: dict[str, Any] = {"instance": instance}

    def acquire(self) -> None:
        if self._fd is not None:
            return
        private_dir(self.folder)
        # Locked and written under a name no sweep reads, then renamed (the lock goes with the
        # file): a sweep never finds the mark unlocked, or empty, while it is being made.
        final = self.folder / _file_name(self.instance)
        tmp = final.with_suffix(".new")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._info.update(holder_info())
        write_mark(fd, self._info)
        os.replace(tmp, final)
        self._fd = fd

    def describe(self, **info: Any) -> None:
        """Add what others should know of this instance, e.g. the URL a server listens on."""
        self._info.update(info)
        if self._fd is not None:
            write_mark(self._fd, self._info)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            (self.folder / _file_name(self.instance)).unlink()
        os.close(fd)

    def dead(self) -> list[str]:
        """The ids of instances on this data directory whose process is gone."""
        found: list[str] = []
        try:
            paths = list(self.folder.glob("*.lock"))
        except OSError:
            return found
        own = _file_name(self.instance)
        for path in paths:
            if path.name == own:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue  # removed by its owner or another sweep meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # alive
            try:
                name = str(read_mark(fd).get("instance", ""))
                if name:
                    found.append(name)
                # Removed only once its leases are settled: a crash of this sweep leaves the
                # mark for the next one. The caller says so with forget().
            finally:
                os.close(fd)
        return found

    def forget(self, instance: str) -> None:
        """A dead instance's leases are settled: its mark can go."""
        with contextlib.suppress(OSError):
            (self.folder / _file_name(instance)).unlink()


class _Orchestrator(Protocol):
    """What the keeper uses of orchestrator.service.Orchestrator (which owns it)."""

    store: SqlJobStore

    printers: Any

    async def adopt(self, job: Job, stage: str | None) -> None: ...

    async def checkpoint(self) -> None: ...

    def _enqueue(self, job: Job, *, seen: bool = False) -> None: ...


class LeaseKeeper:
    """Claims, renews and releases this instance's leases; takes over dead instances' jobs."""

    def __init__(self, orch: _Orchestrator, data_dir: Path, ttl_s: float) -> None:
        self.orch = orch
        self.instance = instance_id()
        self.mark = InstanceMark(data_dir, self.instance)
        self.ttl_s = ttl_s
        self.taken_over = 0
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Mark this instance alive and settle what dead ones left, before any dispatch."""
        await asyncio.to_thread(self.mark.acquire)
        await self.sweep()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="lease-keeper")
            # Its own task: the sweep's reads (the whole queue, every print's progress) must
            # never delay the renewal past the lease, or this instance's jobs look dead.
            self._beat = asyncio.create_task(self._beat_loop(), name="lease-heartbeat")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._beat) if t is not None]
        self._task = self._beat = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.mark.release()

    async def _beat_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.orch.store.heartbeat(self.instance, self.ttl_s)
                failing = False
            except Exception as err:
                if not failing:
                    log.error("lease heartbeat failed (%s: %s); retrying", type(err).__name__, err)
                failing = True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.sweep()
                if self._failing:
                    log.warning("lease sweep works again")
                self._failing = False
            except Exception as err:
                # Logged once per outage: the leases lapse and others take the jobs over.
                if not self._failing:
                    log.error("lease sweep failed (%s: %s); retrying", type(err).__name__, err)
                self._failing = True

    async def sweep(self) -> int:
        """Renew our leases, take over dead instances' jobs, and see jobs queued elsewhere;
        how many jobs were taken over."""
        store = self.orch.store
        if self._beat is None:
            await store.heartbeat(self.instance, self.ttl_s)  # the first sweep, at start
        await self.orch.checkpoint()
        self.orch.printers.set_foreign(await store.foreign_printers(self.instance))
        dead = await asyncio.to_thread(self.mark.dead)
        taken = await store.take_over(self.instance, self.ttl_s, dead)
        for job, stage in taken:
            await self.orch.adopt(job, stage)
        for name in dead:
            self.mark.forget(name)
        self.taken_over += len(taken)
        for job in await store.queued():
            self.orch._enqueue(job, seen=True)  # submitted elsewhere, or re-queued
        return len(taken)

    async def claim(self, job_id: str) -> bool:
        return await self.orch.store.claim(job_id, self.instance, self.ttl_s)

    async def hold(self, job: Job, stage: StageName) -> None:
        """As a stage starts: the lease is still ours (renewed), or LeaseLost."""
        if not await self.orch.store.hold(job.id, self.instance, self.ttl_s, stage.value):
            raise LeaseLost(f"job {job.id} was taken over by another instance")

    async def release(self, job_id: str) -> None:
        await self.orch.store.release(job_id, self.instance)
