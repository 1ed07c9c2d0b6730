"""The contract every printer driver keeps, run over all six (see conftest.py for the rigs).

Connect and report idle with the configured profile; say what it learnt of the link; print a
file the safety gate passes to the end with progress that never goes back; a cancel at the
printer mid-print ends the stream as PrintCancelled (cancelled, never failed or faulted); a
job cancelled by printforge (its stream task cancelled) leaves the printer usable; stop is
bounded and can be called twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from printforge.gcode.gate import check_gcode
from printforge.hardware.base import LinkFacts, PrinterDriver
from printforge.models.printer import PrinterState, PrintProgress
from printforge.runtime.errors import PrintCancelled
from tests.contract.conftest import PROFILE, STOP_S, Rig
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = [pytest.mark.mqtt, pytest.mark.asyncio]

PRINT_S = 30.0  # the bound on any one print in these tests
SERIAL = {"marlin", "virtual"}  # the kinds that talk Marlin over a (virtual) serial line
NOT_ENDED = {PrinterState.FAULTED, PrinterState.OFFLINE}


def gated_file(tmp: Path, moves: int) -> Path:
    """A small G-code file that the safety gate passes for the rig's profile."""
    path = write_gcode(tmp, numbered_moves_gcode(moves), name=f"contract-{moves}.gcode")
    check_gcode(path, PROFILE)
    return path


async def first_progress_then(
    driver: PrinterDriver, path: Path, seen: list[PrintProgress], job_id: str
) -> asyncio.Task[None]:
    """Start streaming in a task; the event is set at the first progress past zero."""
    going = asyncio.Event()

    async def consume() -> None:
        async for progress in driver.stream(path, job_id=job_id):
            seen.append(progress)
            if progress.fraction > 0:
                going.set()

    task = asyncio.create_task(consume())
    waiter = asyncio.create_task(going.wait())
    await asyncio.wait({task, waiter}, timeout=PRINT_S, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # an early end says why
    assert going.is_set(), "no progress within the bound"
    return task


async def settled(driver: PrinterDriver) -> None:
    """Until the printer has left printing/cancelling (a remote one reports it a moment after
    the stream ended), woken by its status listener rather than polled."""
    busy = {PrinterState.PRINTING, PrinterState.CANCELLING, PrinterState.PAUSED}
    done = asyncio.Event()

    def check(status: object = None) -> None:
        if driver.status().state not in busy:
            done.set()

    remove = driver.add_listener(check)
    try:
        check()
        await asyncio.wait_for(done.wait(), STOP_S)
    finally:
        remove()


async def test_connects_idle_with_its_profile(rig: Rig) -> None:
    driver = await rig.start()
    status = driver.status()
    assert status.state is PrinterState.IDLE
    assert status.profile == PROFILE.name
    assert status.driver == driver.kind
    facts = driver.link_facts()
    assert isinstance(facts, LinkFacts) and facts.watchdog_probes >= 0
    # "Drivers that learn nothing say nothing" (base.py); a serial host learns the firmware in
    # its handshake, so it must say it.
    if rig.kind in SERIAL:
        assert facts.firmware, facts


async def test_prints_a_gated_file_to_the_end(rig: Rig, tmp_path: Path) -> None:
    driver = await rig.start()
    path = gated_file(tmp_path, 300)
    async with asyncio.timeout(PRINT_S):
        progress = [p async for p in driver.stream(path, job_id="contract-print")]
    fractions = [p.fraction for p in progress]
    assert fractions, "no progress at all"
    assert fractions == sorted(fractions), fractions
    assert fractions[0] >= 0.0 and fractions[-1] == 1.0
    assert driver.status().state in {PrinterState.IDLE, PrinterState.FINISHED}
    assert isinstance(driver.link_facts(), LinkFacts)


async def test_a_cancel_at_the_printer_is_cancelled_not_failed(rig: Rig, tmp_path: Path) -> None:
    driver = await rig.start(slow=True)
    path = gated_file(tmp_path, 3000)
    seen: list[PrintProgress] = []
    task = await first_progress_then(driver, path, seen, "contract-cancel")
    await asyncio.wait_for(driver.cancel(), STOP_S)
    with pytest.raises(PrintCancelled):
        await asyncio.wait_for(task, PRINT_S)
    assert seen[-1].fraction < 1.0
    await settled(driver)
    assert driver.status().state not in NOT_ENDED, driver.status()


async def test_a_job_cancelled_by_printforge_leaves_the_printer_usable(
    rig: Rig, tmp_path: Path
) -> None:
    driver = await rig.start(slow=True)
    seen: list[PrintProgress] = []
    task = await first_progress_then(driver, gated_file(tmp_path, 3000), seen, "contract-j")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, STOP_S)
    await settled(driver)
    assert driver.status().state not in NOT_ENDED, driver.status()
    assert driver.connected.is_set()
    # Usable: the next job runs to the end.
    async with asyncio.timeout(PRINT_S):
        again = [p async for p in driver.stream(gated_file(tmp_path, 50), job_id="contract-k")]
    assert again[-1].fraction == 1.0


async def test_stop_is_bounded_and_idempotent(rig: Rig) -> None:
    driver = await rig.start()
    await asyncio.wait_for(driver.stop(), STOP_S)
    await asyncio.wait_for(driver.stop(), STOP_S)
    assert not driver.connected.is_set()
