"""What every slicer engine offers, and choosing one by name."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.runtime.errors import ConfigError, InputError
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import SliceParams

__all__ = ["ENGINES", "Progress", "SliceResult", "SlicerEngine", "make_engine", "pick_engine"]

Progress = Callable[[float, str], None]


class SliceResult(BaseModel):
    """One engine run: the G-code file and what the engine itself said about it."""

    engine: str
    gcode: Path
    wall_s: float
    process_s: float | None = Field(None, description="time inside an external engine process")
    engine_estimate_s: float | None = None
    engine_filament_mm: float | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class SlicerEngine(ABC):
    """Turns a model file into a G-code file. `slice` never blocks the event loop."""

    name: str

    def __init__(self, settings: SlicerSettings) -> None:
        self.settings = settings

    def available(self) -> bool:
        return True

    @abstractmethod
    async def slice(
        self,
        model: Path,
        out: Path,
        params: SliceParams,
        profile: PrinterProfile,
        material: MaterialProfile,
        progress: Progress | None = None,
    ) -> SliceResult:
        """Slice `model`, centred on the bed, into `out`; InputError for a model it refuses."""


ENGINES: dict[str, str] = {
    "builtin": "printforge.slicing.builtin:BuiltinEngine",
    "prusaslicer": "printforge.slicing.prusaslicer:PrusaSlicerEngine",
    "curaengine": "printforge.slicing.curaengine:CuraEngine",
}


def make_engine(name: str, settings: SlicerSettings) -> SlicerEngine:
    import importlib

    if name not in ENGINES:
        raise InputError(f"unknown slicer engine {name!r} (known: {', '.join(ENGINES)}, auto)")
    module, _, attr = ENGINES[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    engine: SlicerEngine = cls(settings)
    return engine


def pick_engine(requested: str | None, settings: SlicerSettings) -> SlicerEngine:
    """The engine for a job: the request's, else config's; `auto` takes the first installed
    of `preferred_engines` and falls back to builtin."""
    name = requested or settings.engine
    if name == "auto":
        for candidate in settings.preferred_engines:
            engine = make_engine(candidate, settings)
            if engine.available():
                return engine
        return make_engine("builtin", settings)
    engine = make_engine(name, settings)
    if not engine.available():
        raise ConfigError(
            f"slicer engine {name!r} is not installed here ({_where(name, settings)});"
            " install it or use --engine builtin"
        )
    return engine


def _where(name: str, settings: SlicerSettings) -> str:
    binary = {"prusaslicer": settings.prusaslicer_path, "curaengine": settings.curaengine_path}
    path = binary.get(name)
    if path is None:
        return "built in"
    found = shutil.which(path)
    return f"{path} found at {found}" if found else f"{path} not on PATH"
