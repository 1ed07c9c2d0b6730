"""Events published on the bus: job and stage progress, printer status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from printforge.models.job import JobState, StageName
from printforge.models.printer import PrinterStatus

__all__ = ["Event", "JobEvent", "PrinterStatusEvent"]


def _now() -> datetime:
    return datetime.now(UTC)


class JobEvent(BaseModel):
    """What the websocket sends as `job.event` and the CLI draws as progress."""

    type: Literal["job.event"] = "job.event"
    kind: Literal[
        "state",
        "stage.started",
        "stage.progress",
        "stage.completed",
        "stage.failed",
        "log",
        # issue 17: a snapshot taken at a layer change (with its score when a detector
        # watches), and a failure the detector or the telemetry rules found
        "snapshot",
        "diagnosis",
    ]
    job_id: str
    state: JobState
    stage: StageName | None = None
    progress: float | None = Field(None, ge=0.0, le=1.0)
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    ts: datetime = Field(default_factory=_now)


class PrinterStatusEvent(BaseModel):
    type: Literal["printer.status"] = "printer.status"
    status: PrinterStatus
    ts: datetime = Field(default_factory=_now)


Event = JobEvent | PrinterStatusEvent
