"""The websocket broadcaster coalesces printer status, but never a change of state."""

from __future__ import annotations

import asyncio
import json

import pytest

from printforge.models.event import PrinterStatusEvent
from printforge.models.printer import PrinterState, PrinterStatus
from printforge.orchestrator.bus import EventBus
from printforge.server.ws import Broadcaster


class Collector:
    """Stands in for a websocket client: the broadcaster only calls offer() on it."""

    printers = True

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []

    def wants_job(self, job_id: str) -> bool:
        return False

    def offer(self, text: str) -> None:
        self.seen.append(json.loads(text)["params"])


def status(state: PrinterState, message: str) -> PrinterStatusEvent:
    return PrinterStatusEvent(
        status=PrinterStatus(id="p1", driver="virtual", state=state, message=message)
    )


async def settle(bus: EventBus, broadcaster: Broadcaster, collector: Collector) -> None:
    for _ in range(50):
        await asyncio.sleep(0.01)
    await asyncio.sleep(broadcaster.status_interval_s * 2)


@pytest.mark.asyncio
async def test_a_print_shorter_than_the_interval_still_shows_printing() -> None:
    bus = EventBus()
    broadcaster = Broadcaster(bus, status_interval_s=0.2)
    collector = Collector()
    broadcaster.clients.add(collector)  # type: ignore[arg-type]
    broadcaster.start()
    try:
        bus.publish(status(PrinterState.IDLE, "ready"))
        bus.publish(status(PrinterState.PRINTING, "started"))
        for i in range(20):
            bus.publish(status(PrinterState.PRINTING, f"layer {i}"))
        bus.publish(status(PrinterState.IDLE, "done"))
        await settle(bus, broadcaster, collector)
    finally:
        await broadcaster.stop()
    states = [s["state"] for s in collector.seen]
    assert states == ["idle", "printing", "printing", "idle"], collector.seen
    # The coalesced update carries the newest figures of the printing state, not the oldest.
    assert collector.seen[2]["message"] == "layer 19"


@pytest.mark.asyncio
async def test_updates_within_one_state_are_coalesced_to_the_latest() -> None:
    bus = EventBus()
    broadcaster = Broadcaster(bus, status_interval_s=0.1)
    collector = Collector()
    broadcaster.clients.add(collector)  # type: ignore[arg-type]
    broadcaster.start()
    try:
        bus.publish(status(PrinterState.PRINTING, "start"))
        for i in range(100):
            bus.publish(status(PrinterState.PRINTING, f"line {i}"))
        await settle(bus, broadcaster, collector)
    finally:
        await broadcaster.stop()
    assert [s["message"] for s in collector.seen] == ["start", "line 99"]
