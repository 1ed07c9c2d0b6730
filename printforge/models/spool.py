"""A spool of filament: how much is left on it and which printer it is loaded on (issue 15).

The names follow Spoolman's (`remaining_weight`, `initial_weight`, `used_weight`, grams), so a
spool read from a Spoolman server and one kept in printforge's own store look the same to the
scheduler and to API clients.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Spool", "SpoolSettings", "SpoolmanSettings", "spool_short_reason"]


def _now() -> datetime:
    return datetime.now(UTC)


class Spool(BaseModel):
    id: int
    material: str = Field(description="the material name, as in [materials.*] (e.g. PLA)")
    name: str | None = Field(None, description="what a person calls it, e.g. 'Prusament Galaxy'")
    initial_weight: float | None = Field(None, ge=0, description="net filament when new, g")
    remaining_weight: float = Field(ge=0, description="filament left on it, g")
    used_weight: float = Field(0.0, ge=0, description="filament taken from it, g")
    printer: str | None = Field(None, description="the printer it is loaded on, if any")
    archived: bool = False
    source: Literal["printforge", "spoolman"] = "printforge"
    updated_at: datetime = Field(default_factory=_now)


class SpoolSettings(BaseModel):
    """`[spools]`: printforge's own spool tracking."""

    model_config = ConfigDict(extra="forbid")

    low_weight: float = Field(
        50.0, ge=0, description="grams left under which a spool.low notification is sent"
    )


class SpoolmanSettings(BaseModel):
    """`[spoolman]`: a Spoolman server as the source of spools instead of printforge's store."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="e.g. http://spoolman.lan:7912 (no /api/v1)")
    timeout_s: float = Field(10.0, gt=0, le=120)
    refresh_s: float = Field(
        30.0, gt=0, le=3600, description="how often spools are read again from Spoolman"
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// address")
        return url.rstrip("/") if url else None

    @property
    def enabled(self) -> bool:
        return bool(self.url)


def spool_short_reason(printer: str, spool: Spool, needed_g: float) -> str | None:
    """Why a job needing `needed_g` grams cannot print from this spool; None when it can."""
    if spool.remaining_weight + 1e-6 >= needed_g:
        return None
    has, needs = _grams(spool.remaining_weight), _grams(needed_g)
    return f"spool on {printer} has {has}, job needs {needs}"


def _grams(value: float) -> str:
    """Whole grams, but tenths under 10 g: "has 0 g, job needs 0 g" would say nothing."""
    text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text} g"
