"""The in-process event bus: fan-out, bounded queues, clean close."""

from __future__ import annotations

import asyncio

import pytest

from printforge.models.event import JobEvent
from printforge.models.job import JobState
from printforge.orchestrator.bus import EventBus


def event(n: int) -> JobEvent:
    return JobEvent(kind="log", job_id=f"j{n}", state=JobState.QUEUED, message=str(n))


@pytest.mark.asyncio
async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    for n in range(5):
        bus.publish(event(n))
    bus.close()
    got_a = [e.job_id async for e in a]  # type: ignore[union-attr]
    got_b = [e.job_id async for e in b]  # type: ignore[union-attr]
    assert got_a == got_b == [f"j{n}" for n in range(5)]


@pytest.mark.asyncio
async def test_a_slow_subscriber_loses_oldest_and_never_blocks_the_publisher() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    for n in range(10):
        bus.publish(event(n))  # never awaits, never raises
    assert slow.dropped == 7
    slow.close()
    assert [e.job_id async for e in slow] == ["j7", "j8", "j9"]  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_close_wakes_a_waiting_consumer() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(waiter, 1) is None
    assert bus.subscribers == 0
