"""A job and its state machine: one function moves a job; the store persists each move."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field, model_validator

from printforge.models.artifact import GcodeArtifact, MeshArtifact, SpecArtifact
from printforge.models.request import PrintRequest
from printforge.runtime.errors import InvalidTransition

__all__ = [
    "ACTIVE",
    "CONTROL_KEYS",
    "SPANS",
    "STAGE_OF_STATE",
    "STATE_OF_STAGE",
    "TERMINAL",
    "TRANSITIONS",
    "Job",
    "JobError",
    "JobState",
    "Span",
    "StageName",
    "StageRecord",
    "StageState",
    "new_job_id",
]


def _now() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


class JobState(StrEnum):
    QUEUED = "queued"
    RESEARCHING = "researching"
    DESIGNING = "designing"
    SLICING = "slicing"
    PRINTING = "printing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    # Research found something in the request it cannot build and asked about it: the job
    # waits (no task runs) until `job.answer` re-queues it with the answer, or it is cancelled.
    NEEDS_INPUT = "needs_input"


class StageName(StrEnum):
    RESEARCH = "research"
    CAD = "cad"
    SLICER = "slicer"
    PRINTER = "printer"


class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class Span(NamedTuple):
    """The stages a door asks the pipeline for: from `entry` to `exit`, both included."""

    entry: StageName
    exit: StageName

    @classmethod
    def of(cls, request: PrintRequest) -> Span:
        """The span a request describes by itself: it enters where its input belongs (words at
        research, a model at CAD, G-code at the printer) and stops after slicing unless printed."""
        if request.text is not None:
            entry = StageName.RESEARCH
        elif request.model_path is not None:
            entry = StageName.CAD
        else:
            entry = StageName.PRINTER
        return cls(entry, StageName.PRINTER if request.print_ else StageName.SLICER)

    def stages(self) -> list[StageName]:
        order = list(StageName)
        return order[order.index(self.entry) : order.index(self.exit) + 1]

    def __str__(self) -> str:
        return f"{self.entry.value}->{self.exit.value}"


# What each command asks for: `design` words to a mesh, `slice` a model file to G-code, `print`
# a G-code file to a printer, `run` (and the server) words to a printed part.
SPANS: dict[str, Span] = {
    "design": Span(StageName.RESEARCH, StageName.CAD),
    "slice": Span(StageName.SLICER, StageName.SLICER),
    "print": Span(StageName.PRINTER, StageName.PRINTER),
    "run": Span(StageName.RESEARCH, StageName.PRINTER),
}

TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
ACTIVE = frozenset({JobState.RESEARCHING, JobState.DESIGNING, JobState.SLICING, JobState.PRINTING})

STATE_OF_STAGE: dict[StageName, JobState] = {
    StageName.RESEARCH: JobState.RESEARCHING,
    StageName.CAD: JobState.DESIGNING,
    StageName.SLICER: JobState.SLICING,
    StageName.PRINTER: JobState.PRINTING,
}
STAGE_OF_STATE = {state: stage for stage, state in STATE_OF_STAGE.items()}

_ENDINGS = {JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED}
# Jobs that start from a model or G-code skip the early stages, so queued may jump ahead; a job
# that stops before printing (design or slice only) completes from its last stage.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(ACTIVE | {JobState.FAILED, JobState.CANCELLED}),
    JobState.RESEARCHING: frozenset(
        {JobState.DESIGNING, JobState.COMPLETED, JobState.NEEDS_INPUT} | _ENDINGS
    ),
    JobState.DESIGNING: frozenset(
        {JobState.RESEARCHING, JobState.SLICING, JobState.COMPLETED} | _ENDINGS
    ),
    JobState.SLICING: frozenset({JobState.PRINTING, JobState.COMPLETED} | _ENDINGS),
    JobState.PRINTING: frozenset({JobState.COMPLETED} | _ENDINGS),
    JobState.INTERRUPTED: frozenset({JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
    JobState.NEEDS_INPUT: frozenset({JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


# The report keys that held control state before it became typed fields of `Job`.
CONTROL_KEYS = ("copy_of", "copy_number", "copies", "sliced_for", "print_attempts", "cancel_reason")


class JobError(BaseModel):
    code: str
    message: str


class StageRecord(BaseModel):
    name: StageName
    state: StageState = StageState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    attempts: int = 0
    error: JobError | None = None


class Job(BaseModel):
    id: str = Field(default_factory=new_job_id)
    state: JobState = JobState.QUEUED
    request: PrintRequest
    printer: str | None = None
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    stages: list[StageRecord] = Field(
        default_factory=lambda: [StageRecord(name=s) for s in StageName]
    )
    spec: SpecArtifact | None = None
    mesh: MeshArtifact | None = None
    gcode: GcodeArtifact | None = None
    error: JobError | None = None
    last_acked_line: int | None = None
    # Control state: what decides how the job runs, typed and persisted with it (never read
    # from the report below, which is what the agents found, for people to read).
    copy_of: str | None = Field(None, description="the job whose G-code this copy prints")
    copy_number: int | None = Field(None, ge=2, description="which copy (the original is 1)")
    copies: list[str] | None = Field(None, description="an original's jobs, itself first")
    sliced_for: str | None = Field(None, description="printer profile the G-code is for")
    print_attempts: int = Field(1, ge=1, description="prints begun, counting re-queues")
    cancel_reason: Literal["user"] | None = None
    report: dict[str, Any] = Field(default_factory=dict)
    # Queue management (issue 15): a held job is not dispatched until released; a moved job's
    # place among jobs of its priority (unset: its submission time, first come first served).
    held: bool = False
    queue_rank: float | None = None
    retry_of: str | None = Field(None, description="the failed job this one retries")

    @property
    def queue_key(self) -> tuple[int, float]:
        """Dispatch order among queued jobs: priority first, then rank."""
        rank = self.queue_rank if self.queue_rank is not None else self.created_at.timestamp()
        return (-self.request.priority, rank)

    @model_validator(mode="before")
    @classmethod
    def _lift_control_state(cls, data: Any) -> Any:
        """Jobs stored before these were fields kept them in `report`: lifted out on load."""
        if isinstance(data, dict) and isinstance(data.get("report"), dict):
            report = data["report"]
            moved = {k: report[k] for k in CONTROL_KEYS if k in report}
            if moved:
                data = {**data, "report": {k: v for k, v in report.items() if k not in moved}}
                for key, value in moved.items():
                    data.setdefault(key, value)
        return data

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def stage(self, name: StageName) -> StageRecord:
        return next(s for s in self.stages if s.name == name)

    def transition(self, new: JobState, *, error: JobError | None = None) -> JobState:
        """Move to `new` or raise InvalidTransition; returns the previous state."""
        old = self.state
        if new not in TRANSITIONS[old]:
            raise InvalidTransition(f"job {self.id}: cannot go from {old} to {new}")
        self.state = new
        self.updated_at = _now()
        if error is not None:
            self.error = error
        if new is JobState.QUEUED:
            self.error = None
        return old
