"""CPU-bound work (CAD builds, the built-in slicer, G-code analysis, previews) in worker
processes, so that the event loop the printers stream on never waits for it.

A thread is not enough: pure-Python work holds the GIL, and a 100 ms slice of it starves a
serial printer's planner (16 short moves last about 60 ms). The pool uses `spawn` (a fork of
a process running an event loop and threads can inherit a held lock) and starts its workers
on first use. Progress callbacks cross over a queue the workers inherit: a reader thread hands
each report to the callback its task registered, as the engines' thread-based reports did.

`[runtime] workers` sizes the pool; 0 keeps the work in threads. The orchestrator installs
its pool for the process (`install`), and `run_cpu` uses whatever is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["WorkerPool", "install", "installed", "run_cpu"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[float, str], None]

# How long a finished task's last progress reports may take to arrive (they are already sent).
REPORTS_TIMEOUT_S = 5.0

# In a worker: the queue progress reports go back on (set by the pool's initializer).
_reports: Any = None


def _rebuild_mesh(vertices: Any, faces: Any, metadata: dict[str, Any]) -> Any:
    import trimesh

    return trimesh.Trimesh(vertices=vertices, faces=faces, metadata=metadata, process=False)


def _reduce_mesh(mesh: Any) -> tuple[Any, tuple[Any, ...]]:
    return _rebuild_mesh, (mesh.vertices, mesh.faces, dict(mesh.metadata))


def _register_reducers() -> None:
    """Meshes cross as their vertices, faces and metadata. Pickled whole, a Trimesh takes its
    caches along: 3DBenchy is 51-93 MB and 0.2-0.5 s of pickling under the GIL, a stall of
    the very loop this pool exists to keep free; its arrays alone are 8 MB."""
    from multiprocessing.reduction import ForkingPickler

    import trimesh

    ForkingPickler.register(trimesh.Trimesh, _reduce_mesh)


def _init_worker(reports: Any) -> None:
    global _reports  # one queue per worker process, set once at its start
    _reports = reports
    _register_reducers()


def _call(fn: Callable[..., T], args: tuple[Any, ...], task: int | None) -> T:
    if task is None:
        return fn(*args)

    def report(fraction: float, message: str) -> None:
        _reports.put((task, fraction, message))

    try:
        return fn(*args, progress=report)
    finally:
        # After this task's last report on the same queue: the pool returns the result only
        # once every report has reached its callback, as a thread's reports would have.
        _reports.put((task, None, None))


class WorkerPool:
    """A process pool of `workers` processes, started lazily, with progress forwarding."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._reports: Any = None
        self._reader: threading.Thread | None = None
        self._callbacks: dict[int, tuple[Progress, Callable[[], None]]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()  # `_ensure` runs in threads (`_submit`)

    def _ensure(self) -> ProcessPoolExecutor:
        with self._lock:
            return self._ensure_locked()

    def _ensure_locked(self) -> ProcessPoolExecutor:
        if self._executor is None:
            _register_reducers()
            ctx = mp.get_context("spawn")
            self._reports = ctx.SimpleQueue()
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self._reports,)
            )
            self._reader = threading.Thread(
                target=self._read_reports, name="worker-progress", daemon=True
            )
            self._reader.start()
        return self._executor

    def _read_reports(self) -> None:
        while True:
            item = self._reports.get()
            if item is None:
                return
            task, fraction, message = item
            entry = self._callbacks.get(task)
            if entry is None:
                continue
            callback, delivered = entry
            if fraction is None:
                delivered()
                continue
            try:
                callback(fraction, message)
            except Exception:
                log.exception("a progress callback failed")

    async def run(self, fn: Callable[..., T], *args: Any, progress: Progress | None = None) -> T:
        """`fn(*args)` in a worker (with `progress=` a forwarder when `progress` is given).

        `fn` and its arguments are pickled: module-level functions and plain data only.
        """
        loop = asyncio.get_running_loop()
        if progress is None:
            return await self._submit(fn, args, None)
        task = next(self._ids)
        all_reported = loop.create_future()

        def report_all() -> None:  # on the loop
            if not all_reported.done():
                all_reported.set_result(None)

        def delivered() -> None:  # on the reader thread
            with contextlib.suppress(RuntimeError):  # the loop closed while the task ran
                loop.call_soon_threadsafe(report_all)

        self._callbacks[task] = (progress, delivered)
        try:
            result = await self._submit(fn, args, task)
            async with asyncio.timeout(REPORTS_TIMEOUT_S):
                await all_reported
            return result
        finally:
            self._callbacks.pop(task, None)

    async def _submit(self, fn: Callable[..., T], args: tuple[Any, ...], task: int | None) -> T:
        # Submitted from a thread: a submit starts a worker process while the pool has fewer
        # than `workers` (spawn: a fork, an exec and the pickled preparation data), and the
        # first one also the pool's queue and threads; on the loop that was a stall of tens
        # of ms (more on a loaded machine) at a server's first design.
        submitting = asyncio.ensure_future(
            asyncio.to_thread(lambda: self._ensure().submit(_call, fn, args, task))
        )
        try:
            future = await asyncio.shield(submitting)
        except asyncio.CancelledError:
            # Cancelled while the thread submits: what it submits is not wanted.
            submitting.add_done_callback(_cancel_submitted)
            raise
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop taking work, drop what has not started; running work ends in its process."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        reports = self._reports

        def finish() -> None:
            # The workers' queue must outlive every worker: dropped while one is still
            # starting, its semaphore is unlinked and that worker dies unpickling it
            # ("FileNotFoundError" from SemLock._rebuild on stderr). So wait for the processes
            # off the caller's thread, holding the queue, and end the reader after them.
            executor.shutdown(wait=True, cancel_futures=True)
            reports.put(None)  # ends the reader thread

        threading.Thread(target=finish, name="worker-pool-close", daemon=True).start()


def _cancel_submitted(submitting: asyncio.Future[Future[Any]]) -> None:
    if not submitting.cancelled() and submitting.exception() is None:
        submitting.result().cancel()


_installed: WorkerPool | None = None


def install(pool: WorkerPool | None) -> None:
    """Make `pool` the one `run_cpu` uses in this process (None: threads)."""
    global _installed  # the process's one pool, owned by the orchestrator
    _installed = pool


def installed() -> WorkerPool | None:
    return _installed


async def run_cpu(fn: Callable[..., T], *args: Any, progress: Progress | None = None) -> T:
    """`fn(*args)` in the installed worker pool, or in a thread when there is none."""
    pool = _installed
    if pool is not None and pool.workers > 0:
        return await pool.run(fn, *args, progress=progress)
    if progress is not None:
        return await asyncio.to_thread(fn, *args, progress=progress)
    return await asyncio.to_thread(fn, *args)
