"""The job store's logic, once for every SQL backend: jobs, transitions, migrations and leases.

`SqlJobStore` holds every query; a backend (`store.JobStore` for SQLite, `storepg.PgJobStore`
for PostgreSQL) only opens its connection, runs a transaction and says its dialect. Queries
are written with `?` placeholders; the PostgreSQL backend turns them into psycopg's `%s`.

Leases (issue 16): a job being worked on carries `lease_owner` (the instance) and
`lease_expires` (seconds since the epoch, by the database's clock, so hosts whose clocks
differ agree on it). The owner renews its leases with one heartbeat statement; a lease not
renewed expires, and any instance may then take the job over. Every stage starts with `hold`,
which renews the lease only if it is still the caller's: an instance that was stalled past its
lease and lost the job learns it there, before it runs the stage twice.
"""

from __future__ import annotations

import builtins
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

from printforge.models.job import ACTIVE, CONTROL_KEYS, Job, JobError, JobState, StageState
from printforge.runtime import metrics

__all__ = ["MIGRATIONS", "SqlJobStore", "Transition", "Tx"]

log = logging.getLogger(__name__)

Transition = tuple[str | None, str, str, str | None]
Dialect = Literal["sqlite", "postgresql"]


class Tx(Protocol):
    """One transaction: statements run in it commit together (or not at all)."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


async def _typed_control_state(store: SqlJobStore, tx: Tx) -> None:
    """Step 1: a job's control state (copy_of, sliced_for, print_attempts, ...) moves from its
    report dict into typed fields; `Job` lifts the old keys as it loads, so each row is loaded
    and written back once."""
    like = " OR ".join("data LIKE ?" for _ in CONTROL_KEYS)
    rows = await tx.fetchall(
        f"SELECT id, data FROM jobs WHERE {like}",
        [f'%"{key}"%' for key in CONTROL_KEYS],
    )
    for job_id, data in rows:
        job = Job.model_validate_json(data)
        await tx.execute("UPDATE jobs SET data = ? WHERE id = ?", (job.model_dump_json(), job_id))


async def _submitted_by(store: SqlJobStore, tx: Tx) -> None:
    """Step 2: the API key id that submitted a job (NULL: submitted before it was recorded, or
    by a command without a key); it decides who may cancel the job."""
    if "submitted_by" not in await store.columns(tx, "jobs"):
        await tx.execute("ALTER TABLE jobs ADD COLUMN submitted_by TEXT")


async def _spools(store: SqlJobStore, tx: Tx) -> None:
    """Step 3: spools, what each printer has loaded, and the filament each print took (issue
    15). A usage row per print attempt makes charging a spool idempotent."""
    serial = (
        "BIGSERIAL PRIMARY KEY"
        if store.dialect == "postgresql"
        else "INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    real = "DOUBLE PRECISION" if store.dialect == "postgresql" else "REAL"
    for statement in (
        f"CREATE TABLE IF NOT EXISTS spools (id {serial},"
        " archived INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS printer_loads (printer TEXT PRIMARY KEY, material TEXT,"
        " spool_id INTEGER, at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS spool_usage (job_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
        " printer TEXT NOT NULL, spool_id INTEGER NOT NULL, source TEXT NOT NULL,"
        f" grams {real} NOT NULL, sent INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL,"
        " PRIMARY KEY (job_id, attempt))",
    ):
        await tx.execute(statement)


async def _leases(store: SqlJobStore, tx: Tx) -> None:
    """Step 4: the lease on a job being worked on (issue 16): which instance, until when, and
    the stage it last claimed."""
    have = await store.columns(tx, "jobs")
    real = "DOUBLE PRECISION" if store.dialect == "postgresql" else "REAL"
    for name, kind in (("lease_owner", "TEXT"), ("lease_expires", real), ("lease_stage", "TEXT")):
        if name not in have:
            await tx.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
    await tx.execute("CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(lease_owner, lease_expires)")


async def _printer_leases(store: SqlJobStore, tx: Tx) -> None:
    """Step 5: which instance drives each shared (bus) printer, until when, for which job."""
    real = "DOUBLE PRECISION" if store.dialect == "postgresql" else "REAL"
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS printer_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        f" expires {real} NOT NULL, job_id TEXT)"
    )


Migration = tuple[int, str, Callable[["SqlJobStore", Tx], Awaitable[None]]]

# Numbered schema and data steps after the first schema; never renumber a released one. The
# number is recorded in `schema_migrations` (and, on SQLite, in `PRAGMA user_version` too,
# which backups describe and stores older than the table carry).
MIGRATIONS: tuple[Migration, ...] = (
    (1, "typed control state", _typed_control_state),
    (2, "submitted_by", _submitted_by),
    (3, "spools", _spools),
    (4, "leases", _leases),
    (5, "printer leases", _printer_leases),
)

_ACTIVE_VALUES = tuple(sorted(s.value for s in ACTIVE))


class SqlJobStore(ABC):
    """Jobs and their transitions in one SQL database; every transition in the same
    transaction as the job's new state."""

    dialect: ClassVar[Dialect]
    # The column that orders jobs created in the same instant (SQLite's rowid, a sequence).
    order_column: ClassVar[str]
    # The database's clock, in seconds since the epoch (fractional).
    now_sql: ClassVar[str]
    # What the health report and `printforge health` call this store (a path or a URL).
    path: Any

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    # backend hooks -----------------------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction; committed when the block ends, rolled back if it raises."""

    @abstractmethod
    async def fetchall(
        self, sql: str, params: Sequence[Any] = ()
    ) -> builtins.list[tuple[Any, ...]]:
        """A read outside any transaction of ours."""

    @abstractmethod
    async def columns(self, tx: Tx, table: str) -> set[str]: ...

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def url(self) -> str:
        return str(self.path)

    # schema ------------------------------------------------------------------------------------
    async def _migrate(self, tx: Tx, first_version: int = 0) -> builtins.list[int]:
        """The numbered steps a store older than this code has not had, in order, each recorded
        as it runs (so each runs once). Returns the numbers applied."""
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        rows = await tx.fetchall("SELECT version FROM schema_migrations")
        done = {int(r[0]) for r in rows}
        now = datetime.now(UTC).isoformat()
        if not done and first_version > 0:
            # A store from before the table: its steps are those its user_version counts.
            for number, name, _step in MIGRATIONS:
                if number <= first_version:
                    await tx.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES (?, ?, ?)",
                        (number, f"{name} (before the migration table)", now),
                    )
                    done.add(number)
        applied: builtins.list[int] = []
        for number, name, step in MIGRATIONS:
            if number in done:
                continue
            await step(self, tx)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, now),
            )
            applied.append(number)
        return applied

    async def schema_version(self) -> int:
        rows = await self.fetchall("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0) if rows else 0

    # metrics -----------------------------------------------------------------------------------
    def _publish_counts(self) -> None:
        for state, n in self._counts.items():
            metrics.JOBS_BY_STATE.labels(state).set(n)
        metrics.QUEUE_DEPTH.set(self._counts.get(JobState.QUEUED.value, 0))

    def _count(self, old: JobState | None, new: JobState) -> None:
        if old is not None:
            self._counts[old.value] = self._counts.get(old.value, 0) - 1
        self._counts[new.value] = self._counts.get(new.value, 0) + 1
        self._publish_counts()

    # jobs --------------------------------------------------------------------------------------
    async def insert(self, job: Job, submitted_by: str | None = None) -> None:
        async with self.transaction() as tx:
            await tx.execute(
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
            await tx.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, reason)"
                " VALUES (?, NULL, ?, ?, 'submitted')",
                (job.id, job.state.value, job.created_at.isoformat()),
            )
        metrics.JOB_TRANSITIONS.labels(job.state.value).inc()
        self._count(None, job.state)

    async def save(self, job: Job) -> None:
        """Persist a job's data (artifacts, stages, report) without changing its state."""
        async with self.transaction() as tx:
            # priority too: job.update may change it (the column orders the queue's index).
            await tx.execute(
                "UPDATE jobs SET data = ?, updated_at = ?, priority = ? WHERE id = ?",
                (
                    job.model_dump_json(),
                    datetime.now(UTC).isoformat(),
                    job.request.priority,
                    job.id,
                ),
            )

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
        async with self.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET state = ?, updated_at = ?, data = ? WHERE id = ?",
                (new.value, job.updated_at.isoformat(), job.model_dump_json(), job.id),
            )
            await tx.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (job.id, old.value, new.value, job.updated_at.isoformat(), reason),
            )
        metrics.JOB_TRANSITIONS.labels(new.value).inc()
        self._count(old, new)

    async def get(self, job_id: str) -> Job | None:
        rows = await self.fetchall("SELECT data FROM jobs WHERE id = ?", (job_id,))
        return Job.model_validate_json(rows[0][0]) if rows else None

    async def submitted_by(self, job_id: str) -> str | None:
        """The API key id that submitted the job, if it was recorded."""
        rows = await self.fetchall("SELECT submitted_by FROM jobs WHERE id = ?", (job_id,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    async def list(
        self, state: JobState | None = None, limit: int = 100, *, oldest_first: bool = False
    ) -> builtins.list[Job]:
        order = "ASC" if oldest_first else "DESC"
        query = "SELECT data FROM jobs"
        params: builtins.list[Any] = []
        if state is not None:
            query += " WHERE state = ?"
            params.append(state.value)
        query += f" ORDER BY created_at {order}, {self.order_column} {order} LIMIT ?"
        params.append(limit)
        rows = await self.fetchall(query, params)
        return [Job.model_validate_json(r[0]) for r in rows]

    async def queued(self) -> builtins.list[Job]:
        """Queued jobs in dispatch order: priority first, then first come first served."""
        rows = await self.fetchall(
            "SELECT data FROM jobs WHERE state = ?"
            f" ORDER BY priority DESC, created_at, {self.order_column}",
            (JobState.QUEUED.value,),
        )
        # A job moved in the queue (job.move) has its own rank among its priority.
        return sorted((Job.model_validate_json(r[0]) for r in rows), key=lambda j: j.queue_key)

    async def counts(self) -> dict[str, int]:
        rows = await self.fetchall("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        counts = {s.value: 0 for s in JobState}
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    async def transitions(self, job_id: str) -> builtins.list[Transition]:
        rows = await self.fetchall(
            "SELECT from_state, to_state, at, reason FROM transitions WHERE job_id = ?"
            " ORDER BY seq",
            (job_id,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def rows(self) -> AsyncIterator[tuple[str, builtins.list[Any]]]:
        """Every job row, then every transition row, oldest first (`store copy`)."""
        jobs = await self.fetchall(
            "SELECT id, state, priority, created_at, updated_at, data, submitted_by FROM jobs"
            f" ORDER BY created_at, {self.order_column}"
        )
        for row in jobs:
            yield "jobs", list(row)
        for row in await self.fetchall(
            "SELECT job_id, from_state, to_state, at, reason FROM transitions ORDER BY seq"
        ):
            yield "transitions", list(row)

    # recovery ----------------------------------------------------------------------------------
    async def recover(self) -> builtins.list[Job]:
        """After a crash: every job that was running is marked interrupted, nothing is dropped.

        Jobs that had not reached a printer are queued again (their work can be redone safely);
        a print that was running stays interrupted: half a part may be on the bed.
        """
        recovered: builtins.list[Job] = []
        for state in ACTIVE:
            for job in await self.list(state, limit=1_000_000):
                await self.interrupt(job, f"printforge stopped while the job was {state.value}")
                recovered.append(job)
        return recovered

    async def interrupt(self, job: Job, message: str, reason: str = "restart") -> None:
        """A job whose runner is gone: interrupted, and queued again unless it was printing."""
        was_printing = job.state is JobState.PRINTING
        for stage in job.stages:
            if stage.state is StageState.RUNNING:
                stage.state = StageState.INTERRUPTED
        await self.transition(
            job,
            JobState.INTERRUPTED,
            error=JobError(code="interrupted", message=message),
            reason=f"recovered after {reason}",
        )
        if not was_printing:
            await self.transition(job, JobState.QUEUED, reason=f"re-queued after {reason}")

    # leases ------------------------------------------------------------------------------------
    async def claim(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Lease a queued job to `owner` if no live lease holds it; True if it is now ours."""
        now = self.now_sql
        async with self.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_expires = {now} + ?, lease_stage = NULL"
                " WHERE id = ? AND state = ?"
                f" AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < {now})",
                (owner, ttl_s, job_id, JobState.QUEUED.value, owner),
            )
        return changed == 1

    async def hold(self, job_id: str, owner: str, ttl_s: float, stage: str) -> bool:
        """Renew our lease as a stage starts; False if the job is no longer ours."""
        async with self.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE jobs SET lease_expires = {self.now_sql} + ?, lease_stage = ?"
                " WHERE id = ? AND lease_owner = ?",
                (ttl_s, stage, job_id, owner),
            )
        return changed == 1

    async def heartbeat(self, owner: str, ttl_s: float) -> int:
        """Renew every lease `owner` holds (jobs and printers); how many jobs it holds."""
        async with self.transaction() as tx:
            await tx.execute(
                f"UPDATE printer_leases SET expires = {self.now_sql} + ? WHERE owner = ?",
                (ttl_s, owner),
            )
            return await tx.execute(
                f"UPDATE jobs SET lease_expires = {self.now_sql} + ? WHERE lease_owner = ?",
                (ttl_s, owner),
            )

    async def claim_printer(self, name: str, owner: str, ttl_s: float, job_id: str) -> bool:
        """Lease a shared printer to `owner` for a job, unless another live instance has it."""
        now = self.now_sql
        async with self.transaction() as tx:
            changed = await tx.execute(
                "INSERT INTO printer_leases (name, owner, expires, job_id)"
                f" VALUES (?, ?, {now} + ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET owner = excluded.owner, expires = excluded.expires, job_id = excluded.job_id"
                f" WHERE printer_leases.owner = ? OR printer_leases.expires < {now}",
                (name, owner, ttl_s, job_id, owner),
            )
        return changed == 1

    async def release_printer(self, name: str, owner: str) -> None:
        async with self.transaction() as tx:
            await tx.execute(
                "DELETE FROM printer_leases WHERE name = ? AND owner = ?", (name, owner)
            )

    async def release_printers_of(self, job_id: str, owner: str) -> None:
        """The shared printers `owner` leased for a job, free again as the job's task ends."""
        async with self.transaction() as tx:
            await tx.execute(
                "DELETE FROM printer_leases WHERE job_id = ? AND owner = ?", (job_id, owner)
            )

    async def foreign_printers(self, owner: str) -> set[str]:
        """Shared printers another instance holds a live lease on."""
        rows = await self.fetchall(
            f"SELECT name FROM printer_leases WHERE owner <> ? AND expires >= {self.now_sql}",
            (owner,),
        )
        return {str(r[0]) for r in rows}

    async def release(self, job_id: str, owner: str) -> None:
        async with self.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL, lease_stage = NULL"
                " WHERE id = ? AND lease_owner = ?",
                (job_id, owner),
            )

    async def lease_of(self, job_id: str) -> tuple[str | None, float | None]:
        """Who holds the job's lease and for how many more seconds (negative: expired)."""
        rows = await self.fetchall(
            f"SELECT lease_owner, lease_expires - {self.now_sql} FROM jobs WHERE id = ?",
            (job_id,),
        )
        if not rows or rows[0][0] is None:
            return None, None
        return str(rows[0][0]), float(rows[0][1])

    async def _lock_expired(
        self, tx: Tx, owner: str, ttl_s: float, dead: Sequence[str]
    ) -> builtins.list[str]:
        """Lease to `owner` the active jobs whose lease expired, whose owner is known dead, or
        that have none (left by a start before leases); their ids."""
        marks = ", ".join("?" for _ in _ACTIVE_VALUES)
        gone = " OR ".join("lease_owner = ?" for _ in dead) or "FALSE"
        now = self.now_sql
        # Never our own: a heartbeat that ran late must not make an instance take over (and
        # so run twice) the jobs it is running.
        where = (
            f"state IN ({marks}) AND (lease_owner IS NULL OR (lease_owner <> ?"
            f" AND (lease_expires < {now} OR {gone})))"
        )
        ids = [
            str(r[0])
            for r in await tx.fetchall(
                f"SELECT id FROM jobs WHERE {where}{self._skip_locked()}",
                (*_ACTIVE_VALUES, owner, *dead),
            )
        ]
        for job_id in ids:
            await tx.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_expires = {now} + ? WHERE id = ?",
                (owner, ttl_s, job_id),
            )
        return ids

    def _skip_locked(self) -> str:
        """What a SELECT that claims rows adds so that two instances never wait on each other."""
        return ""

    async def take_over(
        self, owner: str, ttl_s: float, dead: Sequence[str] = ()
    ) -> builtins.list[tuple[Job, str | None]]:
        """Jobs whose instance died (its leases expired, or it is known dead), now leased to
        `owner`, each with the stage it had claimed; the caller settles each and releases it."""
        async with self.transaction() as tx:
            ids = await self._lock_expired(tx, owner, ttl_s, dead)
            for gone in dead:
                # Its printers are free now too: their leases would only lapse later.
                await tx.execute("DELETE FROM printer_leases WHERE owner = ?", (gone,))
        out: builtins.list[tuple[Job, str | None]] = []
        for job_id in ids:
            rows = await self.fetchall(
                "SELECT data, lease_stage FROM jobs WHERE id = ? AND lease_owner = ?",
                (job_id, owner),
            )
            if rows:
                out.append((Job.model_validate_json(rows[0][0]), rows[0][1]))
        return out
