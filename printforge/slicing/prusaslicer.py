"""PrusaSlicer's command line as an engine: our profiles become its ini, the job's slicing
choices go on the command line, and its estimates are read back from the G-code's comments."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from pathlib import Path

from printforge.gcode.analysis import parse_duration
from printforge.gcode.timing import E_JERK, E_MAX_FEEDRATE, Z_JERK, Z_MAX_ACCEL
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import BadArtifact, InputError
from printforge.slicing.engine import Progress, SlicerEngine, SliceResult
from printforge.slicing.mesh import bed_center, validate_model
from printforge.slicing.params import SliceParams, fit_adhesion
from printforge.slicing.process import run_engine
from printforge.slicing.template import render
from printforge.slicing.writer import template_values

__all__ = ["PrusaSlicerEngine", "prusaslicer_ini"]

_PROGRESS = re.compile(r"^(\d+) => (.+)$", re.MULTILINE)


class PrusaSlicerEngine(SlicerEngine):
    name = "prusaslicer"

    def available(self) -> bool:
        return shutil.which(self.settings.prusaslicer_path) is not None

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
        binary = shutil.which(self.settings.prusaslicer_path)
        if binary is None:
            raise InputError(f"PrusaSlicer ({self.settings.prusaslicer_path}) is not installed")
        with tempfile.TemporaryDirectory(prefix="printforge-ps-") as tmp:
            ini = Path(tmp) / "printforge.ini"
            ini.write_text(prusaslicer_ini(params, profile, material, top_z=size[2]))
            cx, cy = bed_center(profile)
            tmp_out = Path(tmp) / "out.gcode"
            cmd = [
                binary,
                "--export-gcode",
                "--load",
                str(ini),
                *_cli_options(params),
                "--center",
                f"{cx:g},{cy:g}",
                "--output",
                str(tmp_out),
                str(model),
            ]
            t1 = time.perf_counter()
            stdout, stderr, code = await run_engine(
                cmd, self.settings.slice_timeout_s, on_line=_progress_parser(progress)
            )
            process_s = time.perf_counter() - t1
            if code != 0 or not tmp_out.is_file():
                raise _failure(model, code, stdout + stderr)
            shutil.move(tmp_out, out)
        estimate, filament = await asyncio.to_thread(_read_estimates, out)
        return SliceResult(
            engine=self.name,
            gcode=out,
            wall_s=round(time.perf_counter() - t0, 3),
            process_s=round(process_s, 3),
            engine_estimate_s=estimate,
            engine_filament_mm=filament,
            settings=params.model_dump(),
        )


def _progress_parser(progress: Progress | None):  # type: ignore[no-untyped-def]
    """PrusaSlicer prints `30 => Making infill` lines; pass them on as they come."""
    if progress is None:
        return None
    # Its stages finish out of order (70 % infill before 30 %); report the furthest so far.
    furthest = [0.0]

    def on_line(line: str) -> None:
        m = _PROGRESS.match(line.strip())
        if m:
            furthest[0] = max(furthest[0], int(m.group(1)) / 100)
            progress(furthest[0], m.group(2).strip())

    return on_line


def _failure(model: Path, code: int, output: str) -> Exception:
    lines = [
        ln.strip()
        for ln in output.splitlines()
        if ln.strip() and "[trace]" not in ln and "[debug]" not in ln
    ]
    detail = "; ".join(lines[-3:]) or "no output"
    low = output.lower()
    if "empty" in low or "nothing to" in low or "no extrusions" in low:
        return InputError(f"PrusaSlicer found nothing to print in {model.name}: {detail}")
    if code in (134, -6) or "fit" in low or "outside" in low:
        return InputError(
            f"PrusaSlicer refused {model.name}: it does not fit the print volume"
            f" (exit {code}: {detail})"
        )
    return BadArtifact(f"PrusaSlicer failed on {model.name} (exit {code}): {detail}")


def _read_estimates(path: Path) -> tuple[float | None, float | None]:
    with path.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 65536))
        tail = f.read().decode("utf-8", "replace")
    t = re.search(r"^; estimated printing time \(normal mode\) = (.+)$", tail, re.MULTILINE)
    fil = re.search(r"^; filament used \[mm\] = ([\d.]+)", tail, re.MULTILINE)
    return (parse_duration(t.group(1)) if t else None, float(fil.group(1)) if fil else None)


def _cli_options(p: SliceParams) -> list[str]:
    """The job's slicing choices; everything else comes from the ini."""
    return [
        f"--layer-height={p.layer_height:g}",
        f"--first-layer-height={p.first_layer_height:g}",
        f"--perimeters={p.perimeters}",
        f"--fill-density={p.infill_percent:g}%",
        f"--fill-pattern={p.infill_pattern}",
        f"--top-solid-layers={p.top_layers}",
        f"--bottom-solid-layers={p.bottom_layers}",
        f"--skirts={p.skirt_loops}",
        f"--brim-width={p.brim_width:g}",
        f"--support-material={int(p.supports)}",
    ]


def prusaslicer_ini(
    p: SliceParams, profile: PrinterProfile, material: MaterialProfile, top_z: float
) -> str:
    """Printer, material and machine-limit settings in PrusaSlicer's ini format.

    Speeds, widths and limits are the ones the built-in slicer and our estimator use, so the
    two engines' output and estimates are comparable.
    """
    values = template_values(profile, p, top_z)
    start = render(profile.start_gcode, values, profile, "start_gcode")
    end = render(profile.end_gcode, values, profile, "end_gcode")
    if profile.origin_center:
        hx, hy = profile.bed_x / 2, profile.bed_y / 2
        shape = f"{-hx:g}x{-hy:g},{hx:g}x{-hy:g},{hx:g}x{hy:g},{-hx:g}x{hy:g}"
    else:
        bx, by = profile.bed_x, profile.bed_y
        shape = f"0x0,{bx:g}x0,{bx:g}x{by:g},0x{by:g}"
    fan = p.fan_percent
    w = p.extrusion_width
    a = profile.max_acceleration
    settings: dict[str, object] = {
        "gcode_flavor": "marlin2",
        # `; printing object` comments around each object's moves: what OctoPrint's Cancel
        # Objects plugin and Moonraker's object processing read. PrusaSlicer 2.5 has no M486
        # or EXCLUDE_OBJECT output of its own.
        "gcode_label_objects": 1,
        "bed_shape": shape,
        "max_print_height": profile.max_z,
        "nozzle_diameter": p.nozzle_diameter,
        "filament_diameter": p.filament_diameter,
        "filament_density": material.density_g_cm3,
        "use_relative_e_distances": 1,
        "layer_gcode": "G92 E0",
        "temperature": p.hotend_temp,
        "first_layer_temperature": p.first_layer_hotend_temp,
        "bed_temperature": p.bed_temp,
        "first_layer_bed_temperature": p.first_layer_bed_temp,
        "cooling": 1 if fan > 0 else 0,
        # Without it PrusaSlicer cools only layers faster than fan_below_layer_time (and
        # bridges): the material's fan would be off for nearly the whole print.
        "fan_always_on": 1 if fan > 0 else 0,
        "min_fan_speed": fan,
        "max_fan_speed": fan,
        "bridge_fan_speed": p.bridge_fan_percent,
        "disable_fan_first_layers": max(0, p.fan_from_layer - 1),
        "fan_below_layer_time": 0,
        "slowdown_below_layer_time": p.min_layer_time,
        "min_print_speed": p.min_print_speed,
        "extrusion_width": w,
        "perimeter_extrusion_width": w,
        "external_perimeter_extrusion_width": w,
        "infill_extrusion_width": w,
        "solid_infill_extrusion_width": w,
        "top_infill_extrusion_width": w,
        "support_material_extrusion_width": w,
        "first_layer_extrusion_width": p.first_layer_width,
        "perimeter_speed": p.perimeter_speed,
        "external_perimeter_speed": p.external_perimeter_speed,
        "small_perimeter_speed": p.perimeter_speed,
        "infill_speed": p.infill_speed,
        "solid_infill_speed": p.solid_infill_speed,
        "top_solid_infill_speed": p.solid_infill_speed,
        "gap_fill_speed": p.solid_infill_speed,
        "bridge_speed": p.bridge_speed,
        "bridge_flow_ratio": p.bridge_flow_ratio,
        "support_material_speed": p.infill_speed,
        "support_material_interface_speed": p.infill_speed,
        "first_layer_speed": p.first_layer_speed,
        "travel_speed": p.travel_speed,
        "travel_speed_z": p.travel_speed_z,
        "retract_length": p.retract_length,
        "retract_speed": p.retract_speed,
        "deretract_speed": 0,
        "retract_lift": p.z_hop,
        "retract_before_travel": p.retract_min_travel,
        "retract_layer_change": 1,
        "wipe": 0,
        "skirt_distance": p.skirt_distance,
        "skirt_height": 1,
        "fill_angle": p.infill_angle,
        "infill_overlap": f"{p.infill_overlap:g}%",
        "solid_infill_below_area": 0,
        "seam_position": "rear",
        "support_material_threshold": round(90 - p.support_angle),
        "support_material_spacing": round(w / (p.support_density / 100) - w, 3),
        "machine_limits_usage": "time_estimate_only",
        # Its time plan in the file as M73 P R lines, as on Prusa's own printers: the drivers'
        # ETA starts from it (gcode/timeplan.py).
        "remaining_times": 1,
        "machine_max_acceleration_extruding": a,
        "machine_max_acceleration_retracting": a,
        "machine_max_acceleration_travel": a,
        "machine_max_acceleration_x": a,
        "machine_max_acceleration_y": a,
        "machine_max_acceleration_z": min(a, Z_MAX_ACCEL),
        "machine_max_acceleration_e": a,
        "machine_max_feedrate_x": profile.max_feedrate_xy,
        "machine_max_feedrate_y": profile.max_feedrate_xy,
        "machine_max_feedrate_z": profile.max_feedrate_z,
        "machine_max_feedrate_e": E_MAX_FEEDRATE,
        "machine_max_jerk_x": profile.max_jerk,
        "machine_max_jerk_y": profile.max_jerk,
        "machine_max_jerk_z": Z_JERK,
        "machine_max_jerk_e": E_JERK,
        "machine_min_extruding_rate": 0,
        "machine_min_travel_rate": 0,
        "start_gcode": _escape(start),
        "end_gcode": _escape(end),
    }
    lines = ["# written by printforge for one slicing job"]
    lines += [f"{k} = {_fmt(v)}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def _fmt(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _escape(gcode: str) -> str:
    # PrusaSlicer's ini keeps multi-line values on one line with \n escapes; its own
    # placeholder syntax ([key], {key}) is gone once ours are substituted.
    return gcode.replace("\\", "\\\\").replace("\n", "\\n")
