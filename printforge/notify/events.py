"""What a notification says, and which bus events become one (pure: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from printforge.models.event import Event, JobEvent, PrinterStatusEvent
from printforge.models.job import JobState
from printforge.models.printer import PrinterState
from printforge.notify.config import EventKind

__all__ = ["EventTranslator", "NotifyEvent"]

# PrinterManager's words for a finished printer whose bed must be cleared by a person.
BED_CLEAR_MESSAGE = "waiting for bed clear"


class NotifyEvent(BaseModel):
    """The JSON a webhook receives (and the text Apprise sends is made from)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    event: EventKind
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))
    job_id: str | None = None
    printer: str | None = None
    message: str
    data: dict[str, Any] = Field(default_factory=dict)

    def title(self) -> str:
        return f"printforge: {self.event}"

    def text(self) -> str:
        """One line for chat and push services."""
        subject = " ".join(
            part
            for part in (
                f"job {self.job_id}" if self.job_id else "",
                f"on {self.printer}" if self.printer else "",
            )
            if part
        )
        return f"{subject}: {self.message}" if subject else self.message


class EventTranslator:
    """Bus events in, notifications out. A printer's status repeats every few seconds, so
    printer notifications fire on the change into a state, not on every report of it."""

    def __init__(self) -> None:
        self._faulted: set[str] = set()
        self._bed_waiting: set[str] = set()

    def translate(self, event: Event) -> list[NotifyEvent]:
        if isinstance(event, JobEvent):
            return self._job(event)
        if isinstance(event, PrinterStatusEvent):
            return self._printer(event)
        return []

    def _job(self, event: JobEvent) -> list[NotifyEvent]:
        if event.kind == "diagnosis":
            data = dict(event.data or {})
            return [
                NotifyEvent(
                    event="print.failure_detected",
                    job_id=event.job_id,
                    printer=data.get("printer"),
                    message=event.message or "failure detected",
                    data=data,
                )
            ]
        if event.kind != "state":
            return []
        error = (event.data or {}).get("error") or {}
        if event.state is JobState.COMPLETED:
            kind: EventKind = "job.completed"
            message = event.message or "completed"
        elif event.state is JobState.FAILED:
            kind = "job.needs_input" if error.get("code") == "needs_input" else "job.failed"
            message = str(error.get("message") or event.message or "failed")
        else:
            return []
        data = {"state": event.state.value}
        if error:
            data["error"] = error
        return [NotifyEvent(event=kind, job_id=event.job_id, message=message, data=data)]

    def _printer(self, event: PrinterStatusEvent) -> list[NotifyEvent]:
        status = event.status
        out: list[NotifyEvent] = []
        name = status.id
        if status.state is PrinterState.FAULTED:
            if name not in self._faulted:
                self._faulted.add(name)
                out.append(
                    NotifyEvent(
                        event="printer.fault",
                        printer=name,
                        job_id=status.job_id,
                        message=status.message or "printer faulted",
                        data={"state": status.state.value},
                    )
                )
        else:
            self._faulted.discard(name)
        waiting = status.state is PrinterState.FINISHED and status.message == BED_CLEAR_MESSAGE
        if waiting and name not in self._bed_waiting:
            self._bed_waiting.add(name)
            out.append(
                NotifyEvent(
                    event="printer.bed_clear_needed",
                    printer=name,
                    message=f"remove the print from {name}, then confirm: `printforge printers"
                    f" clear {name}` or the dashboard",
                    data={"state": status.state.value},
                )
            )
        elif not waiting:
            self._bed_waiting.discard(name)
        return out
