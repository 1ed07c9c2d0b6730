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


def diagnosis_picture(detector: Detector, verdict: Verdict, height: int = 360) -> Image.Image:
    """The frame (the twin's outline in green, stray plastic tinted magenta) beside the twin,
    both cropped around the part and what was found, and enlarged to `height` pixels."""
    assert detector.last is not None
    frame, twin, ev = detector.last
    off = detector.offset or (0, 0)
    mask = np.roll(twin.mask, off, axis=(0, 1))
    outline = mask & ~ndimage.binary_erosion(mask, iterations=2)
    seen = np.clip(frame, 0, 255).astype(np.float32)
    stray = ev.plastic & ~ndimage.binary_dilation(mask, iterations=6)
    seen[stray] = 0.5 * seen[stray] + 0.5 * np.array([255.0, 0.0, 255.0])
    seen[outline] = (40, 255, 40)
    expected = np.roll(twin.shaded(), off, axis=(0, 1))
    box = _box(mask | stray, frame.shape[:2])
    left = Image.fromarray(seen.astype(np.uint8)).crop(box)
    right = Image.fromarray(expected).crop(box)
    scale = height / left.height
    size = (max(1, round(left.width * scale)), height)
    left, right = left.resize(size), right.resize(size)
    out = Image.new("RGB", (2 * size[0] + 8, height + 44), (20, 20, 20))
    out.paste(left, (0, 44))
    out.paste(right, (size[0] + 8, 44))
    draw = ImageDraw.Draw(out)
    draw.text(
        (8, 6),
        f"layer {verdict.layer}: {verdict.kind or 'failure'}, score {verdict.score:.2f}"
        f" (threshold {detector.config.threshold:.2f})",
        fill=(235, 235, 235),
    )
    draw.text((8, 24), "camera", fill=(200, 200, 200))
    draw.text((size[0] + 16, 24), "twin, from the G-code", fill=(200, 200, 200))
    return out


def _box(mask: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A 4:3 box around the mask with a margin, inside the picture."""
    h, w = shape
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return (0, 0, w, h)
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    half_h = max((r1 - r0) * 0.8, (c1 - c0) * 0.6, 40)
    half_w = half_h * 4 / 3
    cr, cc = (r0 + r1) / 2, (c0 + c1) / 2
    top, left = max(0, int(cr - half_h)), max(0, int(cc - half_w))
    return (left, top, min(w, int(cc + half_w)), min(h, int(cr + half_h)))


def write_diagnosis(path: Path, detector: Detector, verdict: Verdict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    diagnosis_picture(detector, verdict).save(path)
