"""What the CAD stage found out about a mesh: can it print, and what should change if not."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["Orientation", "PrintabilityReport"]


class Orientation(BaseModel):
    """The resting pose chosen for printing and what it gained."""

    rotated: bool = Field(False, description="whether the mesh was turned from its design pose")
    matrix: list[list[float]] | None = Field(None, description="4x4 transform applied, if any")
    overhang_before_mm2: float = Field(0.0, ge=0)
    overhang_after_mm2: float = Field(0.0, ge=0)
    poses_considered: int = Field(0, ge=0)


class PrintabilityReport(BaseModel):
    """Hard problems make `ok` false (the job stops); warnings travel with the job."""

    ok: bool = Field(description="true when nothing stops this mesh from printing")
    problems: list[str] = Field(default_factory=list, description="hard failures, readable")
    warnings: list[str] = Field(default_factory=list, description="worth a look, not fatal")
    watertight: bool = False
    manifold: bool = Field(False, description="every edge shared by exactly two faces")
    bodies: int = Field(1, ge=0)
    triangles: int = Field(0, ge=0)
    volume_mm3: float = 0.0
    area_mm2: float = 0.0
    size_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fits_bed: bool = True
    min_wall_mm: float | None = Field(None, description="thinnest wall found, sampled")
    overhang_area_mm2: float = Field(0.0, ge=0, description="downward area steeper than 45°")
    overhang_fraction: float = Field(0.0, ge=0, le=1, description="of the total surface area")
    tiny_features: int = Field(0, ge=0, description="bodies or islands smaller than the nozzle")
    orientation: Orientation | None = None
    repaired: list[str] = Field(default_factory=list, description="repairs made to an import")
