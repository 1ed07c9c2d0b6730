"""One print watched: frames and the printer's status in, one failure score per layer and a
verdict out.

The score of a layer is the comparison's (compare.py) or a telemetry rule's (telemetry.py),
whichever is higher. A layer is failing when its score passes the printer's threshold; the
print is stopped when `persistence` layers in a row fail, because every nuisance the camera
can show (a hand, the head in front, a knock) lasts a layer or two while a failure lasts to the
end of the print. Telemetry that is certain (a firmware's filament runout) stops at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from printforge.vision.compare import (
    Evidence,
    LayerScore,
    Reference,
    evidence,
    find_offset,
    score,
)
from printforge.vision.config import DetectionConfig
from printforge.vision.twin import Twin, TwinView

__all__ = ["CALIBRATION_LAYERS", "DetectionConfig", "Detector", "Verdict"]

CALIBRATION_LAYERS = 3  # first layers compared: they set the twin's offset and baseline


@dataclass
class Verdict:
    """What the detector concluded after a layer."""

    layer: int
    score: float
    failing: bool
    stop: bool
    kind: str | None
    detail: dict[str, object] = field(default_factory=dict)
    object: str | None = None  # on a plate of several objects, the one the failure is on


class Detector:
    """Watches one print through one camera. Feed it frames in layer order."""

    def __init__(self, twin: Twin, config: DetectionConfig | None = None) -> None:
        self.twin = twin
        self.config = config or DetectionConfig()
        self.reference: Reference | None = None
        self.offset: tuple[int, int] | None = None
        self._offsets: list[tuple[int, int]] = []
        self._shorts: list[float] = []
        self.baseline = 0.0
        self.streak = 0
        self._growth_failing = False
        self.scores: list[LayerScore] = []
        self.last: tuple[np.ndarray, TwinView, Evidence] | None = None
        final = twin.render(twin.toolpath.layers).mask
        h = final.shape[0]
        rows = np.nonzero(final.any(axis=1))[0]
        top = int(rows.min()) if rows.size else h // 2
        calm = ~ndimage.binary_dilation(final, iterations=30)
        calm[: max(0, top)] = False  # above the part is where the head and its carriage go
        self.calm = calm
        self._objects = twin.object_masks()
        self.ignored: np.ndarray | None = None  # where cancelled objects stand

    def forget_object(self, name: str) -> None:
        """An object cancelled on the plate: from now on it is neither expected nor watched."""
        mask = self._objects.pop(name, None)
        if mask is not None:
            grown = ndimage.binary_dilation(mask, iterations=8)
            self.ignored = grown if self.ignored is None else self.ignored | grown
        self.streak = 0

    def _locate(self, ev: Evidence, expected: np.ndarray) -> str | None:
        """The object most of the evidence lies on, if one holds most of it."""
        if len(self._objects) < 2 or self.offset is None:
            return None
        dy, dx = self.offset
        expected = np.roll(expected, (dy, dx), axis=(0, 1))
        wrong = (expected & ~ev.plastic & ~ev.occluder) | (
            ev.plastic & ~ndimage.binary_dilation(expected, iterations=6)
        )
        counts = {}
        for name, mask in self._objects.items():
            near = ndimage.binary_dilation(np.roll(mask, (dy, dx), axis=(0, 1)), iterations=12)
            counts[name] = int((wrong & near).sum())
        total = sum(counts.values())
        name, best = max(counts.items(), key=lambda kv: kv[1])
        return name if total and best >= 0.7 * total else None

    def set_reference(self, frame: np.ndarray) -> None:
        """The bed before the print (the head out of the way, or at least not over the part)."""
        self.reference = Reference.of(frame, self.calm)

    def observe(self, layer: int, frame: np.ndarray) -> Verdict:
        """A frame taken after `layer` layers were printed."""
        if self.reference is None:
            self.set_reference(frame)
            return Verdict(layer, 0.0, False, False, None, {"reference": True})
        ev = evidence(frame, self.reference)
        now = self.twin.render(layer)
        if self.ignored is not None:
            now = TwinView(now.layer, np.where(self.ignored, 0, now.label).astype(np.uint8))
            ev = replace(
                ev, plastic=ev.plastic & ~self.ignored, occluder=ev.occluder | self.ignored
            )
        if layer < self.config.start_layer or now.mask.sum() < 150:
            return Verdict(layer, 0.0, False, False, None, {"too_early": True})
        calibrating = len(self._offsets) < CALIBRATION_LAYERS
        if calibrating:
            # The twin's offset is found on the first layers compared, while all is well.
            self._offsets.append(find_offset(now.mask, ev.plastic))
            self.offset = (
                int(np.median([o[0] for o in self._offsets])),
                int(np.median([o[1] for o in self._offsets])),
            )
        assert self.offset is not None
        # The growth at the top is measured once the layers `band_layers` back are part
        # enough to see; its first measures, while all is well, are its baseline.
        low = layer - self.config.band_layers
        grown = low >= self.config.start_layer
        before = self.twin.render(max(0, low)).mask
        known = len(self._shorts) >= CALIBRATION_LAYERS
        result = score(
            layer,
            ev,
            now.mask,
            before,
            self.offset,
            band_layers=self.config.band_layers,
            baseline=self.baseline if known and grown else None,
        )
        if grown and not known and not math.isnan(result.band):
            self._shorts.append(result.band)
            if len(self._shorts) == CALIBRATION_LAYERS:
                self.baseline = float(np.median(self._shorts))
        if calibrating:
            result = replace(result, score=min(result.score, self.config.threshold / 2))
        self.scores.append(result)
        self.last = (frame, now, ev)
        failing = bool(result.score >= self.config.threshold)
        if failing:
            self.streak += 1
        elif not (math.isnan(result.band) and self._growth_failing):
            # A layer where the head hid the top says nothing of a part that stopped growing:
            # it neither ends nor lengthens such a run.
            self.streak = 0
        if not math.isnan(result.band):
            self._growth_failing = failing and result.kind == "clog"
        stop = self.streak >= self.config.persistence
        return Verdict(
            layer,
            float(result.score),
            failing,
            stop,
            result.kind if failing else None,
            result.as_dict(),
            self._locate(ev, now.mask) if stop else None,
        )
