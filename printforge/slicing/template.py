"""Start and end G-code from printer profiles: placeholder substitution and heat detection."""

from __future__ import annotations

import re

from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import ConfigError

__all__ = ["heat_up", "heats", "render"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEAT = {
    "hotend": re.compile(r"^\s*M(104|109)\b", re.IGNORECASE | re.MULTILINE),
    "bed": re.compile(r"^\s*M(140|190)\b", re.IGNORECASE | re.MULTILINE),
}


def render(text: str, values: dict[str, float], profile: PrinterProfile, which: str) -> str:
    """`text` with every `{name}` replaced; ConfigError naming the profile for unknown ones."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        if name not in values:
            raise ConfigError(
                f"printer profile {profile.name!r}: {which} uses unknown placeholder {{{name}}}"
                f" (known: {', '.join('{' + k + '}' for k in sorted(values))})"
            )
        return f"{values[name]:g}"

    rendered = _PLACEHOLDER.sub(sub, text)
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
