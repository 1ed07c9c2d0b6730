"""Cancelling one object of a plate on the Marlin host, against the virtual Marlin on a pty.

The file is labelled as the built-in slicer labels it (`M486`, docs/slicing.md): two squares,
`left` (X 10-20) and `right` (X 40-50), absolute extrusion (M82). The virtual board's command
history is replayed through the G-code reader to see where each extrusion ran.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import trimesh

from printforge.gcode.reader import Reader
from printforge.gcode.syntax import parse_line
from printforge.hardware.marlin.config import MarlinConfig
from printforge.hardware.marlin.driver import MarlinDriver
from printforge.hardware.marlin.objects import after_skip_commands, read_labels
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.pty_server import VirtualPrinterServer
from printforge.models.printer import MaterialProfile, PrinterProfile, PrinterState
from printforge.runtime.errors import InputError, InvalidTransition, PrinterError
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params

PROFILE = PrinterProfile(name="generic-220")
LEFT = (10.0, 20.0)
RIGHT = (40.0, 50.0)
IN_FLIGHT_MAX = 20


def two_objects_gcode(layers: int = 12) -> tuple[str, float]:
    """The labelled plate and the E the file ends at."""
    out = ["G28", "G90", "M82", "G92 E0", "M486 T2"]
    out += ["M486 S0", "M486 Aleft", "M486 S1", "M486 Aright", "M486 S-1"]
    e = 0.0
    for n in range(layers):
        out.append(f"G1 Z{0.2 * (n + 1):.2f} F600")
        for index, (a, b) in enumerate((LEFT, RIGHT)):
            out += [f"M486 S{index}", f"G0 X{a:.1f} Y{a:.1f} F9000"]
            for x, y in ((b, a), (b, b), (a, b), (a, a)):
                e += (b - a) * 0.05
                out.append(f"G1 X{x:.1f} Y{y:.1f} E{e:.5f} F1800")
            out.append("M486 S-1")
    out += ["G1 Z20 F600", "M84"]
    return "\n".join(out) + "\n", e


def _extrusions(commands: list[str]) -> list[tuple[int, float, float, float]]:
    """(history index, x, y, E pushed) of every extruding move, replayed from the start."""
    reader = Reader(PROFILE)
    found = []
    for index, command in enumerate(commands):
        line = parse_line(command)
        if line is None:
            continue
        before = reader.state.pos[3]
        reader.step(line)
        pushed = reader.state.pos[3] - before
        if line.code in ("G0", "G1") and pushed > 1e-9:
            found.append((index, reader.state.pos[0], reader.state.pos[1], pushed))
    return found


@pytest_asyncio.fixture
async def server() -> AsyncIterator[VirtualPrinterServer]:
    config = VirtualConfig.model_validate({"baud": 1_000_000, "sim_speed": 100.0})
    srv = VirtualPrinterServer(PROFILE, config)
    await srv.start()
    yield srv
    await srv.stop()


def _driver(server: VirtualPrinterServer) -> MarlinDriver:
    cfg = {"port": server.path, "baud": 1_000_000, "ok_timeout_s": 0.5}
    return MarlinDriver("mk", MarlinConfig.model_validate(cfg), PROFILE)


@pytest.mark.asyncio
async def test_cancel_one_of_two_objects_mid_print(
    tmp_path: Path, server: VirtualPrinterServer
) -> None:
    text, end_e = two_objects_gcode()
    path = tmp_path / "plate.gcode"
    path.write_text(text)
    machine = server.machine
    assert machine is not None
    machine.history = deque(machine.history)  # the whole print, not the latest 1000 commands
    total = len(text.splitlines())
    cancelled_at: int | None = None
    async with _driver(server) as driver:
        with pytest.raises(InvalidTransition):
            await driver.cancel_object("left")  # nothing printing
        last = None
        async for progress in driver.stream(path):
            last = progress
            if cancelled_at is None and progress.lines_acked > total // 3:
                assert [o["name"] for o in driver.objects()] == ["left", "right"]
                with pytest.raises(InputError, match="no object 'middle'"):
                    await driver.cancel_object("middle")
                answer = await driver.cancel_object("left")
                assert answer == {"id": 0, "name": "left", "cancelled": True}
                cancelled_at = len(machine.history)
                assert driver.objects()[0]["cancelled"] is True
        assert driver.status().state is PrinterState.IDLE
    assert cancelled_at is not None and last is not None
    # Progress counts the skipped lines as done.
    assert last.lines_acked == last.lines_total == total
    history = [m.command for m in machine.history]
    # Lines already sent at the cancel still run: at most the board's command slots and RX
    # ring (4 slots, 127 bytes: under 20 lines here). From there on nothing goes into `left`.
    moves = _extrusions(history)
    after = [m for m in moves if m[0] > cancelled_at + IN_FLIGHT_MAX]
    assert after, "the right object goes on printing"
    assert not [m for m in after if LEFT[0] - 0.01 <= m[1] <= LEFT[1] + 0.01]
    # Every extrusion pushes what the file says (no jump from a missing G92), the right
    # object completes every layer, and the machine's E ends where the file's does.
    assert max(m[3] for m in moves) == pytest.approx(10 * 0.05, abs=1e-4)
    right = [m for m in moves if RIGHT[0] - 0.01 <= m[1] <= RIGHT[1] + 0.01]
    assert len(right) == 12 * 4
    assert machine.reader.state.pos[3] == pytest.approx(end_e, abs=1e-4)
    left = [m for m in moves if LEFT[0] - 0.01 <= m[1] <= LEFT[1] + 0.01]
    assert 0 < len(left) < 12 * 4


@pytest.mark.asyncio
async def test_cancel_on_the_built_in_slicers_own_labels(
    tmp_path: Path, server: VirtualPrinterServer
) -> None:
    """The slicer's file as it comes (relative extrusion, skirt, per-layer labels): two 10 mm
    blocks 10 mm apart, `plate_1` left of X 110 on the 220 bed, `plate_2` right of it."""
    a = trimesh.creation.box((10, 10, 3))
    b = trimesh.creation.box((10, 10, 3))
    b.apply_translation((20, 0, 0))
    model = tmp_path / "plate.stl"
    trimesh.util.concatenate([a, b]).export(model)
    path = tmp_path / "plate.gcode"
    material = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)
    slice_file(model, path, resolve_params(SlicerSettings(), PROFILE, material), PROFILE)
    machine = server.machine
    assert machine is not None
    machine.history = deque(machine.history)  # the whole print, not the latest 1000 commands
    cancelled_at: int | None = None
    async with _driver(server) as driver:
        async for progress in driver.stream(path):
            if cancelled_at is None and progress.lines_acked > progress.lines_total // 2:
                await driver.cancel_object("plate_1")
                cancelled_at = len(machine.history)
        assert progress.lines_acked == progress.lines_total
        assert driver.engine is not None and driver.engine.job_skipped > 0
    assert cancelled_at is not None
    history = [m.command for m in machine.history]
    moves = _extrusions(history)
    after = [m for m in moves if m[0] > cancelled_at + IN_FLIGHT_MAX]
    assert after and all(m[1] > 110 for m in after)


@pytest.mark.asyncio
async def test_a_file_without_labels_refuses(tmp_path: Path, server: VirtualPrinterServer) -> None:
    path = tmp_path / "plain.gcode"
    path.write_text("G28\n" + "\n".join(f"G1 X{i % 50} Y{i % 7} F6000" for i in range(300)))
    async with _driver(server) as driver:
        refused: list[PrinterError] = []
        async for _progress in driver.stream(path):
            if not refused:
                with pytest.raises(InputError, match="no object labels") as info:
                    await driver.cancel_object(0)
                refused.append(info.value)
        assert refused


def test_relative_moves_in_a_skipped_segment_travel_back_to_the_file() -> None:
    commands = [
        "G90",
        "M82",
        "M486 S0",
        "G1 X10 Y10 E1 F1200",
        "G91",
        "G1 X5 Y0 E1",  # relative: skipping it would shift every later relative move
        "M486 S-1",
        "G1 X1",
    ]
    labels = read_labels(commands)
    seg = labels.segment_at(4)
    assert seg is not None and seg.relative_moves and seg.stop == 6
    # Marlin's G91 makes E relative too: the file's E after the segment is relative.
    assert after_skip_commands(seg) == [
        "G90",
        "G0 X15.0000 Y10.0000 Z0.0000",
        "G91",
        "M83",
        "G1 F1200",
    ]
    assert labels.segment_at(6) is None
    assert labels.resolve("0").name == "object 0"


def test_definitions_cost_nothing_to_skip() -> None:
    text, _e = two_objects_gcode(1)
    labels = read_labels(text.splitlines())
    assert [(o.id, o.name) for o in labels.objects] == [(0, "left"), (1, "right")]
    first = labels.segments[0]
    assert not first.has_commands and after_skip_commands(first) == []
    printed = labels.segments[2]
    assert printed.object_id == 0 and after_skip_commands(printed)[-2:] == [
        "G92 E2.00000",
        "G1 F1800",
    ]
