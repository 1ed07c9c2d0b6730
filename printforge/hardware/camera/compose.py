"""From what the printer is doing and which events are under way to the description of a frame.

Runs on the event loop, so it only does arithmetic on a handful of numbers; the geometry each
event implies is made in the render worker from the description.

How each failure changes the part (heights are the part's own, z0 is the height it had reached
when the failure started):

- clog: nothing is added above z0; the head goes on rising.
- spaghetti: nothing sticks above z0; filament piles up in strands around the part and hangs
  from the nozzle, more with every layer.
- layer_shift: everything above z0 is offset in X/Y, the head too (the motor lost steps).
- detached: the part as it was at z0 is moved and turned on the bed (knocked over, now and
  then); the layers after z0 are laid in the air where the part should have been.
- under_extrusion: the layers above z0 have gaps.
- blob: plastic gathers around the nozzle, growing each layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from printforge.hardware.camera.events import Injection
from printforge.hardware.camera.follow import PrintView
from printforge.hardware.camera.frame import (
    NO_MOTION,
    FrameSpec,
    Lens,
    Motion,
    Piece,
    Pose,
    Spaghetti,
)

__all__ = ["PartInfo", "compose", "hex_rgb"]

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class PartInfo:
    """The placed part's extent on the bed, mm (from the render worker)."""

    center: tuple[float, float]
    half: tuple[float, float]
    top: float


def hex_rgb(text: str) -> RGB:
    return (int(text[1:3], 16) / 255, int(text[3:5], 16) / 255, int(text[5:7], 16) / 255)


def _split(pieces: list[Piece], z0: float) -> list[Piece]:
    out: list[Piece] = []
    for piece in pieces:
        if piece.z_lo < z0 < piece.z_hi:
            out += [replace(piece, z_hi=z0), replace(piece, z_lo=z0)]
        else:
            out.append(piece)
    return out


def _moved(motion: Motion, dx: float, dy: float) -> Motion:
    yaw, tilt, pivot, (mx, my, mz) = motion
    return (yaw, tilt, pivot, (mx + dx, my + dy, mz))


def compose(
    view: PrintView,
    events: list[Injection],
    *,
    pose: Pose,
    lens: Lens,
    bed: tuple[float, float, bool],
    color: RGB,
    seed: int,
    frame: int,
    part: PartInfo | None,
) -> FrameSpec:
    """The frame for this view with these events (active ones and ended ones: a failure that
    ended with the print still shows; an ended nuisance no longer does)."""
    height = view.height if part is None else min(view.height, part.top)
    pieces = [Piece(0.0, height)] if view.mesh is not None and height > 0 else []
    head = view.head
    hand: int | None = None
    shake = 0.0
    gain, tint = 1.0, (1.0, 1.0, 1.0)
    bands: list[tuple[float, float, RGB]] = []
    spaghetti: Spaghetti | None = None
    blob_mm, blob_seed = 0.0, 0
    started = [e for e in events if e.started_layer is not None]
    started.sort(key=lambda e: (e.started_layer or 0, e.id))
    for event in started:
        z0 = event.started_z or 0.0
        grown = max(0, view.layer - (event.started_layer or 0))
        p = event.params
        if event.category == "failure":
            if event.kind in ("clog", "spaghetti"):
                pieces = [replace(x, z_hi=min(x.z_hi, z0)) for x in pieces if x.z_lo < z0]
                if event.kind == "spaghetti":
                    spaghetti = Spaghetti(event.seed, min(90, 6 + 3 * grown), z0)
            elif event.kind == "layer_shift":
                pieces = _split(pieces, z0)
                dx, dy = float(p.get("dx", 0.0)), float(p.get("dy", 0.0))
                pieces = [
                    replace(x, motion=_moved(x.motion, dx, dy)) if x.z_lo >= z0 else x
                    for x in pieces
                ]
                if head is not None:
                    head = (head[0] + dx, head[1] + dy, head[2])
            elif event.kind == "detached":
                pieces = _split(pieces, z0)
                pivot = (*part.center, 0.0) if part is not None else (0.0, 0.0, 0.0)
                knocked: Motion = (
                    float(p.get("yaw_deg", 0.0)),
                    float(p.get("tilt_deg", 0.0)),
                    pivot,
                    (float(p.get("dx", 0.0)), float(p.get("dy", 0.0)), 0.0),
                )
                pieces = [
                    replace(x, motion=knocked) if x.z_hi <= z0 and x.motion == NO_MOTION else x
                    for x in pieces
                ]
            elif event.kind == "under_extrusion":
                pieces = _split(pieces, z0)
                gaps = float(p.get("gaps", 0.4))
                pieces = [
                    replace(x, gaps=gaps, gap_seed=event.seed) if x.z_lo >= z0 else x
                    for x in pieces
                ]
            elif event.kind == "blob":
                size = 1.5 + float(p.get("mm_per_layer", 0.6)) * grown
                blob_mm = max(blob_mm, min(size, float(p.get("max_mm", 8.0))))
                blob_seed = event.seed
            continue
        if event.kind == "color":
            # The filament printed while it lasted stays that colour; others are nuisances
            # of the moment and show only while active.
            top = height + 1.0 if event.active else (event.ended_z or height)
            bands.append((z0, top, hex_rgb(str(p["color"]))))
            continue
        if not event.active:
            continue
        if event.kind == "light":
            gain *= float(p.get("gain", 1.0))
            t = p.get("tint", (1.0, 1.0, 1.0))
            tint = (tint[0] * float(t[0]), tint[1] * float(t[1]), tint[2] * float(t[2]))
        elif event.kind == "shake":
            shake = max(shake, float(p.get("amplitude", 1.0)))
        elif event.kind == "hand":
            hand = event.seed
        elif event.kind == "head_front" and part is not None:
            head = _in_front(part, pose, height)
    return FrameSpec(
        pose=pose,
        bed=bed,
        lens=lens,
        frame=frame,
        seed=seed,
        mesh=str(view.mesh) if view.mesh is not None else None,
        pieces=tuple(x for x in pieces if x.z_hi > x.z_lo),
        color=color,
        color_bands=tuple(bands),
        head=head,
        blob_mm=blob_mm,
        blob_seed=blob_seed,
        spaghetti=spaghetti,
        hand_seed=hand,
        light=(gain, tint),
        shake=shake,
    )


def _in_front(part: PartInfo, pose: Pose, height: float) -> tuple[float, float, float]:
    """The nozzle just off the part's side that faces the camera, at the part's top."""
    cx, cy = part.center
    dx, dy = pose.position[0] - cx, pose.position[1] - cy
    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    reach = abs(ux) * part.half[0] + abs(uy) * part.half[1] + 10.0
    return (cx + ux * reach, cy + uy * reach, height + 0.3)
