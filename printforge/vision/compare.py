"""A camera frame against the twin: where plastic is, where it should be, and how far apart.

Cheap on a CPU (a 640x480 frame in ~30 ms of numpy) and normalised against what must not
raise an alarm:

- light: each colour channel is scaled so the bed, away from the part, matches the picture
  taken before the print (the reference);
- a knocked camera: the frame is shifted to the reference (a search on gradients, which a
  change of light leaves alone);
- the print head and a hand: not filament-coloured, so they hide the part (neither present
  nor missing) rather than count as plastic where none should be;
- another filament: plastic is told from the bed by its change against the reference and by
  its saturation, never by its hue.

What is left is measured in regions of the twin: the part's body (missing plastic), the band
the last layers should have added (a clog, a detached part), and around it (spaghetti, a blob,
a shifted layer, a part knocked off).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = [
    "Evidence",
    "LayerScore",
    "Reference",
    "decode",
    "evidence",
    "find_offset",
    "resized",
    "score",
]

FG_LEVEL = 60.0  # summed |RGB| change against the reference that counts as something there
PLASTIC_SATURATION = 0.38  # filament is coloured; the head (black, steel) and shadows are not
PLASTIC_VALUE = 45.0
CHROMA_CHANGE = 0.08  # summed |r g b| / (r + g + b) change that is not the bed any more
SHIFT_RADIUS = 12  # px of camera shake searched (at full size)
SHIFT_GAIN = 0.02  # how much better than no shift a shift must fit


def decode(jpeg: bytes) -> np.ndarray:
    """A JPEG as (h, w, 3) float32 RGB."""
    with Image.open(io.BytesIO(jpeg)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32)


def resized(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame at the size the twin is drawn (a camera configured at another resolution)."""
    im = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).resize((width, height))
    return np.asarray(im, dtype=np.float32)


def _smooth(img: np.ndarray) -> np.ndarray:
    # Sensor noise and JPEG blocks are a level or two; a 3x3 mean keeps them under FG_LEVEL.
    return ndimage.uniform_filter(img, size=(3, 3, 1))


def _grad(grey: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(grey)
    g = np.abs(gx) + np.abs(gy)
    return g / (np.median(g) + 1.0)


@dataclass(frozen=True)
class Reference:
    """The bed before the part grows: the picture everything is compared against, and what
    every frame's comparison needs of it, computed once."""

    image: np.ndarray  # (h, w, 3) float32, smoothed
    quarter_grad: np.ndarray
    grad: np.ndarray
    chroma: np.ndarray
    calm: np.ndarray  # where light and shake are measured (see `evidence`)
    calm_level: np.ndarray  # per channel, the median over the calm pixels

    @classmethod
    def of(cls, frame: np.ndarray, calm: np.ndarray) -> Reference:
        image = _smooth(frame)
        chroma = image / np.maximum(image.sum(axis=2, keepdims=True), 1.0)
        level = np.median(image[::3, ::3][calm[::3, ::3]], axis=0)
        return cls(
            image,
            _grad(image[::4, ::4].mean(axis=2)),
            _grad(image.mean(axis=2)),
            chroma,
            calm,
            level,
        )


@dataclass(frozen=True)
class Evidence:
    """What a frame shows, aligned to the reference."""

    plastic: np.ndarray  # bool: filament-coloured and not the reference
    occluder: np.ndarray  # bool: changed, but not filament (head, hand, shadow)
    shift: tuple[int, int]  # (rows, columns) the frame was moved by
    gain: tuple[float, float, float]
    aligned: np.ndarray  # the frame as compared (float32)


def _register(img: np.ndarray, ref: Reference, calm: np.ndarray) -> tuple[int, int]:
    """The integer shift (rows, columns) that lays `img` best on the reference."""
    g = _grad(img[::4, ::4].mean(axis=2))
    r = ref.quarter_grad
    c = calm[::4, ::4][: r.shape[0], : r.shape[1]]
    k = SHIFT_RADIUS // 4
    h, w = r.shape
    inner = (slice(k, h - k), slice(k, w - k))
    rc, cc = r[inner], c[inner]
    if not cc.any():
        return (0, 0)

    def coarse(dy: int, dx: int) -> float:
        return float(np.abs(g[k + dy : h - k + dy, k + dx : w - k + dx] - rc)[cc].mean())

    # A shift must do clearly better than none: a bed without texture (or a frame that did
    # not move) stays where it is rather than wander to the first of equal costs.
    best, arg = coarse(0, 0) * (1 - SHIFT_GAIN), (0, 0)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            cost = coarse(dy, dx)
            if cost < best:
                best, arg = cost, (dy, dx)
    # Refine at full size around the coarse answer.
    full_g = _grad(img.mean(axis=2))
    full_r = ref.grad
    H, W = full_r.shape
    m = SHIFT_RADIUS + 4
    base = (arg[0] * 4, arg[1] * 4)
    rc, cc = full_r[m : H - m : 2, m : W - m : 2], calm[m : H - m : 2, m : W - m : 2]

    def fine(dy: int, dx: int) -> float:
        moved = full_g[m + dy : H - m + dy : 2, m + dx : W - m + dx : 2]
        return float(np.abs(moved - rc)[cc].mean())

    best, out = fine(*base), base
    if base == (0, 0):
        best *= 1 - SHIFT_GAIN
    for dy in range(base[0] - 3, base[0] + 4):
        for dx in range(base[1] - 3, base[1] + 4):
            if abs(dy) > m or abs(dx) > m:
                continue
            cost = fine(dy, dx)
            if cost < best:
                best, out = cost, (dy, dx)
    return out


def _shifted(img: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """`img` moved so that its pixel (r + dy, c + dx) lands on (r, c); edges repeat."""
    dy, dx = shift
    h, w = img.shape[:2]
    rows = np.clip(np.arange(h) + dy, 0, h - 1)
    cols = np.clip(np.arange(w) + dx, 0, w - 1)
    return img[rows][:, cols]


def _without_specks(mask: np.ndarray, smallest: int = 6) -> np.ndarray:
    """Drop blobs of fewer than `smallest` pixels (noise), keeping thin strands of filament
    that an opening would erase."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= smallest
    keep[0] = False
    out: np.ndarray = keep[labels]
    return out


def evidence(frame: np.ndarray, ref: Reference) -> Evidence:
    """Plastic and occluders in `frame`; light and shake are measured where the reference
    says no part will stand (`Reference.calm`, the bed around it)."""
    calm = ref.calm
    img = _smooth(frame)
    shift = _register(img, ref, calm)
    img = _shifted(img, shift)
    level = np.median(img[::3, ::3][calm[::3, ::3]], axis=0)
    gains = [float(b / a) if a > 1 else 1.0 for a, b in zip(level, ref.calm_level, strict=True)]
    img = np.clip(img * np.asarray(gains, dtype=np.float32), 0, 255)
    change = np.abs(img - ref.image).sum(axis=2)
    fg = change > FG_LEVEL
    top = img.max(axis=2)
    low = img.min(axis=2)
    sat = (top - low) / np.maximum(top, 1.0)
    coloured = (sat > PLASTIC_SATURATION) & (top > PLASTIC_VALUE)
    # A darker or lighter bed (a shadow, the blurred edge of the head) keeps its chromaticity;
    # plastic on it changes it.
    chroma = img / np.maximum(img.sum(axis=2, keepdims=True), 1.0)
    tinted = np.abs(chroma - ref.chroma).sum(axis=2) > CHROMA_CHANGE
    plastic = _without_specks(fg & coloured & tinted)
    occluder = fg & ~plastic
    return Evidence(plastic, occluder, shift, (gains[0], gains[1], gains[2]), img)


def find_offset(mask: np.ndarray, plastic: np.ndarray, radius: int = 8) -> tuple[int, int]:
    """The shift of the twin's mask that overlaps the plastic best (the twin's pinhole against
    a real lens, and a camera pose given to the nearest few mm)."""
    best, arg = -1.0, (0, 0)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            m = _shifted(mask, (-dy, -dx))
            inter = float((m & plastic).sum())
            union = float((m | plastic).sum()) or 1.0
            if inter / union > best:
                best, arg = inter / union, (dy, dx)
    return arg


@dataclass(frozen=True)
class LayerScore:
    """One layer's comparison; `score` is the largest of the region scores."""

    layer: int
    score: float
    missing: float  # share of the visible body with no plastic
    band: float  # layers the part's top stands lower than the twin's (a clog: it grows)
    extra: float  # plastic outside the expected part, in units of the part's area
    visible: float  # share of the expected part not hidden by the head or a hand
    kind: str  # the failure it looks like most

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "layer": self.layer,
            "score": round(float(self.score), 4),
            "missing": round(float(self.missing), 4),
            "band": None if math.isnan(self.band) else round(float(self.band), 4),
            "extra": round(float(self.extra), 4),
            "visible": round(float(self.visible), 4),
            "kind": self.kind,
        }


MIN_VISIBLE_PX = 120  # fewer pixels of a region in sight than this: it says nothing
STRAY_SCALE = 6.0  # stray pixels, per pixel of the square root of the part's area
SHORT_LAYERS_SCALE = 6.0  # layers short that count as much as a missing body


def score(
    layer: int,
    ev: Evidence,
    now: np.ndarray,
    before: np.ndarray,
    offset: tuple[int, int],
    *,
    band_layers: int,
    baseline: float | None = 0.0,
) -> LayerScore:
    """Compare the evidence with the twin at this layer (`now`) and `band_layers` before
    (`before`); both masks are moved by `offset` first. `baseline` is how many layers short
    the part looked while all was well (the twin's pinhole against the real lens); None while
    it is not known yet: the growth is measured (`band`) but not scored."""
    t_now = _shifted(now, (-offset[0], -offset[1]))
    t_before = _shifted(before, (-offset[0], -offset[1]))
    area = max(int(t_now.sum()), 1)
    body = ndimage.binary_erosion(t_now, iterations=3)
    seen = ~ev.occluder
    vis_body = body & seen
    missing = _share(vis_body & ~ev.plastic, vis_body)
    short = _layers_short(ev, t_now, t_before, band_layers)
    around = ~ndimage.binary_dilation(t_now, iterations=6)
    # Plastic right beside the head is its blurred edge on the bed, not a strand.
    near_head = ndimage.binary_dilation(ev.occluder, iterations=2)
    stray = ev.plastic & around & ~near_head
    # Beside the recent layers, closer in: a layer shift moves them sideways.
    band = t_now & ~t_before
    rows = np.nonzero(band.any(axis=1))[0]
    beside = np.zeros_like(band)
    if rows.size:
        beside[rows.min() : rows.max() + 1] = True
        beside &= ~ndimage.binary_dilation(t_now, iterations=3) & ~near_head
    shifted = float((ev.plastic & beside).sum()) / max(int(band.sum()), MIN_VISIBLE_PX)
    # Stray plastic counts against the part's size (its square root: a 6 mm blob on a 20 mm
    # cube is as sure a sign as on a 40 mm one, but a knocked-off part is sure on any).
    extra = max(float(stray.sum()) / (STRAY_SCALE * np.sqrt(area)), 0.5 * shifted)
    visible = float(vis_body.sum()) / max(int(body.sum()), 1)
    growth = 0.0
    if baseline is not None and not math.isnan(short):
        growth = max(0.0, short - baseline) / SHORT_LAYERS_SCALE
    value = max(missing, growth, extra)
    return LayerScore(
        layer, value, missing, short, extra, visible, _kind(missing, growth, extra, stray, t_now)
    )


def _top_rows(mask: np.ndarray) -> np.ndarray:
    """Per column, the first row of the mask (-1 where the column is empty)."""
    return np.where(mask.any(axis=0), np.argmax(mask, axis=0), -1)


def _layers_short(ev: Evidence, t_now: np.ndarray, t_before: np.ndarray, band_layers: int) -> float:
    """How many layers lower the part's top edge stands than the twin's, over the columns
    where the top is in sight (a clog, spaghetti, a part gone: the part stops growing)."""
    top_now = _top_rows(t_now)
    top_before = _top_rows(t_before)
    bottom = t_now.shape[0] - 1 - _top_rows(t_now[::-1])
    inner = ndimage.binary_erosion(top_now >= 0, iterations=4)
    cols = np.nonzero(inner & (top_before >= 0))[0]
    if cols.size < 5:
        return math.nan
    px_per_layer = float(np.mean(top_before[cols] - top_now[cols])) / band_layers
    if px_per_layer < 0.2:
        return math.nan  # the top does not move in the picture (a flat part seen from above)
    h = t_now.shape[0]
    deficits = []
    for c in cols:
        lo = max(0, int(top_now[c]) - 6)
        hi = int(bottom[c]) + 1
        if ev.occluder[lo : min(h, int(top_now[c]) + 6), c].any():
            continue  # the head hides this column's top
        found = np.nonzero(ev.plastic[lo:hi, c])[0]
        deficits.append(float(found[0] + lo - top_now[c]) if found.size else float(hi - lo))
    if len(deficits) < 5:
        return math.nan
    d = np.sort(np.asarray(deficits))
    cut = len(d) // 5  # trimmed mean: the columns at a corner or a strand say little
    mean = float(d[cut : len(d) - cut].mean())
    # Half a pixel either way is the edge's blur and the JPEG's, not a missing layer.
    return math.copysign(max(0.0, abs(mean) - 0.5), mean) / px_per_layer


def _share(part: np.ndarray, whole: np.ndarray) -> float:
    n = int(whole.sum())
    return float(part.sum()) / n if n >= MIN_VISIBLE_PX else 0.0


def _kind(missing: float, growth: float, extra: float, stray: np.ndarray, twin: np.ndarray) -> str:
    """A guess at the failure from where the evidence is (the reaction's re-slice uses it)."""
    if extra >= max(missing, growth):
        rows, _ = np.nonzero(twin)
        srows, _ = np.nonzero(stray)
        if rows.size and srows.size:
            top = rows.min()
            if float((srows < top).mean()) > 0.6:
                return "blob"  # on the nozzle, above the part
            labels, n = ndimage.label(stray)
            largest = np.bincount(labels.ravel())[1:].max() if n else 0
            if largest > 0.6 * srows.size and extra > 1.5:
                return "detached"  # one solid lump as large as the part, somewhere else
            if extra <= 1.0 and missing < 0.25:
                return "layer_shift"  # a strip beside the recent layers
        return "spaghetti"
    if growth > missing:
        return "clog"
    return "under_extrusion"
