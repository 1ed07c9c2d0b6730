"""The slicing settings both engines get, and PrusaSlicer's ini for them.

The values come from the repository's own configuration (`config/default.toml [slicer]`, the
printer and material profiles), so a change there reaches both engines. Keys that
`config/default.toml` leaves out take the defaults docs/slicing.md states. Where the built-in
slicer has behaviour rather than a key, the PrusaSlicer setting that matches what its G-code shows
is chosen, each with the reason beside it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Matched", "load_matched", "prusaslicer_ini"]

# docs/slicing.md's defaults for [slicer] keys that config/default.toml does not spell out.
_DOC_DEFAULTS = {
    "extrusion_width_factor": 1.125,
    "first_layer_width_factor": 1.125,
    "infill_angle": 45.0,
    "bridge_speed": 25.0,
    "bridge_fan_percent": 100,
    "bridge_flow_ratio": 1.0,
    "retract_min_travel": 2.0,
    "min_layer_time": 0.0,
    "skirt_loops": 1,
    "skirt_distance": 3.0,
}


@dataclass(frozen=True)
class Matched:
    printer_name: str
    material_name: str
    printer: dict[str, object]
    material: dict[str, object]
    slicer: dict[str, object]
    pattern: str = "grid"
    infill: float = 20.0

    def get(self, key: str) -> float:
        return float(self.slicer[key])  # type: ignore[arg-type]

    @property
    def nozzle(self) -> float:
        return float(self.printer["nozzle_diameter"])  # type: ignore[arg-type]

    @property
    def line_width(self) -> float:
        return round(self.nozzle * self.get("extrusion_width_factor"), 4)

    @property
    def filament_diameter(self) -> float:
        return float(self.printer["filament_diameter"])  # type: ignore[arg-type]

    @property
    def bed_centre(self) -> tuple[float, float]:
        return float(self.printer["bed_x"]) / 2, float(self.printer["bed_y"]) / 2  # type: ignore[arg-type]

    def builtin_args(self) -> list[str]:
        """`printforge slice` flags naming every setting the command line can set."""
        return [
            "--printer",
            self.printer_name,
            "--material",
            self.material_name,
            "--layer-height",
            f"{self.get('layer_height')}",
            "--first-layer-height",
            f"{self.get('first_layer_height')}",
            "--perimeters",
            f"{int(self.get('perimeters'))}",
            "--infill",
            f"{self.infill:g}",
            "--pattern",
            self.pattern,
            "--no-supports",
            "--brim",
            "0",
        ]


def load_matched(repo: Path, printer: str, material: str) -> Matched:
    cfg = repo / "config"
    default = tomllib.loads((cfg / "default.toml").read_text())
    slicer = {**_DOC_DEFAULTS, **default.get("slicer", {})}
    prof = tomllib.loads((cfg / "printers" / f"{printer}.toml").read_text())
    mat = tomllib.loads((cfg / "materials" / f"{material}.toml").read_text())
    return Matched(printer, material, prof, mat, slicer)


def prusaslicer_ini(m: Matched) -> str:
    """PrusaSlicer 2.5 settings matching the built-in slicer's."""
    p, mat, s = m.printer, m.material, m.slicer
    w = m.line_width
    w1 = round(m.nozzle * m.get("first_layer_width_factor"), 4)
    fan = int(mat.get("fan_percent", 100))  # type: ignore[call-overload]
    bridge_fan = int(mat.get("bridge_fan_percent", s["bridge_fan_percent"]))  # type: ignore[call-overload]
    start = str(p.get("start_gcode", ""))
    if "{" in start or "[" in start:
        # Placeholders are the built-in's own; the start of the print is not measured.
        start = "G90\nM83\nG92 E0\n"
    lines = {
        "printer_technology": "FFF",
        "gcode_flavor": "marlin2",
        "use_relative_e_distances": 1,  # the built-in writes M83 too
        "layer_gcode": "G92 E0",  # PrusaSlicer refuses relative E without it
        "bed_shape": f"0x0,{p['bed_x']}x0,{p['bed_x']}x{p['bed_y']},0x{p['bed_y']}",
        "max_print_height": p["max_z"],
        "nozzle_diameter": m.nozzle,
        "filament_diameter": m.filament_diameter,
        "filament_density": mat.get("density_g_cm3", 1.24),
        "start_gcode": start.replace("\n", "\\n"),
        "end_gcode": "M104 S0\\nM140 S0\\nM107\\nM84\\n",
        "machine_limits_usage": "time_estimate_only",
        "machine_max_feedrate_x": p["max_feedrate_xy"],
        "machine_max_feedrate_y": p["max_feedrate_xy"],
        "machine_max_feedrate_z": p["max_feedrate_z"],
        "machine_max_acceleration_extruding": p["max_acceleration"],
        "machine_max_acceleration_travel": p["max_acceleration"],
        "machine_max_acceleration_x": p["max_acceleration"],
        "machine_max_acceleration_y": p["max_acceleration"],
        "machine_max_jerk_x": p["max_jerk"],
        "machine_max_jerk_y": p["max_jerk"],
        # layers and shells
        "layer_height": s["layer_height"],
        "first_layer_height": s["first_layer_height"],
        "perimeters": s["perimeters"],
        "top_solid_layers": s["top_layers"],
        "bottom_solid_layers": s["bottom_layers"],
        "top_solid_min_thickness": 0,
        "bottom_solid_min_thickness": 0,
        # PrusaSlicer 2.5's default generator (variable-width perimeters); the reference.
        "perimeter_generator": "arachne",
        # Solid skin under shallow slopes: what issue 13 asks of the built-in slicer, and what
        # Prusa's own printer profiles turn on.
        "ensure_vertical_shell_thickness": 1,
        "fill_density": f"{m.infill:g}%",
        "fill_pattern": m.pattern,
        "fill_angle": s["infill_angle"],
        # The built-in skin is a plain zigzag; monotonic ordering would flatter PrusaSlicer.
        "top_fill_pattern": "rectilinear",
        "bottom_fill_pattern": "rectilinear",
        "seam_position": "rear",  # the built-in puts seams at each loop's rearmost point
        "external_perimeters_first": 0,  # its G-code prints the outer loop last
        "extrusion_width": w,
        "perimeter_extrusion_width": w,
        "external_perimeter_extrusion_width": w,
        "infill_extrusion_width": w,
        "solid_infill_extrusion_width": w,
        "top_infill_extrusion_width": w,
        "first_layer_extrusion_width": w1,
        "support_material": 0,
        "skirts": s["skirt_loops"],
        "skirt_distance": s["skirt_distance"],
        "skirt_height": 1,
        "brim_width": 0,
        # temperatures
        "temperature": mat["hotend_temp"],
        "first_layer_temperature": mat["first_layer_hotend_temp"],
        "bed_temperature": mat["bed_temp"],
        "first_layer_bed_temperature": mat["first_layer_bed_temp"],
        # speeds (mm/s): the material profile's, as the built-in uses them
        "perimeter_speed": mat["perimeter_speed"],
        "external_perimeter_speed": mat["perimeter_speed"],
        "small_perimeter_speed": mat["perimeter_speed"],
        "infill_speed": mat["infill_speed"],
        "solid_infill_speed": mat["print_speed"],
        "top_solid_infill_speed": mat["print_speed"],
        "gap_fill_speed": mat["print_speed"],
        "first_layer_speed": mat["first_layer_speed"],
        "travel_speed": mat["travel_speed"],
        "bridge_speed": s["bridge_speed"],
        "bridge_flow_ratio": s["bridge_flow_ratio"],
        "bridge_fan_speed": bridge_fan,
        # cooling: constant fan from `fan_from_layer` (1-based: the built-in's G-code switches it
        # on at the start of that layer), no slow-down unless min_layer_time asks for it
        "cooling": 1,
        "fan_always_on": 1,
        "min_fan_speed": fan,
        "max_fan_speed": fan,
        "disable_fan_first_layers": max(int(mat.get("fan_from_layer", 1)) - 1, 0),  # type: ignore[call-overload]
        "fan_below_layer_time": 0,
        "slowdown_below_layer_time": s["min_layer_time"],
        # retraction: the material's length, speed and lift; short travels and travels inside
        # the walls do not retract; every layer change retracts (as the built-in's G-code does)
        "retract_length": mat["retract_length"],
        "retract_speed": mat["retract_speed"],
        "deretract_speed": mat["retract_speed"],
        "retract_lift": mat.get("z_hop", 0),
        "retract_before_travel": s["retract_min_travel"],
        "only_retract_when_crossing_perimeters": 1,
        "retract_layer_change": 1,
        "retract_restart_extra": 0,
        "wipe": 0,
        "avoid_crossing_perimeters": 0,
        "gcode_label_objects": 0,
    }
    return "".join(f"{k} = {v}\n" for k, v in lines.items())
