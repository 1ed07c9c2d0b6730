"""What a person asks for: a sentence, or a model or G-code file to start from."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PrintRequest", "SliceOverrides"]


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

    text: str | None = Field(None, min_length=1, max_length=4000)
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
    slice: SliceOverrides = Field(default_factory=SliceOverrides)
    print_: bool = Field(True, alias="print", description="stop after slicing when false")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_source(self) -> PrintRequest:
        given = [n for n in ("text", "model_path", "gcode_path") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a request needs exactly one of text, model_path or gcode_path"
                f" (got {', '.join(given) or 'none'})"
            )
        if self.text is not None and not self.text.strip():
            raise ValueError("the request text is empty")
        return self

    @property
    def summary(self) -> str:
        if self.text is not None:
            return self.text
        return str(self.model_path or self.gcode_path)
