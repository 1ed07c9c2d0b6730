"""The CPU worker pool (runtime/workers.py): work runs in another process, progress and errors
come back, and without a pool the same call runs in a thread."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
import trimesh

from printforge.runtime import workers
from printforge.runtime.errors import InputError


def pid_after_reports(count: int, progress: Callable[[float, str], None]) -> int:
    for n in range(count):
        progress((n + 1) / count, f"step {n + 1}")
    return os.getpid()


def refuse(message: str) -> None:
    raise InputError(message)


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[workers.WorkerPool]:
    pool = workers.WorkerPool(1)
    workers.install(pool)
    try:
        yield pool
    finally:
        workers.install(None)
        pool.close()


@pytest.mark.asyncio
async def test_work_runs_in_a_worker_process_and_reports_progress(
    pool: workers.WorkerPool,
) -> None:
    seen: list[tuple[float, str]] = []
    pid = await workers.run_cpu(pid_after_reports, 3, progress=lambda f, m: seen.append((f, m)))
    assert pid != os.getpid()
    # Every report has reached its callback by the time the result is back.
    assert seen == [(1 / 3, "step 1"), (2 / 3, "step 2"), (1.0, "step 3")]
    assert await workers.run_cpu(pid_after_reports, 0, progress=lambda f, m: None) == pid


@pytest.mark.asyncio
async def test_errors_come_back_with_their_type_and_message(pool: workers.WorkerPool) -> None:
    with pytest.raises(InputError, match="too thin") as info:
        await workers.run_cpu(refuse, "too thin")
    assert info.value.message == "too thin"


@pytest.mark.asyncio
async def test_without_a_pool_the_work_runs_in_a_thread() -> None:
    assert workers.installed() is None
    seen: list[float] = []
    pid = await workers.run_cpu(pid_after_reports, 2, progress=lambda f, m: seen.append(f))
    assert pid == os.getpid()
    assert seen == [0.5, 1.0]


def mesh_facts(mesh: trimesh.Trimesh) -> tuple[int, float, object]:
    return len(mesh.faces), round(float(mesh.volume), 3), mesh.metadata.get("bodies")


def a_box() -> trimesh.Trimesh:
    box = trimesh.creation.box((10, 20, 30))
    box.metadata["bodies"] = 1
    return box


@pytest.mark.asyncio
async def test_meshes_cross_both_ways_without_their_caches(pool: workers.WorkerPool) -> None:
    box = a_box()
    assert box.is_watertight  # fills caches that must not be shipped
    assert await workers.run_cpu(mesh_facts, box) == (12, 6000.0, 1)
    back = await workers.run_cpu(a_box)
    assert (len(back.faces), back.metadata["bodies"]) == (12, 1)
