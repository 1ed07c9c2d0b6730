"""Engine choice and the settings handed to PrusaSlicer and CuraEngine (no binaries needed)."""

from __future__ import annotations

import pytest

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import SliceOverrides
from printforge.runtime.errors import ConfigError, InputError
from printforge.slicing.config import SlicerSettings
from printforge.slicing.curaengine import cura_settings
from printforge.slicing.engine import pick_engine
from printforge.slicing.params import fit_adhesion, resolve_params
from printforge.slicing.prusaslicer import _cli_options, _failure, prusaslicer_ini
from printforge.slicing.template import render
from printforge.slicing.writer import template_values

PLA = MaterialProfile(
    name="PLA",
    hotend_temp=210,
    bed_temp=60,
    max_hotend_temp=235,
    perimeter_speed=45,
    infill_speed=400,
)
PRINTER = PrinterProfile(
    name="p",
    bed_x=200,
    bed_y=180,
    max_z=150,
    max_feedrate_xy=250,
    start_gcode="G28\nG1 X{bed_x} Z5\n",
    end_gcode="G1 Z{park_z}\nM84\n",
)


def test_params_merge_profiles_settings_and_overrides() -> None:
    p = resolve_params(
        SlicerSettings(perimeters=3),
        PRINTER,
        PLA,
        SliceOverrides(layer_height=0.28, infill_percent=35),
    )
    assert (p.layer_height, p.perimeters, p.infill_percent) == (0.28, 3, 35)
    assert p.infill_speed == 250  # clamped to the printer's maximum feedrate
    assert p.first_layer_hotend_temp == 210  # the material has no separate first-layer temp
    assert p.extrusion_width == pytest.approx(0.45)


def test_prusaslicer_ini_and_command_line() -> None:
    p = resolve_params(SlicerSettings(), PRINTER, PLA, SliceOverrides(infill_pattern="gyroid"))
    ini = dict(
        line.split(" = ", 1) for line in prusaslicer_ini(p, PRINTER, PLA, top_z=20).splitlines()[1:]
    )
    assert ini["bed_shape"] == "0x0,200x0,200x180,0x180"
    assert ini["start_gcode"] == "G28\\nG1 X200 Z5\\n"
    assert ini["end_gcode"] == "G1 Z30\\nM84\\n"
    assert ini["use_relative_e_distances"] == "1" and ini["layer_gcode"] == "G92 E0"
    assert ini["machine_limits_usage"] == "time_estimate_only"
    assert ini["perimeter_speed"] == "45"
    assert ini["fan_always_on"] == "1" and ini["max_fan_speed"] == ini["min_fan_speed"]
    assert "--fill-pattern=gyroid" in _cli_options(p)
    assert "--fill-density=20%" in _cli_options(p)
    centred = PRINTER.model_copy(update={"origin_center": True})
    ini2 = prusaslicer_ini(p, centred, PLA, top_z=20)
    assert "bed_shape = -100x-90,100x-90,100x90,-100x90" in ini2


def test_prusaslicer_failures_become_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "m.stl"
    err = _failure(model, 134, "terminate called after throwing\nObjects could not fit\n")
    assert isinstance(err, InputError) and "does not fit" in err.message
    assert isinstance(_failure(model, 1, "Nothing to print"), InputError)
    assert not isinstance(_failure(model, 1, "segfault-ish"), InputError)


def test_cura_settings_pass_derived_values() -> None:
    p = resolve_params(
        SlicerSettings(), PRINTER, PLA, SliceOverrides(infill_percent=25, infill_pattern="grid")
    )
    s = cura_settings(p, PRINTER, PLA, top_z=20)
    assert s["infill_line_distance"] == "3.6"  # 0.45 mm lines at 25 %, doubled for a grid
    assert s["infill_pattern"] == "grid"
    assert s["wall_thickness"] == "0.9" and s["wall_line_count"] == "2"
    assert s["top_thickness"] == "0.8" and s["bottom_thickness"] == "0.6"
    assert s["machine_start_gcode"].startswith("M140 S60\nM104 S210\nM190 S60\nM109 S210\nG28")
    assert s["relative_extrusion"] == "true"


def test_unknown_placeholder_fails_for_external_engines_too() -> None:
    bad = PRINTER.model_copy(update={"end_gcode": "G1 Z{lift}\n"})
    p = resolve_params(SlicerSettings(), bad, PLA)
    with pytest.raises(ConfigError, match=r"printer profile 'p'.*\{lift\}"):
        prusaslicer_ini(p, bad, PLA, top_z=10)


def test_pick_engine() -> None:
    missing = SlicerSettings(prusaslicer_path="no-such-prusa", curaengine_path="no-such-cura")
    assert pick_engine(None, missing).name == "builtin"
    assert pick_engine("auto", missing).name == "builtin"
    with pytest.raises(ConfigError, match="not installed"):
        pick_engine("curaengine", missing)
    with pytest.raises(InputError, match="unknown slicer engine"):
        pick_engine("slic3r", missing)


def test_layer_thicker_than_the_nozzle_is_refused() -> None:
    with pytest.raises(InputError, match=r"layer height 0\.5 mm is thicker than the 0\.4 mm"):
        resolve_params(SlicerSettings(), PRINTER, PLA, SliceOverrides(layer_height=0.5))
    with pytest.raises(InputError, match="first layer height"):
        resolve_params(SlicerSettings(), PRINTER, PLA, SliceOverrides(first_layer_height=0.6))


def test_prusaslicer_placeholders_in_pasted_start_gcode() -> None:
    # Start G-code pasted from PrusaSlicer: left as `M109 S[first_layer_temperature]` it reads
    # as M109 without a temperature, and no heat-up is added because the file "heats".
    pasted = PRINTER.model_copy(
        update={
            "start_gcode": "M104 S[first_layer_temperature] ; [note] stays\n"
            "M140 S{first_layer_bed_temperature[0]}\nG28\nM109 S[first_layer_temperature]\n"
            "G1 Z[max_print_height]\n"
        }
    )
    values = template_values(pasted, resolve_params(SlicerSettings(), pasted, PLA), 10)
    text = render(pasted.start_gcode, values, pasted, "start_gcode")
    assert text == "M104 S210 ; [note] stays\nM140 S60\nG28\nM109 S210\nG1 Z150\n"
    odd = PRINTER.model_copy(update={"start_gcode": "M104 S[extruder_temperature]\n"})
    with pytest.raises(ConfigError, match=r"'p': start_gcode uses unknown placeholder \[extrud"):
        render(odd.start_gcode, values, odd, "start_gcode")


def test_skirt_and_brim_are_fitted_to_the_bed_for_external_engines() -> None:
    p = resolve_params(SlicerSettings(skirt_loops=1, skirt_distance=3, brim_width=0), PRINTER, PLA)
    assert fit_adhesion(p, (100, 100, 5), PRINTER) is p  # room to spare: unchanged
    wide = fit_adhesion(p, (195, 20, 5), PRINTER)  # 2.5 mm a side on the 200 mm bed
    assert wide.skirt_loops == 0
    brim = p.model_copy(update={"brim_width": 8.0})
    fitted = fit_adhesion(brim, (190, 20, 5), PRINTER)
    assert 4 < fitted.brim_width < 5 and fitted.skirt_loops == 0
    assert fit_adhesion(brim, (199.5, 20, 5), PRINTER).brim_width == 0
