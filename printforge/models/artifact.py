"""Typed artifacts on disk. Each stage hands the next a file, its sha256 and its key figures."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Artifact", "GcodeArtifact", "MeshArtifact", "SpecArtifact", "file_sha256"]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Artifact(BaseModel):
    kind: str
    path: Path
    sha256: str
    size_bytes: int = Field(ge=0)

    def verify(self) -> bool:
        """True when the file on disk is still the one this record describes."""
        return self.path.is_file() and file_sha256(self.path) == self.sha256


class SpecArtifact(Artifact):
    kind: Literal["spec"] = "spec"
    family: str | None = None


class MeshArtifact(Artifact):
    kind: Literal["mesh"] = "mesh"
    format: Literal["stl", "3mf", "obj"] = "stl"
    triangles: int = Field(ge=0)
    watertight: bool
    volume_mm3: float
    size_mm: tuple[float, float, float]
    bodies: int = 1
    preview_png: Path | None = None
    report: dict[str, object] = Field(default_factory=dict, description="printability report")


class GcodeArtifact(Artifact):
    kind: Literal["gcode"] = "gcode"
    engine: str
    lines: int = Field(ge=0, description="command lines, comments and blanks excluded")
    layers: int = Field(ge=0)
    estimated_time_s: float = Field(ge=0)
    filament_mm: float = Field(ge=0)
    filament_g: float = Field(ge=0)
    max_hotend_temp: float = 0.0
    max_bed_temp: float = 0.0
    bounds_min: tuple[float, float, float] | None = None
    bounds_max: tuple[float, float, float] | None = None
    preview_png: Path | None = None
