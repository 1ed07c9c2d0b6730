"""The [slicer] config section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SlicerSettings"]


class SlicerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["builtin", "prusaslicer", "curaengine", "auto"] = "builtin"
    # `auto` takes the first of these that is installed, else builtin.
    preferred_engines: list[Literal["prusaslicer", "curaengine"]] = Field(
        default_factory=lambda: ["prusaslicer", "curaengine"]
    )
    prusaslicer_path: str = "prusa-slicer"
    curaengine_path: str = "CuraEngine"
    cura_definitions_dir: str | None = None
    max_concurrent: int = Field(1, ge=1, le=8)
    layer_height: float = Field(0.2, gt=0.02, le=1.0)
    first_layer_height: float = Field(0.2, gt=0.02, le=1.0)
    perimeters: int = Field(2, ge=1, le=20)
    top_layers: int = Field(4, ge=0, le=50)
    bottom_layers: int = Field(3, ge=0, le=50)
    infill_percent: float = Field(20.0, ge=0, le=100)
    infill_pattern: Literal["rectilinear", "grid", "gyroid"] = "rectilinear"
    skirt_loops: int = Field(1, ge=0, le=10)
    skirt_distance: float = Field(3.0, ge=0)
    brim_width: float = Field(0.0, ge=0, le=50)
    supports: bool = False
    extrusion_width_factor: float = Field(1.125, gt=0.5, le=3.0)
    first_layer_width_factor: float = Field(
        1.125, gt=0.5, le=3.0, description="first-layer extrusion width / nozzle diameter"
    )
    infill_angle: float = Field(45.0, ge=-90, le=90, description="degrees; alternates by layer")
    # PrusaSlicer's `infill_overlap` and its basis: a percentage of the distance from the inner
    # perimeter's centre line to the first fill line's (half a perimeter spacing plus half a
    # solid-fill spacing, so about one line spacing), 25 % by default.
    infill_overlap: float = Field(
        25.0,
        ge=0,
        le=100,
        description="% of a line spacing that skin and infill line ends reach into the perimeters",
    )
    retract_min_travel: float = Field(
        2.0, ge=0, description="travels shorter than this (mm) do not retract"
    )
    support_angle: float = Field(
        50.0, gt=0, lt=90, description="overhangs steeper than this from vertical get support"
    )
    support_density: float = Field(15.0, gt=0, le=100, description="percent")
    min_layer_time: float = Field(
        0.0, ge=0, description="slow a layer down to last at least this long, s (0 = off)"
    )
    min_print_speed: float = Field(
        10.0,
        gt=0,
        description="min_layer_time slows no line below this, mm/s; the rest is waited out aside",
    )
    # Bridges (solid areas with nothing under them) print slower, with more cooling and a round
    # strand: in free air the extrudate is a cylinder of the nozzle's diameter, whatever the
    # line width. PrusaSlicer's defaults: bridge_flow_ratio 1 (that cylinder), fan 100 %.
    bridge_speed: float = Field(25.0, gt=0, le=500, description="mm/s over a gap")
    bridge_fan_percent: int = Field(100, ge=0, le=100, description="fan while bridging")
    bridge_flow_ratio: float = Field(
        1.0, ge=0.5, le=2.0, description="x the volume of a round strand of nozzle diameter"
    )
    # Perimeters with more than half their width over air (the edge of a bridge, a steep
    # overhang) print slower and with the bridge fan, as PrusaSlicer's overhang perimeters do.
    overhang_speed: float = Field(
        25.0, gt=0, le=500, description="mm/s for perimeters over air; a material may set its own"
    )
    slice_timeout_s: float = Field(600.0, gt=0, description="external engines are killed after")
