"""The base of every design-spec node and the helpers their checks share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SpecNode", "hole_fits", "positive", "vec", "wall_vs"]


def vec(n: int, what: str, default: list[float] | None = None) -> Any:
    """A fixed-length list of numbers (JSON arrays, not tuples: every schema dialect takes them)."""
    if default is None:
        return Field(min_length=n, max_length=n, description=what)
    return Field(
        default_factory=lambda: list(default), min_length=n, max_length=n, description=what
    )


def positive(**values: float | list[float]) -> list[str]:
    """One sentence per field that is not above zero."""
    out = []
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        if any(not v > 0 for v in items):
            out.append(f"{name} must be above 0 mm (got {value})")
    return out


class SpecNode(BaseModel):
    """Base of every node: no unknown keys, and `problems()` decides whether it validates."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def problems(self) -> list[str]:
        """Readable reasons this node cannot be built; empty when it is fine."""
        return []

    @model_validator(mode="after")
    def _check(self) -> SpecNode:
        found = self.problems()
        if found:
            raise ValueError(f"{self.kind}: " + "; ".join(found))  # type: ignore[attr-defined]
        return self


def wall_vs(label: str, wall: float, span: float, what: str) -> list[str]:
    if wall > 0 and 2 * wall >= span:
        return [
            f"{label} {wall} mm is too thick for {what} {span} mm across: two of them must"
            f" leave room inside; use less than {span / 2:.1f} mm"
        ]
    return []


def hole_fits(hole: float, face: float, what: str) -> list[str]:
    if hole > 0 and hole >= face - 1.0:
        return [
            f"hole_diameter {hole} mm does not fit in {what} ({face:.1f} mm): keep at least"
            f" 0.5 mm of material each side, so use under {max(face - 1.0, 0):.1f} mm"
        ]
    return []
