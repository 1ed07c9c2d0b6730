"""`printforge slice MODEL.stl --out FILE.gcode`: slice a model, centred on the printer's bed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

    from printforge.models.printer import PrinterProfile
    from printforge.models.request import PrintRequest
    from printforge.models.view import JobView
    from printforge.settings import Settings

__all__ = ["printer_for_cli", "register"]


def printer_for_cli(settings: Settings, name: str | None) -> tuple[str, PrinterProfile, str]:
    """The printer's name, profile and material for `--printer NAME`.

    NAME is a configured printer; failing that, a printer profile (`ender3`, `prusa-mk3s`):
    slicing or checking a file for a machine should not need a config file first.
    """
    from printforge.runtime.errors import ConfigError

    name = name or settings.default_printer
    if name in settings.printers:
        entry = settings.printer(name)
        return name, settings.printer_profiles[entry.profile], entry.material
    if name in settings.printer_profiles:
        return name, settings.printer_profiles[name], settings.default_material
    raise ConfigError(
        f"unknown printer {name!r}: configured printers are {', '.join(sorted(settings.printers))}"
        f"; printer profiles are {', '.join(sorted(settings.printer_profiles))}"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "slice",
        help="slice an STL into checked G-code",
        description="Slice a model for a printer. The part is centred on the bed and the G-code"
        " passes the safety gate before it is kept.",
    )
    p.add_argument("model", help="STL file")
    p.add_argument("--out", metavar="FILE", required=True, help="where to write the G-code")
    p.add_argument("--engine", choices=["builtin", "prusaslicer", "curaengine", "auto"])
    p.add_argument(
        "--printer",
        help="a configured printer or a printer profile such as ender3 (default: default_printer)",
    )
    p.add_argument("--material", help="material name (default: the printer's)")
    p.add_argument("--layer-height", type=float, metavar="MM")
    p.add_argument("--first-layer-height", type=float, metavar="MM")
    p.add_argument("--perimeters", type=int, metavar="N")
    p.add_argument("--infill", type=float, metavar="PCT", help="sparse infill density, percent")
    p.add_argument("--pattern", choices=["rectilinear", "grid", "gyroid"], help="infill pattern")
    p.add_argument("--supports", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--brim", type=float, metavar="MM", help="brim width")
    p.add_argument("--png", metavar="FILE", help="also draw the layers into this PNG")
    p.add_argument(
        "--png-layers",
        metavar="LIST",
        help="layers to draw, e.g. 0,10,-1,all (default: first, middle, top, all stacked)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_handle_slice)


def _handle_slice(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError

    from printforge.cli import load_cli_settings
    from printforge.models.request import PrintRequest, SliceOverrides
    from printforge.runtime.errors import InputError

    settings = load_cli_settings(args)
    model = Path(args.model).expanduser()
    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        raise InputError(f"--out: directory {out.parent} does not exist")
    if out.exists() and model.exists() and out.samefile(model):
        raise InputError(
            f"--out {out} is the model itself; slicing would replace it with G-code."
            " Give a .gcode path"
        )
    printer, profile, material_name = printer_for_cli(settings, args.printer)
    material = settings.material(args.material or material_name)
    try:
        overrides = SliceOverrides(
            engine=args.engine,
            layer_height=args.layer_height,
            first_layer_height=args.first_layer_height,
            perimeters=args.perimeters,
            infill_percent=args.infill,
            infill_pattern=args.pattern,
            supports=args.supports,
            brim_width=args.brim,
        )
    except ValidationError as err:
        raise InputError(_setting_error(err)) from None
    # Checked before slicing, so a typo does not cost a whole slice.
    try:
        picks: list[int | None] | None = (
            [
                None if x.strip() == "all" else int(x)
                for x in args.png_layers.split(",")
                if x.strip()
            ]
            if args.png_layers
            else None
        )
    except ValueError:
        raise InputError(f"--png-layers: not a list of integers: {args.png_layers!r}") from None
    request = PrintRequest(model_path=model, material=args.material, slice=overrides, print=False)
    png = Path(args.png).expanduser() if args.png else None
    view, preview = asyncio.run(_slice(settings, request, printer, profile, out, png, picks))
    figures = view.slicer
    summary: dict[str, Any] = {
        "gcode": str(out),
        "engine": figures["engine"],
        "printer": printer,
        "material": material.name,
        "wall_s": figures["wall_s"],
        "layers": figures["layers"],
        "lines": figures["lines"],
        "estimated_time_s": figures["estimated_time_s"],
        "engine_estimate_s": figures["engine_estimate_s"],
        "filament_mm": figures["filament_mm"],
        "filament_g": figures["filament_g"],
        "bounds_min": figures["bounds_min"],
        "bounds_max": figures["bounds_max"],
        "preview_png": str(preview) if preview else None,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    engine = summary["engine"]
    print(
        f"{out}: {summary['layers']} layers, {summary['lines']} lines, sliced by {engine}"
        f" in {summary['wall_s']:.2f} s"
    )
    # An external engine writes its own estimate into the file, and that is the figure a
    # printer's screen or Moonraker shows; say so beside ours rather than leave two numbers.
    own = (
        f" ({engine} writes {_hms(summary['engine_estimate_s'])} in the file)"
        if summary["engine_estimate_s"] is not None
        else ""
    )
    print(
        f"  estimated {_hms(summary['estimated_time_s'])}{own}, filament"
        f" {summary['filament_mm']:.0f} mm ({summary['filament_g'] or 0:.1f} g {material.name})"
    )
    lo, hi = summary["bounds_min"], summary["bounds_max"]
    if lo and hi:
        print(
            f"  extrudes X {lo[0]:.1f}..{hi[0]:.1f}  Y {lo[1]:.1f}..{hi[1]:.1f}"
            f"  Z {lo[2]:.2f}..{hi[2]:.2f} mm on {printer} ({profile.name})"
        )
    if preview:
        print(f"  layers drawn to {preview}")
    return 0


async def _slice(
    settings: Settings,
    request: PrintRequest,
    printer: str,
    profile: PrinterProfile,
    out: Path,
    png: Path | None,
    picks: list[int | None] | None,
) -> tuple[JobView, Path | None]:
    """The pipeline's slice span for one model; the G-code (and pictures) are copied out of
    the job's scratch folder. A file the gate refuses is kept beside --out as `.unsafe`."""
    import asyncio
    import shutil

    from printforge.models.job import SPANS, JobState
    from printforge.models.view import JobView
    from printforge.orchestrator.local import LocalPipeline, job_error
    from printforge.runtime.errors import InputError

    async with LocalPipeline(settings, SPANS["slice"]) as local:
        job = await local.run(await local.submit(request), target=printer)
        made = local.job_dir(job) / "model.gcode"
        if job.state is not JobState.COMPLETED or job.gcode is None:
            error = job_error(job)
            if error.code == "unsafe_gcode" and made.is_file():
                unsafe = out.with_name(out.name + ".unsafe")
                await asyncio.to_thread(shutil.copyfile, made, unsafe)
            raise error
        await asyncio.to_thread(shutil.copyfile, job.gcode.path, out)
        view = JobView.of(job)
        if png is None:
            return view, None
        n = int(view.slicer["layers"])
        beyond = [i for i in picks or [] if i is not None and not -n <= i < n]
        if beyond:
            raise InputError(
                f"--png-layers: layer {beyond[0]} does not exist; {out.name} has {n} layers"
                f" (0 to {n - 1}, or -1 for the top); the G-code is kept"
            )
        if picks is None and job.gcode.preview_png is not None:
            # The slicer agent drew the default layers already.
            await asyncio.to_thread(shutil.copyfile, job.gcode.preview_png, png)
            return view, png
        from printforge.slicing.preview import render_layers

        return view, await asyncio.to_thread(render_layers, out, png, profile, picks)


# The flag a user typed for each SliceOverrides field.
_FLAGS = {
    "layer_height": "--layer-height",
    "first_layer_height": "--first-layer-height",
    "perimeters": "--perimeters",
    "infill_percent": "--infill",
    "infill_pattern": "--pattern",
    "brim_width": "--brim",
    "engine": "--engine",
    "supports": "--supports",
}


def _setting_error(err: ValidationError) -> str:
    """`--infill 150: must be at most 100`, not pydantic's report on a model's field."""
    parts = []
    for e in err.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        flag = _FLAGS.get(field, field)
        given = e.get("input")
        given = f"{given:g}" if isinstance(given, float) else given
        msg = str(e["msg"]).replace("Input should be", "must be").replace("Value error, ", "")
        parts.append(f"{flag} {given}: {msg}")
    return "; ".join(parts)


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"
