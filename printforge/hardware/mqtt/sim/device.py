"""What the Moonraker and Bambu simulators share: fault knobs, owned tasks and one print at a time.

The two speak different protocols but fail the same ways (a late reply, a dropped connection, a
failed print, a garbled report), heat the same way and own their tasks the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from typing import Any

from pydantic import BaseModel, Field

from printforge.hardware.mqtt.client import BusClient

__all__ = ["BusSimulator", "SimFaults", "approach"]


class SimFaults(BaseModel):
    """Faults a simulated printer shows; constructor arguments, like every fake's."""

    response_delay_s: float = Field(0.0, ge=0, description="hold every reply to a command")
    drop_at_fraction: float | None = Field(None, gt=0, le=1, description="fall off the bus")
    drop_for_s: float = Field(2.0, ge=0)
    fail_at_fraction: float | None = Field(None, gt=0, le=1, description="the print fails")
    malformed_every: int | None = Field(None, ge=1, description="every Nth report is garbage")


def approach(actual: float, target: float, step: float) -> float | None:
    """A heater's next temperature, at most `step` nearer the target; None once it is there."""
    if abs(actual - target) <= 0.1:
        return None
    return actual + max(-step, min(step, target - actual))


class BusSimulator(ABC):
    """Task ownership, fault injection and the print task of a simulated printer."""

    client: BusClient

    def __init__(self, faults: SimFaults) -> None:
        self.faults = faults
        self.files: dict[str, bytes] = {}
        self._reports = 0
        self._dropped = False
        self._print_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_tasks(self) -> None:
        if self._print_task is not None:
            self._print_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @abstractmethod
    async def _print(self, name: str) -> None:
        """Print the stored file `name`, reporting as the real printer would."""

    def _begin_print(self, name: str) -> None:
        self._dropped = False  # each print may fall off the bus once
        self._print_task = self._spawn(self._print(name))

    def _garbled(self) -> bool:
        """Count a report; True when this one is to go out cut short."""
        self._reports += 1
        every = self.faults.malformed_every
        return bool(every and self._reports % every == 0)

    def _fails_at(self, fraction: float) -> bool:
        """True when the print is to fail here; severs the connection once where due."""
        fail = self.faults.fail_at_fraction
        if fail is not None and fraction >= fail:
            return True
        drop = self.faults.drop_at_fraction
        if drop is not None and not self._dropped and fraction >= drop:
            self._dropped = True
            self.client.sever(self.faults.drop_for_s)
        return False
