"""What a person asks for: a sentence, or a model or G-code file to start from."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["REQUEST_MAX_CHARS", "PrintRequest", "SliceOverrides", "request_text_problem"]

# A request is a sentence or a paragraph; past this it is a pasted file or a prompt injection.
REQUEST_MAX_CHARS = 2000


def request_text_problem(text: str) -> str | None:
    """What is wrong with a request's text, in words a person reads; None when it is usable.

    The CLI asks this before any stage runs, and the model's validator says the same, so the
    API and the CLI refuse a request with one sentence.
    """
    if not text.strip():
        return 'the request is empty; describe the part, e.g. "a 20 mm calibration cube"'
    if len(text) > REQUEST_MAX_CHARS:
        return (
            f"the request is longer than {REQUEST_MAX_CHARS:,} characters ({len(text):,});"
            " describe the part in a sentence or two"
        )
    return None


class SliceOverrides(BaseModel):
    """Per-job slicer settings that win over the printer and material profiles."""

    model_config = ConfigDict(extra="forbid")

    engine: str | None = Field(None, description="builtin | prusaslicer | curaengine | auto")
    layer_height: float | None = Field(None, gt=0.02, le=1.0)
    first_layer_height: float | None = Field(None, gt=0.02, le=1.0)
    perimeters: int | None = Field(None, ge=1, le=20)
    infill_percent: float | None = Field(None, ge=0, le=100)
    infill_pattern: str | None = Field(None, pattern="^(rectilinear|grid|gyroid)$")
    top_layers: int | None = Field(None, ge=0, le=50)
    bottom_layers: int | None = Field(None, ge=0, le=50)
    supports: bool | None = None
    skirt_loops: int | None = Field(None, ge=0, le=10)
    brim_width: float | None = Field(None, ge=0, le=50)


class PrintRequest(BaseModel):
    """One job's input. Exactly one of `text`, `model_path` or `gcode_path` is set."""

    text: str | None = None
    model_path: Path | None = Field(None, description="STL/3MF/OBJ entering at the CAD stage")
    gcode_path: Path | None = Field(None, description="G-code entering at the printer stage")
    printer: str | None = None
    material: str | None = None
    copies: int = Field(1, ge=1, le=100)
    priority: int = Field(0, ge=-100, le=100)
    providers: list[str] | None = Field(None, description="LLM provider order for research")
    llm_model: str | None = None
    accept_partial: bool = Field(
        False,
        description="build even when research finds requirements it cannot realise (they are"
        " listed as not_built); otherwise the job stops with a question",
    )
    font: Path | None = Field(
        None, description="a TrueType or OpenType font file that draws the part's text"
    )
    slice: SliceOverrides = Field(default_factory=SliceOverrides)
    print_: bool = Field(True, alias="print", description="stop after slicing when false")
    # Constraints on the printer (issue 15): every tag must be among the printer's
    # `[printers.NAME] tags`, the nozzle its profile's; not dispatched before `not_before`.
    tags: list[str] = Field(default_factory=list, max_length=20)
    nozzle_diameter: float | None = Field(None, gt=0, le=2.0)
    not_before: datetime | None = Field(None, description="not dispatched before this time")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("text")
    @classmethod
    def _usable_text(cls, text: str | None) -> str | None:
        problem = None if text is None else request_text_problem(text)
        if problem is not None:
            raise ValueError(problem)
        return text

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: list[str]) -> list[str]:
        cleaned = [t.strip() for t in tags]
        if any(not t or len(t) > 64 for t in cleaned):
            raise ValueError("a tag is 1 to 64 characters")
        return sorted(set(cleaned))

    @field_validator("not_before")
    @classmethod
    def _aware(cls, when: datetime | None) -> datetime | None:
        # A time without a zone would be read in whichever zone the server runs in.
        if when is not None and when.tzinfo is None:
            raise ValueError("not_before needs a time zone (e.g. 2026-12-08T06:00:00+01:00 or Z)")
        return when

    @model_validator(mode="after")
    def _one_source(self) -> PrintRequest:
        given = [n for n in ("text", "model_path", "gcode_path") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a request needs exactly one of text, model_path or gcode_path"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def summary(self) -> str:
        if self.text is not None:
            return self.text
        return str(self.model_path or self.gcode_path)
