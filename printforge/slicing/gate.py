"""The G-code safety gate: no file reaches a printer that would leave its volume, overheat it
or rewrite its stored configuration. It runs on every job, whichever slicer made the file."""

from __future__ import annotations

from pathlib import Path

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import BadArtifact, UnsafeGcode
from printforge.slicing.analysis import CONFIG_COMMANDS, GcodeAnalysis, analyse_gcode

__all__ = ["TOLERANCE_MM", "GcodeAnalysis", "check_gcode", "volume_limits"]

# Rounding in a slicer's output (3 decimals) and float noise; anything beyond is a real excess.
TOLERANCE_MM = 0.05


def volume_limits(
    profile: PrinterProfile,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The machine volume in its own coordinates: from the origin, or centred on it."""
    if profile.origin_center:
        return (
            (-profile.bed_x / 2, -profile.bed_y / 2, 0.0),
            (profile.bed_x / 2, profile.bed_y / 2, profile.max_z),
        )
    return (0.0, 0.0, 0.0), (profile.bed_x, profile.bed_y, profile.max_z)


def check_gcode(
    path: Path, profile: PrinterProfile, material: MaterialProfile | None = None
) -> GcodeAnalysis:
    """The file's figures, or UnsafeGcode naming every limit the file breaks (the first line
    that breaks each), so one fix-and-retry round sees them all."""
    analysis = analyse_gcode(path, profile, material.density_g_cm3 if material else None)
    name = path.name
    if analysis.lines == 0:
        raise BadArtifact(f"{name} contains no G-code commands")
    problems: list[str] = []
    if analysis.units_inch is not None:
        problems.append(
            f"{name} line {analysis.units_inch.line}: `{analysis.units_inch.command}` switches"
            " to inches; printforge checks millimetre G-code only"
        )
    allowed = {c.strip().upper() for c in profile.allowed_config_commands}
    for finding in analysis.config_commands:
        code = finding.code or finding.command.split()[0].upper()
        if code not in allowed:
            problems.append(
                f"{name} line {finding.line}: `{finding.command}` {CONFIG_COMMANDS[code]};"
                f" printer profile {profile.name!r} does not allow {code}"
                " (add it to allowed_config_commands to permit it)"
            )
    hot_limit = profile.max_hotend_temp
    hot_owner = f"printer {profile.name!r}"
    if material is not None and material.max_hotend_temp < hot_limit:
        hot_limit, hot_owner = material.max_hotend_temp, f"material {material.name!r}"
    if analysis.hottest_hotend and analysis.max_hotend_temp > hot_limit:
        f = analysis.hottest_hotend
        problems.append(
            f"{name} line {f.line}: `{f.command}` sets the hotend to {f.value:g} °C, above the"
            f" {hot_owner} limit of {hot_limit:g} °C"
        )
    if analysis.hottest_bed and analysis.max_bed_temp > profile.max_bed_temp:
        f = analysis.hottest_bed
        problems.append(
            f"{name} line {f.line}: `{f.command}` sets the bed to {f.value:g} °C, above the"
            f" printer {profile.name!r} limit of {profile.max_bed_temp:g} °C"
        )
    lo, hi = volume_limits(profile)
    for k, axis in enumerate("XYZ"):
        low = analysis.farthest.get(f"{axis}min")
        if low is not None and low.value is not None and low.value < lo[k] - TOLERANCE_MM:
            problems.append(
                f"{name} line {low.line}: moves {axis} to {low.value:.3f} mm, outside the"
                f" printer {profile.name!r} volume ({axis} from {lo[k]:g} to {hi[k]:g} mm)"
            )
        high = analysis.farthest.get(f"{axis}max")
        if high is not None and high.value is not None and high.value > hi[k] + TOLERANCE_MM:
            problems.append(
                f"{name} line {high.line}: moves {axis} to {high.value:.3f} mm, outside the"
                f" printer {profile.name!r} volume ({axis} from {lo[k]:g} to {hi[k]:g} mm)"
            )
    if problems:
        first, rest = problems[0], [p.removeprefix(f"{name} ") for p in problems[1:]]
        raise UnsafeGcode("; also ".join([first, *rest]))
    return analysis
