"""Consistent copies of the job store, and putting one back: one small interface per kind.

`StoreBackend` is what a backup needs from a store: a consistent copy of it made while it is in
use, with the jobs in that copy; and the copy put back in place. SQLite's is `SqliteBackend`
(`sqlite3.Connection.backup`). A PostgreSQL store would add a `pg_dump` backend: export a
snapshot (`pg_export_snapshot()`), `pg_dump --snapshot` it, and list its jobs in that same
snapshot; `pg_restore` to put it back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from printforge.runtime.errors import ConfigError, InputError

__all__ = ["JobRecord", "SqliteBackend", "StoreBackend"]


@dataclass(frozen=True)
class JobRecord:
    id: str
    state: str
    data: str  # the job as the store keeps it (JSON)


class StoreBackend(Protocol):
    """How one kind of job store is copied out and put back."""

    kind: ClassVar[str]
    member: ClassVar[str]  # the copy's name in the archive

    def snapshot(self, dest: Path) -> list[JobRecord]:
        """Write a consistent copy of the live store to `dest`; the jobs in that copy."""
        ...

    def describe(self, copy: Path) -> dict[str, Any]:
        """What the manifest says about a copy (schema version, ...)."""
        ...

    def put_back(self, copy: Path, relocate: tuple[str, str] | None) -> list[JobRecord]:
        """Replace the store with `copy` (paths under relocate[0] moved to relocate[1])."""
        ...

    def live_files(self) -> list[Path]:
        """The files that make up the store now (moved aside before a restore)."""
        ...


class SqliteBackend:
    kind: ClassVar[str] = "sqlite"
    member: ClassVar[str] = "store/printforge.sqlite3"

    def __init__(self, path: Path) -> None:
        self.path = path

    def snapshot(self, dest: Path) -> list[JobRecord]:
        if not self.path.is_file():
            raise InputError(f"no job store at {self.path}: nothing to back up")
        src = sqlite3.connect(self.path, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                # pages=-1 (the default): every page in one step, under one read transaction.
                src.backup(dst)
            finally:
                dst.close()
        except sqlite3.Error as err:
            raise ConfigError(f"cannot copy the job store {self.path}: {err}") from err
        finally:
            src.close()
        return _sqlite_jobs(dest)

    def describe(self, copy: Path) -> dict[str, Any]:
        with contextlib.closing(sqlite3.connect(copy)) as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        return {"schema_version": version}

    def put_back(self, copy: Path, relocate: tuple[str, str] | None) -> list[JobRecord]:
        tmp = self.path.with_name(f".{self.path.name}.restoring")
        shutil.copyfile(copy, tmp)
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as db:
                if relocate is not None:
                    rows = db.execute("SELECT id, data FROM jobs").fetchall()
                    for job_id, data in rows:
                        moved = json.dumps(
                            _relocated(json.loads(data), *relocate), separators=(",", ":")
                        )
                        db.execute("UPDATE jobs SET data = ? WHERE id = ?", (moved, job_id))
                    db.commit()
                check = db.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise ConfigError(f"the job store in the backup is damaged: {check}")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return _sqlite_jobs(self.path)

    def live_files(self) -> list[Path]:
        # The WAL and its index belong to the old database: left beside the new one, SQLite
        # would replay the old store's last transactions into it.
        names = (self.path.name, f"{self.path.name}-wal", f"{self.path.name}-shm")
        return [p for p in (self.path.with_name(n) for n in names) if p.exists()]


def _sqlite_jobs(path: Path) -> list[JobRecord]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise ConfigError(f"the copy of the job store is damaged: {check}")
        rows = db.execute("SELECT id, state, data FROM jobs ORDER BY created_at, rowid").fetchall()
    return [JobRecord(str(i), str(s), str(d)) for i, s, d in rows]


def _relocated(value: Any, old: str, new: str) -> Any:
    """Every string path under `old` moved under `new` (artifact records are absolute)."""
    if isinstance(value, str):
        if value == old or value.startswith(old + "/"):
            return new + value[len(old) :]
        return value
    if isinstance(value, list):
        return [_relocated(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _relocated(v, old, new) for k, v in value.items()}
    return value
