"""The job store on PostgreSQL, shared by any number of orchestrators (issue 16).

The driver is psycopg 3 (`psycopg[binary]` with `psycopg_pool`), not asyncpg: it is maintained
by the author of psycopg2, the PostgreSQL driver most deployments already trust; it is async
natively; and it supports LISTEN/NOTIFY on an ordinary connection (`conn.notifies()`), which
the events between instances use (`orchestrator/pgevents.py`). asyncpg would do the same work,
but with its own `$1` placeholders and no sync API for the `store` commands.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from printforge.orchestrator.storesql import SqlJobStore, Tx
from printforge.runtime.errors import ConfigError

__all__ = ["PgJobStore", "redact"]

# The first schema, as SQLite's (store._SCHEMA); the numbered migrations bring both forward.
# `seq` stands for SQLite's rowid: it orders jobs created in the same instant.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY, state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL,"
    " seq BIGSERIAL)",
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, priority DESC, created_at)",
    "CREATE TABLE IF NOT EXISTS transitions ("
    " seq BIGSERIAL PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id),"
    " from_state TEXT, to_state TEXT NOT NULL, at TEXT NOT NULL, reason TEXT)",
    "CREATE INDEX IF NOT EXISTS transitions_job ON transitions(job_id, seq)",
)
# Two instances starting together must not both run a migration step.
_MIGRATION_LOCK = 0x70F0_0016


def redact(url: str) -> str:
    """The URL without its password, for messages and the health report."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def _pg(sql: str) -> str:
    # Our queries hold no literal '?' nor '%': the placeholders are all there is to turn.
    return sql.replace("?", "%s")


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self._conn.execute(_pg(sql), list(params))
        return int(cur.rowcount)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = await self._conn.execute(_pg(sql), list(params))
        return [tuple(r) for r in await cur.fetchall()]


class PgJobStore(SqlJobStore):
    """The job store in the PostgreSQL database at `url`."""

    dialect: ClassVar = "postgresql"
    order_column: ClassVar[str] = "seq"
    now_sql: ClassVar[str] = "EXTRACT(EPOCH FROM clock_timestamp())::float8"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        super().__init__()
        self._url = url
        self.path = redact(url)
        self._pool_size = pool_size
        self._pool: Any = None

    @property
    def url(self) -> str:
        return self._url

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            import psycopg
            from psycopg_pool import AsyncConnectionPool
        except ImportError as err:
            raise ConfigError(
                "a postgresql:// job store needs psycopg: pip install 'printforge[postgresql]'"
            ) from err
        pool = AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 10},
            timeout=30.0,
        )
        try:
            await pool.open(wait=True, timeout=15.0)
        except Exception as err:
            await pool.close()
            raise ConfigError(f"cannot reach the job store {self.path}: {err}") from err
        self._pool = pool
        try:
            async with self.transaction() as tx:
                await tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
                for statement in _SCHEMA:
                    await tx.execute(statement)
                await self._migrate(tx)
            self._counts = await self.counts()
        except psycopg.Error as err:
            await self.close()
            raise ConfigError(f"the job store {self.path} cannot be used: {err}") from err
        self._publish_counts()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=5.0)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        if self._pool is None:
            raise RuntimeError("job store is not open")
        async with self._pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._pool is None:
            raise RuntimeError("job store is not open")
        async with self._pool.connection() as conn:
            return await _PgTx(conn).fetchall(sql, params)

    async def columns(self, tx: Tx, table: str) -> set[str]:
        rows = await tx.fetchall(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {str(r[0]) for r in rows}

    def _skip_locked(self) -> str:
        # Rows another instance is taking over right now are left to it, not waited for.
        return " FOR UPDATE SKIP LOCKED"

    async def claim(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """As SqlJobStore.claim; a job another instance is claiming this instant is skipped
        (SKIP LOCKED) rather than waited for."""
        now = self.now_sql
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id FROM jobs WHERE id = ? AND state = ?"
                f" AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < {now})"
                " FOR UPDATE SKIP LOCKED",
                (job_id, "queued", owner),
            )
            if not rows:
                return False
            await tx.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_expires = {now} + ?, lease_stage = NULL"
                " WHERE id = ?",
                (owner, ttl_s, job_id),
            )
        return True
