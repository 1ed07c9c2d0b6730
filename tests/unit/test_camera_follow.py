"""DriverSource: how high the part is, followed on a real simulated machine.

The machine is the virtual printers' own (`VirtualMachine`), fed commands directly so that each
look lands exactly where the test puts it; the printer around it is reduced to what the camera
asks of a driver (its status, its machine and its profile).
"""

from __future__ import annotations

import pytest

from printforge.hardware.camera.follow import DriverSource
from printforge.hardware.marlin.control import SavedState, pause_commands, resume_commands
from printforge.hardware.virtual.machine import VirtualMachine
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus, PrintProgress

PROFILE = PrinterProfile(name="generic-220")


class _Printer:
    """The few members of a driver that the camera reads, around a real simulated machine."""

    def __init__(self) -> None:
        self.profile = PROFILE
        self.machine = VirtualMachine(PROFILE, sim_speed=1000.0)
        self._status = PrinterStatus(id="v1", driver="virtual", state=PrinterState.IDLE)

    def status(self) -> PrinterStatus:
        return self._status

    def set(self, state: PrinterState, job: str | None, layer: int | None = None) -> None:
        progress = PrintProgress(layer=layer, layers_total=80) if job is not None else None
        self._status = PrinterStatus(
            id="v1", driver="virtual", state=state, job_id=job, progress=progress
        )

    def run(self, *commands: str) -> None:
        # execute_at: queued at once, as the firmware does ahead of the loop's clock.
        for command in commands:
            self.machine.execute_at(command, None, self.machine.loop.time())


def _layer(z: float) -> list[str]:
    """One square perimeter at height z, extruding, then a retract, a Z-hop and an unretract."""
    return [
        f"G1 Z{z:.2f} F720",
        "G1 X110 Y100 E1.0 F1800",
        "G1 X110 Y110 E1.0",
        "G1 X100 Y110 E1.0",
        "G1 X100 Y100 E1.0",
        "G1 E-0.8 F2100",
        f"G1 Z{z + 0.4:.2f} F720",
        "G0 X105 Y105 F9000",
        f"G1 Z{z:.2f} F720",
        "G1 E0.8 F2100",
    ]


def _source(printer: _Printer) -> DriverSource:
    return DriverSource(printer, lambda _job: None)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_pause_parked_between_two_looks_leaves_the_part_at_its_layer() -> None:
    printer = _Printer()
    source = _source(printer)
    printer.run("G28", "G90", "M83", "G92 E0")
    printer.set(PrinterState.PRINTING, "job-1", layer=1)
    for n in range(1, 21):
        printer.run(*_layer(0.2 * n))
        source.view()
    # More of layer 20, then the host's pause (retract, lift 10 mm, park), all before the next
    # look: E has grown since the last look and the head is now 10 mm above the part.
    printer.run("G1 X110 Y100 E3.0 F1800")
    saved = SavedState(
        x=110, y=100, z=4.0, e=0.0, feed_mm_min=1800, hotends={0: 210}, bed=60, absolute_e=False
    )
    printer.run(*pause_commands(saved, PROFILE))
    assert source.view().height == pytest.approx(4.0)
    printer.set(PrinterState.PAUSED, "job-1", layer=20)
    view = source.view()
    assert view.height == pytest.approx(4.0)
    assert view.head is not None and view.head[2] == pytest.approx(14.0)
    # Back onto the part (lower, unretract): the height is still the last layer laid.
    printer.set(PrinterState.PRINTING, "job-1", layer=20)
    printer.run(*resume_commands(saved))
    assert source.view().height == pytest.approx(4.0)
    printer.run(*_layer(4.2))
    assert source.view().height == pytest.approx(4.2)


@pytest.mark.asyncio
async def test_hops_and_purges_are_not_the_part() -> None:
    printer = _Printer()
    source = _source(printer)
    printer.run("G28", "G90", "M83", "G92 E0")
    printer.set(PrinterState.PRINTING, "job-1", layer=1)
    printer.run(*_layer(0.2), *_layer(0.4))
    printer.run("G1 E-0.8", "G1 Z0.8 F720")  # a hop, seen mid-air
    assert source.view().height == pytest.approx(0.4)
    # A purge in place high above the part (an M600 script's): plastic, but not on the part.
    printer.run("G1 Z30 F720", "G1 X0 Y0 F6000", "G1 E15 F300")
    assert source.view().height == pytest.approx(0.4)


@pytest.mark.asyncio
async def test_the_last_layer_counts_once_the_print_has_ended() -> None:
    printer = _Printer()
    source = _source(printer)
    printer.run("G28", "G90", "M83", "G92 E0")
    printer.set(PrinterState.PRINTING, "job-1", layer=1)
    printer.run(*_layer(0.2))
    source.view()
    # The last layer and the end G-code were queued after the last look that saw it printing.
    printer.run(*_layer(0.4), "G91", "G1 Z10 F600", "G90", "G1 X0 Y200 F6000")
    printer.set(PrinterState.IDLE, None)
    assert source.view().height == pytest.approx(0.4)
    # Moves made by hand on an idle printer are not the print's.
    printer.run("M83", "G1 Z1 F600", "G1 X50 Y50 E5 F600")
    assert source.view().height == pytest.approx(0.4)
    # A new print starts from the bed.
    printer.set(PrinterState.PRINTING, "job-2", layer=1)
    assert source.view().height == 0.0
    printer.run(*_layer(0.2))
    assert source.view().height == pytest.approx(0.2)
