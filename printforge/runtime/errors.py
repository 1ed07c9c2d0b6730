"""The one error hierarchy. Retry decisions are made on these types, never on message text."""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadArtifact",
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigError",
    "ConnectionLost",
    "InputError",
    "InsufficientStorage",
    "InvalidTransition",
    "NeedsInput",
    "OperationTimeout",
    "PermanentError",
    "PrintCancelled",
    "PrinterBusy",
    "PrinterDisconnected",
    "PrinterError",
    "PrinterFault",
    "PrintforgeError",
    "RateLimited",
    "TransientError",
    "UnsafeGcode",
]


class PrintforgeError(Exception):
    """Base of every error printforge raises on purpose; `code` is stable and machine-readable."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConfigError(PrintforgeError):
    code = "config_error"


class DataDirBusy(PrintforgeError):
    """Another printforge process owns this data directory (its job store and printers)."""

    code = "data_dir_busy"

    def __init__(self, message: str, *, holder: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


class InvalidTransition(PrintforgeError):
    code = "invalid_transition"


class PrinterBusy(InvalidTransition):
    """A start refused because the printer prints another job: nothing printed, so the job can
    wait for a printer rather than fail. Its code stays `invalid_transition` (what clients and
    older orchestrators know); a node's reply says `busy` beside it."""


class TransientError(PrintforgeError):
    """Worth retrying: the same call may succeed later."""

    code = "transient"


class ConnectionLost(TransientError):
    code = "connection_lost"


class OperationTimeout(TransientError, TimeoutError):
    code = "timeout"


class RateLimited(TransientError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientStorage(TransientError):
    """The data directory's disk is (nearly) full: worth trying again once space is freed."""

    code = "insufficient_storage"


class CircuitOpen(TransientError):
    """The breaker refused the call without trying it."""

    code = "circuit_open"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PrintforgeError):
    """Retrying the same call cannot succeed."""

    code = "permanent"


class InputError(PermanentError):
    """The user's input cannot be used; retrying will not help. The message is shown as is."""

    code = "invalid_input"


class NeedsInput(InputError):
    """The request asks for something the design cannot do: the person is asked one question
    (what cannot be built, what would be built instead) rather than given another part."""

    code = "needs_input"

    def __init__(self, question: str, *, requirements: list[dict[str, object]] | None = None):
        super().__init__(question)
        self.question = question
        self.requirements = requirements or []


class AuthError(PermanentError):
    code = "auth_error"


class BadArtifact(PermanentError):
    code = "bad_artifact"


class BudgetExceeded(PermanentError):
    code = "budget_exceeded"


class UnsafeGcode(PermanentError):
    """The G-code safety gate refused a file."""

    code = "unsafe_gcode"


class PrinterError(PrintforgeError):
    code = "printer_error"


class PrinterDisconnected(PrinterError, TransientError):
    code = "printer_disconnected"

    def __init__(self, message: str, *, last_acked_line: int | None = None) -> None:
        super().__init__(message)
        self.last_acked_line = last_acked_line


class PrintCancelled(PrinterError, PermanentError):
    """The print was stopped at the printer (its screen, its own client), not by printforge:
    a cancel, recorded as cancelled, never as a failure or a fault."""

    code = "cancelled"


class PrinterFault(PrinterError, PermanentError):
    """The firmware stopped itself (thermal runaway, kill()); a person must look at the printer."""

    code = "printer_fault"
