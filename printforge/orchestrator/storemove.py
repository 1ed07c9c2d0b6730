"""Moving a farm's job store: `printforge store migrate` and `store copy --from URL --to URL`.

A copy goes row by row in one transaction on the destination, jobs oldest first and then their
transitions, with each job's lease left behind (a lease belongs to an instance of the source).
The destination must be empty of jobs: merging two farms' histories is refused, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from printforge.orchestrator.store import store_for_url
from printforge.runtime.errors import InputError

__all__ = ["CopyReport", "copy_store", "migrate_store"]


@dataclass(frozen=True)
class CopyReport:
    source: str
    dest: str
    jobs: int
    transitions: int
    schema_version: int


async def migrate_store(url: str) -> tuple[str, int]:
    """Open the store (which brings its schema up to date); its name and schema version."""
    store = store_for_url(url)
    await store.open()
    try:
        return str(store.path), await store.schema_version()
    finally:
        await store.close()


async def copy_store(source_url: str, dest_url: str) -> CopyReport:
    source = store_for_url(source_url)
    dest = store_for_url(dest_url)
    if source.url == dest.url:
        raise InputError("store copy: --from and --to name the same store")
    await source.open()
    try:
        await dest.open()
        try:
            if sum((await dest.counts()).values()):
                raise InputError(
                    f"store copy: {dest.path} already holds jobs; copy into an empty store"
                )
            jobs = transitions = 0
            async with dest.transaction() as tx:
                async for table, row in source.rows():
                    if table == "jobs":
                        await tx.execute(
                            "INSERT INTO jobs (id, state, priority, created_at, updated_at, data,"
                            " submitted_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            row,
                        )
                        jobs += 1
                    else:
                        await tx.execute(
                            "INSERT INTO transitions (job_id, from_state, to_state, at, reason)"
                            " VALUES (?, ?, ?, ?, ?)",
                            row,
                        )
                        transitions += 1
            return CopyReport(
                str(source.path), str(dest.path), jobs, transitions, await dest.schema_version()
            )
        finally:
            await dest.close()
    finally:
        await source.close()
