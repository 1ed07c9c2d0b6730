"""Test helpers for the virtual Marlin: G-code generators whose moves are easy to check."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "assert_moves_once_in_order",
    "cube_gcode",
    "expected_moves",
    "heated_print_gcode",
    "numbered_moves_gcode",
    "write_gcode",
]


def cube_gcode(size: float = 20.0, layer: float = 0.2, spacing: float = 0.45) -> str:
    """A plausible slicer output for a solid cube: heat, home, two perimeters, zig-zag infill."""
    out = [
        "; generated test cube",
        "M140 S60",
        "M104 S210",
        "M190 S60",
        "M109 S210",
        "G28 ; home",
        "G90",
        "M82",
        "G92 E0",
    ]
    x0 = 100.0
    e = 0.0
    per_mm = 0.033
    z = 0.0
    layers = round(size / layer)
    for n in range(layers):
        z = round((n + 1) * layer, 3)
        out.append(f"G1 Z{z:.3f} F600")
        for inset in (0.0, spacing):
            a, b = x0 + inset, x0 + size - inset
            corners = [(a, a), (b, a), (b, b), (a, b), (a, a)]
            out.append(f"G0 X{corners[0][0]:.3f} Y{corners[0][1]:.3f} F9000")
            for cx, cy in corners[1:]:
                e += (b - a) * per_mm
                out.append(f"G1 X{cx:.3f} Y{cy:.3f} E{e:.5f} F2400")
        lo, hi = x0 + 2 * spacing, x0 + size - 2 * spacing
        y = lo
        flip = False
        while y <= hi:
            xa, xb = (hi, lo) if flip else (lo, hi)
            out.append(f"G0 X{xa:.3f} Y{y:.3f} F9000")
            e += (hi - lo) * per_mm
            out.append(f"G1 X{xb:.3f} Y{y:.3f} E{e:.5f} F3600")
            y += spacing
            flip = not flip
    out += ["M104 S0", "M140 S0", "M107", "G91", "G1 Z10 F600", "G90", "M84"]
    return "\n".join(out) + "\n"


def numbered_moves_gcode(count: int, *, feed: float = 6000.0, step: float = 0.5) -> str:
    """`count` distinct short moves: X walks back and forth, Y counts, so each is unique."""
    out = ["G90", "G92 X0 Y0 E0"]
    for i in range(count):
        x = (i % 100) * step
        out.append(f"G1 X{x:.2f} Y{i * 0.01:.2f} F{feed:.0f}")
    return "\n".join(out) + "\n"


def heated_print_gcode(
    layers: int = 6,
    moves_per_layer: int = 40,
    *,
    first_layer_c: float = 215.0,
    hotend_c: float = 205.0,
    bed_c: float = 60.0,
    raise_to_c: float | None = 210.0,
) -> str:
    """A print as slicers write it: heat the bed and the nozzle and wait for both, a hotter first
    layer, the printing temperature after it, optionally a waited-for raise half way (a second
    material zone), then heaters off."""
    out = [
        f"M140 S{bed_c:g}",
        f"M104 S{first_layer_c:g}",
        f"M190 S{bed_c:g}",
        f"M109 S{first_layer_c:g}",
        "G28",
        "G90",
        "M83",
    ]
    for layer in range(layers):
        if layer == 1:
            out.append(f"M104 S{hotend_c:g}")
        if raise_to_c is not None and layer == layers // 2 and layer > 1:
            out.append(f"M109 S{raise_to_c:g}")
        out.append(f"G1 Z{0.2 * (layer + 1):.2f} F600")
        for i in range(moves_per_layer):
            out.append(f"G1 X{100 + (i % 20):d} Y{100 + layer + i * 0.01:.2f} E0.05 F2400")
    out += ["M104 S0", "M140 S0", "G91", "G1 Z10 F600", "G90", "M84"]
    return "\n".join(out) + "\n"


def write_gcode(tmp: Path, text: str, name: str = "part.gcode") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def expected_moves(text: str) -> list[str]:
    """The G0/G1 commands of a G-code text, as the printer should execute them."""
    lines = [ln.split(";")[0].strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln.startswith(("G0 ", "G1 "))]


def assert_moves_once_in_order(moves: list, text: str) -> None:
    """The virtual printer's own log holds every move of `text` exactly once, in order."""
    numbers = [m.line for m in moves]
    assert all(n is not None for n in numbers), "a move ran without a line number"
    assert numbers == sorted(set(numbers)), "a line ran twice or out of order"
    assert [m.command for m in moves] == expected_moves(text)
