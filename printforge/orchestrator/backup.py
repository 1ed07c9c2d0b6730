"""Backups that are consistent while the server runs, and restores that say what is missing.

A backup is one gzip'd tar archive (mode 0600: it holds the key store's hashes):

- `manifest.json`: what is in it and where it came from (below);
- `store/…`: a consistent copy of the job store, made by the store's own online backup (for
  SQLite, `sqlite3.Connection.backup`: one read transaction over every page, so a server
  writing meanwhile neither blocks nor tears the copy);
- `state/*.json`: the data directory's small state files (the API key store, the beds that
  may hold a part, the LLM spend ledger, and any other top-level `*.json`). Each is replaced
  atomically by its writer, so reading it whole reads one version of it;
- with `with_artifacts`, `artifacts/…`: the job folders and uploads themselves.

The manifest lists every file of every job folder that the store copy knows, and every upload,
with its sha256, so a restore can say which artifacts are missing or differ even when the
files travel separately (rsync of `jobs/`, or not at all).

The store is reached through `StoreBackend`, one small interface (make a consistent copy and
list its jobs; put a copy in place), so a PostgreSQL store can add a `pg_dump` backend
(`pg_dump --snapshot` of an exported snapshot, listing its jobs in that same snapshot) without
touching the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Protocol

from printforge import __version__
from printforge.runtime.errors import ConfigError, DataDirBusy, InputError
from printforge.runtime.lock import DataDirLock

__all__ = [
    "FORMAT",
    "BackupReport",
    "RestoreReport",
    "SqliteBackend",
    "StoreBackend",
    "create_backup",
    "restore_backup",
]

FORMAT = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


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


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _files_under(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path


# backup ----------------------------------------------------------------------------------------


@dataclass
class BackupReport:
    out: Path
    jobs: int
    state_files: list[str]
    artifacts: int
    artifact_bytes: int
    packed: bool
    archive_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "jobs": self.jobs,
            "state_files": self.state_files,
            "artifacts": self.artifacts,
            "artifact_bytes": self.artifact_bytes,
            "artifacts_packed": self.packed,
            "archive_bytes": self.archive_bytes,
        }


def create_backup(
    data_dir: Path, backend: StoreBackend, out: Path, *, with_artifacts: bool = False
) -> BackupReport:
    """Write the archive to `out` (atomically: a failed backup leaves no half file)."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="printforge-backup-") as scratch:
        store_copy = Path(scratch) / "store"
        # The store first: every artifact its records name exists by then (artifacts are
        # written before the record that points at them), so the manifest below finds them.
        jobs = backend.snapshot(store_copy)
        store_sha, store_bytes = _sha256(store_copy)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "printforge": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "data_dir": str(data_dir),
            "store": {
                "kind": backend.kind,
                "member": backend.member,
                "sha256": store_sha,
                "bytes": store_bytes,
                "jobs": [{"id": j.id, "state": j.state} for j in jobs],
                **backend.describe(store_copy),
            },
            "state_files": [],
            "artifacts": [],
        }
        state: list[tuple[str, bytes]] = []
        for path in sorted(data_dir.glob("*.json")):
            if path.is_file():
                data = path.read_bytes()
                state.append((path.name, data))
                manifest["state_files"].append(
                    {
                        "name": path.name,
                        "member": f"state/{path.name}",
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": len(data),
                        "mode": path.stat().st_mode & 0o777,
                    }
                )
        artifacts = _artifact_entries(data_dir, [j.id for j in jobs])
        for entry in artifacts:
            entry["packed"] = with_artifacts
        manifest["artifacts"] = artifacts
        tmp = out.with_name(f".{out.name}.partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                tar.add(store_copy, arcname=manifest["store"]["member"], recursive=False)
                for name, data in state:
                    _add_bytes(tar, f"state/{name}", data)
                if with_artifacts:
                    for entry in artifacts:
                        # Hashed a moment ago; a file replaced since then is caught by the
                        # restore's check against the manifest, never packed silently.
                        with contextlib.suppress(FileNotFoundError):
                            tar.add(
                                data_dir / entry["path"],
                                arcname=f"artifacts/{entry['path']}",
                                recursive=False,
                            )
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return BackupReport(
        out=out,
        jobs=len(jobs),
        state_files=[name for name, _ in state],
        artifacts=len(artifacts),
        artifact_bytes=sum(int(e["bytes"]) for e in artifacts),
        packed=with_artifacts,
        archive_bytes=out.stat().st_size,
    )


def _artifact_entries(data_dir: Path, job_ids: list[str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    sources = [(job_id, data_dir / "jobs" / job_id) for job_id in job_ids]
    sources.append((None, data_dir / "uploads"))
    for job_id, folder in sources:
        for path in _files_under(folder):
            try:
                sha, size = _sha256(path)
            except FileNotFoundError:  # a temporary file that went away while listed
                continue
            entries.append(
                {
                    "path": path.relative_to(data_dir).as_posix(),
                    "job_id": job_id,
                    "sha256": sha,
                    "bytes": size,
                }
            )
    return entries


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


# restore ---------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    data_dir: Path
    jobs: int
    state_files: list[str]
    relocated_from: str | None
    moved_aside: Path | None
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    unpacked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "jobs": self.jobs,
            "state_files": self.state_files,
            "relocated_from": self.relocated_from,
            "moved_aside": str(self.moved_aside) if self.moved_aside else None,
            "artifacts": {
                "ok": len(self.ok),
                "missing": self.missing,
                "differ": self.differ,
                "unpacked": self.unpacked,
            },
        }


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # The manifest is the first member: read it without scanning the whole archive.
            first = tar.next()
            member = tar.extractfile(first) if first and first.name == MANIFEST else None
            if member is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.loads(member.read())
    except FileNotFoundError:
        raise InputError(f"no backup at {archive}") from None
    except (tarfile.TarError, KeyError, ValueError, EOFError, OSError) as err:
        raise InputError(f"{archive} is not a printforge backup ({err})") from None
    if not isinstance(manifest.get("format"), int) or manifest["format"] > FORMAT:
        raise InputError(
            f"{archive} was made by a newer printforge (backup format {manifest.get('format')},"
            f" this one reads {FORMAT}): restore it with that version"
        )
    return manifest


def restore_backup(archive: Path, data_dir: Path, backend: StoreBackend) -> RestoreReport:
    """Put the store and state files back, unpack packed artifacts, check every artifact."""
    manifest = read_manifest(archive)
    store = manifest["store"]
    if store["kind"] != backend.kind:
        raise InputError(
            f"the backup holds a {store['kind']} store; this data directory's store is"
            f" {backend.kind}"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()  # held throughout: no server may start on a half-restored directory
    except DataDirBusy as err:
        holder = err.holder
        raise DataDirBusy(
            f"cannot restore into {data_dir}: `{holder.get('command', 'printforge')}`"
            f" (pid {holder.get('pid', '?')}) is running on it; stop it first"
            " (systemctl stop printforge), then restore",
            holder=holder,
        ) from None
    try:
        with (
            tempfile.TemporaryDirectory(prefix=".restore-", dir=data_dir) as scratch,
            tarfile.open(archive, "r:gz") as tar,
        ):
            return _restore_locked(tar, manifest, Path(scratch), data_dir, backend)
    finally:
        lock.release()


def _extract_checked(tar: tarfile.TarFile, member: str, sha256: str, dest: Path) -> None:
    try:
        source = tar.extractfile(member)
    except KeyError:
        source = None
    if source is None:
        raise InputError(f"the backup has no {member}")
    h = hashlib.sha256()
    with dest.open("wb") as out:
        while chunk := source.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    if h.hexdigest() != sha256:
        raise InputError(f"the backup's {member} is damaged (sha256 does not match its manifest)")


def _restore_locked(
    tar: tarfile.TarFile,
    manifest: dict[str, Any],
    scratch: Path,
    data_dir: Path,
    backend: StoreBackend,
) -> RestoreReport:
    store = manifest["store"]
    # Everything is read and checked before anything in the data directory changes.
    copy = scratch / "store"
    _extract_checked(tar, store["member"], store["sha256"], copy)
    states = []
    for entry in manifest["state_files"]:
        name = PurePosixPath(entry["name"]).name  # never a path out of the data directory
        dest = scratch / f"state-{name}"
        _extract_checked(tar, entry["member"], entry["sha256"], dest)
        states.append((name, dest, int(entry.get("mode", 0o600))))

    aside = data_dir / f"before-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    moved = False
    touched: list[Path] = [data_dir / "printforge.lock", *backend.live_files()]

    def move_aside(path: Path) -> None:
        nonlocal moved
        target = aside / path.relative_to(data_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        touched.append(target)
        moved = True

    for path in backend.live_files():
        move_aside(path)
    source_dir = str(manifest.get("data_dir") or "")
    relocate = (source_dir, str(data_dir)) if source_dir and source_dir != str(data_dir) else None
    jobs = backend.put_back(copy, relocate)
    touched.extend(backend.live_files())
    for name, staged, mode in states:
        live = data_dir / name
        if live.exists():
            move_aside(live)
        os.chmod(staged, mode)
        os.replace(staged, live)
        touched.append(live)

    report = RestoreReport(
        data_dir=data_dir,
        jobs=len(jobs),
        state_files=[name for name, _, _ in states],
        relocated_from=relocate[0] if relocate else None,
        moved_aside=aside if moved else None,
    )
    root = data_dir.resolve()
    for entry in manifest["artifacts"]:
        rel = PurePosixPath(entry["path"])
        path = (data_dir / rel).resolve()
        if ".." in rel.parts or rel.is_absolute() or not path.is_relative_to(root):
            raise InputError(f"the backup names an artifact outside the data directory: {rel}")
        if entry.get("packed") and not _same(path, entry["sha256"]):
            if path.exists():
                move_aside(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = scratch / "artifact"
            try:
                _extract_checked(tar, f"artifacts/{rel}", entry["sha256"], staged)
            except InputError:
                staged.unlink(missing_ok=True)  # reported below as missing or differing
            else:
                os.replace(staged, path)
                touched.append(path)
                report.unpacked += 1
        if not path.is_file():
            report.missing.append(str(rel))
        elif not _same(path, entry["sha256"]):
            report.differ.append(str(rel))
        else:
            report.ok.append(str(rel))
    report.moved_aside = aside if moved else None
    _give_to_owner(data_dir, touched)
    return report


def _give_to_owner(data_dir: Path, paths: list[Path]) -> None:
    """Run as root (sudo) on a data directory that belongs to the service's user: what the
    restore wrote goes to that user too, or the service could not open its own store."""
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    if owner.st_uid == 0:
        return
    done: set[Path] = set()
    for path in paths:
        # The file and every folder between it and the data directory (jobs/<id>/, the aside).
        for item in (path, *path.parents):
            if item == data_dir or not item.is_relative_to(data_dir):
                break
            if item not in done and item.exists():
                os.chown(item, owner.st_uid, owner.st_gid, follow_symlinks=False)
                done.add(item)


def _same(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path)[0] == sha256
