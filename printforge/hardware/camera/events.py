"""Failures and nuisances the virtual camera injects, when they start and end, and the
ground-truth log that records them for scoring a detector.

An event starts at a layer and lasts a number of layers (a failure: to the end of the print).
Everything random about it (its size, direction, colour, shape) is drawn when it is created,
from the camera's seed, the print's number and the event's own number, so a seed replays the
same prints with the same events looking the same.

The log is JSON lines, appended as things happen; `read_ground_truth` pairs them up again:

    {"v": 1, "phase": "print_start", "camera", "run", "print", "job_id", "layers_total",
     "seed", "time"}
    {"v": 1, "phase": "start", "camera", "run", "print", "job_id", "id", "kind", "category",
     "source", "planned_layer", "layer", "z_mm", "frame", "time", "params"}
    {"v": 1, "phase": "end", ... the same keys ..., "frames_shown", "reason"}
    {"v": 1, "phase": "print_end", "camera", "run", "print", "job_id", "layer", "reason", "time"}

`run` tells apart two lives of a camera of the same name appending to the same file (prints
are numbered from 1 in each).
"""

from __future__ import annotations

import colorsys
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from printforge.hardware.camera.config import FAILURE_KINDS, NUISANCE_KINDS

__all__ = [
    "DEFAULT_LAYERS",
    "GroundTruthEvent",
    "GroundTruthLog",
    "Injection",
    "category_of",
    "draw_params",
    "read_ground_truth",
]

log = logging.getLogger(__name__)

Category = Literal["failure", "nuisance"]
Source = Literal["request", "config", "random"]

# How many layers a nuisance lasts unless told (None: to the end of the print).
DEFAULT_LAYERS: dict[str, int | None] = {
    "light": 4,
    "shake": 1,
    "hand": 1,
    "color": None,
    "head_front": 1,
}
VERSION = 1


def category_of(kind: str) -> Category:
    if kind in FAILURE_KINDS:
        return "failure"
    if kind in NUISANCE_KINDS:
        return "nuisance"
    raise ValueError(
        f"unknown event kind {kind!r} (failures: {', '.join(FAILURE_KINDS)};"
        f" nuisances: {', '.join(NUISANCE_KINDS)})"
    )


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def draw_params(
    kind: str, rng: np.random.Generator, color: tuple[float, float, float]
) -> dict[str, Any]:
    """How big, which way, which colour: an event's looks, drawn once from its own generator."""
    if kind == "detached":
        angle = rng.uniform(0, 2 * np.pi)
        reach = rng.uniform(12.0, 35.0)
        return {
            "dx": round(reach * np.cos(angle), 2),
            "dy": round(reach * np.sin(angle), 2),
            "yaw_deg": round(rng.uniform(-45, 45), 1),
            "tilt_deg": 90.0 if rng.random() < 0.25 else 0.0,
        }
    if kind == "layer_shift":
        size = rng.uniform(2.0, 8.0) * (1 if rng.random() < 0.5 else -1)
        along_x = rng.random() < 0.5
        return {"dx": round(size, 2) if along_x else 0.0, "dy": 0.0 if along_x else round(size, 2)}
    if kind == "under_extrusion":
        return {"gaps": round(rng.uniform(0.3, 0.6), 2)}
    if kind == "blob":
        return {
            "mm_per_layer": round(rng.uniform(0.4, 0.9), 2),
            "max_mm": round(rng.uniform(6, 10), 1),
        }
    if kind == "light":
        gain = rng.uniform(1.2, 1.5) if rng.random() < 0.5 else rng.uniform(0.55, 0.8)
        warm = rng.random() < 0.5
        tint = (1.08, 1.0, 0.82) if warm else (0.88, 1.0, 1.12)
        return {"gain": round(gain, 2), "tint": [round(t, 3) for t in tint]}
    if kind == "shake":
        return {"amplitude": round(rng.uniform(0.5, 1.5), 2)}
    if kind == "color":
        hue = colorsys.rgb_to_hls(*color)[0]
        hue = (hue + rng.uniform(0.25, 0.75)) % 1.0
        other = colorsys.hls_to_rgb(hue, rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.9))
        return {"color": _hex(other)}
    return {}


@dataclass
class Injection:
    """One event: planned at `layer`, lasting `layers` (None: to the print's end)."""

    id: int
    kind: str
    layer: int
    layers: int | None
    source: Source
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    started_layer: int | None = None
    started_z: float | None = None
    ended_layer: int | None = None
    ended_z: float | None = None
    frames_shown: int = 0

    @property
    def category(self) -> Category:
        return category_of(self.kind)

    @property
    def active(self) -> bool:
        return self.started_layer is not None and self.ended_layer is None

    def due_to_end(self, layer: int) -> bool:
        return (
            self.active
            and self.layers is not None
            and self.started_layer is not None
            and layer >= self.started_layer + self.layers
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "category": self.category,
            "source": self.source,
            "layer": self.layer,
            "layers": self.layers,
            "params": self.params,
            "started_layer": self.started_layer,
            "started_z_mm": self.started_z,
            "ended_layer": self.ended_layer,
            "frames_shown": self.frames_shown,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class GroundTruthLog:
    """Appends ground-truth lines to a file. Each line is a few hundred bytes written when an
    event starts or ends (a few per layer at most), so it is written at once, like a log line,
    rather than handed to a thread."""

    def __init__(self, path: Path, camera: str) -> None:
        self.path = path
        self.camera = camera
        self.run = uuid.uuid4().hex[:12]

    def write(self, phase: str, **fields: Any) -> None:
        line = {
            "v": VERSION,
            "phase": phase,
            "camera": self.camera,
            "run": self.run,
            **fields,
            "time": _now(),
        }
        try:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
        except OSError as err:
            # The camera keeps serving; the benchmark will find the log short and say so.
            log.warning("virtual camera %s: cannot write %s: %s", self.camera, self.path, err)


@dataclass
class GroundTruthEvent:
    """An injected event as the log tells it, start and end paired."""

    camera: str
    run: str
    print: int
    job_id: str | None
    id: int
    kind: str
    category: str
    source: str
    planned_layer: int
    layer: int
    z_mm: float | None
    params: dict[str, Any]
    end_layer: int | None = None  # None: the log ends with the event still going
    frames_shown: int | None = None
    reason: str | None = None


def read_ground_truth(path: Path) -> tuple[list[dict[str, Any]], list[GroundTruthEvent]]:
    """The prints (their start lines, with `end_layer` and `end_reason` added) and the events.

    A torn last line (the writer was killed mid-line) is skipped; any other bad line is a
    ValueError naming its line number.
    """
    prints: dict[tuple[str, str, int], dict[str, Any]] = {}
    events: dict[tuple[str, str, int, int], GroundTruthEvent] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except ValueError:
            if number == len(lines):
                break
            raise ValueError(f"{path.name}:{number}: not JSON") from None
        phase = row.get("phase")
        key = (str(row.get("camera", "")), str(row.get("run", "")), int(row.get("print", 0)))
        if phase == "print_start":
            prints[key] = {**row, "end_layer": None, "end_reason": None}
        elif phase == "print_end" and key in prints:
            prints[key]["end_layer"] = row.get("layer")
            prints[key]["end_reason"] = row.get("reason")
        elif phase == "start":
            events[(*key, int(row["id"]))] = GroundTruthEvent(
                camera=key[0],
                run=key[1],
                print=key[2],
                job_id=row.get("job_id"),
                id=int(row["id"]),
                kind=row["kind"],
                category=row["category"],
                source=row["source"],
                planned_layer=int(row["planned_layer"]),
                layer=int(row["layer"]),
                z_mm=row.get("z_mm"),
                params=row.get("params") or {},
            )
        elif phase == "end":
            event = events.get((*key, int(row["id"])))
            if event is not None:
                event.end_layer = row.get("layer")
                event.frames_shown = row.get("frames_shown")
                event.reason = row.get("reason")
    return list(prints.values()), list(events.values())
