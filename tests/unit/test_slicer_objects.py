"""Object labels in the built-in slicer's G-code: every separate body of a plate is an object a
farm can cancel mid-print (M486 for Marlin and Prusa firmware, EXCLUDE_OBJECT for Klipper), and
a labelled file passes the gate and runs on the virtual printer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import shapely
import trimesh

from printforge.gcode.gate import check_gcode
from printforge.gcode.syntax import parse_line
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.settings import load_settings
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params
from printforge.slicing.prusaslicer import prusaslicer_ini

PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)
MARLIN = PrinterProfile(name="generic-220")
KLIPPER = PrinterProfile(name="voron", firmware="klipper")


def _plate(tmp_path: Path) -> Path:
    """Two 10 x 10 x 2 mm blocks 10 mm apart, in one STL."""
    a = trimesh.creation.box((10, 10, 2))
    b = trimesh.creation.box((10, 10, 2))
    b.apply_translation((20, 0, 0))
    path = tmp_path / "plate.stl"
    trimesh.util.concatenate([a, b]).export(path)
    return path


def _slice(tmp_path: Path, model: Path, profile: PrinterProfile) -> str:
    params = resolve_params(SlicerSettings(), profile, PLA)
    out = tmp_path / f"{profile.name}.gcode"
    slice_file(model, out, params, profile)
    return out.read_text()


def _extrusions_by_label(text: str, open_re: str, close_re: str) -> dict[str, list[float]]:
    """X of every extruding move under each open label; '' for moves under none. Fails on a
    label opened inside another or a layer change inside a label (the preamble, which only
    names the objects, is skipped)."""
    by: dict[str, list[float]] = {}
    current = ""
    for line in text[text.index(";LAYER:") :].splitlines():
        if (m := re.match(open_re, line)) is not None:
            assert current == "", f"{line} opened inside {current}"
            current = m.group(1)
        elif re.match(close_re, line):
            assert current != "", f"{line} closes nothing"
            current = ""
        elif line.startswith(";LAYER:"):
            assert current == "", f"layer change inside object {current}"
        elif line.startswith("G1 ") and " E" in line and " X" in line:
            x = float(re.search(r"X(-?[\d.]+)", line).group(1))  # type: ignore[union-attr]
            if float(line.split(" E")[1].split()[0]) > 0:
                by.setdefault(current, []).append(x)
    assert current == "", "a label is left open"
    return by


def test_each_body_of_a_plate_is_labelled_for_marlin(tmp_path: Path) -> None:
    text = _slice(tmp_path, _plate(tmp_path), MARLIN)
    assert "M486 T2\n" in text
    assert "M486 S0\nM486 Aplate_1\nM486 S1\nM486 Aplate_2\nM486 S-1\n" in text
    by = _extrusions_by_label(text, r"M486 S(\d+)$", r"M486 S-1$")
    # The left block (x 95..105 on the 220 bed) is object 0, the right one object 1; only the
    # skirt is outside both.
    assert max(by["0"]) < 110 < min(by["1"])
    assert set(by) == {"", "0", "1"}
    layers = text.count(";LAYER:")
    assert text.count("M486 S0\n") == layers + 1  # once per layer, and once to name it
    check_gcode(_write(tmp_path, text), MARLIN, PLA)


def test_klipper_objects_are_defined_with_their_outline_and_bracketed(tmp_path: Path) -> None:
    text = _slice(tmp_path, _plate(tmp_path), KLIPPER)
    assert "M486" not in text
    defines = re.findall(r"EXCLUDE_OBJECT_DEFINE NAME=(\S+) CENTER=(\S+) POLYGON=(\S+)", text)
    assert [d[0] for d in defines] == ["plate_1", "plate_2"]
    centre = [float(v) for v in defines[0][1].split(",")]
    assert centre == pytest.approx([100.0, 110.0], abs=0.01)
    outline = shapely.Polygon(eval(defines[1][2]))  # [[x,y],...]: a Python literal too
    assert outline.area == pytest.approx(100.0, abs=0.01)
    by = _extrusions_by_label(
        text, r"EXCLUDE_OBJECT_START NAME=(\S+)$", r"EXCLUDE_OBJECT_END NAME=\S+$"
    )
    assert max(by["plate_1"]) < 110 < min(by["plate_2"])
    check_gcode(_write(tmp_path, text), KLIPPER, PLA)


def test_one_body_is_one_object_named_after_the_model(tmp_path: Path) -> None:
    path = tmp_path / "Benchy copy.stl"
    trimesh.creation.box((10, 10, 1)).export(path)
    text = _slice(tmp_path, path, MARLIN)
    assert "M486 T1\nM486 S0\nM486 ABenchy_copy\n" in text


def test_a_long_file_name_still_fits_a_serial_line(tmp_path: Path) -> None:
    path = tmp_path / f"{'very long model name ' * 8}.stl"
    trimesh.creation.box((10, 10, 1)).export(path)
    names = re.findall(r"^M486 A.*$", _slice(tmp_path, path, MARLIN), re.M)
    assert names == ["M486 Avery_long_model_name_very_long_model_nam"]


def test_a_peg_inside_a_ring_is_one_object(tmp_path: Path) -> None:
    ring = trimesh.creation.annulus(r_min=8, r_max=10, height=2)
    peg = trimesh.creation.cylinder(radius=3, height=2)
    path = tmp_path / "ring.stl"
    trimesh.util.concatenate([ring, peg]).export(path)
    assert "M486 T1\n" in _slice(tmp_path, path, MARLIN)


@pytest.mark.parametrize(
    ("raw", "text"), [("M486 Aplate_1", "plate_1"), ("M486 A Benchy copy 2", "Benchy copy 2")]
)
def test_an_objects_name_is_free_text_to_the_gate(raw: str, text: str) -> None:
    line = parse_line(raw)
    assert line is not None and line.error is None
    assert (line.code, line.text, line.words) == ("M486", text, {})


@pytest.mark.asyncio
async def test_a_labelled_file_runs_on_the_virtual_printer(tmp_path: Path) -> None:
    text = _slice(tmp_path, _plate(tmp_path), MARLIN)
    path = _write(tmp_path, text)
    drv = VirtualDriver("v1", VirtualConfig.model_validate({"sim_speed": 5000.0}), MARLIN)
    async with drv:
        events = [p async for p in drv.stream(path, job_id="j1")]
        assert drv.machine is not None
        moves = len(drv.machine.moves)
    assert events[-1].lines_acked == events[-1].lines_total
    assert moves == sum(1 for ln in text.splitlines() if ln.startswith(("G0 ", "G1 ")))


def test_the_printer_profiles_say_their_firmware() -> None:
    profiles = load_settings().printer_profiles
    assert profiles["prusa-mk3s"].firmware == "prusa"
    assert profiles["ender3"].firmware == "marlin"


def test_prusaslicer_labels_its_objects() -> None:
    params = resolve_params(SlicerSettings(), MARLIN, PLA)
    assert "gcode_label_objects = 1\n" in prusaslicer_ini(params, MARLIN, PLA, 10.0)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labelled.gcode"
    path.write_text(text)
    return path
