"""The one typed view of a job that every door renders: `run`, `design`, `slice`, `print`.

Each command asks the pipeline for its span of stages and prints from this view (its own JSON
shape is a selection of these fields), so what one door shows of a job, another shows the same.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from printforge.models.job import Job, JobError

__all__ = ["JobView", "StageView"]


class StageView(BaseModel):
    name: str
    state: str
    duration_s: float | None
    attempts: int
    error: JobError | None


class JobView(BaseModel):
    """A job as a person or a script reads it: its stages, files and what each agent found."""

    job_id: str
    state: str
    ok: bool
    request: str
    printer: str | None
    stages: list[StageView]
    artifacts: dict[str, str | None]
    error: JobError | None
    last_acked_line: int | None
    requirements: list[dict[str, Any]]
    question: str | None
    # What each agent reported (the job's `report`): research's provider and rounds, the CAD
    # printability report, the slicer's figures, the gate's verdict and the print's counts.
    research: dict[str, Any]
    cad: dict[str, Any]
    slicer: dict[str, Any]
    gate: dict[str, Any]
    printed: dict[str, Any]

    @classmethod
    def of(cls, job: Job) -> JobView:
        report = job.report
        mesh, gcode = job.mesh, job.gcode
        return cls(
            job_id=job.id,
            state=job.state.value,
            ok=job.state.value == "completed",
            request=job.request.summary,
            printer=job.printer,
            stages=[
                StageView(
                    name=s.name.value,
                    state=s.state.value,
                    duration_s=s.duration_s,
                    attempts=s.attempts,
                    error=s.error,
                )
                for s in job.stages
            ],
            artifacts={
                "spec": str(job.spec.path) if job.spec else None,
                "stl": str(mesh.path) if mesh else None,
                "gcode": str(gcode.path) if gcode else None,
                "preview": str(mesh.preview_png) if mesh and mesh.preview_png else None,
                "layers": str(gcode.preview_png) if gcode and gcode.preview_png else None,
            },
            # A job waiting for an answer (needs_input) is no failure, but to the command that
            # ran it it ends as one, with the question as the message.
            error=job.error
            or (
                JobError(code="needs_input", message=str(report.get("question") or ""))
                if job.state.value == "needs_input"
                else None
            ),
            last_acked_line=job.last_acked_line,
            requirements=list(report.get("requirements") or []),
            question=report.get("question"),
            research=dict(report.get("research") or {}),
            cad=dict(report.get("cad") or {}),
            slicer=dict(report.get("slicer") or {}),
            gate=dict(report.get("gate") or {}),
            printed=dict(report.get("printer") or {}),
        )
