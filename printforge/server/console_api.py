"""`printer.gcode`: an admin's console line to one printer, through the G-code gate (issue 15).

Each printer has one `SessionGate` here, so a line is judged by where the lines before it left
the printer (G91, G92 offsets, homed axes), as a farm node judges the lines it is sent. What the
gate learnt is forgotten whenever the printer does something the console did not see: a job
streams, it faults, it disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.gcode.gate import SessionGate
from printforge.hardware.base import PrinterDriver
from printforge.models.printer import PrinterState, PrinterStatus
from printforge.runtime.errors import InvalidTransition
from printforge.server.auth import Role
from printforge.server.rpc import CallContext, Endpoint, HandlerTable
from printforge.server.state import STATE_KEY

__all__ = ["register_console"]

# A console line sent into a job's stream would be interleaved with the file's own moves.
_BUSY = {PrinterState.HEATING, PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.CANCELLING}
# States after which the head or the modes may have changed unseen by the console.
_UNSEEN = _BUSY | {PrinterState.OFFLINE, PrinterState.CONNECTING, PrinterState.FAULTED}


class GcodeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    printer: str = Field(min_length=1, max_length=200)
    line: str = Field(min_length=1, max_length=200, description="one G-code line")


@dataclass
class _Console:
    driver: PrinterDriver
    gate: SessionGate
    unlisten: Callable[[], None]


def _console(ctx: CallContext, name: str) -> _Console:
    state = ctx.app[STATE_KEY]
    driver = state.orch.printers.get(name)
    console: _Console | None = state.consoles.get(name)
    if console is not None and console.driver is driver:
        return console
    if console is not None:
        console.unlisten()  # the printer was attached again: a new driver, a new session
    gate = SessionGate(driver.profile)

    def _on_status(status: PrinterStatus) -> None:
        if status.state in _UNSEEN:
            gate.forget()

    console = _Console(driver, gate, driver.add_listener(_on_status))
    state.consoles[name] = console
    return console


async def _handle_gcode(ctx: CallContext, p: GcodeParams) -> dict[str, Any]:
    console = _console(ctx, p.printer)
    status = console.driver.status()
    if status.state in _BUSY:
        raise InvalidTransition(
            f"printer {p.printer} is {status.state.value}: the console sends lines to a printer"
            " that is not printing (pause, resume and cancel are the printer's controls)"
        )
    reserved = ctx.app[STATE_KEY].orch.printers.reserved_by(p.printer)
    if reserved is not None:
        raise InvalidTransition(
            f"printer {p.printer} is taken by job {reserved}, which starts or ends on it now:"
            " send console lines once it is idle"
        )
    # UnsafeGcode (409) names the limit the line breaks; the state moves on only if it passes.
    console.gate.check(p.line, console.driver.material)
    try:
        await console.driver.send(p.line)
    except (Exception, asyncio.CancelledError):
        console.gate.forget()  # it may or may not have run
        raise
    return {"printer": p.printer, "line": p.line.strip(), "sent": True, "homed": console.gate.homed}


def register_console(t: HandlerTable) -> None:
    t.register(
        Endpoint(
            "printer.gcode",
            _handle_gcode,
            GcodeParams,
            Role.ADMIN,
            "Send one G-code line to an idle printer; the gate refuses unsafe lines with the"
            " reason, judging each by the lines sent before it",
            ("POST", "/api/printers/{printer}/gcode"),
        )
    )
