"""Ending the heating waits a safe stop would otherwise queue behind (M108, EMERGENCY_PARSER).

Marlin runs one command at a time, and M109/M190/M191/M303 return only at temperature, so stop
commands sent during one wait for it. With EMERGENCY_PARSER, M108 clears `wait_for_heatup` as
its bytes arrive and the wait returns at once; docs/serial.md has the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from printforge.hardware.marlin.control import BREAK_WAIT, break_wait_attempts
from printforge.hardware.marlin.engine import LineEngine, is_heating_wait

__all__ = ["BREAK_RETRY_S", "awaited", "end_heating_waits", "retrieve"]

log = logging.getLogger(__name__)

# A heating wait still running this long after an M108 gets another (if it may have more):
# that M108 may have arrived just before the wait began, which forgets it.
BREAK_RETRY_S = 1.0


async def end_heating_waits(engine: LineEngine, capabilities: dict[str, bool], name: str) -> None:
    """Cut short the heating waits the stop commands would queue behind, where possible.

    M108 goes out when a wait is the oldest unacknowledged line, i.e. the firmware runs it
    now; an earlier M108 would be forgotten when that wait begins. Each wait still in flight
    behind it gets its own M108 when its turn comes. Returns when no wait is left in flight,
    or when waiting on is all that is left to do (no parser, or it did not help).
    """
    attempts = break_wait_attempts(capabilities)
    if attempts == 0:
        wait = engine.heating_wait_in_flight()
        if wait is not None:
            log.warning(
                "printer %s: the stop commands wait until `%s` reaches its temperature:"
                " the firmware reports no EMERGENCY_PARSER, so M108 cannot end the wait"
                " early; the heaters keep heating until then",
                name,
                wait[1],
            )
        return
    sent: dict[int, int] = {}  # wait line -> M108s sent for it
    last_sent = -float("inf")
    loop = asyncio.get_running_loop()
    while engine.failed is None and engine.heating_wait_in_flight() is not None:
        running = engine.oldest_in_flight()
        if running is not None and is_heating_wait(running[1]):
            number, command = running
            count = sent.get(number, 0)
            if count < attempts and (count == 0 or loop.time() - last_sent >= BREAK_RETRY_S):
                log.info("printer %s: %s to end `%s` now", name, BREAK_WAIT, command)
                # Its `ok` means nothing more; a failure shows in the stop commands.
                engine.send_now(BREAK_WAIT).add_done_callback(retrieve)
                sent[number] = count + 1
                last_sent = loop.time()
            elif count >= attempts:
                log.warning(
                    "printer %s: `%s` still runs after %d %s; %s, so the stop commands wait"
                    " until it reaches its temperature",
                    name,
                    command,
                    count,
                    BREAK_WAIT,
                    "the firmware did not report EMERGENCY_PARSER"
                    if capabilities.get("EMERGENCY_PARSER") is None
                    else "the firmware ignores it",
                )
                return  # the stop commands queue behind it; a timeout names it
        # Every acknowledgement sets `changed`; the timeout paces the retries.
        engine.changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BREAK_RETRY_S):
                await engine.changed.wait()


def awaited(engine: LineEngine, capabilities: dict[str, bool]) -> str:
    """What the firmware was still busy with when a safe stop gave up, for its warning."""
    running = engine.oldest_in_flight()
    if running is None:
        return "the printer to answer"
    command = running[1]
    if not is_heating_wait(command):
        return f"the printer to finish `{command}`"
    if capabilities.get("EMERGENCY_PARSER") is False:
        why = "the firmware has no EMERGENCY_PARSER, so M108 cannot end it"
    else:
        why = f"{BREAK_WAIT} did not end it"
    return f"the heating wait `{command}` to reach its temperature ({why})"


def retrieve(future: asyncio.Future[None]) -> None:
    """Done callback for a command nobody awaits: its error must not be logged as unretrieved."""
    if not future.cancelled():
        future.exception()
