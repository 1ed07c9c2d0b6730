"""The built-in slicer's M73 plan, timed from the writer's numbers, is the one `with_m73` reads
from the finished text: same lines, same places."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from printforge.gcode.timed_text import Run, plan_parts, with_m73_parts
from printforge.gcode.timeplan import plan_text, with_m73
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import SliceOverrides
from printforge.settings import load_settings
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params

PLA = MaterialProfile(
    name="PLA",
    hotend_temp=210,
    first_layer_hotend_temp=215,
    bed_temp=60,
    first_layer_bed_temp=65,
    max_hotend_temp=235,
    fan_from_layer=2,
)


def _part() -> trimesh.Trimesh:
    """A box with a round hole and a thin tower on it: curves, short layers, travel between
    islands, top skins and gap fill."""
    box = trimesh.creation.box((18, 14, 4))
    hole = trimesh.creation.cylinder(radius=3.0, height=10, sections=48)
    hole.apply_translation((-3, 0, 0))
    tower = trimesh.creation.cylinder(radius=1.6, height=6, sections=32)
    tower.apply_translation((5, 3, 4))
    return box.difference(hole).union(tower)


def _without_m73(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("M73"))


@pytest.mark.parametrize(
    ("printer", "settings"),
    [
        ("generic-220", SlicerSettings()),
        # A wait aside (a G4 dwell) on the tower's short layers, and the Prusa profile's own
        # start G-code, labels and limits.
        ("prusa-mk3s", SlicerSettings(min_layer_time=15)),
        ("ender3", SlicerSettings(min_layer_time=6)),
    ],
)
def test_sliced_file_m73_lines_equal_with_m73s(
    tmp_path: Path, printer: str, settings: SlicerSettings
) -> None:
    profile = load_settings().printer_profiles[printer]
    stl = tmp_path / "part.stl"
    _part().export(stl)
    params = resolve_params(settings, profile, PLA, SliceOverrides(layer_height=0.3))
    out = tmp_path / "part.gcode"
    slice_file(stl, out, params, profile)
    text = out.read_text()
    marks = [line for line in text.splitlines() if line.startswith("M73")]
    assert len(marks) > 10
    assert marks[0].startswith("M73 P0 R")
    assert marks[-1] == "M73 P100 R0"
    assert text == with_m73(_without_m73(text), profile)


def test_sliced_parts_plan_every_command_as_the_text_does(tmp_path: Path) -> None:
    """Every command's planned seconds, not only the rounded marks, on the writer's parts."""
    from printforge.slicing.builtin import slice_parts

    profile = load_settings().printer_profiles["generic-220"]
    stl = tmp_path / "part.stl"
    _part().export(stl)
    params = resolve_params(SlicerSettings(min_layer_time=10), profile, PLA)
    parts = slice_parts(stl, params, profile)
    assert any(isinstance(p, Run) for p in parts)
    plan = plan_parts(parts, profile)
    assert plan is not None
    text = "".join(p if isinstance(p, str) else p.text for p in parts)
    assert np.array_equal(plan.done_s, plan_text(text, profile).done_s)


def _run(lines: list[tuple[float, float, float]], feed: float) -> Run:
    text = f"G1 X{lines[0][0]:.3f} Y{lines[0][1]:.3f} E{lines[0][2]:.5f} F{feed:.0f}\n"
    text += "".join(f"G1 X{x:.3f} Y{y:.3f} E{e:.5f}\n" for x, y, e in lines[1:])
    x, y, e = (np.array([round(p[k], 3 if k < 2 else 5) for p in lines]) for k in range(3))
    return Run(text, x, y, e, feed)


PROFILE = PrinterProfile(name="generic-220")
SQUARE = [(10.0, 0.0, 0.4), (10.0, 10.0, 0.4), (0.0, 10.0, 0.4), (0.0, 0.0, 0.4)]


@pytest.mark.parametrize(
    "start",
    [
        "G28\nG21\nG90\nM83\nG92 E0\n",
        # Runs stand for absolute XY and relative E only: other modes are read as text.
        "G28\nG91\nM83\n",
        "G28\nG90\nM82\n",
        # The file's own marks: `with_m73` anchors its plan to them.
        "M73 P0 R1\nG28\nG90\nM83\n",
    ],
)
def test_runs_give_what_the_text_gives_or_the_text_is_read(start: str) -> None:
    parts: list[str | Run] = [start]
    for layer in range(4):
        parts += [f";LAYER:{layer}\nG1 Z{0.2 * (layer + 1):.3f} F600\nG0 X0 Y0 F9000\n"]
        parts += [_run(SQUARE, 1800.0), "M106 S255\n", "G4 P500\n"]
    parts.append("M107\n")
    text = "".join(p if isinstance(p, str) else p.text for p in parts)
    assert with_m73_parts(parts, PROFILE) == with_m73(text, PROFILE)
    plan = plan_parts(parts, PROFILE)
    if start.startswith("G28\nG21"):
        # Not merely the same lines after rounding: the same seconds at every command.
        assert plan is not None
        assert np.array_equal(plan.done_s, plan_text(text, PROFILE).done_s)
    else:
        assert plan is None
