"""The job store: SQLite in WAL mode, every state transition recorded in the same transaction."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from printforge.models.job import ACTIVE, CONTROL_KEYS, Job, JobError, JobState, StageState
from printforge.runtime import metrics
from printforge.runtime.errors import ConfigError

__all__ = ["JobStore", "Transition"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, priority DESC, created_at);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    from_state TEXT,
    to_state TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS transitions_job ON transitions(job_id, seq);
"""

Transition = tuple[str | None, str, str, str | None]


async def _typed_control_state(db: aiosqlite.Connection) -> None:
    """Step 1: a job's control state (copy_of, sliced_for, print_attempts, ...) moves from its
    report dict into typed fields; `Job` lifts the old keys as it loads, so each row is loaded
    and written back once."""
    like = " OR ".join("data LIKE ?" for _ in CONTROL_KEYS)
    async with db.execute(
        f"SELECT id, data FROM jobs WHERE {like}",
        [f'%"{key}"%' for key in CONTROL_KEYS],
    ) as cur:
        rows = await cur.fetchall()
    for job_id, data in rows:
        job = Job.model_validate_json(data)
        await db.execute("UPDATE jobs SET data = ? WHERE id = ?", (job.model_dump_json(), job_id))


async def _submitted_by(db: aiosqlite.Connection) -> None:
    """Step 2: the API key id that submitted a job (NULL: submitted before it was recorded, or
    by a command without a key); it decides who may cancel the job."""
    async with db.execute("PRAGMA table_info(jobs)") as cur:
        columns = {row[1] for row in await cur.fetchall()}
    if "submitted_by" not in columns:
        await db.execute("ALTER TABLE jobs ADD COLUMN submitted_by TEXT")


async def _spools(db: aiosqlite.Connection) -> None:
    """Step 3: spools, what each printer has loaded, and the filament each print took (issue
    15). A usage row per print attempt makes charging a spool idempotent."""
    await db.executescript(
        """
        CREATE TABLE IF NOT EXISTS spools (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            archived INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS printer_loads (
            printer TEXT PRIMARY KEY,
            material TEXT,
            spool_id INTEGER,
            at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS spool_usage (
            job_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            printer TEXT NOT NULL,
            spool_id INTEGER NOT NULL,
            source TEXT NOT NULL,
            grams REAL NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0,
            at TEXT NOT NULL,
            PRIMARY KEY (job_id, attempt)
        );
        """
    )


# Numbered schema and data steps after the first schema; never renumber a released one.
_MIGRATIONS: tuple[tuple[int, Callable[[aiosqlite.Connection], Awaitable[None]]], ...] = (
    (1, _typed_control_state),
    (2, _submitted_by),
    (3, _spools),
)


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._counts: dict[str, int] = {}

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
            # database's own mode, so the jobs' requests never become readable by others.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            if self.path.stat().st_mode & 0o077:
                self.path.chmod(0o600)
            self._db = await aiosqlite.connect(self.path)
        except (OSError, aiosqlite.Error) as err:
            raise ConfigError(f"cannot open the job store {self.path}: {err}") from err
        try:
            # WAL: readers never block the writer, and a kill -9 loses no committed transition.
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._db.executescript(_SCHEMA)
            await self._run_migrations()
            await self._db.commit()
            self._counts = await self.counts()
        except aiosqlite.Error as err:
            # Closed here, or aiosqlite's worker thread keeps the process alive after the error.
            await self.close()
            raise ConfigError(
                f"the job store {self.path} cannot be used ({err}); if it is damaged, move it"
                " aside (printforge starts a new one) or choose another --data-dir"
            ) from err
        self._publish_counts()

    async def _run_migrations(self) -> None:
        """The numbered steps a store older than this code has not had, in order, each with the
        `user_version` it brings the store to (so each runs once)."""
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        for number, step in _MIGRATIONS:
            if number > version:
                await step(self.db)
                # PRAGMA takes no parameters; `number` is a constant of this module.
                await self.db.execute(f"PRAGMA user_version = {int(number)}")

    def _publish_counts(self) -> None:
        for state, n in self._counts.items():
            metrics.JOBS_BY_STATE.labels(state).set(n)
        metrics.QUEUE_DEPTH.set(self._counts.get(JobState.QUEUED.value, 0))

    def _count(self, old: JobState | None, new: JobState) -> None:
        if old is not None:
            self._counts[old.value] = self._counts.get(old.value, 0) - 1
        self._counts[new.value] = self._counts.get(new.value, 0) + 1
        self._publish_counts()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def write_lock(self) -> asyncio.Lock:
        """Held by every writer of this connection (the spool store shares it)."""
        return self._lock

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("job store is not open")
        return self._db

    async def insert(self, job: Job, submitted_by: str | None = None) -> None:
        async with self._lock:
            await self.db.execute(
                "INSERT INTO jobs (id, state, priority, created_at, updated_at, data, submitted_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.state.value,
                    job.request.priority,
                    job.created_at.isoformat(),
                    job.updated_at.isoformat(),
                    job.model_dump_json(),
                    submitted_by,
                ),
            )
            await self.db.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, reason)"
                " VALUES (?, NULL, ?, ?, 'submitted')",
                (job.id, job.state.value, job.created_at.isoformat()),
            )
            await self.db.commit()
        metrics.JOB_TRANSITIONS.labels(job.state.value).inc()
        self._count(None, job.state)

    async def save(self, job: Job) -> None:
        """Persist a job's data (artifacts, stages, report) without changing its state."""
        async with self._lock:
            # priority too: job.update may change it (the column orders the queue's index).
            await self.db.execute(
                "UPDATE jobs SET data = ?, updated_at = ?, priority = ? WHERE id = ?",
                (
                    job.model_dump_json(),
                    datetime.now(UTC).isoformat(),
                    job.request.priority,
                    job.id,
                ),
            )
            await self.db.commit()

    async def transition(
        self,
        job: Job,
        new: JobState,
        *,
        error: JobError | None = None,
        reason: str | None = None,
    ) -> None:
        """Move the job (or raise InvalidTransition); persist job and transition together."""
        old = job.transition(new, error=error)
        async with self._lock:
            await self.db.execute(
                "UPDATE jobs SET state = ?, updated_at = ?, data = ? WHERE id = ?",
                (new.value, job.updated_at.isoformat(), job.model_dump_json(), job.id),
            )
            await self.db.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (job.id, old.value, new.value, job.updated_at.isoformat(), reason),
            )
            await self.db.commit()
        metrics.JOB_TRANSITIONS.labels(new.value).inc()
        self._count(old, new)

    async def get(self, job_id: str) -> Job | None:
        async with self.db.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return Job.model_validate_json(row[0]) if row else None

    async def submitted_by(self, job_id: str) -> str | None:
        """The API key id that submitted the job, if it was recorded."""
        async with self.db.execute("SELECT submitted_by FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row and row[0] is not None else None

    async def list(
        self, state: JobState | None = None, limit: int = 100, *, oldest_first: bool = False
    ) -> list[Job]:
        order = "ASC" if oldest_first else "DESC"
        query = "SELECT data FROM jobs"
        params: list[Any] = []
        if state is not None:
            query += " WHERE state = ?"
            params.append(state.value)
        query += f" ORDER BY created_at {order}, rowid {order} LIMIT ?"
        params.append(limit)
        async with self.db.execute(query, params) as cur:
            rows = await cur.fetchall()
        return [Job.model_validate_json(r[0]) for r in rows]

    async def queued(self) -> list[Job]:
        """Queued jobs in dispatch order: priority first, then first come first served."""
        async with self.db.execute(
            "SELECT data FROM jobs WHERE state = ? ORDER BY priority DESC, created_at, rowid",
            (JobState.QUEUED.value,),
        ) as cur:
            rows = await cur.fetchall()
        # A job moved in the queue (job.move) has its own rank among its priority.
        return sorted((Job.model_validate_json(r[0]) for r in rows), key=lambda j: j.queue_key)

    async def counts(self) -> dict[str, int]:
        async with self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state") as cur:
            rows = await cur.fetchall()
        counts = {s.value: 0 for s in JobState}
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    async def transitions(self, job_id: str) -> list[Transition]:
        async with self.db.execute(
            "SELECT from_state, to_state, at, reason FROM transitions WHERE job_id = ?"
            " ORDER BY seq",
            (job_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def recover(self) -> list[Job]:
        """After a crash: every job that was running is marked interrupted, nothing is dropped.

        Jobs that had not reached a printer are queued again (their work can be redone safely);
        a print that was running stays interrupted: half a part may be on the bed.
        """
        recovered: list[Job] = []
        for state in ACTIVE:
            for job in await self.list(state, limit=1_000_000):
                was_printing = job.state is JobState.PRINTING
                for stage in job.stages:
                    if stage.state is StageState.RUNNING:
                        stage.state = StageState.INTERRUPTED
                await self.transition(
                    job,
                    JobState.INTERRUPTED,
                    error=JobError(
                        code="interrupted",
                        message=f"printforge stopped while the job was {state.value}",
                    ),
                    reason="recovered after restart",
                )
                if not was_printing:
                    await self.transition(job, JobState.QUEUED, reason="re-queued after restart")
                recovered.append(job)
        return recovered
