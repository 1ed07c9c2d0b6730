"""`printforge gcode-info FILE.gcode`: what a G-code file does, and whether the gate passes it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gcode-info",
        help="analyse a G-code file and run the safety gate on it",
        description="Print layers, bounds, filament, time estimate and temperatures of any"
        " G-code file, then check it against a printer's limits (exit 1 when unsafe).",
    )
    p.add_argument("gcode", help="G-code file")
    p.add_argument(
        "--printer",
        help="check against this configured printer or printer profile (default: default_printer)",
    )
    p.add_argument("--material", help="material for weight and temperature limits")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_handle_gcode_info)


def _handle_gcode_info(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.cli.slice import printer_for_cli
    from printforge.gcode.gate import inspect_gcode, join_problems
    from printforge.runtime.errors import BadArtifact

    settings = load_cli_settings(args)
    printer, profile, material_name = printer_for_cli(settings, args.printer)
    material = settings.material(args.material or material_name)
    path = Path(args.gcode).expanduser()
    # The gate's own verdict, from the same reading as the figures (one pass over the file).
    analysis, problems = inspect_gcode(path, profile, material)
    if analysis.lines == 0:
        raise BadArtifact(f"{path.name} contains no G-code commands")
    verdict = "unsafe" if problems else "safe"
    reason = join_problems(problems, path.name) if problems else None
    if args.json:
        data = analysis.model_dump(mode="json", exclude={"layer_heights", "farthest"})
        data.update(verdict=verdict, reason=reason, printer=printer)
        if reason is not None:
            # The CLI's error contract: a refusal carries {"code", "message"}.
            data["error"] = {"code": "unsafe_gcode", "message": reason}
        print(json.dumps(data))
        return 0 if reason is None else 1
    a = analysis
    rows = [
        ("file", f"{path} ({a.size_bytes / 1e6:.2f} MB)"),
        ("generator", a.generator or "unknown"),
        ("commands", f"{a.lines} ({a.moves} moves)"),
        ("layers", str(a.layers)),
        (
            "estimated time",
            _hms(a.estimated_time_s)
            + (f"  (file says {_hms(a.slicer_estimate_s)})" if a.slicer_estimate_s else ""),
        ),
        (
            "filament",
            f"{a.filament_mm:.0f} mm"
            + (f", {a.filament_g:.1f} g {material.name}" if a.filament_g is not None else ""),
        ),
        ("max temperatures", f"hotend {a.max_hotend_temp:g} °C, bed {a.max_bed_temp:g} °C"),
        ("part", _box(a.part_min, a.part_max, sized=True)),
        *(
            [("skirt/brim", _box(a.adhesion_min, a.adhesion_max, sized=True))]
            if a.adhesion_min is not None
            else []
        ),
        ("extruded", _box(a.extrude_min, a.extrude_max)),
        ("all moves", _box(a.move_min, a.move_max)),
    ]
    if a.config_commands:
        rows.append(("config commands", ", ".join(f.command for f in a.config_commands)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if reason is None:
        print(f"{'gate':<{width}}  safe for {printer} ({profile.name})")
        return 0
    print(f"{'gate':<{width}}  UNSAFE for {printer}: {reason}")
    return 1


def _box(
    lo: tuple[float, float, float] | None,
    hi: tuple[float, float, float] | None,
    *,
    sized: bool = False,
) -> str:
    if lo is None or hi is None:
        return "none"
    where = f"X {lo[0]:.2f}..{hi[0]:.2f}  Y {lo[1]:.2f}..{hi[1]:.2f}  Z {lo[2]:.2f}..{hi[2]:.2f} mm"
    if not sized:
        return where
    # The size first: that is what a person compares with what they asked for. It is the
    # nozzle's path (an outer wall's line is half inside it), and the height is from the bed.
    return f"{hi[0] - lo[0]:.2f} x {hi[1] - lo[1]:.2f} x {hi[2]:.2f} mm nozzle path  ({where})"


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"
