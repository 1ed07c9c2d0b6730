"""Stage progress on the bus: throttled, but the last update held back is never lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from printforge.orchestrator.pipeline import _Throttle


@pytest.mark.asyncio
async def test_the_update_held_back_is_sent_when_the_interval_ends() -> None:
    sent: list[float | None] = []
    held_one_arrived = asyncio.Event()

    def send(fraction: float | None, message: str | None, data: dict[str, Any] | None) -> None:
        sent.append(fraction)
        if fraction == 0.5:
            held_one_arrived.set()

    throttle = _Throttle(send)
    throttle(0.1, None, None)
    # A burst of lines, then nothing for minutes (a bed heating): the last must show.
    throttle(0.3, None, None)
    throttle(0.5, None, None)
    assert sent == [0.1]
    async with asyncio.timeout(5):
        await held_one_arrived.wait()
    assert sent == [0.1, 0.5]


@pytest.mark.asyncio
async def test_an_ending_sends_at_once_and_drops_what_was_held() -> None:
    sent: list[float | None] = []
    throttle = _Throttle(lambda fraction, message, data: sent.append(fraction))
    throttle(0.1, None, None)
    throttle(0.4, None, None)
    throttle(1.0, "done", None)  # the end is never held back, nor followed by older news
    assert sent == [0.1, 1.0]
    assert throttle._timer is None and throttle._held is None
    throttle(0.2, None, None)
    throttle.close()  # the stage ended: nothing may arrive after its end
    assert throttle._timer is None and throttle._held is None
