"""The Printer agent: gate the G-code, then stream it to the reserved printer."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

from printforge.agents.base import Agent, AgentContext
from printforge.hardware.base import PrinterDriver
from printforge.models.artifact import GcodeArtifact
from printforge.runtime.errors import BadArtifact
from printforge.runtime.logsetup import bind_log_context
from printforge.runtime.workers import run_cpu
from printforge.settings import Settings

__all__ = ["HeatingSlots", "PrinterAgent", "Printers"]

log = logging.getLogger(__name__)


class Printers(Protocol):
    """The printers the agent streams to (the orchestrator's PrinterManager), by name."""

    def get(self, name: str) -> PrinterDriver: ...


class HeatingSlots(Protocol):
    """How many printers may heat at once (the orchestrator's HeatGate): streaming starts
    inside a slot, and the slot frees once the heaters reach their targets."""

    def heating_slot(self, driver: PrinterDriver) -> AbstractAsyncContextManager[None]: ...


class PrinterAgent(Agent[GcodeArtifact, dict[str, Any]]):
    name = "printer"

    def __init__(
        self,
        settings: Settings,
        printers: Printers,
        heat_gate: HeatingSlots,
        *,
        gate: bool = True,
        material_from: Literal["job", "printer"] = "job",
    ) -> None:
        """Args:
        gate: False only for `printforge print --no-gate`, where a person answers for the file.
        material_from: whose material limits the gate applies: the job's (a farm's jobs), or
            the driver's own, none when unknown (`print --port` knows no spool).
        """
        self.settings = settings
        self.printers = printers
        self.heat_gate = heat_gate
        self.gate = gate
        self.material_from = material_from

    async def run(self, inp: GcodeArtifact, ctx: AgentContext) -> dict[str, Any]:
        from printforge.gcode.gate import check_analysis, check_gcode

        if not inp.verify():
            raise BadArtifact(
                f"G-code {inp.path} is missing or changed since it was made (sha256 mismatch)"
            )
        bind_log_context(job_id=ctx.job_id, printer=ctx.printer)
        driver = self.printers.get(ctx.printer)
        # Whatever produced the file, nothing reaches a printer without passing the gate.
        if self.gate:
            material = ctx.material if self.material_from == "job" else driver.material
            known = ctx.analysed
            if known is not None and known.fits(inp.sha256, driver.profile):
                # Analysed for this very file and profile (by the slicer, or as it was
                # imported): only this printer's and material's limits are left to apply.
                analysis = check_analysis(known.analysis, inp.path.name, driver.profile, material)
            else:
                analysis = await run_cpu(check_gcode, inp.path, driver.profile, material)
            ctx.report["gate"] = {
                "passed": True,
                "printer": ctx.printer,
                "profile": driver.profile.name,
                "max_hotend_temp": analysis.max_hotend_temp,
                "max_bed_temp": analysis.max_bed_temp,
            }
        else:
            log.warning("printing %s on %s without the safety gate", inp.path.name, ctx.printer)
            ctx.report["gate"] = {"passed": None, "printer": ctx.printer, "skipped": True}
        ctx.progress(0.0, f"streaming to {ctx.printer}", {"printer": ctx.printer})
        last = None
        async with self.heat_gate.heating_slot(driver):
            async for progress in driver.stream(inp.path, job_id=ctx.job_id):
                last = progress
                ctx.progress(
                    progress.fraction,
                    None,
                    {
                        "printer": ctx.printer,
                        "lines_acked": progress.lines_acked,
                        "lines_total": progress.lines_total,
                        "bytes_acked": progress.bytes_acked,
                        "eta_s": progress.eta_s,
                        "eta_source": progress.eta_source,
                        "finish_at": progress.finish_at.isoformat()
                        if progress.finish_at is not None
                        else None,
                        "elapsed_s": round(progress.elapsed_s, 1),
                        "resends": progress.resends,
                        "layer": progress.layer,
                    },
                )
        summary: dict[str, Any] = {"printer": ctx.printer}
        if last is not None:
            summary.update(
                lines_acked=last.lines_acked,
                lines_total=last.lines_total,
                bytes_acked=last.bytes_acked,
                resends=last.resends,
                elapsed_s=round(last.elapsed_s, 3),
            )
        summary.update(driver.link_facts().model_dump())
        ctx.report["printer"] = summary
        return summary
