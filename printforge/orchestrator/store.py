"""The job store: SQLite in WAL mode (the default), or PostgreSQL for a farm of orchestrators.

`JobStore` is the SQLite backend; `storesql.SqlJobStore` holds the queries both backends
share, `storepg.PgJobStore` is PostgreSQL's. `job_store(settings)` picks one from
`[store] url`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite

from printforge.orchestrator.storesql import SqlJobStore, Transition, Tx
from printforge.runtime.errors import ConfigError

__all__ = ["JobStore", "SqlJobStore", "Transition", "job_store", "store_for_url"]

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


class _SqliteTx:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._db.execute(sql, params) as cur:
            return cur.rowcount

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._db.execute(sql, params) as cur:
            return [tuple(r) for r in await cur.fetchall()]


class JobStore(SqlJobStore):
    """The SQLite job store at `path`."""

    dialect: ClassVar = "sqlite"
    order_column: ClassVar[str] = "rowid"
    now_sql: ClassVar[str] = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

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
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        await self._migrate(_SqliteTx(self.db), first_version=version)
        latest = await _SqliteTx(self.db).fetchall("SELECT MAX(version) FROM schema_migrations")
        # Kept in step for backups (storecopy describes a copy by it) and older code reading it.
        # PRAGMA takes no parameters; the number comes from this store's own table.
        await self.db.execute(f"PRAGMA user_version = {int(latest[0][0] or 0)}")

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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            try:
                yield _SqliteTx(self.db)
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await _SqliteTx(self.db).fetchall(sql, params)

    async def columns(self, tx: Tx, table: str) -> set[str]:
        # PRAGMA takes no parameters; `table` is a constant of the migration steps.
        return {str(r[1]) for r in await tx.fetchall(f"PRAGMA table_info({table})")}


def store_for_url(url: str, data_dir: Path | None = None) -> SqlJobStore:
    """The store a `[store] url` names: `sqlite:///PATH` or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        return JobStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from printforge.orchestrator.storepg import PgJobStore

        return PgJobStore(url)
    raise ConfigError(
        f"[store] url must start with sqlite:/// or postgresql://, not {url.split(':', 1)[0]!r}"
    )


def job_store(settings: Any) -> SqlJobStore:
    """The job store the settings choose (by default SQLite in the data directory)."""
    return store_for_url(settings.store_url)
