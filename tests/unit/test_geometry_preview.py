"""The preview is a real picture of the part: the right size, the part drawn and shaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from printforge.geometry import build_mesh
from printforge.geometry.preview import _creases, _rasterise, render_png, render_preview
from printforge.models.spec import DesignSpec


def _mesh(part: dict[str, object]):  # type: ignore[no-untyped-def]
    return build_mesh(DesignSpec.model_validate({"name": "p", "parts": [part]}))


def _orange(img: Image.Image) -> np.ndarray:
    px = np.asarray(img.convert("RGB"), dtype=int)
    return (px[..., 0] > px[..., 2] + 60) & (px[..., 0] > 80)


def test_png_written_with_the_part_in_view(tmp_path: Path) -> None:
    path = render_png(
        _mesh({"kind": "box_with_lid", "size": [60, 40, 30]}),
        tmp_path / "p.png",
        label="box",
        size=(320, 240),
    )
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (320, 240)
        part = _orange(img)
    assert 0.05 < part.mean() < 0.6  # drawn, and fitted rather than filling the frame
    ys, xs = np.nonzero(part)
    assert xs.min() > 0 and xs.max() < 319 and ys.min() > 0 and ys.max() < 239


def test_faces_are_shaded_differently() -> None:
    img = render_preview(_mesh({"kind": "box", "size": [20, 20, 20]}), (200, 150))
    px = np.asarray(img, dtype=int)[_orange(img)]
    # Top and two sides of a cube: at least three clearly different brightness levels.
    levels = np.unique(px.sum(axis=1) // 30)
    assert len(levels) >= 3


def test_nearer_triangle_wins_whatever_the_order() -> None:
    # Two triangles over the same pixels: depth decides, not drawing order.
    far = [[10, 10, 1.0], [90, 10, 1.0], [50, 90, 1.0]]
    near = [[10, 12, 5.0], [90, 12, 5.0], [50, 92, 5.0]]
    for tris, nearest in (([far, near], 1), ([near, far], 0)):
        owner = _rasterise(np.asarray(tris, dtype=float), 100, 100)
        assert owner[40, 50] == nearest
        assert owner[5, 5] == -1


def test_creases_mark_outlines_and_sharp_edges_only() -> None:
    owner = np.full((6, 8), -1)
    owner[1:5, 1:4] = 0  # two faces side by side...
    owner[1:5, 4:7] = 1
    flat = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    bent = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert not _creases(owner, flat)[2, 3]  # ...in one plane: no line between them
    assert _creases(owner, bent)[2, 3]  # ...at a right angle: a line
    outline = _creases(owner, flat)
    assert outline[2, 6] and outline[4, 2] and outline[1, 2] and outline[3, 1]  # all 4 sides
    assert not _creases(owner, flat)[0, 0]  # background is never drawn on
