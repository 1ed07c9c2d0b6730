"""The JSON shapes the API returns for jobs and printers."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from printforge.models.job import Job, JobState
from printforge.models.printer import PrinterStatus

__all__ = [
    "ARTIFACT_FILES",
    "artifact_file",
    "artifact_path",
    "job_view",
    "printer_view",
    "servable",
]

# Artifact name in URLs -> the file the pipeline writes in the job's folder.
ARTIFACT_FILES = {
    "stl": "model.stl",
    "gcode": "model.gcode",
    "preview": "preview.png",
    "layers": "layers.png",
    "report": "report.json",
    "spec": "spec.json",
    "request": "request.json",
    "timelapse": "timelapse.mp4",  # a watched print's snapshots (issue 17)
}
_MEDIA = {
    "stl": "model/stl",
    "gcode": "text/x.gcode",
    "preview": "image/png",
    "layers": "image/png",
    "report": "application/json",
    "spec": "application/json",
    "request": "application/json",
    "timelapse": "video/mp4",
}


def artifact_path(job: Job, job_dir: Path, name: str) -> Path:
    """Where artifact `name` of `job` lives; the records win over the conventional names."""
    recorded: Path | None = None
    if name == "stl" and job.mesh is not None:
        recorded = job.mesh.path
    elif name == "gcode" and job.gcode is not None:
        recorded = job.gcode.path
    elif name == "preview" and job.mesh is not None:
        recorded = job.mesh.preview_png
    elif name == "layers" and job.gcode is not None:
        recorded = job.gcode.preview_png
    elif name == "spec" and job.spec is not None:
        recorded = job.spec.path
    return recorded or job_dir / ARTIFACT_FILES[name]


def servable(st: os.stat_result) -> bool:
    """A file the pipeline wrote itself: regular, and not a second name (hard link) of a file
    elsewhere, such as the key store."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def open_servable(path: Path, missing: Exception) -> BinaryIO:
    """`path` opened for serving, or `missing` raised.

    Checked on the open file, not the name: a symlink swapped in after an earlier check is not
    followed, and a hard link to a file elsewhere is not served.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise missing from None
    f = os.fdopen(fd, "rb")
    if not servable(os.fstat(fd)):
        f.close()
        raise missing
    return f


def artifact_file(job: Job, jobs_dir: Path, name: str) -> Path | None:
    """Artifact `name` of `job` if it may be served, else None.

    It must lie in a job's folder under `jobs_dir` (a copy serves its original's G-code), with
    no symlink anywhere on the way: a link planted in a job folder once served `api_keys.json`.
    """
    path = artifact_path(job, jobs_dir / job.id, name)
    try:
        rel = path.relative_to(jobs_dir)
    except ValueError:
        return None
    if len(rel.parts) < 2 or ".." in rel.parts:
        return None
    if os.path.realpath(path) != os.path.join(os.path.realpath(jobs_dir), *rel.parts):
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return path if servable(st) else None


def media_type(name: str) -> str:
    return _MEDIA[name]


def job_view(
    job: Job,
    job_dir: Path,
    printers: dict[str, PrinterStatus] | None = None,
    waiting: str | None = None,
) -> dict[str, Any]:
    """A job for API clients: everything but server-local paths.

    Args:
        waiting: why the job waits, when not merely for its turn (Orchestrator.wait_reason).
    """
    artifacts = {
        name: f"/api/jobs/{job.id}/artifacts/{name}"
        for name in ARTIFACT_FILES
        if artifact_file(job, job_dir.parent, name) is not None
    }
    hashes = {
        name: art.sha256
        for name, art in (("spec", job.spec), ("stl", job.mesh), ("gcode", job.gcode))
        if art is not None
    }
    eta_s: float | None = job.gcode.estimated_time_s if job.gcode is not None else None
    eta_source: str | None = "estimate" if eta_s is not None else None
    finish_at: str | None = None
    progress: float | None = None
    objects: list[dict[str, Any]] = []  # the plate's labelled objects, while it prints
    status = (printers or {}).get(job.printer or "")
    if job.state is JobState.PRINTING and status is not None and status.job_id == job.id:
        objects = [o.model_dump() for o in status.objects]
        if status.progress is not None:
            progress = status.progress.fraction
            if status.progress.eta_s is not None:
                eta_s = status.progress.eta_s
                eta_source = status.progress.eta_source
                if status.progress.finish_at is not None:
                    finish_at = status.progress.finish_at.isoformat()
    elif job.state is JobState.COMPLETED:
        progress, eta_s, eta_source = 1.0, 0.0, None
    request = job.request
    return {
        "job_id": job.id,
        "state": job.state.value,
        "request": request.summary if request.text is not None else Path(request.summary).name,
        "source": "text"
        if request.text is not None
        else ("model" if request.model_path is not None else "gcode"),
        "printer": job.printer,
        "requested_printer": request.printer,
        "material": request.material,
        "priority": request.priority,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "stages": [
            {
                "name": s.name.value,
                "state": s.state.value,
                "duration_s": s.duration_s,
                "attempts": s.attempts,
                "error": s.error.model_dump() if s.error else None,
            }
            for s in job.stages
        ],
        "progress": progress,
        "eta_s": eta_s,
        # Where eta_s comes from (PrintProgress.eta_source; "estimate" before the print) and,
        # while printing, when the print should end.
        "eta_source": eta_source,
        "finish_at": finish_at,
        "objects": objects,
        "gcode": None
        if job.gcode is None
        else {
            "engine": job.gcode.engine,
            "layers": job.gcode.layers,
            "estimated_time_s": job.gcode.estimated_time_s,
            "filament_g": job.gcode.filament_g,
        },
        "mesh": None
        if job.mesh is None
        else {
            "triangles": job.mesh.triangles,
            "size_mm": list(job.mesh.size_mm),
            "volume_mm3": job.mesh.volume_mm3,
            "watertight": job.mesh.watertight,
        },
        # Which provider and model answered, its tokens, cost and repair rounds: no secrets.
        "research": job.report.get("research"),
        # In state needs_input: the one question research asked, answered with job.answer.
        "question": job.report.get("question") if job.state is JobState.NEEDS_INPUT else None,
        "requirements": job.report.get("requirements"),
        "copies": job.copies,
        "copy_of": job.copy_of,
        "held": job.held,
        # Dispatch order among queued jobs, lowest first (priority, then rank): the dashboard
        # lists the queue in it, so a drag lands where the scheduler will take it.
        "queue_key": list(job.queue_key),
        "retry_of": job.retry_of,
        "tags": request.tags,
        "nozzle_diameter": request.nozzle_diameter,
        "not_before": request.not_before.isoformat() if request.not_before else None,
        "waiting": waiting,
        "error": job.error.model_dump() if job.error else None,
        "last_acked_line": job.last_acked_line,
        "artifacts": artifacts,
        "sha256": hashes,
        "vision": _vision(job, job_dir),
    }


def _vision(job: Job, job_dir: Path) -> dict[str, Any] | None:
    """A watched print (issue 17): its last snapshot and its diagnosis, as URLs."""
    from printforge.orchestrator.watch import SNAPSHOT_DIR

    shots = sorted((job_dir / SNAPSHOT_DIR).glob("layer-*.jpg")) if job_dir.is_dir() else []
    diagnosis = dict(job.report.get("vision", {}).get("diagnosis") or {})
    if not shots and not diagnosis:
        return None
    base = f"/api/jobs/{job.id}/pictures"
    if diagnosis.get("picture"):
        diagnosis["url"] = f"{base}/{diagnosis['picture']}"
    last = shots[-1] if shots else None
    return {
        "snapshots": len(shots),
        "last_snapshot": f"{base}/{SNAPSHOT_DIR}/{last.name}" if last else None,
        "last_layer": int(last.stem.removeprefix("layer-")) if last else None,
        "diagnosis": diagnosis or None,
    }


def printer_view(status: PrinterStatus) -> dict[str, Any]:
    out = status.model_dump(mode="json")
    if status.progress is not None:
        out["progress"]["fraction"] = status.progress.fraction
    return out
