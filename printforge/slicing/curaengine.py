"""CuraEngine's command line as an engine.

CuraEngine reads Cura's definition files for every setting's default but does not evaluate the
formulas in them, so every setting derived from another (line distances, widths, layer counts,
speeds per feature) is passed explicitly here.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from printforge.gcode.analysis import analyse_gcode
from printforge.gcode.timing import E_JERK, E_MAX_FEEDRATE, Z_JERK, Z_MAX_ACCEL
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import BadArtifact, ConfigError
from printforge.slicing.engine import Progress, SlicerEngine, SliceResult
from printforge.slicing.mesh import load_mesh, validate_model
from printforge.slicing.params import SliceParams, fit_adhesion
from printforge.slicing.process import run_engine
from printforge.slicing.template import heat_up, render
from printforge.slicing.writer import template_values

__all__ = ["CuraEngine", "cura_settings", "find_definitions"]

# Where Debian's `cura` package puts the definitions CuraEngine needs.
_CANDIDATES = ("/usr/share/cura/resources/definitions",)
_PATTERNS = {"rectilinear": "lines", "grid": "grid", "gyroid": "gyroid"}
_TIME = re.compile(r"Print time \(s\):\s*(\d+)")
_FILAMENT = re.compile(r"Filament \(mm\^3\):\s*([\d.]+)")


def find_definitions(configured: str | None) -> Path | None:
    """The folder holding fdmprinter.def.json, or None."""
    for candidate in ([configured] if configured else []) + list(_CANDIDATES):
        path = Path(candidate)
        if (path / "fdmprinter.def.json").is_file():
            return path
    try:
        listed = subprocess.run(
            ["dpkg", "-L", "cura"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listed.splitlines():
        if line.endswith("/definitions/fdmprinter.def.json"):
            return Path(line).parent
    return None


class CuraEngine(SlicerEngine):
    name = "curaengine"

    def available(self) -> bool:
        return (
            shutil.which(self.settings.curaengine_path) is not None
            and find_definitions(self.settings.cura_definitions_dir) is not None
        )

    async def slice(
        self,
        model: Path,
        out: Path,
        params: SliceParams,
        profile: PrinterProfile,
        material: MaterialProfile,
        progress: Progress | None = None,
    ) -> SliceResult:
        t0 = time.perf_counter()
        size = await asyncio.to_thread(validate_model, model, profile)
        params = fit_adhesion(params, size, profile)
        binary = shutil.which(self.settings.curaengine_path)
        definitions = await asyncio.to_thread(find_definitions, self.settings.cura_definitions_dir)
        if binary is None or definitions is None:
            raise ConfigError("CuraEngine or Cura's definition files (package `cura`) are missing")
        settings = cura_settings(params, profile, material, top_z=size[2])
        with tempfile.TemporaryDirectory(prefix="printforge-cura-") as tmp:
            printer = Path(tmp) / "printforge_printer.def.json"
            printer.write_text(
                json.dumps(
                    {
                        "version": 2,
                        "name": "printforge printer",
                        "inherits": "fdmprinter",
                        "metadata": {"machine_extruder_trains": {"0": "fdmextruder"}},
                        "overrides": {},
                    }
                )
            )
            tmp_out = Path(tmp) / "out.gcode"
            # CuraEngine centres in X and Y but slices the mesh where it stands in Z.
            placed = Path(tmp) / "model.stl"
            await asyncio.to_thread(_stand_on_bed, model, placed)
            flags = [a for k, v in settings.items() for a in ("-s", f"{k}={v}")]
            cmd = [
                binary,
                "slice",
                "-v",
                "-j",
                str(printer),
                *flags,
                "-e0",
                *flags,
                "-l",
                str(placed),
                "-o",
                str(tmp_out),
            ]
            env = {**os.environ, "CURA_ENGINE_SEARCH_PATH": f"{tmp}:{definitions}"}
            t1 = time.perf_counter()
            _, log, code = await run_engine(cmd, self.settings.slice_timeout_s, env)
            process_s = time.perf_counter() - t1
            if code != 0 or not tmp_out.is_file() or tmp_out.stat().st_size == 0:
                tail = "; ".join(ln for ln in log.splitlines()[-3:] if ln.strip())
                raise BadArtifact(
                    f"CuraEngine failed on {model.name} (exit {code}): {tail or 'no output'}"
                )
            shutil.move(tmp_out, out)
        t = _TIME.search(log)
        fil = _FILAMENT.search(log)
        estimate = float(t.group(1)) if t else None
        filament = round(float(fil.group(1)) / params.filament_area, 2) if fil else None
        await asyncio.to_thread(_fill_header, out, profile, estimate, filament)
        if progress is not None:
            progress(1.0, "sliced")
        return SliceResult(
            engine=self.name,
            gcode=out,
            wall_s=round(time.perf_counter() - t0, 3),
            process_s=round(process_s, 3),
            engine_estimate_s=estimate,
            engine_filament_mm=filament,
            settings=settings,
        )


def _fill_header(
    out: Path, profile: PrinterProfile, estimate_s: float | None, filament_mm: float | None
) -> None:
    """Put the real figures where CuraEngine's command line leaves placeholders.

    Cura's front end replaces `;TIME:6666`, `;Filament used: 0m` and the `;MINX:2.14748e+06`
    box once slicing ends; the bare engine does not, and Moonraker, OctoPrint plugins and
    printer screens read those lines as the print's time, filament and extent.
    """
    text = out.read_text()
    cut = text.find(";Generated with")
    if cut < 0 or cut > 2048:
        return
    head = text[:cut]
    if estimate_s is not None:
        head = re.sub(r"^;TIME:\d+$", f";TIME:{round(estimate_s)}", head, flags=re.M)
    if filament_mm is not None:
        head = re.sub(
            r"^;Filament used: .*$", f";Filament used: {filament_mm / 1000:.5f}m", head, flags=re.M
        )
    analysis = analyse_gcode(out, profile)
    if analysis.extrude_min is not None and analysis.extrude_max is not None:
        for lo, hi, axis in zip(analysis.extrude_min, analysis.extrude_max, "XYZ", strict=True):
            head = re.sub(rf"^;MIN{axis}:.*$", f";MIN{axis}:{lo:.3f}", head, flags=re.M)
            head = re.sub(rf"^;MAX{axis}:.*$", f";MAX{axis}:{hi:.3f}", head, flags=re.M)
    out.write_text(head + text[cut:])


def _stand_on_bed(model: Path, out: Path) -> None:
    mesh = load_mesh(model)
    lo, hi = mesh.bounds
    mesh.apply_translation([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    mesh.export_stl(out)


def cura_settings(
    p: SliceParams, profile: PrinterProfile, material: MaterialProfile, top_z: float
) -> dict[str, str]:
    """Every setting CuraEngine needs, derived values included, as strings."""
    values = template_values(profile, p, top_z)
    start = render(profile.start_gcode, values, profile, "start_gcode")
    end = render(profile.end_gcode, values, profile, "end_gcode")
    start = heat_up(start, p.first_layer_bed_temp, p.first_layer_hotend_temp) + start
    w = p.extrusion_width
    density = p.infill_percent
    line_distance = (
        0.0 if density <= 0 else w * 100 / density * (2 if p.infill_pattern == "grid" else 1)
    )
    s: dict[str, object] = {
        "machine_width": profile.bed_x,
        "machine_depth": profile.bed_y,
        "machine_height": profile.max_z,
        "machine_center_is_zero": str(profile.origin_center).lower(),
        "machine_heated_bed": "true",
        "machine_gcode_flavor": "RepRap (Marlin/Sprinter)",
        "machine_nozzle_size": p.nozzle_diameter,
        "machine_start_gcode": start,
        "machine_end_gcode": end,
        "machine_max_feedrate_x": profile.max_feedrate_xy,
        "machine_max_feedrate_y": profile.max_feedrate_xy,
        "machine_max_feedrate_z": profile.max_feedrate_z,
        "machine_max_feedrate_e": E_MAX_FEEDRATE,
        "machine_max_acceleration_x": profile.max_acceleration,
        "machine_max_acceleration_y": profile.max_acceleration,
        "machine_max_acceleration_z": min(profile.max_acceleration, Z_MAX_ACCEL),
        "machine_acceleration": profile.max_acceleration,
        "machine_max_jerk_xy": profile.max_jerk,
        "machine_max_jerk_z": Z_JERK,
        "machine_max_jerk_e": E_JERK,
        "material_diameter": p.filament_diameter,
        "material_print_temperature": p.hotend_temp,
        "material_print_temperature_layer_0": p.first_layer_hotend_temp,
        "material_initial_print_temperature": p.first_layer_hotend_temp,
        "material_final_print_temperature": p.hotend_temp,
        "material_bed_temperature": p.bed_temp,
        "material_bed_temperature_layer_0": p.first_layer_bed_temp,
        "material_flow": 100,
        "relative_extrusion": "true",
        "layer_height": p.layer_height,
        "layer_height_0": p.first_layer_height,
        "line_width": w,
        "wall_line_width": w,
        "wall_line_width_0": w,
        "wall_line_width_x": w,
        "skin_line_width": w,
        "infill_line_width": w,
        "skirt_brim_line_width": w,
        "support_line_width": w,
        "initial_layer_line_width_factor": round(100 * p.first_layer_width / w, 2),
        "wall_line_count": p.perimeters,
        "wall_thickness": round(p.perimeters * w, 3),
        "top_layers": p.top_layers,
        "bottom_layers": p.bottom_layers,
        "top_thickness": round(p.top_layers * p.layer_height, 3),
        "bottom_thickness": round(p.bottom_layers * p.layer_height, 3),
        "roofing_layer_count": 0,
        "infill_sparse_density": density,
        "infill_line_distance": round(line_distance, 4),
        "infill_pattern": _PATTERNS[p.infill_pattern],
        "top_bottom_pattern": "lines",
        "top_bottom_pattern_0": "lines",
        "speed_print": p.solid_infill_speed,
        "speed_wall": p.perimeter_speed,
        "speed_wall_0": p.external_perimeter_speed,
        "speed_wall_x": p.perimeter_speed,
        "speed_infill": p.infill_speed,
        "speed_topbottom": p.solid_infill_speed,
        "speed_roofing": p.solid_infill_speed,
        "speed_support": p.infill_speed,
        "speed_support_infill": p.infill_speed,
        "speed_travel": p.travel_speed,
        "speed_layer_0": p.first_layer_speed,
        "speed_print_layer_0": p.first_layer_speed,
        "speed_travel_layer_0": p.travel_speed,
        "skirt_brim_speed": p.first_layer_speed,
        "speed_z_hop": p.travel_speed_z,
        "acceleration_enabled": "false",
        "jerk_enabled": "false",
        "retraction_enable": str(p.retract_length > 0).lower(),
        "retraction_amount": p.retract_length,
        "retraction_speed": p.retract_speed,
        "retraction_retract_speed": p.retract_speed,
        "retraction_prime_speed": p.retract_speed,
        "retraction_min_travel": p.retract_min_travel,
        "retraction_hop_enabled": str(p.z_hop > 0).lower(),
        "retraction_hop": p.z_hop,
        "retraction_combing": "off",
        "cool_fan_enabled": str(p.fan_percent > 0).lower(),
        "cool_fan_speed": p.fan_percent,
        "cool_fan_speed_min": p.fan_percent,
        "cool_fan_speed_max": p.fan_percent,
        "cool_fan_speed_0": 0,
        "cool_fan_full_at_height": round(
            p.first_layer_height + (p.fan_from_layer - 2) * p.layer_height, 3
        ),
        "cool_fan_full_layer": p.fan_from_layer,
        "cool_min_layer_time": p.min_layer_time,
        "cool_min_speed": p.min_print_speed,
        "cool_lift_head": "true",
        "adhesion_type": "brim" if p.brim_width > 0 else ("skirt" if p.skirt_loops else "none"),
        "skirt_line_count": p.skirt_loops,
        "skirt_gap": p.skirt_distance,
        "brim_width": p.brim_width,
        "brim_line_count": max(1, round(p.brim_width / w)),
        "support_enable": str(p.supports).lower(),
        "support_angle": p.support_angle,
        "support_infill_rate": p.support_density,
        "support_line_distance": round(w * 100 / p.support_density, 4),
        "infill_wipe_dist": 0,
        "wall_0_wipe_dist": 0,
        "center_object": "true",
        "mesh_position_x": 0,
        "mesh_position_y": 0,
        "machine_use_extruder_offset_to_offset_coords": "false",
    }
    return {k: _fmt(v) for k, v in s.items()}


def _fmt(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
