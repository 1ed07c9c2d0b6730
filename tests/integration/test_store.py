"""The SQLite job store: every transition persisted, restarts lose nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.models.job import Job, JobError, JobState, StageName, StageState
from printforge.models.request import PrintRequest
from printforge.orchestrator.store import JobStore
from printforge.runtime.errors import ConfigError, InvalidTransition


@pytest.mark.asyncio
async def test_transitions_are_persisted_in_order(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    await store.open()
    job = Job(request=PrintRequest(text="a cube", priority=5))
    await store.insert(job)
    for state in (JobState.RESEARCHING, JobState.DESIGNING, JobState.SLICING):
        await store.transition(job, state, reason=f"to {state}")
    with pytest.raises(InvalidTransition):
        await store.transition(job, JobState.QUEUED)
    await store.close()

    reopened = JobStore(tmp_path / "jobs.sqlite3")
    await reopened.open()
    loaded = await reopened.get(job.id)
    assert loaded is not None
    assert loaded.state is JobState.SLICING
    assert loaded.request.priority == 5
    history = await reopened.transitions(job.id)
    assert [(f, t) for f, t, _, _ in history] == [
        (None, "queued"),
        ("queued", "researching"),
        ("researching", "designing"),
        ("designing", "slicing"),
    ]
    async with reopened.db.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
    await reopened.close()


@pytest.mark.asyncio
async def test_queue_order_is_priority_then_age(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "q.sqlite3")
    await store.open()
    low = Job(request=PrintRequest(text="low", priority=0))
    high = Job(request=PrintRequest(text="high", priority=10))
    low2 = Job(request=PrintRequest(text="low2", priority=0))
    for j in (low, high, low2):
        await store.insert(j)
    assert [j.request.text for j in await store.queued()] == ["high", "low", "low2"]
    counts = await store.counts()
    assert counts["queued"] == 3
    await store.close()


@pytest.mark.asyncio
async def test_recover_marks_running_work_interrupted_and_requeues_unprinted(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "r.sqlite3")
    await store.open()
    queued = Job(request=PrintRequest(text="still queued"))
    slicing = Job(request=PrintRequest(text="was slicing"))
    printing = Job(request=PrintRequest(text="was printing"))
    done = Job(request=PrintRequest(text="done"))
    for j in (queued, slicing, printing, done):
        await store.insert(j)
    await store.transition(slicing, JobState.SLICING)
    slicing.stage(StageName.SLICER).state = StageState.RUNNING
    await store.save(slicing)
    await store.transition(printing, JobState.PRINTING)
    await store.transition(done, JobState.CANCELLED)
    await store.close()  # "crash": nothing else is written

    store = JobStore(tmp_path / "r.sqlite3")
    await store.open()
    recovered = await store.recover()
    assert {j.id for j in recovered} == {slicing.id, printing.id}
    assert (await store.get(queued.id)).state is JobState.QUEUED  # type: ignore[union-attr]
    s = await store.get(slicing.id)
    assert s is not None and s.state is JobState.QUEUED
    assert s.stage(StageName.SLICER).state is StageState.INTERRUPTED
    p = await store.get(printing.id)
    assert p is not None and p.state is JobState.INTERRUPTED
    assert p.error == JobError(
        code="interrupted", message="printforge stopped while the job was printing"
    )
    assert (await store.get(done.id)).state is JobState.CANCELLED  # type: ignore[union-attr]
    reasons = [r for *_, r in await store.transitions(slicing.id)]
    assert reasons[-2:] == ["recovered after restart", "re-queued after restart"]
    await store.close()


@pytest.mark.asyncio
async def test_a_file_that_is_not_a_database_is_a_clear_error_and_leaves_no_thread(
    tmp_path: Path,
) -> None:
    import threading

    path = tmp_path / "printforge.sqlite3"
    path.write_bytes(b"this is not sqlite " * 300)
    before = set(threading.enumerate())
    store = JobStore(path)
    with pytest.raises(ConfigError, match=rf"the job store {path} cannot be used .*move it aside"):
        await store.open()
    # aiosqlite's connection thread was left running: the CLI printed the error, then hung.
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in left:
        t.join(timeout=30)
    assert not [t for t in left if t.is_alive()]
