"""The picture of a diagnosis: the frame that stopped the print beside the twin's render of the
same layer, the twin's outline drawn over the frame, and where the evidence was."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

if TYPE_CHECKING:
    from printforge.vision.detector import Detector, Verdict

__all__ = ["diagnosis_picture", "write_diagnosis"]


def diagnosis_picture(detector: Detector, verdict: Verdict) -> Image.Image:
    assert detector.last is not None
    frame, twin, ev = detector.last
    off = detector.offset or (0, 0)
    mask = np.roll(twin.mask, off, axis=(0, 1))
    outline = mask & ~ndimage.binary_erosion(mask, iterations=2)
    seen = np.clip(frame, 0, 255).astype(np.uint8).copy()
    stray = ev.plastic & ~ndimage.binary_dilation(mask, iterations=6)
    seen[stray] = (255, 0, 255)
    seen[outline] = (40, 255, 40)
    expected = np.roll(twin.shaded(), off, axis=(0, 1))
    h, w = frame.shape[:2]
    out = Image.new("RGB", (2 * w, h + 28), (20, 20, 20))
    out.paste(Image.fromarray(seen), (0, 28))
    out.paste(Image.fromarray(expected), (w, 28))
    draw = ImageDraw.Draw(out)
    text = (
        f"layer {verdict.layer}: {verdict.kind or 'failure'}, score {verdict.score:.2f}"
        f" (threshold {detector.config.threshold:.2f})   camera | twin from the G-code"
    )
    draw.text((8, 8), text, fill=(235, 235, 235))
    return out


def write_diagnosis(path: Path, detector: Detector, verdict: Verdict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    diagnosis_picture(detector, verdict).save(path)
