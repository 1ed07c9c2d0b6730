"""The description of one frame, built on the event loop and rendered in the worker.

Only numbers and a path: cheap to build and to pickle, and everything the frame shows is
decided here, so a frame is a pure function of its description (the same description gives
the same picture, noise included).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FrameSpec", "Lens", "Piece", "Pose", "Spaghetti"]

RGB = tuple[float, float, float]
Vec3 = tuple[float, float, float]
# A rigid motion of a piece of the part: rotation about z (degrees) through `pivot`, then a
# tilt about the x axis through the same point (a part knocked over), then a translation.
Motion = tuple[float, float, Vec3, Vec3]  # (yaw_deg, tilt_deg, pivot, translation)

NO_MOTION: Motion = (0.0, 0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


@dataclass(frozen=True)
class Pose:
    position: Vec3
    look_at: Vec3
    fov_deg: float
    width: int
    height: int


@dataclass(frozen=True)
class Lens:
    """What the optics and the sensor do to the picture."""

    k1: float = 0.08  # radial (barrel) distortion of a cheap wide webcam lens
    vignette: float = 0.35  # light lost in the corners
    read_noise: float = 1.5  # sensor noise, 8-bit levels
    shot_noise: float = 0.25  # noise growing with the square root of the signal
    jpeg_quality: int = 80


@dataclass(frozen=True)
class Piece:
    """The part between two of its own heights, moved by `motion`; `gaps` > 0 leaves that
    share of its surface out (under-extrusion), seeded by `gap_seed`."""

    z_lo: float
    z_hi: float
    motion: Motion = NO_MOTION
    gaps: float = 0.0
    gap_seed: int = 0


@dataclass(frozen=True)
class Spaghetti:
    seed: int
    strands: int
    part_top: float  # the height the part reached when it stopped holding


@dataclass(frozen=True)
class FrameSpec:
    pose: Pose
    bed: tuple[float, float, bool]  # bed_x, bed_y, origin at the centre
    lens: Lens
    frame: int  # the frame's number: its noise and its shake
    seed: int
    mesh: str | None = None
    pieces: tuple[Piece, ...] = ()
    color: RGB = (0.85, 0.33, 0.10)
    # Bands of the part printed in another filament: (from height, to height, colour).
    color_bands: tuple[tuple[float, float, RGB], ...] = ()
    head: Vec3 | None = None  # where the nozzle tip physically is
    blob_mm: float = 0.0
    blob_seed: int = 0
    spaghetti: Spaghetti | None = None
    hand_seed: int | None = None
    light: tuple[float, RGB] = (1.0, (1.0, 1.0, 1.0))  # overall gain, colour of the light
    shake: float = 0.0  # size of the camera's knock this frame (0: steady)
