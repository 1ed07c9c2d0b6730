"""The CAD agent: a design spec (or a user's mesh) becomes a checked, printable model in the job.

The heavy lifting lives in `printforge.geometry`; this adapter checks the spec before building,
runs the blocking work in a thread, writes the job's files and reports progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trimesh

from printforge.agents.base import Agent, AgentContext
from printforge.geometry import build_mesh, spec_problems
from printforge.geometry.checks import font_substitutions
from printforge.geometry.exports import write_3mf, write_scad, write_stl
from printforge.geometry.font import use_font
from printforge.geometry.importer import ImportRefused, import_mesh
from printforge.geometry.orient import orient
from printforge.geometry.outline_font import FontError
from printforge.geometry.preview import render_png
from printforge.geometry.printability import analyse
from printforge.geometry.verify import check_mesh
from printforge.models.artifact import MeshArtifact, file_sha256
from printforge.models.printability import Orientation, PrintabilityReport
from printforge.models.printer import PrinterProfile
from printforge.models.spec import DesignSpec
from printforge.runtime.errors import InputError
from printforge.runtime.workers import run_cpu
from printforge.settings import Settings

__all__ = ["CADAgent"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class CADAgent(Agent[DesignSpec | Path, MeshArtifact]):
    """Builds the spec with manifold3d (or imports a mesh), checks it, writes model.stl,
    model.3mf, model.scad (specs only) and preview.png into the job folder."""

    name = "cad"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, inp: DesignSpec | Path, ctx: AgentContext) -> MeshArtifact:
        # The request's font (`--font FILE`) draws every text of the part: the checks here,
        # and the build and the OpenSCAD export in a worker (`_in_font` carries it there).
        font = getattr(ctx.request, "font", None)
        font_path = Path(font) if font else None
        try:
            with use_font(font_path):
                return await self._run(inp, ctx, font_path)
        except FontError as err:
            raise InputError(f"--font: {err}") from err

    async def _run(
        self, inp: DesignSpec | Path, ctx: AgentContext, font: Path | None
    ) -> MeshArtifact:
        if isinstance(inp, DesignSpec):
            mesh, title = await self._design(inp, ctx, font)
            repairs: list[str] = []
        else:
            mesh, repairs, title = await self._import(Path(inp), ctx)
        ctx.progress(0.55, "checking printability", None)
        report = await run_cpu(_report, mesh, ctx.profile, repairs)
        if not report.ok:
            raise InputError("the model cannot be printed: " + "; ".join(report.problems))
        for warning in report.warnings:
            log.info("job %s: %s", ctx.job_id, warning)
        ctx.progress(0.75, "writing STL, 3MF and preview", None)
        files, sha, size = await run_cpu(
            _in_font, font, _write, mesh, inp, ctx.job_dir, title, report
        )
        data: dict[str, Any] = report.model_dump(mode="json")
        if isinstance(inp, DesignSpec):
            # A letter the font draws as another ("JOSÉ" built as "JOSE") is said, not hidden.
            data["warnings"] = [*font_substitutions(inp), *data.get("warnings", [])]
        data["files"] = sorted(p.name for p in files.values())
        ctx.report["cad"] = data
        ctx.progress(1.0, f"{report.triangles} triangles, {report.bodies} bodies", None)
        return MeshArtifact(
            path=files["stl"],
            sha256=sha,
            size_bytes=size,
            triangles=report.triangles,
            watertight=report.watertight,
            volume_mm3=report.volume_mm3,
            size_mm=report.size_mm,
            bodies=report.bodies,
            preview_png=files.get("png"),
            report=data,
        )

    async def _design(
        self, spec: DesignSpec, ctx: AgentContext, font: Path | None
    ) -> tuple[trimesh.Trimesh, str]:
        problems = spec_problems(spec, ctx.profile)
        if problems:
            raise InputError("the design cannot be printed: " + "; ".join(problems))
        ctx.progress(0.05, f"building {spec.family}", None)
        try:
            mesh = await run_cpu(_in_font, font, build_mesh, spec, ctx.profile)
        except (ValueError, RuntimeError) as err:  # empty results, manifold3d refusals
            raise InputError(f"the design cannot be built: {err}") from err
        if spec.requirements:
            # What research says it built is measured: a part that does not measure up is
            # refused with the reason, never delivered as if it were what was asked.
            ctx.progress(0.4, "measuring the part against the request", None)
            misses = await run_cpu(check_mesh, spec, mesh)
            ctx.report["requirements_check"] = {
                "measured": sum(
                    1
                    for r in spec.requirements
                    if r.status == "built" and r.role in ("size", "hole", "wall")
                ),
                "failed": misses,
            }
            if misses:
                raise InputError(
                    "the built part does not match the request: " + "; ".join(misses[:5])
                )
        return mesh, spec.name

    async def _import(
        self, path: Path, ctx: AgentContext
    ) -> tuple[trimesh.Trimesh, list[str], str]:
        ctx.progress(0.05, f"reading {path.name}", None)
        try:
            mesh, repairs = await run_cpu(import_mesh, path)
        except ImportRefused as err:
            raise InputError(str(err)) from err
        if repairs:
            ctx.progress(0.3, "repaired: " + "; ".join(repairs), None)
        ctx.progress(0.35, "choosing the print orientation", None)
        turned, record = await run_cpu(orient, mesh, ctx.profile)
        if record.rotated:
            lo, hi = turned.bounds
            turned.apply_translation((-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]))
        turned.metadata["orientation"] = [record.model_dump(mode="json")]
        turned.metadata["bodies"] = mesh.metadata.get("bodies", 1)
        return turned, repairs, path.stem


def _in_font(font: Path | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` drawing text with `font`: a context variable does not cross into a worker
    process, so the font's path does, and is put in place there."""
    with use_font(font):
        return fn(*args)


def _orientation(records: list[dict[str, Any]]) -> Orientation | None:
    if not records:
        return None
    parsed = [Orientation.model_validate(r) for r in records]
    turned = [o for o in parsed if o.rotated]
    return Orientation(
        rotated=bool(turned),
        matrix=turned[0].matrix if len(parsed) == 1 and turned else None,
        overhang_before_mm2=sum(o.overhang_before_mm2 for o in parsed),
        overhang_after_mm2=sum(o.overhang_after_mm2 for o in parsed),
        poses_considered=sum(o.poses_considered for o in parsed),
    )


def _report(
    mesh: trimesh.Trimesh, profile: PrinterProfile, repairs: list[str]
) -> PrintabilityReport:
    report = analyse(mesh, profile)
    report.orientation = _orientation(mesh.metadata.get("orientation") or [])
    report.repaired = repairs
    return report


def _write(
    mesh: trimesh.Trimesh,
    inp: DesignSpec | Path,
    job_dir: Path,
    title: str,
    report: PrintabilityReport,
) -> tuple[dict[str, Path], str, int]:
    """Every file of the job (blocking I/O, run in a thread); the STL's sha256 and size."""
    job_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "stl": write_stl(mesh, job_dir / "model.stl"),
        "3mf": write_3mf(mesh, job_dir / "model.3mf"),
    }
    if isinstance(inp, DesignSpec):
        files["scad"] = write_scad(inp, mesh, job_dir / "model.scad")
    x, y, z = report.size_mm
    label = f"{title}  |  {x:.1f} x {y:.1f} x {z:.1f} mm"
    if report.bodies > 1:
        label += f"  |  {report.bodies} bodies"
    try:
        files["png"] = render_png(mesh, job_dir / "preview.png", label=label)
    except (ValueError, MemoryError) as err:
        # A picture is a nicety; the model itself is already written and checked.
        log.warning("preview failed for %s: %s", job_dir.name, err)
    stl = files["stl"]
    return files, file_sha256(stl), stl.stat().st_size
