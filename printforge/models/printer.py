"""Printer and material profiles, and the live status a printer reports."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MaterialProfile",
    "PrintProgress",
    "PrinterProfile",
    "PrinterState",
    "PrinterStatus",
    "Temperature",
]


class PrinterProfile(BaseModel):
    """What the machine is: its volume, nozzle, limits and the G-code it starts and ends with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    bed_x: float = Field(220.0, gt=0, description="printable width, mm")
    bed_y: float = Field(220.0, gt=0, description="printable depth, mm")
    max_z: float = Field(250.0, gt=0, description="printable height, mm")
    origin_center: bool = False
    nozzle_diameter: float = Field(0.4, gt=0, le=2.0)
    filament_diameter: float = Field(1.75, gt=0)
    max_hotend_temp: float = Field(280.0, gt=0, le=500)
    max_bed_temp: float = Field(110.0, ge=0, le=150)
    max_feedrate_xy: float = Field(300.0, gt=0, description="mm/s")
    max_feedrate_z: float = Field(12.0, gt=0, description="mm/s")
    max_acceleration: float = Field(1500.0, gt=0, description="mm/s^2")
    max_jerk: float = Field(10.0, ge=0, description="mm/s, junction speed change")
    firmware: Literal["marlin", "prusa", "klipper"] = Field(
        "marlin",
        description="the firmware that reads the G-code: chooses how objects are labelled"
        " (M486 for Marlin and Prusa, EXCLUDE_OBJECT for Klipper)",
    )
    start_gcode: str = "G28 ; home all axes\nG92 E0\n"
    end_gcode: str = "M104 S0\nM140 S0\nM107\nG91\nG1 Z10 F600\nG90\nM84\n"
    # Marlin's defaults (Configuration_adv.h): a 128-byte RX ring and BUFSIZE 4 command slots.
    rx_buffer_bytes: int = Field(128, ge=32)
    command_slots: int = Field(4, ge=1)
    planner_blocks: int = Field(16, ge=1)
    max_line_bytes: int = Field(96, ge=32)
    allowed_config_commands: list[str] = Field(
        default_factory=list,
        description="commands that change stored configuration (M500, M502, M92 ...) allowed here",
    )


class MaterialProfile(BaseModel):
    """How a filament prints: temperatures, speeds, cooling, retraction and density."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hotend_temp: float = Field(gt=0, le=500)
    bed_temp: float = Field(ge=0, le=150)
    first_layer_hotend_temp: float | None = Field(None, gt=0, le=500)
    first_layer_bed_temp: float | None = Field(None, ge=0, le=150)
    max_hotend_temp: float = Field(gt=0, le=500, description="refuse G-code hotter than this")
    print_speed: float = Field(50.0, gt=0, description="mm/s")
    perimeter_speed: float = Field(40.0, gt=0)
    infill_speed: float = Field(60.0, gt=0)
    first_layer_speed: float = Field(20.0, gt=0)
    travel_speed: float = Field(150.0, gt=0)
    fan_percent: int = Field(100, ge=0, le=100)
    fan_from_layer: int = Field(2, ge=1)
    bridge_fan_percent: int | None = Field(
        None, ge=0, le=100, description="fan while bridging; unset: [slicer] bridge_fan_percent"
    )
    overhang_speed: float | None = Field(
        None, gt=0, description="mm/s for perimeters over air; unset: [slicer] overhang_speed"
    )
    retract_length: float = Field(0.8, ge=0)
    retract_speed: float = Field(35.0, gt=0)
    z_hop: float = Field(0.2, ge=0)
    density_g_cm3: float = Field(1.24, gt=0)

    @model_validator(mode="after")
    def _temps_within_limit(self) -> MaterialProfile:
        for label, value in (
            ("hotend_temp", self.hotend_temp),
            ("first_layer_hotend_temp", self.first_layer_hotend_temp),
        ):
            if value is not None and value > self.max_hotend_temp:
                raise ValueError(f"{label} {value} exceeds max_hotend_temp {self.max_hotend_temp}")
        return self


class PrinterState(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    IDLE = "idle"
    HEATING = "heating"
    PRINTING = "printing"
    PAUSED = "paused"
    FINISHED = "finished"  # print done, waiting for the bed to be cleared
    CANCELLING = "cancelling"
    FAULTED = "faulted"


class Temperature(BaseModel):
    actual: float
    target: float = 0.0


class PrintProgress(BaseModel):
    """How far a stream has got. Lines and bytes count what the printer acknowledged."""

    lines_acked: int = 0
    lines_total: int = 0
    bytes_acked: int = 0
    bytes_total: int = 0
    layer: int | None = None
    layers_total: int | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = Field(None, description="seconds still to go")
    resends: int = 0
    # Where eta_s comes from: "m73" (the slicer's times in the file) or "estimate" (our
    # estimator on the file), either corrected by the observed pace; "printer" (the printer's
    # own figure); "linear" (elapsed time scaled by the share of the file done, while no plan
    # is known yet).
    eta_source: Literal["m73", "estimate", "printer", "linear"] | None = None
    finish_at: datetime | None = Field(None, description="when the print should end (UTC)")
    planned_s: float | None = Field(None, description="the plan's length of the whole file, s")
    pace: float | None = Field(
        None, description="seconds the print takes per planned second, as observed so far"
    )
    command_cost_s: float | None = Field(
        None,
        description="seconds each command adds beyond its planned time, as observed so far"
        " (dense stretches of short moves on a machine or link slower than its profile)",
    )

    @property
    def fraction(self) -> float:
        if self.bytes_total:
            return min(1.0, self.bytes_acked / self.bytes_total)
        if self.lines_total:
            return min(1.0, self.lines_acked / self.lines_total)
        return 0.0


class PlateObject(BaseModel):
    """One labelled object of the print running (slicer labels: M486 / EXCLUDE_OBJECT)."""

    id: int
    name: str
    cancelled: bool = False


class PrinterStatus(BaseModel):
    """A printer as everybody else sees it: the CLI, the dashboard, the farm bus."""

    id: str
    driver: str
    state: PrinterState = PrinterState.OFFLINE
    temperatures: dict[str, Temperature] = Field(default_factory=dict)
    progress: PrintProgress | None = None
    job_id: str | None = None
    material: str | None = None
    profile: str | None = None
    message: str | None = None
    objects: list[PlateObject] = Field(
        default_factory=list, description="the running print's labelled objects, when known"
    )
    simulated: bool = Field(
        False, description="a simulation (virtual printer or simulator), not hardware"
    )
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
