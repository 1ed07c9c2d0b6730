"""A `[printers.NAME]` entry: which driver, profile and material a configured printer uses.

It lives with the hardware rather than in the settings tree because drivers and the bus
discovery build entries themselves; `printforge.settings` composes it into `Settings`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.hardware.camera.config import CameraConfig
from printforge.vision.config import DetectionConfig

__all__ = ["PrinterEntry"]


class PrinterEntry(BaseModel):
    """`[printers.NAME]`: common keys here, the rest belongs to the driver's own Config."""

    model_config = ConfigDict(extra="allow")

    driver: str = "virtual"
    profile: str = "generic-220"
    material: str = "PLA"
    enabled: bool = True
    bed_clear_required: bool = Field(
        False, description="after a print, wait for a person to confirm the bed is clear"
    )
    camera: CameraConfig | None = Field(None, description="[printers.NAME.camera]")
    tags: list[str] = Field(
        default_factory=list, description='what jobs may ask for, e.g. ["0.6mm", "enclosed"]'
    )
    detection: DetectionConfig | None = Field(
        None, description="[printers.NAME.detection]: failure detection through the camera"
    )

    @property
    def driver_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
