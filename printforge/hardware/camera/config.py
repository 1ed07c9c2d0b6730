"""`[printers.NAME.camera]`: where a printer's camera is and how to fetch its pictures.

Real cameras and the virtual one share this and only this: a snapshot URL and/or an MJPEG stream
URL (crowsnest, ustreamer, mjpg-streamer, OctoPrint's `/webcam/?action=snapshot|stream`), and
the camera's pose for whoever needs to know what it sees. A printer run as a virtual printer
(mock mode, `driver = "virtual"`) gets a virtual camera; `virtual` holds that camera's options.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

__all__ = [
    "FAILURE_KINDS",
    "NUISANCE_KINDS",
    "CameraConfig",
    "VirtualCameraOptions",
    "parse_event_spec",
]

Vec3 = tuple[float, float, float]

FAILURE_KINDS = ("spaghetti", "detached", "layer_shift", "under_extrusion", "clog", "blob")
NUISANCE_KINDS = ("light", "shake", "hand", "color", "head_front")

_EVENT = re.compile(r"^(?P<kind>[a-z_]+)(?:@(?P<layer>\d+))?(?:\+(?P<layers>\d+))?$")
_COLOR = r"^#[0-9a-fA-F]{6}$"


def parse_event_spec(text: str, kinds: tuple[str, ...]) -> tuple[str, int | None, int | None]:
    """`KIND`, `KIND@LAYER` or `KIND@LAYER+LAYERS` -> (kind, layer, layers); ValueError says
    what is wrong and which kinds exist."""
    found = _EVENT.match(text.strip().lower().replace("-", "_"))
    if found is None:
        raise ValueError(f"{text!r} is not KIND, KIND@LAYER or KIND@LAYER+LAYERS")
    kind = found["kind"]
    if kind not in kinds:
        raise ValueError(f"unknown kind {kind!r} in {text!r} (known: {', '.join(kinds)})")
    layer = int(found["layer"]) if found["layer"] else None
    layers = int(found["layers"]) if found["layers"] else None
    if layer is not None and layer < 1:
        raise ValueError(f"{text!r}: layers count from 1")
    if layers is not None and layers < 1:
        raise ValueError(f"{text!r}: an event lasts at least one layer")
    return kind, layer, layers


class VirtualCameraOptions(BaseModel):
    """How a virtual camera renders and what it injects."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address the camera's HTTP server listens on")
    port: int = Field(0, ge=0, le=65535, description="its port (0: a free one)")
    seed: int = Field(0, description="seeds random events, nuisances and sensor noise")
    color: Annotated[str, StringConstraints(pattern=_COLOR)] = Field(
        "#d9541a", description="filament colour, #rrggbb"
    )
    fps: float = Field(5.0, gt=0, le=30, description="frames per second of the MJPEG stream")
    failures: list[str] = Field(
        default_factory=list, description="KIND@LAYER injected into every print"
    )
    nuisances: list[str] = Field(
        default_factory=list,
        description="KIND@LAYER[+LAYERS] once, or KIND alone: now and then, at seeded layers",
    )
    failure_rate: float = Field(
        0.0, ge=0, le=1, description="chance that a print gets one random failure"
    )
    nuisance_rate: float = Field(
        0.0, ge=0, le=1, description="chance per layer that a random nuisance starts"
    )
    ground_truth: str | None = Field(
        None, description="JSON-lines file of injected events (default: none written)"
    )
    k1: float = Field(0.08, ge=-0.3, le=0.5, description="radial lens distortion")
    noise: float = Field(1.5, ge=0, le=20, description="sensor read noise, 8-bit levels")
    jpeg_quality: int = Field(80, ge=10, le=95)

    @field_validator("failures")
    @classmethod
    def _failures_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            kind, layer, _ = parse_event_spec(item, FAILURE_KINDS)
            if layer is None:
                raise ValueError(f"{item!r}: a failure needs its layer, {kind}@LAYER")
        return value

    @field_validator("nuisances")
    @classmethod
    def _nuisances_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_event_spec(item, NUISANCE_KINDS)
        return value


class CameraConfig(BaseModel):
    """`[printers.NAME.camera]`."""

    model_config = ConfigDict(extra="forbid")

    snapshot_url: str | None = Field(None, description="returns one JPEG per GET")
    stream_url: str | None = Field(
        None, description="MJPEG (multipart/x-mixed-replace), as ustreamer or mjpg-streamer"
    )
    position: Vec3 | None = Field(None, description="the lens, mm in printer coordinates")
    look_at: Vec3 | None = Field(None, description="the point the camera faces, mm")
    fov_deg: float = Field(60.0, gt=5, lt=170, description="horizontal field of view")
    resolution: tuple[int, int] = Field((640, 480), description="[width, height] in pixels")
    timeout_s: float = Field(10.0, gt=0, le=120, description="per snapshot or frame")
    virtual: VirtualCameraOptions | None = Field(
        None,
        description="a virtual camera serves this printer when it runs as a virtual printer"
        " (`virtual = true` for the defaults)",
    )

    @field_validator("virtual", mode="before")
    @classmethod
    def _virtual_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @field_validator("snapshot_url", "stream_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("resolution")
    @classmethod
    def _sane_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        w, h = value
        if not (16 <= w <= 4096 and 16 <= h <= 4096):
            raise ValueError(f"resolution {w}x{h} is outside 16..4096 pixels a side")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> CameraConfig:
        if self.snapshot_url is None and self.stream_url is None and self.virtual is None:
            raise ValueError(
                "a camera needs snapshot_url or stream_url (or virtual = true for a virtual"
                " printer)"
            )
        if (self.position is None) != (self.look_at is None):
            raise ValueError("position and look_at go together: give both or neither")
        return self
