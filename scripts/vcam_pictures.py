#!/usr/bin/env python3
"""Draw docs/pictures/vcam-*.png: frames of the virtual camera watching 3DBenchy at two thirds
of its height, clean, with failures and with a nuisance. Same seed in each, so what differs
between two pictures is the event alone.

Usage: python scripts/vcam_pictures.py [MODEL.stl] [--out docs/pictures]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from printforge.hardware.camera.compose import compose  # noqa: E402
from printforge.hardware.camera.events import Injection, draw_params  # noqa: E402
from printforge.hardware.camera.follow import PrintView  # noqa: E402
from printforge.hardware.camera.frame import Lens  # noqa: E402
from printforge.hardware.camera.render import render_rgb  # noqa: E402
from printforge.hardware.camera.virtual import default_pose  # noqa: E402
from printforge.hardware.camera.worker import describe_part  # noqa: E402
from printforge.models.printer import PrinterProfile, PrinterState  # noqa: E402

PROFILE = PrinterProfile(name="generic-220")
COLOR = (0.85, 0.33, 0.10)
# name -> (kind, parameters set by hand for a clear picture; the rest drawn from the seed)
PICTURES: dict[str, tuple[str | None, dict[str, object]]] = {
    "clean": (None, {}),
    "spaghetti": ("spaghetti", {}),
    "layer-shift": ("layer_shift", {"dx": 7.0, "dy": 0.0}),
    "hand": ("hand", {}),
}
MAX_BYTES = 100_000


def _default_model() -> Path:
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared/models/3DBenchy.stl").is_file():
            return base / "shared/models/3DBenchy.stl"
    return ROOT.parent / "shared/models/3DBenchy.stl"


def _png(pixels: np.ndarray) -> bytes:
    """Small enough to commit: half-size, then a 64-colour palette if that is still too big."""
    image = Image.fromarray(pixels).resize((480, 360), Image.Resampling.LANCZOS)
    for colours in (None, 128, 64, 32):
        out = io.BytesIO()
        shown = image if colours is None else image.quantize(colours, dither=Image.Dither.NONE)
        shown.save(out, "PNG", optimize=True)
        if out.tell() <= MAX_BYTES:
            return out.getvalue()
    raise SystemExit("a picture stays above 100 KB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", nargs="?")
    ap.add_argument("--out", default=str(ROOT / "docs" / "pictures"))
    args = ap.parse_args()
    model = Path(args.model) if args.model else _default_model()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    part = describe_part(str(model), (110.0, 110.0))
    height = round(part.top * 2 / 3, 1)
    layer = round(height / 0.2)
    view = PrintView(
        job="pictures",
        mesh=model,
        state=PrinterState.PRINTING,
        layer=layer,
        layers_total=round(part.top / 0.2),
        height=height,
        head=(part.center[0] + 20.0, part.center[1] + 5.0, height),
    )
    start = layer - 40
    for name, (kind, params) in PICTURES.items():
        events = []
        if kind is not None:
            drawn = {**draw_params(kind, np.random.default_rng(5), COLOR), **params}
            z0 = start * 0.2
            events.append(Injection(1, kind, start, None, "request", 5, drawn, start, z0))
        spec = compose(
            view,
            events,
            pose=default_pose(PROFILE, None),
            lens=Lens(),
            bed=(PROFILE.bed_x, PROFILE.bed_y, False),
            color=COLOR,
            seed=5,
            frame=1,
            part=part,
        )
        data = _png(render_rgb(spec))
        path = out / f"vcam-{name}.png"
        path.write_bytes(data)
        print(f"{path} {len(data) // 1024} KB")


if __name__ == "__main__":
    main()
