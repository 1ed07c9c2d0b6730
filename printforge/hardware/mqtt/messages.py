"""JSON shapes on the farm bus (protocol v1). Every message is one pydantic model.

Receivers ignore unknown keys so that a newer node can talk to an older orchestrator; a change
that breaks a shape gets a new topic prefix (`printforge/v2`) instead.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from printforge.models.printer import (
    MaterialProfile,
    PrinterProfile,
    PrinterState,
    PrinterStatus,
    PrintProgress,
    Temperature,
)

__all__ = [
    "COMMAND",
    "CancelObjectCommand",
    "Command",
    "ControlCommand",
    "ErrorBody",
    "EventMessage",
    "JobOutcome",
    "LastJob",
    "ProfileSummary",
    "Reply",
    "SendCommand",
    "StartCommand",
    "StatusMessage",
    "UploadCommand",
    "new_id",
]

PROTOCOL_VERSION = 1
SHA256_HEX = r"^[0-9a-f]{64}$"
JobOutcome = Literal["completed", "failed", "cancelled", "interrupted"]


def new_id() -> str:
    return uuid.uuid4().hex


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProfileSummary(_Message):
    """What a dispatcher needs to know about a remote machine without its start G-code."""

    name: str
    bed_x: float
    bed_y: float
    max_z: float
    origin_center: bool = False
    nozzle_diameter: float
    filament_diameter: float = 1.75
    max_hotend_temp: float
    max_bed_temp: float

    @classmethod
    def of(cls, profile: PrinterProfile) -> ProfileSummary:
        return cls.model_validate(profile.model_dump(include=set(cls.model_fields)))

    def to_profile(self) -> PrinterProfile:
        return PrinterProfile.model_validate(self.model_dump())


class LastJob(_Message):
    """How the printer's latest job ended; lets a requester learn it from the retained status."""

    job_id: str
    outcome: JobOutcome
    message: str | None = None
    ts: float = Field(default_factory=time.time)


class StatusMessage(_Message):
    """`{prefix}/printers/{id}/status`, retained; `state: offline` is also the last will."""

    v: int = PROTOCOL_VERSION
    id: str
    node: str | None = None
    driver: str = "unknown"
    state: PrinterState
    temperatures: dict[str, Temperature] = Field(default_factory=dict)
    progress: PrintProgress | None = None
    job_id: str | None = None
    material: str | None = None
    profile: ProfileSummary | None = None
    message: str | None = None
    simulated: bool = Field(False, description="a simulation on its node, not hardware")
    tags: list[str] = Field(
        default_factory=list, description="the printer's `[printers.NAME] tags` on its node"
    )
    last_job: LastJob | None = None
    seq: int = Field(0, description="grows with every publish of one node process")
    boot: str | None = Field(None, description="changes when the node process restarts")
    ts: float = Field(default_factory=time.time, description="publish time, unix seconds")

    @classmethod
    def of(
        cls,
        status: PrinterStatus,
        *,
        printer_id: str,
        node: str | None,
        profile: PrinterProfile | ProfileSummary | None = None,
        material: MaterialProfile | None = None,
        **extra: Any,
    ) -> StatusMessage:
        if isinstance(profile, PrinterProfile):
            profile = ProfileSummary.of(profile)
        return cls(
            id=printer_id,
            node=node,
            driver=status.driver,
            state=status.state,
            temperatures=status.temperatures,
            progress=status.progress,
            job_id=status.job_id,
            material=material.name if material else status.material,
            profile=profile,
            message=status.message,
            simulated=status.simulated,
            **extra,
        )

    def to_status(self, *, driver: str = "bus") -> PrinterStatus:
        return PrinterStatus(
            id=self.id,
            driver=driver,
            state=self.state,
            temperatures=self.temperatures,
            progress=self.progress,
            job_id=self.job_id,
            material=self.material,
            profile=self.profile.name if self.profile else None,
            message=self.message,
            simulated=self.simulated,
        )


class EventMessage(_Message):
    """`{prefix}/printers/{id}/events`: things that happened, QoS 1, not retained."""

    id: str = Field(default_factory=new_id)
    printer: str
    kind: Literal[
        "job.started",
        "job.completed",
        "job.failed",
        "job.cancelled",
        "job.interrupted",
        "printer.state",
        "command.rejected",
        "node.started",
    ]
    job_id: str | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    ts: float = Field(default_factory=time.time)


# commands ---------------------------------------------------------------------------------------


class _Command(_Message):
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    ts: float = Field(default_factory=time.time)


class UploadCommand(_Command):
    """One chunk of a G-code file, in order; the last one is checked against `sha256`."""

    op: Literal["upload"] = "upload"
    upload_id: str = Field(min_length=1, max_length=128)
    index: int = Field(ge=0)
    total: int = Field(ge=1)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_HEX)
    data: str = Field(description="base64 of this chunk's bytes")


class StartCommand(_Command):
    """Print an uploaded file (by sha256) or one the node fetches from `url`."""

    op: Literal["start"] = "start"
    job_id: str = Field(min_length=1, max_length=128)
    sha256: str = Field(pattern=SHA256_HEX)
    url: str | None = None
    size: int | None = Field(None, ge=0)
    origin: str | None = Field(
        None,
        max_length=300,
        description="the sender's own http(s) origin; a node fetches `url` from it only when"
        " the command is signed with the farm key",
    )


class ControlCommand(_Command):
    op: Literal["pause", "resume", "cancel", "emergency_stop", "clear_bed", "ping"]
    job_id: str | None = Field(None, description="when set, act only if this job is running")


class SendCommand(_Command):
    op: Literal["send"] = "send"
    # One line: a newline would smuggle a second, unchecked command to the firmware.
    line: str = Field(min_length=1, max_length=256, pattern=r"^[^\r\n]+$")


class CancelObjectCommand(_Command):
    """Leave out one object of the running print (the node's driver decides how, or refuses
    with `unsupported`)."""

    op: Literal["cancel_object"] = "cancel_object"
    object: str | int = Field(description="the object's name or index")
    job_id: str | None = Field(None, description="when set, act only if this job is running")


Command = Annotated[
    UploadCommand | StartCommand | ControlCommand | SendCommand | CancelObjectCommand,
    Field(discriminator="op"),
]
COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


class ErrorBody(_Message):
    code: str
    message: str
    # A start refused because the printer prints another job (PrinterBusy): the code stays
    # `invalid_transition`, which older orchestrators know; this says which kind it is.
    busy: bool = False


class Reply(_Message):
    """`{prefix}/printers/{id}/reply`: one per command id (repeated ids get the same reply)."""

    id: str
    ok: bool
    error: ErrorBody | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    ts: float = Field(default_factory=time.time)
