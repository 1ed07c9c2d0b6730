"""The agent contract and registry. An agent adapts one engine to the pipeline, thinly."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import PrintRequest
from printforge.runtime.health import HealthRecord

if TYPE_CHECKING:
    from printforge.gcode.analysis import Analysed

__all__ = ["AGENTS", "Agent", "AgentContext", "load_agent"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class AgentContext:
    """What an agent may know about the job it works for."""

    job_id: str
    job_dir: Path
    request: PrintRequest
    printer: str
    profile: PrinterProfile
    material: MaterialProfile
    # Report progress (0..1) with an optional message and data; the pipeline turns it into events.
    progress: Callable[[float | None, str | None, dict[str, Any] | None], None] = (
        lambda fraction, message, data: None
    )
    report: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    # The job's G-code as already analysed by an earlier step (the slicer's gate, the import
    # of a user's file): the printer stage's gate reuses it for a printer of the same profile.
    # The slicer sets it for the pipeline to pass on.
    analysed: Analysed | None = None


class Agent(ABC, Generic[In, Out]):
    """`run` does one stage's work. Agents never retry themselves: the runtime guard does."""

    name: ClassVar[str]

    @abstractmethod
    async def run(self, inp: In, ctx: AgentContext) -> Out: ...

    async def health(self) -> HealthRecord | None:
        """The agent's own view of its engine, if it has one beyond call outcomes."""
        return None

    async def start(self) -> None:
        """Acquire what the agent needs (connections, printers)."""

    async def stop(self) -> None:
        """Release what `start` acquired."""


AGENTS: dict[str, str] = {
    "research": "printforge.agents.research:ResearchAgent",
    "cad": "printforge.agents.cad:CADAgent",
    "slicer": "printforge.agents.slicer:SlicerAgent",
    "printer": "printforge.agents.printer:PrinterAgent",
}


def load_agent(name: str) -> type[Agent[Any, Any]]:
    module_name, _, attr = AGENTS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
