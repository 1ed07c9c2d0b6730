"""Backups that are consistent while the server runs, and restores that say what is missing.

A backup is one gzip'd tar archive (mode 0600: it holds the key store's hashes):

- `manifest.json`, the last member: what is in it and where it came from (below), with the
  sha256 of every file exactly as it was packed (each is read once);
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

The store is reached through `StoreBackend` (orchestrator/storecopy.py), one small interface,
so a PostgreSQL store can add a `pg_dump` backend without touching the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from printforge import __version__
from printforge.orchestrator.storecopy import SqliteBackend, StoreBackend
from printforge.runtime.errors import ConfigError, DataDirBusy, InputError
from printforge.runtime.lock import DataDirLock

__all__ = [
    "FORMAT",
    "BackupReport",
    "RestoreReport",
    "SqliteBackend",
    "StoreBackend",
    "create_backup",
    "read_manifest",
    "restore_backup",
]

FORMAT = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


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
        # written before the record that points at them), so the listing below finds them.
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
        tmp = out.with_name(f".{out.name}.partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                tar.add(store_copy, arcname=backend.member, recursive=False)
                for path in sorted(data_dir.glob("*.json")):
                    if path.is_file():
                        entry = _pack(tar, path, f"state/{path.name}")
                        if entry is not None:
                            manifest["state_files"].append(
                                {"name": path.name, **entry, "mode": path.stat().st_mode & 0o777}
                            )
                for rel, job_id in _artifact_paths(data_dir, [j.id for j in jobs]):
                    path = data_dir / rel
                    entry = (
                        _pack(tar, path, f"artifacts/{rel}") if with_artifacts else _listed(path)
                    )
                    if entry is not None:  # None: a temporary file that went away meanwhile
                        manifest["artifacts"].append(
                            {"path": rel, "job_id": job_id, "packed": with_artifacts, **entry}
                        )
                # Last, so that every sha256 in it is that of the bytes packed above, read once.
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    artifacts = manifest["artifacts"]
    return BackupReport(
        out=out,
        jobs=len(jobs),
        state_files=[e["name"] for e in manifest["state_files"]],
        artifacts=len(artifacts),
        artifact_bytes=sum(int(e["bytes"]) for e in artifacts),
        packed=with_artifacts,
        archive_bytes=out.stat().st_size,
    )


def _artifact_paths(data_dir: Path, job_ids: list[str]) -> list[tuple[str, str | None]]:
    """Every file of the given jobs' folders, and every upload (job None), relative paths."""
    sources = [(job_id, data_dir / "jobs" / job_id) for job_id in job_ids]
    sources.append((None, data_dir / "uploads"))
    return [
        (path.relative_to(data_dir).as_posix(), job_id)
        for job_id, folder in sources
        for path in _files_under(folder)
    ]


def _listed(path: Path) -> dict[str, Any] | None:
    try:
        sha, size = _sha256(path)
    except FileNotFoundError:
        return None
    return {"sha256": sha, "bytes": size}


class _HashingReader(io.RawIOBase):
    """Reads exactly `size` bytes of a file for tarfile while hashing them."""

    def __init__(self, f: io.BufferedReader, size: int) -> None:
        self._f, self._left, self.hash = f, size, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        self.hash.update(data)
        return data


def _pack(tar: tarfile.TarFile, path: Path, member: str) -> dict[str, Any] | None:
    """Add one file, hashing the very bytes added: a file replaced meanwhile (its writers swap
    in a new file) is read whole from the one inode opened, never mixed."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    with f:
        st = os.fstat(f.fileno())
        info = tarfile.TarInfo(member)
        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), st.st_mode & 0o777
        reader = _HashingReader(f, st.st_size)
        try:
            tar.addfile(info, reader)
        except OSError as err:  # tarfile's "unexpected end of data": truncated in place
            raise ConfigError(
                f"{path} changed while it was backed up; run the backup again"
            ) from err
    return {"member": member, "sha256": reader.hash.hexdigest(), "bytes": st.st_size}


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
            # The last member (written after everything it describes), found in one pass.
            found = None
            for info in tar:
                if info.name == MANIFEST:
                    found = info
            member = tar.extractfile(found) if found is not None else None
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
