"""Toolpaths to G-code: travel with retraction and z-hop, fan and temperatures by layer.

Extrusion is relative (M83) so long prints accumulate no rounding in E; the gate and the
printers handle both modes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from printforge.gcode.timed_text import Run
from printforge.models.printer import PrinterProfile
from printforge.slicing.objects import PlateObject, end_label, label_preamble, start_label
from printforge.slicing.params import SliceParams
from printforge.slicing.template import heat_up, render
from printforge.slicing.toolpath import Layer

__all__ = ["template_values", "write_gcode", "write_parts"]

# Travel below this needs no move at all.
_TINY = 1e-3
# A layer shorter than min_layer_time even at the floor speed is waited out with the nozzle
# this far above the layer and this far beside the part, so it neither melts nor oozes onto it.
WAIT_LIFT_MM = 2.0
WAIT_ASIDE_MM = 10.0


def template_values(profile: PrinterProfile, params: SliceParams, top_z: float) -> dict[str, float]:
    """What start/end G-code placeholders may name."""
    return {
        "bed_x": profile.bed_x,
        "bed_y": profile.bed_y,
        "max_z": profile.max_z,
        "nozzle_diameter": profile.nozzle_diameter,
        "hotend_temp": params.hotend_temp,
        "bed_temp": params.bed_temp,
        "first_layer_hotend_temp": params.first_layer_hotend_temp,
        "first_layer_bed_temp": params.first_layer_bed_temp,
        "layer_height": params.layer_height,
        "first_layer_height": params.first_layer_height,
        # Where to lift after the print: 10 mm above it but never beyond the machine.
        "park_z": round(min(profile.max_z, top_z + 10.0), 3),
    }


def write_gcode(
    layers: list[Layer],
    params: SliceParams,
    profile: PrinterProfile,
    header: str = "",
    objects: list[PlateObject] | None = None,
) -> Iterator[str]:
    """The file's text in chunks (one per layer plus start and end). With `objects`, each
    object's paths are labelled for the profile's firmware (see `objects`)."""
    for part in write_parts(layers, params, profile, header, objects):
        yield part if isinstance(part, str) else part.text


def write_parts(
    layers: list[Layer],
    params: SliceParams,
    profile: PrinterProfile,
    header: str = "",
    objects: list[PlateObject] | None = None,
) -> Iterator[str | Run]:
    """`write_gcode`'s text as pieces, the extrusion runs as `Run`s that carry their numbers."""
    top_z = layers[-1].z if layers else 0.0
    values = template_values(profile, params, top_z)
    start = render(profile.start_gcode, values, profile, "start_gcode")
    end = render(profile.end_gcode, values, profile, "end_gcode")
    out = [header, heat_up(start, params.first_layer_bed_temp, params.first_layer_hotend_temp)]
    out += [start, "G21\nG90\nM83\nG92 E0\nM107\n"]
    out.append(label_preamble(objects or [], profile.firmware))
    yield "".join(out)
    w = _Writer(params, profile, objects)
    for layer in layers:
        yield from w.layer(layer)
    yield w.finish() + end


def _run(xs: list[float], ys: list[float], es: list[float], f: float) -> Run:
    """One path's extruding moves: their text and the values it states (`gcode.timed_text`
    times them without parsing them back). `round(v, 3)` is the double `:.3f` writes."""
    x = [round(v, 3) for v in xs]
    y = [round(v, 3) for v in ys]
    e = [round(v, 5) for v in es]
    lines = [f"G1 X{x[0]:.3f} Y{y[0]:.3f} E{e[0]:.5f} F{f:.0f}\n"]
    lines += [
        f"G1 X{a:.3f} Y{b:.3f} E{c:.5f}\n" for a, b, c in zip(x[1:], y[1:], e[1:], strict=True)
    ]
    return Run("".join(lines), np.array(x), np.array(y), np.array(e), float(round(f)))


class _Writer:
    def __init__(
        self, p: SliceParams, profile: PrinterProfile, objects: list[PlateObject] | None = None
    ) -> None:
        self.p = p
        self.firmware = profile.firmware
        self.objects = objects or []
        self.obj = -1  # the object whose label is open
        self.max_z = profile.max_z
        x0, y0 = (-profile.bed_x / 2, -profile.bed_y / 2) if profile.origin_center else (0, 0)
        self.bed = (x0, y0, x0 + profile.bed_x, y0 + profile.bed_y)
        self.x = math.nan
        self.y = math.nan
        self.z = math.nan
        self.f = -1.0
        self.retracted = False
        self.fan = 0  # M107 in the preamble
        self.speeds = {
            "bridge": p.bridge_speed,
            "overhang": p.overhang_speed,
            "external": p.external_perimeter_speed,
            "perimeter": p.perimeter_speed,
            "infill": p.infill_speed,
            "solid": p.solid_infill_speed,
            "gap": p.solid_infill_speed,
            "top": p.solid_infill_speed,
            "support": p.infill_speed,
            "skirt": p.first_layer_speed,
            "brim": p.first_layer_speed,
        }

    def layer(self, layer: Layer) -> list[str | Run]:
        p = self.p
        out: list[str | Run] = [f";LAYER:{layer.index}\n;Z:{layer.z:.3f}\n"]
        if layer.index == 1:
            if p.hotend_temp != p.first_layer_hotend_temp:
                out.append(f"M104 S{p.hotend_temp:g}\n")
            if p.bed_temp != p.first_layer_bed_temp:
                out.append(f"M140 S{p.bed_temp:g}\n")
        layer_fan = round(255 * p.fan_percent / 100) if layer.index >= p.fan_from_layer - 1 else 0
        self._fan(out, layer_fan)
        self._retract(out)
        self.z = layer.z
        out.append(f"G1 Z{layer.z:.3f} F{p.travel_speed_z * 60:.0f}\n")
        e_layer = p.e_per_mm(layer.width, layer.height)
        scale, wait = self._slowdown(layer) if p.min_layer_time > 0 else (1.0, 0.0)
        floor = p.min_print_speed
        bridge_fan = round(255 * p.bridge_fan_percent / 100)
        role = ""
        for path in layer.paths:
            pts = path.points
            # Before the fan and the travel: a cancelled object's travel to it is skipped too.
            self._label(out, path.obj)
            if path.role != role:
                role = path.role
                out.append(f";TYPE:{role}\n")
            # Bridges: a round strand at their own speed and fan, never slowed for layer time
            # (a slower strand over air sags more). The fan changes before the travel so it has
            # spun up by the first strand. Overhang perimeters keep their line's flow but
            # share the bridges' fan and their exemption from the layer-time slowdown.
            bridge = role == "bridge"
            air = bridge or role == "overhang"
            self._fan(out, bridge_fan if air else layer_fan)
            self._travel(out, float(pts[0, 0]), float(pts[0, 1]), path.travel_inside)
            # Whatever the travel did (none at all when this path starts where the last one
            # ended, as a layer's first loop often does after the layer change retracted),
            # the filament is primed before the first extruding move.
            self._unretract(out)
            e_mm = p.bridge_e_per_mm if bridge else e_layer
            speed = self._speed(layer, role)
            if not air and scale < 1.0:
                # Slowed for layer time, but never below the floor (nor sped up to it).
                speed = max(min(speed, floor), speed * scale)
            f = speed * 60
            seg = np.hypot(*np.diff(pts, axis=0).T)
            if path.widths is None:
                e = seg * e_mm
            else:
                # Variable width (gap fill): each segment's flow from its own width.
                w = (path.widths[1:] + path.widths[:-1]) / 2
                e = seg * p.e_per_mm_array(w, layer.height)
            out.append(_run(pts[1:, 0].tolist(), pts[1:, 1].tolist(), e.tolist(), f))
            self.x, self.y = float(pts[-1, 0]), float(pts[-1, 1])
            self.f = f
        # Every object's part of a layer is closed within it: the layer change and the wait
        # belong to no object.
        self._label(out, -1)
        if wait > 0 and layer.paths:
            self._wait_aside(out, layer, wait)
        return out

    def _label(self, out: list[str | Run], obj: int) -> None:
        """Close the open object's label and open `obj`'s (-1: none), if they differ."""
        if obj == self.obj or not self.objects:
            return
        if self.obj >= 0:
            out.append(end_label(self.objects[self.obj], self.firmware))
        if obj >= 0:
            out.append(start_label(self.objects[obj], self.firmware))
        self.obj = obj

    def _speed(self, layer: Layer, role: str) -> float:
        return self.p.first_layer_speed if layer.index == 0 else self.speeds[role]

    def _slowdown(self, layer: Layer) -> tuple[float, float]:
        """(speed factor, seconds still to wait) that make the layer last min_layer_time.

        Every line slows by the same factor, but none below `min_print_speed`: a line
        crawling at a few mm/s sits on hot plastic and blobs. Bridges keep their speed (a
        slower strand over air sags more). Time the floor cannot make up is waited out aside.
        """
        target = self.p.min_layer_time
        floor = self.p.min_print_speed
        fixed = 0.0
        lengths: dict[float, float] = {}
        for path in layer.paths:
            length = float(np.sum(np.hypot(*np.diff(path.points, axis=0).T)))
            speed = self._speed(layer, path.role)
            if path.role in ("bridge", "overhang"):
                fixed += length / speed
            else:
                lengths[speed] = lengths.get(speed, 0.0) + length

        def duration(k: float) -> float:
            return fixed + sum(n / max(min(v, floor), v * k) for v, n in lengths.items())

        if not lengths or duration(1.0) >= target:
            return 1.0, 0.0
        slowest = duration(0.0)
        if slowest <= target:
            return 0.0, target - slowest
        lo, hi = 0.0, 1.0  # duration falls as k rises
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if duration(mid) > target else (lo, mid)
        return hi, 0.0

    def _wait_aside(self, out: list[str | Run], layer: Layer, seconds: float) -> None:
        """Lift off the layer, move beside the part and dwell: the layer below cools while
        the nozzle neither presses on it nor oozes onto it."""
        p = self.p
        self._retract(out)
        lift = min(self.z + WAIT_LIFT_MM, self.max_z)
        if lift > self.z:
            out.append(f"G1 Z{lift:.3f} F{p.travel_speed_z * 60:.0f}\n")
        pts = np.vstack([path.points for path in layer.paths])
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        bx0, by0, bx1, by1 = self.bed
        y = float(min(max((y0 + y1) / 2, by0), by1))
        x = math.nan
        if x1 + WAIT_ASIDE_MM <= bx1:
            x = float(x1 + WAIT_ASIDE_MM)
        elif x0 - WAIT_ASIDE_MM >= bx0:
            x = float(x0 - WAIT_ASIDE_MM)
        if not math.isnan(x):
            out.append(f"G0 X{x:.3f} Y{y:.3f} F{p.travel_speed * 60:.0f}\n")
            self.x, self.y = x, y
        out.append(f"G4 P{round(seconds * 1000)}\n")

    def _fan(self, out: list[str | Run], value: int) -> None:
        """Set the fan (0-255) if it is not already there."""
        if value != self.fan:
            out.append(f"M106 S{value}\n" if value > 0 else "M107\n")
            self.fan = value

    def _travel(self, out: list[str | Run], x: float, y: float, inside: bool = False) -> None:
        p = self.p
        dist = math.hypot(x - self.x, y - self.y) if not math.isnan(self.x) else math.inf
        if dist < _TINY:
            return
        ft = p.travel_speed * 60
        if dist > p.retract_min_travel and not inside:
            self._retract(out)
            # Never hop above the machine's reach (a part printed to its full height).
            hop = min(p.z_hop, max(0.0, self.max_z - self.z))
            if hop > 0:
                out.append(f"G1 Z{self.z + hop:.3f} F{p.travel_speed_z * 60:.0f}\n")
            out.append(f"G0 X{x:.3f} Y{y:.3f} F{ft:.0f}\n")
            if hop > 0:
                out.append(f"G1 Z{self.z:.3f} F{p.travel_speed_z * 60:.0f}\n")
        else:
            out.append(f"G0 X{x:.3f} Y{y:.3f} F{ft:.0f}\n")
        self.f = ft
        self.x, self.y = x, y

    # `retracted` is the one record of the filament's state: `_retract` and `_unretract` are
    # its only writers, travel only ever retracts, and every path primes before extruding.
    def _retract(self, out: list[str | Run]) -> None:
        p = self.p
        if not self.retracted and p.retract_length > 0:
            out.append(f"G1 E{-p.retract_length:.5f} F{p.retract_speed * 60:.0f}\n")
            self.retracted = True

    def _unretract(self, out: list[str | Run]) -> None:
        p = self.p
        if self.retracted:
            out.append(f"G1 E{p.retract_length:.5f} F{p.retract_speed * 60:.0f}\n")
            self.retracted = False

    def finish(self) -> str:
        out: list[str | Run] = []
        self._retract(out)
        out.append("M107\n")
        return "".join(p for p in out if isinstance(p, str))  # retraction and fan: text only
