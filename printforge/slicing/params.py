"""One job's slicer settings, resolved from the profiles, the [slicer] section and overrides."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.request import SliceOverrides
from printforge.runtime.errors import InputError
from printforge.slicing.config import SlicerSettings

__all__ = ["SliceParams", "resolve_params"]


class SliceParams(BaseModel):
    """Every figure a slicer engine needs, already merged; speeds in mm/s, lengths in mm."""

    model_config = ConfigDict(frozen=True)

    layer_height: float
    first_layer_height: float
    perimeters: int
    top_layers: int
    bottom_layers: int
    infill_percent: float
    infill_pattern: Literal["rectilinear", "grid", "gyroid"]
    infill_angle: float
    infill_overlap: float = 25.0
    skirt_loops: int
    skirt_distance: float
    brim_width: float
    supports: bool
    support_angle: float
    support_density: float
    nozzle_diameter: float
    filament_diameter: float
    extrusion_width: float
    first_layer_width: float
    hotend_temp: float
    bed_temp: float
    first_layer_hotend_temp: float
    first_layer_bed_temp: float
    perimeter_speed: float
    external_perimeter_speed: float
    infill_speed: float
    solid_infill_speed: float
    first_layer_speed: float
    travel_speed: float
    travel_speed_z: float
    fan_percent: int
    fan_from_layer: int
    retract_length: float
    retract_speed: float
    retract_min_travel: float
    z_hop: float
    density_g_cm3: float
    min_layer_time: float
    min_print_speed: float
    bridge_speed: float
    bridge_fan_percent: int
    bridge_flow_ratio: float
    overhang_speed: float = 25.0

    @property
    def filament_area(self) -> float:
        return math.pi * (self.filament_diameter / 2) ** 2

    def spacing(self, width: float, height: float) -> float:
        """Centre distance of neighbouring lines: the flattened-oval model slicers share."""
        return width - height * (1 - math.pi / 4)

    @property
    def bridge_diameter(self) -> float:
        """A bridge strand hangs in the air as a cylinder: its volume is `bridge_flow_ratio`
        times that of one of nozzle diameter, and neighbouring strands just touch."""
        return self.nozzle_diameter * math.sqrt(self.bridge_flow_ratio)

    @property
    def bridge_e_per_mm(self) -> float:
        """Filament length per mm of bridge strand."""
        return math.pi * (self.bridge_diameter / 2) ** 2 / self.filament_area

    def e_per_mm(self, width: float, height: float) -> float:
        """Filament length per mm of a line `width` wide and `height` high."""
        area = (width - height) * height + math.pi * (height / 2) ** 2
        return area / self.filament_area

    def e_per_mm_array(self, widths: np.ndarray, height: float) -> np.ndarray:
        """`e_per_mm` for many widths at once (variable-width lines)."""
        area = (widths - height) * height + math.pi * (height / 2) ** 2
        return area / self.filament_area


def resolve_params(
    settings: SlicerSettings,
    profile: PrinterProfile,
    material: MaterialProfile,
    overrides: SliceOverrides | None = None,
) -> SliceParams:
    """Profiles and [slicer] defaults, with the job's overrides on top."""
    o = overrides or SliceOverrides()

    def pick(name: str):  # type: ignore[no-untyped-def]
        value = getattr(o, name, None)
        return getattr(settings, name) if value is None else value

    vmax = profile.max_feedrate_xy

    def speed(v: float) -> float:
        return min(v, vmax)

    nozzle = profile.nozzle_diameter
    for label in ("layer_height", "first_layer_height"):
        value = pick(label)
        if value > nozzle:
            raise InputError(
                f"{label.replace('_', ' ')} {value:g} mm is thicker than the {nozzle:g} mm nozzle"
                f" of printer profile {profile.name!r}; use at most {nozzle * 0.75:g} mm"
            )
    return SliceParams(
        layer_height=pick("layer_height"),
        first_layer_height=pick("first_layer_height"),
        perimeters=pick("perimeters"),
        top_layers=pick("top_layers"),
        bottom_layers=pick("bottom_layers"),
        infill_percent=pick("infill_percent"),
        infill_pattern=pick("infill_pattern"),
        infill_angle=settings.infill_angle,
        infill_overlap=settings.infill_overlap,
        skirt_loops=pick("skirt_loops"),
        skirt_distance=settings.skirt_distance,
        brim_width=pick("brim_width"),
        supports=pick("supports"),
        support_angle=settings.support_angle,
        support_density=settings.support_density,
        nozzle_diameter=nozzle,
        filament_diameter=profile.filament_diameter,
        extrusion_width=round(nozzle * settings.extrusion_width_factor, 4),
        first_layer_width=round(nozzle * settings.first_layer_width_factor, 4),
        hotend_temp=material.hotend_temp,
        bed_temp=material.bed_temp,
        first_layer_hotend_temp=material.first_layer_hotend_temp or material.hotend_temp,
        first_layer_bed_temp=(
            material.bed_temp
            if material.first_layer_bed_temp is None
            else material.first_layer_bed_temp
        ),
        perimeter_speed=speed(material.perimeter_speed),
        external_perimeter_speed=speed(material.perimeter_speed),
        infill_speed=speed(material.infill_speed),
        solid_infill_speed=speed(material.print_speed),
        first_layer_speed=speed(material.first_layer_speed),
        travel_speed=speed(material.travel_speed),
        travel_speed_z=profile.max_feedrate_z,
        fan_percent=material.fan_percent,
        fan_from_layer=material.fan_from_layer,
        retract_length=material.retract_length,
        retract_speed=material.retract_speed,
        retract_min_travel=settings.retract_min_travel,
        z_hop=material.z_hop,
        density_g_cm3=material.density_g_cm3,
        min_layer_time=settings.min_layer_time,
        min_print_speed=settings.min_print_speed,
        bridge_speed=speed(settings.bridge_speed),
        # A material that warps (ABS) keeps its cooling low even on bridges.
        bridge_fan_percent=(
            settings.bridge_fan_percent
            if material.bridge_fan_percent is None
            else material.bridge_fan_percent
        ),
        bridge_flow_ratio=settings.bridge_flow_ratio,
        # A material that sags or curls easily (PETG, TPU) may ask for slower overhangs.
        overhang_speed=speed(
            settings.overhang_speed if material.overhang_speed is None else material.overhang_speed
        ),
    )


def fit_adhesion(
    p: SliceParams, size: tuple[float, float, float], profile: PrinterProfile
) -> SliceParams:
    """`p` with the brim narrowed and the skirt left out where they would leave the bed.

    The built-in slicer cuts them to the bed line by line; PrusaSlicer and CuraEngine draw
    them where they fall, and the gate then refuses the whole file for a skirt.
    """
    w = p.first_layer_width
    # The part is centred, so the room on each side is half the bed left over.
    room = min(profile.bed_x - size[0], profile.bed_y - size[1]) / 2 - w / 2
    brim = min(p.brim_width, max(0.0, room))
    if brim < w:
        brim = 0.0
    loops = p.skirt_loops
    if loops and brim + p.skirt_distance + loops * w > room:
        loops = 0
    if (brim, loops) == (p.brim_width, p.skirt_loops):
        return p
    return p.model_copy(update={"brim_width": round(brim, 3), "skirt_loops": loops})


__all__ += ["fit_adhesion"]
