"""`printforge design "REQUEST" --out model.stl`: research and CAD only, no slicing or printing."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "requirement_lines"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "design",
        help="turn a sentence into an STL (research + CAD)",
        description="Design a part from words and write its mesh. Nothing is sliced or printed.",
    )
    p.add_argument("request", help='what to make, e.g. "a 20 mm calibration cube"')
    p.add_argument("--out", metavar="FILE", required=True, help="where to write the STL")
    p.add_argument("--provider", help="LLM provider order, e.g. openai,anthropic,offline")
    p.add_argument("--model", dest="llm_model", help="LLM model name (wins over config)")
    p.add_argument("--printer", help="check printability for this printer (default from config)")
    p.add_argument("--spec-out", metavar="FILE", help="also write the design spec as JSON")
    p.add_argument("--font", metavar="FILE", help="draw text with this TrueType/OpenType font")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument(
        "--accept-partial",
        action="store_true",
        help="build even when part of the request cannot be built (it is listed as left out);"
        " without it such a request stops with a question",
    )
    p.set_defaults(handler=_handle_design)


def _providers(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    return names or None


def _handle_design(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.models.request import PrintRequest
    from printforge.runtime.errors import InputError, NeedsInput

    settings = load_cli_settings(args)
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".stl":
        raise InputError(f"--out must name an .stl file (got {out.name!r})")
    if not out.parent.is_dir():
        raise InputError(f"--out: directory {out.parent} does not exist")
    printer = args.printer or settings.default_printer
    settings.printer(printer)  # unknown printer: ConfigError before any work
    try:
        request = PrintRequest(
            text=args.request,
            printer=printer,
            providers=_providers(args.provider),
            llm_model=args.llm_model,
            accept_partial=args.accept_partial,
            font=args.font,
        )
    except ValueError as err:
        from printforge.cli.errors import validation_message

        raise InputError(f"invalid request: {validation_message(err)}") from None
    try:
        spec_out = Path(args.spec_out).expanduser() if args.spec_out else None
        summary = asyncio.run(_design(settings, request, printer, out, spec_out))
    except NeedsInput as err:
        return _ask(err, args.json)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    return 0


def _ask(err: Any, as_json: bool) -> int:
    """The request needs an answer before anything is built: say the one question (exit 1)."""
    if as_json:
        print(
            json.dumps(
                {
                    "needs_input": True,
                    "question": err.question,
                    "requirements": err.requirements,
                    # The CLI's error contract: every failure carries {"code", "message"}.
                    "error": err.to_dict(),
                }
            )
        )
    else:
        print(f"printforge: {err.question}", file=sys.stderr)
        for line in requirement_lines(err.requirements):
            print(line, file=sys.stderr)
    return 1


def requirement_lines(requirements: list[dict[str, Any]]) -> list[str]:
    """One line per requirement: status, the request's words, and what became of them."""
    marks = {"built": "built", "assumed": "assumed", "not_built": "NOT BUILT"}
    out = []
    for r in requirements:
        where = f" -> {r['spec_path']}" if r.get("spec_path") else ""
        note = f": {r['note']}" if r.get("note") else ""
        out.append(f"  {marks.get(r['status'], r['status']):<9} {r['text']}{where}{note}")
    return out


async def _design(
    settings: Any, request: Any, printer: str, out: Path, spec_out: Path | None
) -> dict[str, Any]:
    """The pipeline's design span (research, CAD and their repair loop) for one request; the
    mesh, its picture and the spec are copied out before the job's scratch folder goes."""
    from printforge.models.job import SPANS, JobState
    from printforge.models.spec import DesignSpec
    from printforge.orchestrator.local import LocalPipeline, job_error

    async with LocalPipeline(settings, SPANS["design"]) as local:
        job = await local.run(await local.submit(request), target=printer)
        if job.state is not JobState.COMPLETED or job.mesh is None or job.spec is None:
            raise job_error(job)
        mesh = job.mesh
        spec = DesignSpec.model_validate_json(await asyncio.to_thread(job.spec.path.read_text))
        await asyncio.to_thread(shutil.copyfile, mesh.path, out)
        preview = None
        if mesh.preview_png is not None and mesh.preview_png.is_file():
            preview = out.with_suffix(".png")
            await asyncio.to_thread(shutil.copyfile, mesh.preview_png, preview)
        if spec_out:
            text = spec.model_dump_json(indent=2)
            await asyncio.to_thread(spec_out.write_text, text)
    summary = _summary(spec, mesh, out, preview, job.report.get("research", {}))
    summary["requirements"] = job.report.get("requirements", [])
    return summary


def _summary(
    spec: Any, mesh: Any, out: Path, preview: Path | None, research: dict[str, Any]
) -> dict[str, Any]:
    return {
        "stl": str(out),
        "preview": str(preview) if preview else None,
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "size_mm": [round(v, 3) for v in mesh.size_mm],
        "triangles": mesh.triangles,
        "watertight": mesh.watertight,
        "volume_mm3": round(mesh.volume_mm3, 2),
        "bodies": mesh.bodies,
        "research": research,
        "spec": spec.model_dump(mode="json"),
        # The CAD agent's printability report: overhangs, thin walls, the pose it chose.
        "printability": {k: v for k, v in mesh.report.items() if k != "files"},
    }


def _print_summary(s: dict[str, Any]) -> None:
    x, y, z = s["size_mm"]
    r = s["research"]
    lines = [
        f"{s['name']} -> {s['stl']}",
        f"  size {x:g} x {y:g} x {z:g} mm, {s['triangles']} triangles,"
        f" {'watertight' if s['watertight'] else 'NOT watertight'}, {s['bodies']} body(ies)",
        f"  designed by {r.get('provider')}/{r.get('model')} in {r.get('rounds')} round(s)"
        + (f", ${r['cost_usd']:.4f}" if r.get("cost_usd") else "")
        + (" (cached)" if r.get("cached") else ""),
    ]
    if s["description"]:
        lines.append(f"  {s['description']}")
    if s.get("requirements"):
        lines.append("  requirements:")
        lines += ["  " + line for line in requirement_lines(s["requirements"])]
    for reason in r.get("fallbacks") or []:
        lines.append(f"  fallback: {reason}")
    check = s.get("printability") or {}
    turned = check.get("orientation") or {}
    if turned.get("rotated"):
        lines.append(
            f"  turned onto its best side: overhang {turned['overhang_before_mm2']:.0f} ->"
            f" {turned['overhang_after_mm2']:.0f} mm²"
        )
    for warning in check.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    if s["preview"]:
        lines.append(f"  preview {s['preview']}")
    sys.stdout.write("\n".join(lines) + "\n")
