"""Log output for people (text) or for machines (JSON lines), with the job and printer at hand.

`[logging] format = "json"` (or `--log-format json`) writes one JSON object per line on stderr:
`time` (UTC, ISO 8601), `level`, `logger`, `message`, `job_id` and `printer` when the line was
written on behalf of one, and `exception` when there is a traceback. journald, Loki, Vector or
`jq` read that without a parsing rule per message.

The job and printer come from context variables: the orchestrator binds `job_id` in each job's
task and the printer agent and printer manager bind `printer`, so every line written below them
(a driver's warning, a library's retry) carries both without each call passing them on. asyncio
copies the context into every task created there, so a driver's reader task started under
`log_context(printer=...)` keeps its printer for life.

A small stdlib formatter rather than python-json-logger or structlog: the field set is fixed and
small, the formatter must read our context variables and must take the message and traceback
only after the redaction filter has cleaned them (python-json-logger copies every `extra`
attribute into the line by default, which is how a secret passed as `extra=` would leak), and
structlog would change how every module logs. Twenty lines do not justify a dependency.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from printforge.runtime.logredact import RedactingFilter, redact

__all__ = [
    "FORMATS",
    "ContextFilter",
    "JsonFormatter",
    "LoggingSettings",
    "bind_log_context",
    "configure_logging",
    "current_log_context",
    "log_context",
]

FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

_JOB_ID: ContextVar[str | None] = ContextVar("printforge_log_job_id", default=None)
_PRINTER: ContextVar[str | None] = ContextVar("printforge_log_printer", default=None)


class LoggingSettings(BaseModel):
    """`[logging]`: how log lines are written (the level is the top-level `log_level`)."""

    model_config = ConfigDict(extra="forbid")

    format: LogFormat = Field(
        "text", description='"text" for people, "json" for one JSON object per line'
    )


def bind_log_context(*, job_id: str | None = None, printer: str | None = None) -> None:
    """Set the job and/or printer for the rest of the current task (each task has its own
    copy of the context, so this never leaks into the task that created it)."""
    if job_id is not None:
        _JOB_ID.set(job_id)
    if printer is not None:
        _PRINTER.set(printer)


@contextmanager
def log_context(*, job_id: str | None = None, printer: str | None = None) -> Iterator[None]:
    """Set the job and/or printer inside a block, and put back what was there after it."""
    tokens = []
    if job_id is not None:
        tokens.append((_JOB_ID, _JOB_ID.set(job_id)))
    if printer is not None:
        tokens.append((_PRINTER, _PRINTER.set(printer)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_log_context() -> dict[str, str]:
    context = {"job_id": _JOB_ID.get(), "printer": _PRINTER.get()}
    return {k: v for k, v in context.items() if v is not None}


class ContextFilter(logging.Filter):
    """Puts `job_id` and `printer` on every record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, var in (("job_id", _JOB_ID), ("printer", _PRINTER)):
            if getattr(record, key, None) is None:
                setattr(record, key, var.get())
        known = [
            f"{key}={value}"
            for key in ("job_id", "printer")
            if (value := getattr(record, key, None)) is not None
        ]
        record.context = f" [{' '.join(known)}]" if known else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; only the fields named in the module doc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            # Redacted again here (cheap): a handler configured without the filter, or a filter
            # added after ours, must not be the difference between a clean line and a leak.
            "message": redact(record.getMessage()),
        }
        for key in ("job_id", "printer"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs (so reconfiguring replaces it). It writes to whatever
    `sys.stderr` is when a line is written, as logging's own last-resort handler does: a
    redirect made later (a test's capture, a daemon's) is followed, and never a closed one."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ assigns it; the property always answers sys.stderr


def configure_logging(log_format: str = "text", level: int | str = logging.WARNING) -> None:
    """(Re)install the one stderr handler on the root logger, in the given format."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    # Context first, so the redaction filter and the formatter see the finished record.
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
