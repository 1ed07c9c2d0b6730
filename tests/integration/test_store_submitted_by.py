"""The store's one migration: jobs record the API key id that submitted them, and a store made
before the column existed is upgraded in place, its old jobs kept with no submitter."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from printforge.models.job import Job
from printforge.models.request import PrintRequest
from printforge.orchestrator.store import JobStore

_OLD_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL REFERENCES jobs(id),
    from_state TEXT, to_state TEXT NOT NULL, at TEXT NOT NULL, reason TEXT
);
"""


@pytest.mark.asyncio
async def test_an_old_store_gains_submitted_by_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = Job(request=PrintRequest(text="from before"))
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, 0, ?, ?, ?)",
            (
                old.id,
                old.state.value,
                old.created_at.isoformat(),
                old.updated_at.isoformat(),
                old.model_dump_json(),
            ),
        )
    path.chmod(0o644)
    store = JobStore(path)
    await store.open()
    try:
        new = Job(request=PrintRequest(text="a cube"))
        await store.insert(new, submitted_by="ab12cd34")
        assert await store.submitted_by(new.id) == "ab12cd34"
        assert await store.submitted_by(old.id) is None
        assert (await store.get(old.id)) is not None
    finally:
        await store.close()
    # Opening again runs the migration again, harmlessly; the file is the owner's only.
    again = JobStore(path)
    await again.open()
    await again.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
