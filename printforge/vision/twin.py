"""The digital twin: the part as the G-code says it should stand at a layer, drawn from the
camera's pose (`[printers.NAME.camera]` position, look_at, fov_deg, resolution).

A plain pinhole camera: the twin knows nothing of the lens it is compared with, so the
comparison leaves a pixel or two of slack at edges and finds its own offset (compare.py).
Drawn as points: the side cells of every layer up to the current one, at the layer's top and
middle, and the top surface of the stack, nearest last. Cheap: ~40 k points for a 20 mm cube.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from printforge.vision.toolpath import Toolpath

__all__ = ["SIDE", "TOP", "Pinhole", "Twin", "TwinView"]

Vec3 = tuple[float, float, float]
TOP, SIDE = 2, 1  # labels of a twin view


@dataclass(frozen=True)
class Pinhole:
    """World (mm) to picture (pixels) for a camera at `position` facing `look_at`."""

    position: Vec3
    look_at: Vec3
    fov_deg: float
    width: int
    height: int

    def scaled(self, factor: float) -> Pinhole:
        w, h = round(self.width * factor), round(self.height * factor)
        return Pinhole(self.position, self.look_at, self.fov_deg, w, h)

    def _axes(self) -> np.ndarray:
        forward = np.subtract(self.look_at, self.position).astype(float)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        if np.linalg.norm(right) < 1e-9:  # looking straight down: any right will do
            right = np.array([1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        return np.stack([right, down, forward])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, 3) points -> column, row (float pixels) and depth (mm along the view)."""
        cam = (points - np.asarray(self.position)) @ self._axes().T
        focal = (self.width / 2) / math.tan(math.radians(self.fov_deg) / 2)
        depth = cam[:, 2]
        safe = np.where(depth > 1e-6, depth, np.nan)
        u = cam[:, 0] / safe * focal + self.width / 2
        v = cam[:, 1] / safe * focal + self.height / 2
        return u, v, depth


@dataclass(frozen=True)
class TwinView:
    """The expected part at one layer: `label` is 0 (not the part), SIDE or TOP per pixel."""

    layer: int
    label: np.ndarray  # (h, w) uint8

    @property
    def mask(self) -> np.ndarray:
        return self.label > 0

    def shaded(self) -> np.ndarray:
        """A grey picture of the twin (for people: the diagnosis shows it beside the frame)."""
        grey = np.full(self.label.shape, 40, dtype=np.uint8)
        grey[self.label == SIDE] = 150
        grey[self.label == TOP] = 215
        return np.repeat(grey[:, :, None], 3, axis=2)


class Twin:
    """Renders a toolpath's part at any layer, from one camera."""

    def __init__(self, toolpath: Toolpath, camera: Pinhole) -> None:
        self.toolpath = toolpath
        self.camera = camera
        tp = toolpath
        # Side cells of each layer once: a cell on the edge of its layer's footprint.
        self._sides: list[np.ndarray] = []
        for i in range(tp.layers):
            edge = tp.cells[i] & ~ndimage.binary_erosion(tp.cells[i])
            rows, cols = np.nonzero(edge)
            x = tp.origin[0] + (cols + 0.5) * tp.cell_mm
            y = tp.origin[1] + (rows + 0.5) * tp.cell_mm
            top = float(tp.heights[i])
            mid = top - tp.thickness(i) / 2
            pts = np.concatenate(
                [
                    np.stack([x, y, np.full_like(x, top)], 1),
                    np.stack([x, y, np.full_like(x, mid)], 1),
                ]
            )
            self._sides.append(pts)

    def height_at(self, layer: int) -> float:
        """The top of the part after `layer` layers, mm (0 before the first)."""
        if layer <= 0 or self.toolpath.layers == 0:
            return 0.0
        return float(self.toolpath.heights[min(layer, self.toolpath.layers) - 1])

    def object_masks(self) -> dict[str, np.ndarray]:
        """Where each labelled object of the plate stands in the picture, whole (empty for a
        plate of one object): the watch tells which object a failure is on."""
        tp = self.toolpath
        if tp.owner is None:
            return {}
        out = {}
        top = float(tp.heights[-1]) if tp.layers else 0.0
        for index, name in enumerate(tp.objects):
            rows, cols = np.nonzero(tp.owner == index)
            if rows.size == 0:
                continue
            x = tp.origin[0] + (cols + 0.5) * tp.cell_mm
            y = tp.origin[1] + (rows + 0.5) * tp.cell_mm
            pts = np.concatenate(
                [np.stack([x, y, np.full_like(x, z)], 1) for z in (0.0, top / 2, top)]
            )
            u, v, depth = self.camera.project(pts)
            ok = np.isfinite(u) & np.isfinite(v) & (depth > 0)
            r, c = np.floor(v[ok]).astype(int), np.floor(u[ok]).astype(int)
            inside = (r >= 0) & (r < self.camera.height) & (c >= 0) & (c < self.camera.width)
            mask = np.zeros((self.camera.height, self.camera.width), dtype=bool)
            mask[r[inside], c[inside]] = True
            out[name] = ndimage.binary_closing(mask, iterations=3)
        return out

    def render(self, layer: int) -> TwinView:
        cam = self.camera
        label = np.zeros((cam.height, cam.width), dtype=np.uint8)
        n = min(max(layer, 0), self.toolpath.layers)
        if n == 0:
            return TwinView(layer, label)
        tp = self.toolpath
        stack = tp.cells[:n]
        covered = stack.any(axis=0)
        last = n - 1 - np.argmax(stack[::-1], axis=0)  # the highest layer over each cell
        rows, cols = np.nonzero(covered)
        tx = tp.origin[0] + (cols + 0.5) * tp.cell_mm
        ty = tp.origin[1] + (rows + 0.5) * tp.cell_mm
        tz = tp.heights[last[rows, cols]]
        tops = np.stack([tx, ty, tz], 1)
        sides = np.concatenate(self._sides[:n])
        points = np.concatenate([sides, tops])
        kinds = np.concatenate(
            [np.full(len(sides), SIDE, np.uint8), np.full(len(tops), TOP, np.uint8)]
        )
        u, v, depth = cam.project(points)
        ok = np.isfinite(u) & np.isfinite(v) & (depth > 0)
        u, v, depth, kinds = u[ok], v[ok], depth[ok], kinds[ok]
        order = np.argsort(-depth)  # far first: the nearest point of a pixel is written last
        u, v, kinds = u[order], v[order], kinds[order]
        c0, r0 = np.floor(u).astype(int), np.floor(v).astype(int)
        for dr in (0, 1):
            for dc in (0, 1):
                r, c = r0 + dr, c0 + dc
                inside = (r >= 0) & (r < cam.height) & (c >= 0) & (c < cam.width)
                label[r[inside], c[inside]] = kinds[inside]
        # Points of a far part can fall a pixel apart: close the silhouette.
        solid = ndimage.binary_closing(label > 0, iterations=1) & ~(label > 0)
        label[solid] = SIDE
        return TwinView(layer, label)
