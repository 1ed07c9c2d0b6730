"""A plate of two labelled objects (issue 17): the twin knows which object covers which cell,
and a failure seen on one of them is put on that one, so the watch cancels it alone.

The frames are painted from the twin itself (plastic where the twin says, on a grey bed):
what is tested is the attribution, not the camera."""

from __future__ import annotations

import numpy as np

from printforge.vision.config import DetectionConfig
from printforge.vision.detector import Detector
from printforge.vision.toolpath import read_toolpath
from printforge.vision.twin import Pinhole, Twin

CAMERA = Pinhole((110.0, -11.0, 88.0), (110.0, 110.0, 10.0), 60.0, 640, 480)


def _square(x0: float, y0: float, size: float, z: float, e: float) -> tuple[list[str], float]:
    lines = [f"G1 X{x0:.2f} Y{y0:.2f} Z{z:.2f} F3000"]
    for x, y in ((x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size), (x0, y0)):
        e += 1.0
        lines.append(f"G1 X{x:.2f} Y{y:.2f} E{e:.3f} F1200")
    return lines, e


def _plate() -> str:
    """Two 12 mm square towers, 8 mm tall, labelled a and b as a slicer labels them."""
    out = ["G28", "G92 E0", "M486 T2"]
    e = 0.0
    for layer in range(1, 41):
        z = 0.2 * layer
        for index, (name, x0) in enumerate((("a", 86.0), ("b", 118.0))):
            out += [f"M486 S{index}", f"M486 A{name}"]
            for inset in (0.0, 0.4, 0.8):
                lines, e = _square(x0 + inset, 104.0 + inset, 12.0 - 2 * inset, z, e)
                out += lines
            out.append("M486 S-1")
    return "\n".join(out) + "\n"


def _frame(twin: Twin, layer: int, without: np.ndarray | None = None) -> np.ndarray:
    frame = np.full((480, 640, 3), (120.0, 118.0, 115.0), dtype=np.float32)
    mask = twin.render(layer).mask
    if without is not None:
        mask = mask & ~without
    frame[mask] = (217.0, 84.0, 26.0)
    return frame


def test_the_toolpath_knows_the_objects_of_the_plate() -> None:
    tp = read_toolpath(_plate())
    assert tp.objects == ("a", "b") and tp.owner is not None
    assert set(np.unique(tp.owner)) == {-1, 0, 1}


def test_a_failure_on_one_object_is_put_on_that_object() -> None:
    twin = Twin(read_toolpath(_plate()), CAMERA)
    masks = twin.object_masks()
    assert set(masks) == {"a", "b"} and not (masks["a"] & masks["b"]).any()
    detector = Detector(twin, DetectionConfig(start_layer=4))
    detector.observe(0, _frame(twin, 0))
    for layer in range(4, 20):
        assert not detector.observe(layer, _frame(twin, layer)).failing
    # Object b is knocked off: from layer 20 nothing of it is where it should be.
    verdicts = [detector.observe(n, _frame(twin, n, without=masks["b"])) for n in (20, 21)]
    assert verdicts[-1].stop and verdicts[-1].object == "b"
    # Cancelled, b is no longer expected: a goes on, watched, and nothing fails.
    detector.forget_object("b")
    for layer in range(22, 30):
        assert not detector.observe(layer, _frame(twin, layer, without=masks["b"])).failing
