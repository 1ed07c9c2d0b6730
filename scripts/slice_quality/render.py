"""A picture of one layer as each slicer covers it, side by side, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .metrics import LayerContext, LayerRaster

__all__ = ["render_layer"]

SECTION = (175, 175, 175)  # the model's section, uncovered
COVERED = (140, 210, 140)  # covered once
OUTSIDE = (90, 130, 90)  # extrusion outside the section (skirt, overflow)
DOUBLED = (50, 70, 230)
VOID = (225, 20, 20)  # wall voids and top-surface pinholes


def _panel(ctx: LayerContext, lr: LayerRaster) -> np.ndarray:
    sec = ctx.section
    img = np.full((*sec.shape, 3), 255, dtype=np.uint8)
    img[sec] = SECTION
    img[lr.strokes.covered & ~sec] = OUTSIDE
    img[lr.strokes.covered & sec] = COVERED
    img[lr.strokes.doubled & sec] = DOUBLED
    img[lr.wall_voids | lr.pinholes] = VOID
    return img[::-1]  # rows grow with y; pictures grow downwards


def render_layer(
    ctx: LayerContext, rasters: dict[str, LayerRaster], path: Path, title: str
) -> None:
    """Write `path`: one panel per slicer of the layer in `ctx`, with its figures underneath."""
    panels = []
    for name, lr in rasters.items():
        img = _panel(ctx, lr)
        rows = np.flatnonzero(ctx.section.any(axis=1)[::-1])
        cols = np.flatnonzero(ctx.section.any(axis=0))
        if len(rows) and len(cols):
            pad = 8
            img = img[
                max(rows[0] - pad, 0) : rows[-1] + pad + 1,
                max(cols[0] - pad, 0) : cols[-1] + pad + 1,
            ]
        scale = max(1, min(8, 1000 // max(img.shape[:2])))
        pic = Image.fromarray(img).resize(
            (img.shape[1] * scale, img.shape[0] * scale), Image.Resampling.NEAREST
        )
        r = lr.result
        caption = (
            f"{name}: covered {r.covered_pct:.1f} %  twice {r.doubled_pct:.1f} %  "
            f"void {r.wall_void_mm2:.3f} mm2  pinholes {r.pinholes}"
        )
        canvas = Image.new("RGB", (max(pic.width, 420), pic.height + 22), (255, 255, 255))
        canvas.paste(pic, (0, 22))
        ImageDraw.Draw(canvas).text((4, 4), caption, fill=(0, 0, 0))
        panels.append(canvas)
    z = next(iter(rasters.values())).result.z
    width = sum(p.width for p in panels) + 10 * (len(panels) - 1)
    height = max(p.height for p in panels) + 24
    out = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(out).text(
        (4, 4),
        f"{title}, layer at z {z:.2f} mm: grey section, green covered, blue laid twice, "
        "red wall voids and top pinholes",
        fill=(0, 0, 0),
    )
    x = 0
    for p in panels:
        out.paste(p, (x, 24))
        x += p.width + 10
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)
