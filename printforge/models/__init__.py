"""Types that cross boundaries. Pydantic only, no I/O."""

from printforge.models.artifact import (
    Artifact,
    GcodeArtifact,
    MeshArtifact,
    SpecArtifact,
    file_sha256,
)
from printforge.models.event import Event, JobEvent, PrinterStatusEvent
from printforge.models.job import Job, JobError, JobState, StageName, StageRecord, StageState
from printforge.models.printer import (
    MaterialProfile,
    PrinterProfile,
    PrinterState,
    PrinterStatus,
    PrintProgress,
    Temperature,
)
from printforge.models.request import PrintRequest, SliceOverrides

__all__ = [
    "Artifact",
    "Event",
    "GcodeArtifact",
    "Job",
    "JobError",
    "JobEvent",
    "JobState",
    "MaterialProfile",
    "MeshArtifact",
    "PrintProgress",
    "PrintRequest",
    "PrinterProfile",
    "PrinterState",
    "PrinterStatus",
    "PrinterStatusEvent",
    "SliceOverrides",
    "SpecArtifact",
    "StageName",
    "StageRecord",
    "StageState",
    "Temperature",
    "file_sha256",
]

# Added by the CAD stage: the design spec and the printability report cross stage boundaries.
from printforge.models.printability import Orientation, PrintabilityReport
from printforge.models.spec import DesignSpec

__all__ += ["DesignSpec", "Orientation", "PrintabilityReport"]
