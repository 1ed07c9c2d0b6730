"""Leases instead of the data-directory lock (issue 16): orchestrators share a job store, each
job runs on exactly one of them, and a dead instance's jobs are taken over.

The processes here are real `printforge run` commands on one data directory; the store is read
with sqlite3 to see where a job is. A killed instance is found dead by its liveness mark
(`DATA_DIR/instances/`, a flock the kernel drops), so nothing waits for a lease to expire.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from printforge.models.job import Job, JobState, StageName
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.orchestrator.store import JobStore
from printforge.runtime.errors import DataDirBusy, InputError
from printforge.settings import load_settings
from tests.fakes.serve_process import REPO, wait_for

# Leases are on by default, on SQLite too: the commands here set nothing to share a directory.
DEFAULTS: dict[str, str] = {}


def _run(data: Path, text: str, sim_speed: float, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "printforge", "run", text, "--json", "--data-dir", str(data),
         "--sim-speed", str(sim_speed)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group: a kill takes its worker processes too, as a host's death does.
        start_new_session=True,
    )  # fmt: skip


def _states(data: Path) -> dict[str, str]:
    path = data / "printforge.sqlite3"
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return dict(db.execute("SELECT id, state FROM jobs").fetchall())
    except sqlite3.OperationalError:
        return {}  # the schema is being made


def _streaming(data: Path) -> str | None:
    """A job whose print has acknowledged lines saved (on a lease heartbeat)."""
    try:
        with sqlite3.connect(data / "printforge.sqlite3", timeout=5) as db:
            rows = db.execute("SELECT id, data FROM jobs WHERE state = 'printing'").fetchall()
    except sqlite3.OperationalError:
        return None
    for job_id, raw in rows:
        if (Job.model_validate_json(raw).last_acked_line or 0) > 0:
            return str(job_id)
    return None


def _reasons(data: Path, job_id: str) -> list[str]:
    with sqlite3.connect(data / "printforge.sqlite3", timeout=5) as db:
        rows = db.execute("SELECT reason FROM transitions WHERE job_id = ? ORDER BY seq", (job_id,))
        return [r or "" for (r,) in rows.fetchall()]


def _finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        raise
    assert proc.returncode == 0, err
    summary: dict[str, object] = json.loads(out)
    return summary


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_runs_on_one_data_dir_both_finish(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _run(data, "a 20 mm calibration cube", 200.0, DEFAULTS)
    try:
        first_id = wait_for(
            lambda: next((i for i, s in _states(data).items() if s == "printing"), None),
            180,
            "the first run to print",
        )
        second = _run(data, "a 15 mm calibration cube", 5000.0, DEFAULTS)
        second_summary = _finish(second)
    finally:
        first_summary = _finish(first)
    assert first_summary["state"] == second_summary["state"] == "completed"
    assert first_summary["job_id"] == first_id
    # The second did not "recover" (interrupt and re-run) the job the first was printing.
    assert not any("recovered" in r for r in _reasons(data, first_id))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_runs_print_is_marked_interrupted_by_the_next(tmp_path: Path) -> None:
    data = tmp_path / "data"
    victim = _run(data, "a 20 mm calibration cube", 100.0, DEFAULTS)
    try:
        job_id = wait_for(lambda: _streaming(data), 180, "the run to stream its G-code")
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
    assert _states(data)[job_id] == "printing"  # nobody settled it: its owner died
    survivor = _run(data, "a 15 mm calibration cube", 5000.0, DEFAULTS)
    assert _finish(survivor)["state"] == "completed"
    assert _states(data)[job_id] == "interrupted"
    assert "recovered after takeover" in _reasons(data, job_id)
    # Its own (not shared) printer cannot be followed: where the print stopped is said.
    with sqlite3.connect(data / "printforge.sqlite3", timeout=5) as db:
        (raw,) = db.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
    job = Job.model_validate_json(raw)
    assert job.last_acked_line is not None
    assert job.error is not None
    assert f"last acknowledged line {job.last_acked_line}" in job.error.message
    assert list((data / "instances").glob("*.lock")) == []  # every mark settled


def _settings(data: Path, sim_speed: float = 5000.0, **store: object):  # type: ignore[no-untyped-def]
    return load_settings(
        overrides={
            "data_dir": str(data),
            "mock": True,
            "sim_speed": sim_speed,
            "store": {"leases": True, **store},  # the default, said for clarity
        }
    )


@pytest.mark.asyncio
async def test_an_expired_lease_is_taken_over_and_the_job_finishes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = JobStore(data / "printforge.sqlite3")
    await store.open()
    job = Job(request=PrintRequest(text="a 20 mm calibration cube", print_=False))
    await store.insert(job)
    # An instance on another host claimed it and died designing: its lease ran out.
    assert await store.claim(job.id, "elsewhere/1/dead", -1.0)
    await store.transition(job, JobState.RESEARCHING)
    assert await store.hold(job.id, "elsewhere/1/dead", -1.0, StageName.RESEARCH.value)
    await store.close()
    async with Orchestrator(_settings(data)) as orch:
        assert orch.leases is not None and orch.leases.taken_over == 1
        done = await orch.wait(job.id, timeout=120)
        assert done.state is JobState.COMPLETED
        reasons = [r for _, _, _, r in await orch.store.transitions(job.id)]
        assert "recovered after takeover" in reasons
        assert await orch.store.lease_of(job.id) == (None, None)


@pytest.mark.asyncio
async def test_a_live_lease_is_left_alone_and_fences_its_loser(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with Orchestrator(_settings(data)) as orch:
        store = orch.store
        job = Job(request=PrintRequest(text="a 20 mm calibration cube", print_=False))
        await store.insert(job)
        assert await store.claim(job.id, "elsewhere/2/alive", 60.0)
        await store.transition(job, JobState.RESEARCHING)
        assert await orch.leases.sweep() == 0  # type: ignore[union-attr]
        assert (await orch.get(job.id)).state is JobState.RESEARCHING
        with pytest.raises(InputError, match="on another instance"):
            await orch.cancel(job.id)


@pytest.mark.asyncio
async def test_leases_and_an_exclusive_holder_exclude_each_other(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with Orchestrator(_settings(data)) as shared:
        assert shared.lock.held
        plain = Orchestrator(_settings(data, leases=False))
        with pytest.raises(DataDirBusy) as refused:
            await plain.start()
        # The refusal names a live instance from its mark, not an empty lock file.
        assert f"pid {os.getpid()}" in refused.value.message
        assert refused.value.holder["instance"] in {shared.leases.instance}  # type: ignore[union-attr]
        async with Orchestrator(_settings(data)) as other:
            assert other.lock.held
            assert other.leases.instance != shared.leases.instance  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_instances_sharing_postgresql_each_run_a_job_once(
    tmp_path: Path, postgres_url: str
) -> None:
    orchs = [
        Orchestrator(_settings(tmp_path / f"d{n}", url=postgres_url, lease_s=1.0)) for n in range(2)
    ]
    for orch in orchs:
        await orch.start()
    try:
        jobs = [
            await orchs[0].submit(PrintRequest(text=f"a {10 + n} mm calibration cube",
                                               print_=False))
            for n in range(6)
        ]  # fmt: skip
        ends = await asyncio.gather(*(orchs[1].wait(j.id, timeout=240) for j in jobs))
        assert {e.state for e in ends} == {JobState.COMPLETED}
        for job in jobs:
            history = await orchs[1].store.transitions(job.id)
            # Exactly once: one pass through research, nothing recovered.
            assert [t for _, t, _, _ in history].count("researching") == 1
    finally:
        for orch in orchs:
            await orch.stop()


@pytest.mark.asyncio
async def test_every_instance_sees_every_jobs_events(tmp_path: Path, postgres_url: str) -> None:
    orchs = [
        Orchestrator(_settings(tmp_path / f"d{n}", url=postgres_url, lease_s=1.0)) for n in range(2)
    ]
    for orch in orchs:
        await orch.start()
    subs = [orch.bus.subscribe(maxsize=10_000) for orch in orchs]
    try:
        # Submitted on the first; the second may be the one that runs it.
        job = await orchs[0].submit(PrintRequest(text="a 20 mm calibration cube", print_=False))
        assert (await orchs[1].wait(job.id, timeout=240)).state is JobState.COMPLETED
        for sub in subs:
            seen: list[str] = []
            async with asyncio.timeout(30):
                async for event in sub:
                    if getattr(event, "job_id", None) == job.id and event.kind == "state":
                        seen.append(event.state.value)
                        if event.state is JobState.COMPLETED:
                            break
            # Every state, once each: relayed events are not echoed back.
            assert seen == ["queued", "researching", "designing", "slicing", "completed"]
    finally:
        for sub in subs:
            sub.close()
        for orch in orchs:
            await orch.stop()


@pytest.mark.asyncio
async def test_a_job_is_cancelled_from_any_instance(tmp_path: Path, postgres_url: str) -> None:
    orchs = [
        Orchestrator(_settings(tmp_path / f"d{n}", 20.0, url=postgres_url, lease_s=1.0))
        for n in range(2)
    ]
    for orch in orchs:
        await orch.start()
    try:
        job = await orchs[0].submit(PrintRequest(text="a 20 mm calibration cube"))
        async with asyncio.timeout(180):
            while True:
                owner, _ = await orchs[0].store.lease_of(job.id)
                state = (await orchs[0].get(job.id)).state
                if owner is not None and state is JobState.PRINTING:
                    break
                await asyncio.sleep(0.1)  # the store is the truth: polled
        runner = next(o for o in orchs if o.leases.instance == owner)  # type: ignore[union-attr]
        other = next(o for o in orchs if o is not runner)
        done = await other.cancel(job.id)
        assert done.state is JobState.CANCELLED
        assert (await runner.get(job.id)).state is JobState.CANCELLED
    finally:
        for orch in orchs:
            await orch.stop()
