"""`printforge store backup` while a real server accepts jobs, `store restore` into a fresh data
directory: every job in the backup comes back intact, its artifacts checked by sha256."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from printforge.models.job import Job
from printforge.orchestrator.backup import SqliteBackend, create_backup, restore_backup
from tests.fakes.serve_process import REPO, ServeProcess, wait_for

KEY = "backup-admin-key-0123456789"


def printforge(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "printforge", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def jobs_in(db: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, data FROM jobs").fetchall()
    return {job_id: json.loads(data) for job_id, data in rows}


class Submitter(threading.Thread):
    """Submits jobs to the server in a loop until stopped, noting when each was accepted."""

    def __init__(self, server: ServeProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.accepted: list[tuple[float, float, str]] = []  # (sent, answered, job id)
        self.error: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                sent = time.monotonic()
                job = self.server.api("POST", "/api/jobs", {"request": f"a {8 + n % 10} mm cube"})
                self.accepted.append((sent, time.monotonic(), job["job_id"]))
                # A steady stream, not a flood: ten a second keeps the two cores for the jobs.
                self.stop.wait(0.1)
        except BaseException as err:  # reported by the test, not lost in the thread
            self.error = err


def test_backup_while_serving_restores_every_job_intact(tmp_path: Path) -> None:
    live = tmp_path / "live"
    config = tmp_path / "no-rate-limit.toml"
    config.write_text("[server]\nrate_limit_per_minute = 100000\n")
    server = ServeProcess(live, KEY, sim_speed=5000.0, config=config).start()
    submitter = Submitter(server)
    try:
        submitter.start()
        wait_for(
            lambda: len(server.api("GET", "/api/jobs?state=completed&limit=5")["jobs"]) >= 3,
            180,
            "three jobs to complete while more are submitted",
        )
        packed = tmp_path / "backups" / "packed.tar.gz"
        started = time.monotonic()
        summary = json.loads(
            printforge(
                "store", "backup", "--out", str(packed), "--with-artifacts",
                "--data-dir", str(live), "--json",
            ).stdout
        )  # fmt: skip
        listed = tmp_path / "backups" / "listed.tar.gz"
        printforge("store", "backup", "--out", str(listed), "--data-dir", str(live))
        ended = time.monotonic()
        # Keep submitting a moment after the backups, then stop.
        count = len(submitter.accepted)
        wait_for(lambda: len(submitter.accepted) > count, 60, "one more submission")
    finally:
        submitter.stop.set()
        submitter.join(60)
        assert server.stop() == 0
    assert submitter.error is None, submitter.error
    during = [
        job for sent, answered, job in submitter.accepted if started < sent and answered < ended
    ]
    assert during, "no job was submitted while the backups ran"
    assert packed.stat().st_mode & 0o777 == 0o600

    # What the backup holds: the store copy, as written into the archive.
    with tarfile.open(packed) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        tar.extract("store/printforge.sqlite3", tmp_path / "unpacked", filter="data")
    backed_up = jobs_in(tmp_path / "unpacked" / "store" / "printforge.sqlite3")
    assert summary["jobs"] == len(backed_up) == len(manifest["store"]["jobs"]) > 3
    assert {"api_keys.json"} <= {s["name"] for s in manifest["state_files"]}
    final = jobs_in(live / "printforge.sqlite3")
    assert set(backed_up) < set(final), "jobs submitted after the backup are not in it"

    # Restore into a fresh data directory, through the command.
    fresh = tmp_path / "fresh"
    report = json.loads(
        printforge("store", "restore", str(packed), "--data-dir", str(fresh), "--json").stdout
    )
    assert report["jobs"] == len(backed_up)
    assert report["artifacts"]["missing"] == [] and report["artifacts"]["differ"] == []
    assert report["artifacts"]["ok"] == len(manifest["artifacts"]) > 0
    assert report["relocated_from"] == str(live)
    assert (fresh / "api_keys.json").read_bytes() == (live / "api_keys.json").read_bytes()
    assert (fresh / "api_keys.json").stat().st_mode & 0o777 == 0o600

    restored = jobs_in(fresh / "printforge.sqlite3")
    assert set(restored) == set(backed_up)
    with_gcode = 0
    for job_id, data in backed_up.items():
        # Intact: the same record, its artifact paths moved from the old data dir to the new.
        moved = json.loads(json.dumps(data).replace(f"{live}/", f"{fresh}/"))
        assert restored[job_id] == moved, job_id
        job = Job.model_validate(restored[job_id])
        for artifact in (job.spec, job.mesh, job.gcode):
            if artifact is not None:
                assert artifact.path.is_relative_to(fresh)
                assert artifact.verify(), f"{job_id}: {artifact.kind} does not match its sha256"
        with_gcode += job.gcode is not None
    assert with_gcode >= 3

    # The restored directory serves: a server on it hands out a restored job's G-code.
    job_id = next(j for j, d in backed_up.items() if d.get("gcode"))
    again = ServeProcess(fresh, KEY, sim_speed=5000.0).start()
    try:
        assert again.api("GET", f"/api/jobs/{job_id}")["state"] == restored[job_id]["state"]
        req = urllib.request.Request(
            f"{again.url}/api/jobs/{job_id}/artifacts/gcode",
            headers={"Authorization": f"Bearer {KEY}"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            gcode = resp.read()
        assert hashlib.sha256(gcode).hexdigest() == restored[job_id]["gcode"]["sha256"]

        # And a restore is refused while that server runs, naming it, changing nothing.
        before = (fresh / "printforge.sqlite3").read_bytes()
        refused = printforge("store", "restore", str(listed), "--data-dir", str(fresh), check=False)
        assert refused.returncode == 1
        assert "is running on it; stop it first" in refused.stderr
        assert "printforge serve" in refused.stderr and "Traceback" not in refused.stderr
        assert (fresh / "printforge.sqlite3").read_bytes() == before
        assert not list(fresh.glob("before-restore-*"))
    finally:
        again.stop()

    # A backup that only lists the artifacts: the restore says which are missing.
    other = tmp_path / "other"
    listed_report = json.loads(
        printforge("store", "restore", str(listed), "--data-dir", str(other), "--json").stdout
    )
    missing = listed_report["artifacts"]["missing"]
    assert listed_report["artifacts"]["ok"] == 0 and len(missing) > 0
    assert all(path.startswith("jobs/") for path in missing)


def test_restore_names_missing_and_changed_artifacts_and_keeps_what_it_replaces(
    tmp_path: Path,
) -> None:
    live = tmp_path / "live"
    printforge("run", "a 10 mm cube", "--data-dir", str(live), "--json")
    backend = SqliteBackend(live / "printforge.sqlite3")
    archive = tmp_path / "b.tar.gz"
    made = create_backup(live, backend, archive)
    assert made.jobs == 1 and made.artifacts > 3 and not made.packed

    target = tmp_path / "target"
    first = restore_backup(archive, target, SqliteBackend(target / "printforge.sqlite3"))
    assert first.ok == [] and len(first.missing) == made.artifacts and first.moved_aside is None

    # The job folders travel separately (rsync); one G-code was changed on the way.
    shutil.copytree(live / "jobs", target / "jobs")
    gcode = next((target / "jobs").glob("*/model.gcode"))
    gcode.write_text(gcode.read_text() + "; edited\n")
    (target / "printforge.sqlite3").write_bytes(b"a store that was there before")
    second = restore_backup(archive, target, SqliteBackend(target / "printforge.sqlite3"))
    assert second.missing == []
    assert second.differ == [gcode.relative_to(target).as_posix()]
    assert len(second.ok) == made.artifacts - 1
    # What the restore replaced is kept, not deleted.
    assert second.moved_aside is not None
    kept = second.moved_aside / "printforge.sqlite3"
    assert kept.read_bytes() == b"a store that was there before"


def test_not_a_backup_and_a_newer_format_are_refused_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    proc = printforge("store", "restore", str(junk), "--data-dir", str(tmp_path / "d"), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"printforge: {junk} is not a printforge backup (not a gzip file)"
    newer = tmp_path / "newer.tar.gz"
    with tarfile.open(newer, "w:gz") as tar:
        data = json.dumps({"format": 99}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    proc = printforge(
        "store", "restore", str(newer), "--data-dir", str(tmp_path / "d"), check=False
    )
    assert proc.returncode == 1 and "made by a newer printforge" in proc.stderr
    assert not (tmp_path / "d").exists()
    out = tmp_path / "x.tgz"
    missing = printforge(
        "store", "backup", "--out", str(out), "--data-dir", str(tmp_path / "empty"), check=False
    )
    assert missing.returncode == 1 and "no job store at" in missing.stderr
    assert not out.exists()


def test_a_restore_run_by_root_leaves_the_files_to_the_service_user(tmp_path: Path) -> None:
    """`sudo printforge store restore` into the service's data directory: what it writes
    belongs to the directory's owner, or the service could not open its own store after."""
    live = tmp_path / "live"
    printforge("run", "a 10 mm cube", "--data-dir", str(live), "--json")
    (live / "api_keys.json").write_text("{}")
    archive = tmp_path / "b.tar.gz"
    create_backup(live, SqliteBackend(live / "printforge.sqlite3"), archive, with_artifacts=True)
    target = tmp_path / "target"
    target.mkdir()
    (target / "printforge.sqlite3").write_bytes(b"an older store")  # will be moved aside
    service_user = 65534 if os.geteuid() == 0 else os.geteuid()  # nobody, when we may chown
    os.chown(target, service_user, service_user)
    restore_backup(archive, target, SqliteBackend(target / "printforge.sqlite3"))
    owners = {(p.relative_to(target).as_posix(), p.stat().st_uid) for p in target.rglob("*")}
    assert {path for path, uid in owners if uid != service_user} == set()
    assert {"printforge.sqlite3", "printforge.lock", "api_keys.json"} <= {p for p, _ in owners}
    assert any(path.startswith("jobs/") and path.endswith("model.gcode") for path, _ in owners)
    assert any(path.startswith("before-restore-") for path, _ in owners)
