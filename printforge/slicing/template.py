"""Start and end G-code from printer profiles: placeholder substitution and heat detection."""

from __future__ import annotations

import re

from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import ConfigError

__all__ = ["PRUSA_NAMES", "heat_up", "heats", "render"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# PrusaSlicer's `[name]` in start G-code pasted from it (an identifier in brackets; never G-code).
_BRACKETED = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")
# PrusaSlicer's names for our placeholders, so its start G-code works as pasted; `{name[0]}`
# (the first extruder's value) is the same value.
PRUSA_NAMES = {
    "temperature": "hotend_temp",
    "first_layer_temperature": "first_layer_hotend_temp",
    "bed_temperature": "bed_temp",
    "first_layer_bed_temperature": "first_layer_bed_temp",
    "max_print_height": "max_z",
}
_INDEX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[0\]$")
_HEAT = {
    "hotend": re.compile(r"^\s*M(104|109)\b", re.IGNORECASE | re.MULTILINE),
    "bed": re.compile(r"^\s*M(140|190)\b", re.IGNORECASE | re.MULTILINE),
}


def render(text: str, values: dict[str, float], profile: PrinterProfile, which: str) -> str:
    """`text` with every `{name}` replaced; ConfigError naming the profile for unknown ones."""

    def value(written: str, name: str) -> str:
        indexed = _INDEX.match(name)
        key = indexed.group(1) if indexed else name
        key = PRUSA_NAMES.get(key, key)
        if key not in values:
            raise ConfigError(
                f"printer profile {profile.name!r}: {which} uses unknown placeholder {written}"
                f" (known: {', '.join('{' + k + '}' for k in sorted(values))}, and PrusaSlicer's"
                f" {', '.join('[' + k + ']' for k in PRUSA_NAMES)})"
            )
        return f"{values[key]:g}"

    def line(raw: str) -> str:
        # Comments are the user's prose: a `[note]` there is not a placeholder.
        code, sep, comment = raw.partition(";")
        code = _PLACEHOLDER.sub(lambda m: value(m.group(0), m.group(1).strip()), code)
        code = _BRACKETED.sub(lambda m: value(m.group(0), m.group(1)), code)
        return code + sep + comment

    rendered = "\n".join(line(raw) for raw in text.split("\n"))
    return rendered if rendered.endswith("\n") or not rendered else rendered + "\n"


def heats(gcode: str, heater: str = "any") -> bool:
    """True when the G-code sets that heater's temperature itself (comments ignored).

    Args:
        heater: "hotend", "bed" or "any".
    """
    stripped = "\n".join(line.split(";", 1)[0] for line in gcode.splitlines())
    names = ("hotend", "bed") if heater == "any" else (heater,)
    return any(_HEAT[n].search(stripped) for n in names)


def heat_up(start: str, bed: float, hotend: float) -> str:
    """The heat-up lines the start G-code lacks: set both, then wait for both."""
    need_bed = not heats(start, "bed")
    need_hot = not heats(start, "hotend")
    lines = []
    if need_bed:
        lines.append(f"M140 S{bed:g}")
    if need_hot:
        lines.append(f"M104 S{hotend:g}")
    if need_bed:
        lines.append(f"M190 S{bed:g}")
    if need_hot:
        lines.append(f"M109 S{hotend:g}")
    return "".join(line + "\n" for line in lines)
