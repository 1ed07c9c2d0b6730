"""`[printers.NAME.detection]`: how sure the detector must be before it stops a print, and
what happens then. Pure configuration (read by the settings without loading numpy)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DetectionConfig"]


class DetectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="watch prints of this printer when it has a camera")
    threshold: float = Field(0.3, gt=0, le=10, description="a layer's score that fails it")
    persistence: int = Field(2, ge=1, le=20, description="failing layers in a row that stop")
    band_layers: int = Field(6, ge=2, le=100, description="layers of growth checked at the top")
    start_layer: int = Field(
        6, ge=1, description="first layer compared (earlier ones are too thin to see)"
    )
    action: Literal["pause", "notify"] = Field(
        "pause", description="pause the print (and recover), or only tell people"
    )
    max_retries: int = Field(1, ge=0, le=5, description="reprints as they were after a failure")
    resends_per_min: int = Field(
        30, ge=1, description="line resends a minute that make a resend storm"
    )
    stall_s: float = Field(
        600.0, gt=0, description="seconds without a line acknowledged while printing: stalled"
    )
