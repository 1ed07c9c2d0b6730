"""One contract for both job stores (SQLite and PostgreSQL): jobs, migrations and leases.

The PostgreSQL store runs against a server the session starts itself (tests/fakes/postgres.py).
Leases are given already expired (a negative time to live) rather than waited out.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from printforge.models.job import Job, JobState, StageName, StageState
from printforge.models.request import PrintRequest
from printforge.orchestrator.store import JobStore, store_for_url
from printforge.orchestrator.storesql import MIGRATIONS, SqlJobStore
from printforge.runtime.errors import ConfigError, InvalidTransition

REPO = Path(__file__).resolve().parents[2]
LATEST = MIGRATIONS[-1][0]


class StoreContract:
    """What every job store does; subclasses say how to open one."""

    async def open_store(self) -> SqlJobStore:
        raise NotImplementedError

    @pytest_asyncio.fixture
    async def store(self) -> AsyncIterator[SqlJobStore]:
        store = await self.open_store()
        try:
            yield store
        finally:
            await store.close()

    @pytest.mark.asyncio
    async def test_jobs_and_transitions(self, store: SqlJobStore) -> None:
        job = Job(request=PrintRequest(text="a cube", priority=5))
        await store.insert(job, submitted_by="key1")
        for state in (JobState.RESEARCHING, JobState.DESIGNING):
            await store.transition(job, state, reason=f"to {state}")
        with pytest.raises(InvalidTransition):
            await store.transition(job, JobState.QUEUED)
        loaded = await store.get(job.id)
        assert loaded is not None and loaded.state is JobState.DESIGNING
        assert await store.submitted_by(job.id) == "key1"
        assert [t for _, t, _, _ in await store.transitions(job.id)] == [
            "queued",
            "researching",
            "designing",
        ]
        assert (await store.counts())["designing"] == 1
        assert await store.get("nope") is None

    @pytest.mark.asyncio
    async def test_queue_order_is_priority_then_age(self, store: SqlJobStore) -> None:
        jobs = [Job(request=PrintRequest(text=t, priority=p)) for t, p in
                (("low", 0), ("high", 10), ("low2", 0))]  # fmt: skip
        for job in jobs:
            await store.insert(job)
        assert [j.request.text for j in await store.queued()] == ["high", "low", "low2"]
        assert [j.request.text for j in await store.list(oldest_first=True)] == [
            "low",
            "high",
            "low2",
        ]

    @pytest.mark.asyncio
    async def test_the_schema_is_at_the_latest_migration(self, store: SqlJobStore) -> None:
        assert await store.schema_version() == LATEST
        assert {"lease_owner", "lease_expires", "lease_stage", "submitted_by"} <= set(
            await _columns(store)
        )

    @pytest.mark.asyncio
    async def test_a_claim_is_exclusive_until_it_expires(self, store: SqlJobStore) -> None:
        job = Job(request=PrintRequest(text="a cube"))
        await store.insert(job)
        assert await store.claim(job.id, "a", 30.0)
        assert not await store.claim(job.id, "b", 30.0)
        assert await store.hold(job.id, "a", 30.0, "research")
        assert not await store.hold(job.id, "b", 30.0, "research")
        owner, left = await store.lease_of(job.id)
        assert owner == "a" and left is not None and 0 < left <= 30.0
        assert await store.heartbeat("a", 30.0) == 1
        await store.release(job.id, "a")
        assert await store.lease_of(job.id) == (None, None)
        # Expired (given with a time already past): another instance may claim it.
        assert await store.claim(job.id, "a", -1.0)
        assert await store.claim(job.id, "b", 30.0)
        assert not await store.hold(job.id, "a", 30.0, "cad")

    @pytest.mark.asyncio
    async def test_only_one_of_many_claimants_wins(self, store: SqlJobStore) -> None:
        job = Job(request=PrintRequest(text="a cube"))
        await store.insert(job)
        others = [await self.open_store() for _ in range(4)]
        try:
            won = await asyncio.gather(
                *(s.claim(job.id, f"i{n}", 30.0) for n, s in enumerate([store, *others]))
            )
        finally:
            for other in others:
                await other.close()
        assert sum(won) == 1

    @pytest.mark.asyncio
    async def test_a_dead_instances_work_is_taken_over(self, store: SqlJobStore) -> None:
        live, dead, gone = (Job(request=PrintRequest(text=t)) for t in ("live", "dead", "gone"))
        for job, owner, ttl in ((live, "a", 30.0), (dead, "b", -1.0), (gone, "c", 30.0)):
            await store.insert(job)
            assert await store.claim(job.id, owner, ttl)
            await store.transition(job, JobState.RESEARCHING)
            assert await store.hold(job.id, owner, ttl, "research")
        assert await store.claim_printer("bus-1", "c", 30.0, gone.id)
        assert await store.claim_printer("bus-2", "a", 30.0, live.id)
        assert not await store.claim_printer("bus-1", "d", 30.0, gone.id)
        assert await store.foreign_printers("d") == {"bus-1", "bus-2"}
        # b's lease expired; c is known dead (its lock file is free); a is alive.
        taken = await store.take_over("d", 30.0, dead=["c"])
        # The dead instance's printer is free at once; the live one's stays leased.
        assert await store.foreign_printers("d") == {"bus-2"}
        assert await store.claim_printer("bus-1", "d", 30.0, gone.id)
        assert not await store.claim_printer("bus-2", "d", 30.0, gone.id)
        assert sorted(j.request.text for j, _ in taken) == ["dead", "gone"]
        assert {stage for _, stage in taken} == {"research"}
        for job, _ in taken:
            job.stage(StageName.RESEARCH).state = StageState.RUNNING
            await store.interrupt(job, "its instance died", reason="takeover")
            await store.release(job.id, "d")
            assert (await store.get(job.id)).state is JobState.QUEUED  # type: ignore[union-attr]
        assert await store.take_over("d", 30.0) == []
        # Its own expired lease is never taken over by an instance (a late heartbeat).
        mine = Job(request=PrintRequest(text="mine"))
        await store.insert(mine)
        assert await store.claim(mine.id, "d", -1.0)
        await store.transition(mine, JobState.RESEARCHING)
        assert await store.take_over("d", 30.0) == []
        assert (await store.lease_of(live.id))[0] == "a"


async def _columns(store: SqlJobStore) -> set[str]:
    async with store.transaction() as tx:
        return await store.columns(tx, "jobs")


class TestSqliteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.path = tmp_path / "jobs.sqlite3"

    async def open_store(self) -> SqlJobStore:
        store = JobStore(self.path)
        await store.open()
        return store


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    async def open_store(self) -> SqlJobStore:
        store = store_for_url(self.url)
        await store.open()
        return store


_OLD_SCHEMA = """
CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL, submitted_by TEXT);
CREATE TABLE transitions (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL, at TEXT NOT NULL, reason TEXT);
PRAGMA user_version = 2;
"""


def _old_store(path: Path, jobs: int) -> list[str]:
    """A store as the code before the migration table left it (user_version 2)."""
    ids = []
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        for n in range(jobs):
            job = Job(request=PrintRequest(text=f"part {n}", priority=n % 3))
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.id, "queued", job.request.priority, job.created_at.isoformat(),
                 job.updated_at.isoformat(), job.model_dump_json(), "k"),
            )  # fmt: skip
            db.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, reason)"
                " VALUES (?, NULL, 'queued', ?, 'submitted')",
                (job.id, job.created_at.isoformat()),
            )
            ids.append(job.id)
    return ids


@pytest.mark.asyncio
async def test_a_store_from_before_the_migration_table_is_brought_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    ids = _old_store(path, 3)
    store = JobStore(path)
    await store.open()
    try:
        rows = await store.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [v for v, _ in rows] == [n for n, _, _ in MIGRATIONS]
        assert "before the migration table" in rows[0][1]
        assert "before" not in rows[-1][1]
        assert [j.id for j in await store.list(oldest_first=True)] == ids
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="sqlite:/// or postgresql://"):
        store_for_url("mysql://x")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "printforge", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_store_copy_moves_a_sqlite_farm_to_postgresql(tmp_path: Path, postgres_url: str) -> None:
    path = tmp_path / "old.sqlite3"
    ids = _old_store(path, 5)
    source = f"sqlite:///{path}"
    copied = _cli("store", "copy", "--from", source, "--to", postgres_url, "--json")
    assert copied.returncode == 0, copied.stderr
    report = json.loads(copied.stdout)
    assert (report["jobs"], report["transitions"], report["schema_version"]) == (5, 5, LATEST)
    # Into a store that holds jobs already: refused, nothing merged.
    again = _cli("store", "copy", "--from", source, "--to", postgres_url)
    assert again.returncode == 1
    assert "already holds jobs" in again.stderr
    migrated = _cli("store", "migrate", "--url", postgres_url, "--json")
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["schema_version"] == LATEST

    async def read() -> list[str]:
        store = store_for_url(postgres_url)
        await store.open()
        try:
            assert len(await store.transitions(ids[0])) == 1
            return [j.id for j in await store.list(oldest_first=True)]
        finally:
            await store.close()

    assert asyncio.run(read()) == ids
