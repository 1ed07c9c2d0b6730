"""Parametric part families of the design spec, part 3: what makers ask for that parts 1 and 2
lack: pegboard hooks, fan plates and ducts, a print-in-place hinge, tool holders, a sliding-lid
box, grommets, bag clips and cable combs.

Like every family node, each builds in its print pose, centred in XY and standing on z = 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from printforge.models.spec_base import SpecNode, hole_fits, positive, vec, wall_vs

__all__ = [
    "FAN_HOLE_SPACING",
    "BagClip",
    "CableComb",
    "FanDuct",
    "FanPlate",
    "Grommet",
    "PegboardHook",
    "PinHinge",
    "SlidingBox",
    "ToolHolder",
    "fan_hole_diameter",
]

# Centre-to-centre spacing of the four screw holes of square case fans (the frame sizes the
# fan makers publish), mm.
FAN_HOLE_SPACING: dict[int, float] = {
    40: 32.0,
    50: 40.0,
    60: 50.0,
    70: 60.0,
    80: 71.5,
    92: 82.5,
    120: 105.0,
    140: 124.5,
}


def fan_hole_diameter(fan: int) -> float:
    """Clearance for the fan's screws: M3 on 40 and 50 mm fans, the 4.4 mm fan screw above."""
    return 3.4 if fan <= 50 else 4.4


FanSize = Literal[40, 50, 60, 70, 80, 92, 120, 140]


class PegboardHook(SpecNode):
    """A hook that hangs on a pegboard: pegs go through the board's holes and catch behind it,
    an arm reaches out and ends in a tip that rises. board "pegboard" = 1/4 in holes on a 1 in
    grid; "skadis" = IKEA Skadis, 5 x 15 mm slots 40 mm apart in a column, 5 mm board.
    Prints on its side (the profile on the bed): x = reach, y = height, z = width."""

    kind: Literal["pegboard_hook"] = "pegboard_hook"
    board: Literal["pegboard", "skadis"] = Field("pegboard", description="which board it fits")
    reach: float = Field(40.0, description="how far the arm stands off the board, mm")
    tip_height: float = Field(15.0, description="how high the tip rises above the arm, mm")
    width: float = Field(10.0, description="width of back and arm (printed height), mm")
    thickness: float = Field(5.0, description="material thickness, mm")

    def problems(self) -> list[str]:
        out = positive(
            reach=self.reach, tip_height=self.tip_height, width=self.width, thickness=self.thickness
        )
        if not out and self.reach <= 2 * self.thickness:
            out.append(f"reach {self.reach} mm must be more than twice the thickness")
        if not out and self.width < 5.0:
            out.append("width must be at least 5 mm (the pegs are 4.4 mm wide)")
        return out


class FanPlate(SpecNode):
    """A square plate for a case fan: its four screw holes on the standard spacing and an
    opening for the air, optionally covered by a grill of rings and spokes. With
    `second_fan`, the plate is an adapter: the larger fan's size and holes, the smaller fan's
    holes too, and the smaller fan's opening. Flat."""

    kind: Literal["fan_plate"] = "fan_plate"
    fan: FanSize = Field(description="fan size in mm (the square frame's side)")
    second_fan: Literal[0, 40, 50, 60, 70, 80, 92, 120, 140] = Field(
        0, description="for an adapter: the other fan's size; 0 for none"
    )
    thickness: float = Field(3.0, description="plate thickness, mm")
    grill: bool = Field(False, description="cover the opening with rings and spokes")

    def problems(self) -> list[str]:
        out = positive(thickness=self.thickness)
        if self.second_fan == self.fan:
            out.append("second_fan must differ from fan (or be 0)")
        return out


class FanDuct(SpecNode):
    """A shroud or duct from one fan size to another: a square flange with each fan's screw
    holes at both ends joined by a hollow tapered duct. Prints with the larger flange down:
    z = length (flanges included)."""

    kind: Literal["fan_duct"] = "fan_duct"
    fan_in: FanSize = Field(description="fan size of the bottom flange, mm")
    fan_out: FanSize = Field(description="fan size of the top flange, mm")
    length: float = Field(50.0, description="overall length, flanges included, mm")
    flange_thickness: float = Field(3.0, description="flange thickness, mm")
    wall: float = Field(1.6, description="duct wall thickness, mm")

    def problems(self) -> list[str]:
        out = positive(length=self.length, flange_thickness=self.flange_thickness, wall=self.wall)
        if not out and self.length <= 2 * self.flange_thickness + 2:
            out.append(
                f"length {self.length} mm leaves no duct between two"
                f" {self.flange_thickness} mm flanges; use over {2 * self.flange_thickness + 2:g}"
            )
        return out


class PinHinge(SpecNode):
    """A print-in-place pin hinge: two flat leaves whose knuckles alternate around a pin that
    is part of one leaf and turns freely in the other's knuckles (`clearance` all round).
    Two interlocked bodies printed opened flat: x = length (along the pin), y = the two leaves."""

    kind: Literal["pin_hinge"] = "pin_hinge"
    length: float = Field(40.0, description="length along the pin, mm")
    leaf_width: float = Field(20.0, description="width of each leaf from the pin axis, mm")
    thickness: float = Field(2.0, description="leaf thickness, mm")
    knuckles: int = Field(5, ge=3, le=15, description="knuckles along the pin (odd)")
    clearance: float = Field(0.4, ge=0.2, le=1.0, description="gap between moving parts, mm")
    hole_diameter: float = Field(0.0, ge=0, description="screw holes in each leaf, 0 for none")

    def knuckle_diameter(self) -> float:
        return max(2 * self.thickness + 2.0, 6.0)

    def problems(self) -> list[str]:
        out = positive(length=self.length, leaf_width=self.leaf_width, thickness=self.thickness)
        if out:
            return out
        if self.knuckles % 2 == 0:
            out.append(f"knuckles {self.knuckles} must be odd (both outer ones on one leaf)")
        seg = (self.length - (self.knuckles - 1) * self.clearance) / self.knuckles
        if seg < 2.0:
            out.append(f"{self.knuckles} knuckles leave {seg:.1f} mm each; use fewer or longer")
        if self.leaf_width <= self.knuckle_diameter() / 2 + 2:
            out.append(
                f"leaf_width {self.leaf_width} mm is too narrow for the"
                f" {self.knuckle_diameter():.1f} mm knuckles"
            )
        if self.hole_diameter:
            out += hole_fits(
                self.hole_diameter, self.leaf_width - self.knuckle_diameter() / 2, "a leaf"
            )
        return out


class ToolHolder(SpecNode):
    """A block with a row (or rows) of holes sized for tools: hex keys (hexagonal holes across
    flats), screwdrivers, drill bits, pens, brushes. Each hole is its tool's size plus
    `clearance`. With `wall_mount` a back plate with two screw holes stands behind it (a rack);
    holes go through. Prints flat, holes vertical."""

    kind: Literal["tool_holder"] = "tool_holder"
    holes: list[float] = Field(
        min_length=1, max_length=60, description="tool sizes (diameter, or across flats), mm"
    )
    hex: bool = Field(False, description="hexagonal holes (hex keys) instead of round")
    rows: int = Field(1, ge=1, le=10, description="rows the holes are spread over")
    clearance: float = Field(0.4, ge=0, le=3, description="added to each tool size, mm")
    spacing: float = Field(4.0, description="material between neighbouring holes, mm")
    height: float = Field(25.0, description="block height, mm")
    depth: float = Field(20.0, description="hole depth (the block's height when through), mm")
    wall_mount: bool = Field(False, description="a back plate with screw holes; holes through")

    def problems(self) -> list[str]:
        out = positive(holes=self.holes, spacing=self.spacing, height=self.height, depth=self.depth)
        if out:
            return out
        if self.depth > self.height:
            out.append(f"depth {self.depth} mm must not exceed the height {self.height} mm")
        if self.rows > len(self.holes):
            out.append(f"rows {self.rows} is more than the {len(self.holes)} holes")
        return out


class SlidingBox(SpecNode):
    """A box whose flat lid slides in grooves along the two long walls, in through a lowered
    end wall. Two bodies: the box (opening up) and the lid (flat)."""

    kind: Literal["sliding_box"] = "sliding_box"
    size: list[float] = vec(3, "[x, y, z] outer size, mm (the lid slides along x)")
    wall: float = Field(2.0, description="wall thickness, mm (at least 1.6 for the grooves)")
    floor: float = Field(2.0, description="bottom thickness, mm")
    lid_thickness: float = Field(2.0, description="lid thickness, mm")
    clearance: float = Field(0.3, ge=0.1, le=1.0, description="play of the lid, mm")

    def problems(self) -> list[str]:
        out = positive(
            size=self.size, wall=self.wall, floor=self.floor, lid_thickness=self.lid_thickness
        )
        if out:
            return out
        x, y, z = self.size
        out += wall_vs("wall", self.wall, min(x, y), "a box")
        if self.wall < 1.6:
            out.append(f"wall {self.wall} mm is too thin for lid grooves; use at least 1.6 mm")
        if self.floor + self.lid_thickness + 2.0 >= z:
            out.append(f"height {z} mm leaves no room under a {self.lid_thickness} mm lid")
        return out


class Grommet(SpecNode):
    """A grommet for a hole in a panel: a flange on the front, a sleeve through the panel hole
    and a lip that snaps behind it, with a hole through for cables. Prints flange down."""

    kind: Literal["grommet"] = "grommet"
    panel_hole: float = Field(description="diameter of the hole in the panel, mm")
    panel_thickness: float = Field(3.0, description="thickness of the panel, mm")
    bore: float = Field(description="cable hole through the middle, mm")
    flange: float = Field(0.0, ge=0, description="flange diameter, mm; 0 = panel hole + 10")
    flange_thickness: float = Field(2.0, description="flange thickness, mm")

    def flange_diameter(self) -> float:
        return self.flange or self.panel_hole + 10.0

    def problems(self) -> list[str]:
        out = positive(
            panel_hole=self.panel_hole,
            panel_thickness=self.panel_thickness,
            bore=self.bore,
            flange_thickness=self.flange_thickness,
        )
        if out:
            return out
        if self.bore >= self.panel_hole - 2.0:
            out.append(
                f"bore {self.bore} mm leaves no sleeve wall in a {self.panel_hole} mm hole;"
                f" use under {self.panel_hole - 2.0:g} mm"
            )
        if self.flange and self.flange <= self.panel_hole + 2:
            out.append(f"flange {self.flange} mm must be wider than the panel hole by 2 mm")
        return out


class BagClip(SpecNode):
    """A bag clip: two jaws joined by a springy loop at one end, closed by a hook latch at the
    other. Prints flat on its side: x = length, z = width."""

    kind: Literal["bag_clip"] = "bag_clip"
    length: float = Field(100.0, description="overall length, mm")
    width: float = Field(12.0, description="width of the jaws (printed height), mm")
    thickness: float = Field(3.0, description="jaw thickness, mm")

    def problems(self) -> list[str]:
        out = positive(length=self.length, width=self.width, thickness=self.thickness)
        if not out and self.length < 40:
            out.append(f"length {self.length} mm is too short for a clip; use at least 40 mm")
        return out


class CableComb(SpecNode):
    """A cable comb: a plate with a grid of holes, one per cable, each with a slit to the
    nearest long edge when there are at most two rows so a cable can be pushed in. Flat."""

    kind: Literal["cable_comb"] = "cable_comb"
    cable_diameter: float = Field(description="diameter of each cable, mm")
    columns: int = Field(ge=1, le=40, description="cables across")
    rows: int = Field(1, ge=1, le=10, description="rows of cables")
    thickness: float = Field(4.0, description="plate thickness, mm")
    gap: float = Field(2.0, description="material between neighbouring holes, mm")

    def problems(self) -> list[str]:
        return positive(cable_diameter=self.cable_diameter, thickness=self.thickness, gap=self.gap)
