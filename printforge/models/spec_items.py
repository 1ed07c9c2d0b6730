"""Parametric part families of the design spec, part 2: mechanical, round and household parts.

A family node builds its bodies in print orientation, resting on z = 0 and centred in XY.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from printforge.models.spec_base import SpecNode, hole_fits, positive, vec, wall_vs

__all__ = [
    "Coaster",
    "CookieCutter",
    "DrawerHandle",
    "Funnel",
    "Gear",
    "Knob",
    "Nameplate",
    "PlantPot",
    "Plate",
    "Spacer",
    "Standoffs",
    "Tube",
    "Vase",
    "Washer",
    "Wedge",
]


# mechanical ------------------------------------------------------------------------------------


class Gear(SpecNode):
    """An involute spur gear. Tip diameter = module x (teeth + 2); pitch = module x teeth."""

    kind: Literal["gear"] = "gear"
    module: float = Field(
        2.0, description="gear module in mm (tooth size); gears that mesh share it"
    )
    teeth: int = Field(20, ge=6, le=200, description="number of teeth")
    thickness: float = Field(8.0, description="face width (height of the gear), mm")
    bore: float = Field(5.0, ge=0, description="centre hole diameter for the shaft, 0 for none")
    pressure_angle: float = Field(20.0, ge=14.5, le=30, description="pressure angle, °")

    def problems(self) -> list[str]:
        out = positive(module=self.module, thickness=self.thickness)
        if out:
            return out
        root = self.module * (self.teeth - 2.5)
        if self.bore >= root - 2:
            out.append(
                f"bore {self.bore} mm leaves no rim inside the root circle"
                f" ({root:.1f} mm); use under {max(root - 2, 0):.1f} mm"
            )
        return out


class Tube(SpecNode):
    """A round tube standing upright."""

    kind: Literal["tube"] = "tube"
    outer_diameter: float = Field(description="outside diameter, mm")
    inner_diameter: float = Field(description="inside diameter, mm")
    height: float = Field(description="length of the tube (printed height), mm")

    def problems(self) -> list[str]:
        out = positive(
            outer_diameter=self.outer_diameter,
            inner_diameter=self.inner_diameter,
            height=self.height,
        )
        if not out and self.inner_diameter >= self.outer_diameter:
            out.append(
                f"inner_diameter {self.inner_diameter} mm must be smaller than"
                f" outer_diameter {self.outer_diameter} mm"
            )
        return out


class Washer(SpecNode):
    """A flat washer."""

    kind: Literal["washer"] = "washer"
    outer_diameter: float = Field(description="outside diameter, mm")
    inner_diameter: float = Field(description="hole diameter, mm")
    thickness: float = Field(1.5, description="thickness, mm")

    def problems(self) -> list[str]:
        out = positive(
            outer_diameter=self.outer_diameter,
            inner_diameter=self.inner_diameter,
            thickness=self.thickness,
        )
        if not out and self.inner_diameter >= self.outer_diameter:
            out.append(
                f"inner_diameter {self.inner_diameter} mm must be smaller than"
                f" outer_diameter {self.outer_diameter} mm"
            )
        return out


class Spacer(SpecNode):
    """A round spacer (a short sleeve for a screw), optionally with hexagonal outside."""

    kind: Literal["spacer"] = "spacer"
    outer_diameter: float = Field(8.0, description="outside diameter (across corners for hex)")
    hole_diameter: float = Field(3.4, description="screw hole diameter, mm")
    height: float = Field(10.0, description="length of the spacer, mm")
    hexagonal: bool = Field(False, description="hexagonal outside instead of round")

    def problems(self) -> list[str]:
        out = positive(
            outer_diameter=self.outer_diameter, hole_diameter=self.hole_diameter, height=self.height
        )
        if (
            not out
            and self.hole_diameter >= self.outer_diameter * (0.85 if self.hexagonal else 1.0) - 0.8
        ):
            out.append(
                f"hole_diameter {self.hole_diameter} mm leaves no wall in a"
                f" {self.outer_diameter} mm spacer"
            )
        return out


class Standoffs(SpecNode):
    """Four standoffs on a rectangular hole pattern (e.g. 58 x 49 mm for a Raspberry Pi), joined
    by a base frame, or four loose standoffs when base_thickness is 0."""

    kind: Literal["standoffs"] = "standoffs"
    spacing: list[float] = vec(2, "[x, y] distance between hole centres, mm")
    height: float = Field(6.0, description="standoff height above the base, mm")
    outer_diameter: float = Field(6.0, description="standoff outside diameter, mm")
    hole_diameter: float = Field(2.5, description="screw hole diameter, mm")
    base_thickness: float = Field(2.0, ge=0, description="frame joining them, 0 = loose")

    def problems(self) -> list[str]:
        out = positive(
            spacing=self.spacing,
            height=self.height,
            outer_diameter=self.outer_diameter,
            hole_diameter=self.hole_diameter,
        )
        if out:
            return out
        if self.hole_diameter >= self.outer_diameter - 0.8:
            out.append(
                f"hole_diameter {self.hole_diameter} mm leaves no wall in a"
                f" {self.outer_diameter} mm standoff"
            )
        if min(self.spacing) <= self.outer_diameter:
            out.append(
                f"spacing {self.spacing} mm makes the standoffs overlap; use more than"
                f" {self.outer_diameter} mm"
            )
        return out


class Plate(SpecNode):
    """A flat plate with a grid of holes or holes at given positions."""

    kind: Literal["plate"] = "plate"
    size: list[float] = vec(2, "[x, y] plate size, mm")
    thickness: float = Field(3.0, description="plate thickness, mm")
    corner_radius: float = Field(0.0, ge=0, description="corner rounding, mm")
    hole_diameter: float = Field(0.0, ge=0, description="diameter of every hole, 0 for none")
    hole_columns: int = Field(0, ge=0, le=50, description="holes along X in the grid")
    hole_rows: int = Field(0, ge=0, le=50, description="holes along Y in the grid")
    hole_margin: float = Field(6.0, description="distance from plate edge to outer hole centres")
    holes: list[list[float]] = Field(
        default_factory=list,
        description="extra [x, y] hole centres measured from the plate centre, mm",
    )
    hole_style: Literal["plain", "countersunk", "counterbored", "hex_pocket"] = Field(
        "plain",
        description="every hole's top: plain, countersunk (90°), counterbored, or a"
        " hexagonal pocket for a nut or bolt head",
    )
    head_diameter: float = Field(
        0.0,
        ge=0,
        description="countersink/counterbore diameter, or the hex pocket's size"
        " across flats, mm; 0 = twice the hole",
    )
    head_depth: float = Field(0.0, ge=0, description="counterbore or pocket depth, mm; 0 = auto")
    slot_length: float = Field(
        0.0, ge=0, description="every hole becomes a slot this long along x, mm; 0 = round"
    )

    def head(self) -> tuple[float, float]:
        """(diameter or across flats, depth) of each hole's head recess; (0, 0) for plain."""
        if self.hole_style == "plain" or self.hole_diameter <= 0:
            return 0.0, 0.0
        d = self.head_diameter or round(self.hole_diameter * 2, 2)
        if self.hole_style == "countersunk":
            return d, (d - self.hole_diameter) / 2  # a 90 degree cone
        return d, self.head_depth or round(min(self.thickness / 2, d * 0.6), 2)

    def hole_centres(self) -> list[tuple[float, float]]:
        x, y = self.size
        out = [(float(h[0]), float(h[1])) for h in self.holes]
        cols, rows = self.hole_columns, self.hole_rows
        if cols and rows:
            xs = (
                [0.0]
                if cols == 1
                else [
                    -x / 2 + self.hole_margin + i * (x - 2 * self.hole_margin) / (cols - 1)
                    for i in range(cols)
                ]
            )
            ys = (
                [0.0]
                if rows == 1
                else [
                    -y / 2 + self.hole_margin + j * (y - 2 * self.hole_margin) / (rows - 1)
                    for j in range(rows)
                ]
            )
            out += [(a, b) for a in xs for b in ys]
        return out

    def problems(self) -> list[str]:
        out = positive(size=self.size, thickness=self.thickness)
        if out:
            return out
        if any(len(h) != 2 for h in self.holes):
            return ["each entry of holes must be [x, y]"]
        x, y = self.size
        r = self.hole_diameter / 2
        if (self.holes or (self.hole_columns and self.hole_rows)) and not r:
            out.append("holes are placed but hole_diameter is 0; give the hole diameter")
        for hx, hy in self.hole_centres():
            if abs(hx) + r > x / 2 - 0.5 or abs(hy) + r > y / 2 - 0.5:
                out.append(
                    f"a {self.hole_diameter} mm hole at [{hx:.1f}, {hy:.1f}] runs off the"
                    f" {x} x {y} mm plate; move it inwards or increase hole_margin"
                )
                break
        centres = self.hole_centres()
        for i, (ax, ay) in enumerate(centres):
            if any(math.hypot(ax - bx, ay - by) < 2 * r for bx, by in centres[i + 1 :]):
                out.append("some holes overlap each other; space them further apart")
                break
        if self.corner_radius * 2 >= min(x, y):
            out.append(f"corner_radius {self.corner_radius} mm is too large for the plate")
        d, depth = self.head()
        if d and d <= self.hole_diameter:
            out.append(f"head_diameter {d} mm must be larger than the hole {self.hole_diameter} mm")
        elif depth >= self.thickness:
            out.append(
                f"the {self.hole_style} recess ({depth:.1f} mm deep) must be shallower than the"
                f" plate ({self.thickness} mm)"
            )
        return out


# decorative and household ----------------------------------------------------------------------


def _sides(sides: int) -> list[str]:
    if sides in (1, 2):
        return [f"sides {sides} makes no solid: use 0 for round or 3 and more for a polygon"]
    return []


class Vase(SpecNode):
    """A vase or cup turned from a smooth profile: radii from bottom to top, evenly spaced.
    Round, or polygonal with `sides`, optionally twisted (a spiral vase)."""

    kind: Literal["vase"] = "vase"
    height: float = Field(120.0, description="total height, mm")
    radii: list[float] = Field(
        default_factory=lambda: [30.0, 40.0, 25.0, 30.0],
        min_length=2,
        max_length=12,
        description="outside radius (to a corner when polygonal) at evenly spaced heights"
        " from bottom to top, mm",
    )
    wall: float = Field(1.6, description="wall thickness, mm")
    floor: float = Field(
        2.0, ge=0, description="bottom thickness, mm; 0 for an open sleeve (lamp shade)"
    )
    sides: int = Field(0, ge=0, le=64, description="0 = round, 3-64 = polygonal")
    twist: float = Field(
        0.0,
        ge=-360,
        le=360,
        description="turn of the top relative to the bottom, degrees (for polygonal vases)",
    )

    def problems(self) -> list[str]:
        out = positive(height=self.height, radii=self.radii, wall=self.wall)
        out += _sides(self.sides)
        if out:
            return out
        if self.wall >= min(self.radii):
            out.append(
                f"wall {self.wall} mm is too thick for the narrowest radius {min(self.radii)} mm"
            )
        if self.floor >= self.height:
            out.append(f"floor {self.floor} mm must be thinner than the height {self.height} mm")
        return out


class PlantPot(SpecNode):
    """A tapered plant pot with a drainage hole, or a pencil cup when drain_hole_diameter is 0."""

    kind: Literal["plant_pot"] = "plant_pot"
    height: float = Field(80.0, description="height, mm")
    top_diameter: float = Field(90.0, description="outside diameter at the rim, mm")
    bottom_diameter: float = Field(65.0, description="outside diameter at the foot, mm")
    wall: float = Field(2.0, description="wall thickness, mm")
    floor: float = Field(2.5, description="bottom thickness, mm")
    drain_hole_diameter: float = Field(8.0, ge=0, description="drainage hole, 0 for none")
    sides: int = Field(
        0, ge=0, le=64, description="0 = round, 3-64 = polygonal (diameters to the corners)"
    )

    def problems(self) -> list[str]:
        out = positive(
            height=self.height,
            top_diameter=self.top_diameter,
            bottom_diameter=self.bottom_diameter,
            wall=self.wall,
            floor=self.floor,
        )
        out += _sides(self.sides)
        if out:
            return out
        out += wall_vs("wall", self.wall, min(self.top_diameter, self.bottom_diameter), "a pot")
        if self.floor >= self.height:
            out.append(f"floor {self.floor} mm must be thinner than the height {self.height} mm")
        out += hole_fits(
            self.drain_hole_diameter, self.bottom_diameter - 2 * self.wall, "the pot's floor"
        )
        return out


class Nameplate(SpecNode):
    """A plate with raised or engraved text (desk sign, door sign, key tag with a hole).
    A size of [0, 0] fits the plate to the text."""

    kind: Literal["nameplate"] = "nameplate"
    text: str = Field(
        min_length=1,
        max_length=60,
        description="the text (A-Z 0-9 and basic punctuation; lower case is drawn as capitals)",
    )
    size: list[float] = vec(2, "[x, y] plate size in mm, [0, 0] to fit the text", [0.0, 0.0])
    thickness: float = Field(3.0, description="plate thickness, mm")
    text_height: float = Field(10.0, description="height of the capital letters, mm")
    text_depth: float = Field(1.0, description="how far the text stands up or is cut in, mm")
    style: Literal["raised", "engraved"] = Field("raised", description="raised or engraved text")
    corner_radius: float = Field(2.0, ge=0, description="corner rounding, mm")
    hole_diameter: float = Field(
        0.0, ge=0, description="hole at the left end for a key ring or nail, 0 for none"
    )

    def problems(self) -> list[str]:
        out = positive(
            thickness=self.thickness, text_height=self.text_height, text_depth=self.text_depth
        )
        if any(v < 0 for v in self.size) or (0 in self.size and any(self.size)):
            out.append(f"size {self.size} must be both above 0, or [0, 0] to fit the text")
        if not out and self.style == "engraved" and self.text_depth >= self.thickness:
            out.append(
                f"text_depth {self.text_depth} mm must be less than the thickness"
                f" {self.thickness} mm to engrave"
            )
        if not self.text.strip():
            out.append("text is empty")
        return out


class CookieCutter(SpecNode):
    """A cookie cutter: a thin blade following an outline, with a stiffening flange at the top
    (printed flange down). Shapes: circle, star, heart, or polygon from `points`."""

    kind: Literal["cookie_cutter"] = "cookie_cutter"
    shape: Literal["circle", "star", "heart", "polygon"] = Field(
        "circle", description="outline shape; polygon uses `points`"
    )
    size: float = Field(
        60.0, description="overall size of the cutter (larger side, flange included), mm"
    )
    points: list[list[float]] = Field(
        default_factory=list, description="[x, y] outline for shape polygon (scaled to size)"
    )
    height: float = Field(15.0, description="blade height including the flange, mm")
    blade: float = Field(0.8, description="blade thickness, mm")
    flange_width: float = Field(3.0, ge=0, description="flange width outside the blade, mm")
    flange_thickness: float = Field(1.6, ge=0, description="flange thickness, mm")

    def problems(self) -> list[str]:
        out = positive(size=self.size, height=self.height, blade=self.blade)
        if out:
            return out
        if self.shape == "polygon" and len(self.points) < 3:
            out.append("shape polygon needs at least 3 points [x, y]")
        if any(len(p) != 2 for p in self.points):
            out.append("each point must be [x, y]")
        if self.flange_thickness >= self.height:
            out.append("flange_thickness must be less than the height")
        if 4 * self.blade >= self.size:
            out.append(f"blade {self.blade} mm is too thick for a {self.size} mm cutter")
        elif self.outline_size() < 5.0:
            out.append(
                f"size {self.size} mm leaves no outline inside the blade and flange; use over"
                f" {self.size - self.outline_size() + 5.0:g} mm"
            )
        return out

    def outline_size(self) -> float:
        """The cutting outline's larger side: the cutter's size less blade and flange."""
        flange = self.flange_width if self.flange_thickness > 0 else 0.0
        return self.size - 2 * (self.blade + flange)


class Coaster(SpecNode):
    """A drink coaster: a disc (or rounded square) with a low rim around the edge."""

    kind: Literal["coaster"] = "coaster"
    diameter: float = Field(95.0, description="outside diameter (or side for square), mm")
    thickness: float = Field(3.0, description="base thickness, mm")
    rim_height: float = Field(2.0, ge=0, description="rim height above the base, 0 for none")
    rim_width: float = Field(2.5, description="rim width, mm")
    square: bool = Field(False, description="rounded square instead of round")

    def problems(self) -> list[str]:
        out = positive(diameter=self.diameter, thickness=self.thickness, rim_width=self.rim_width)
        if not out:
            out += wall_vs("rim_width", self.rim_width, self.diameter, "a coaster")
        return out


class Knob(SpecNode):
    """A round control knob with grip ridges and a blind hole for a shaft, optionally D-shaped.
    Prints with its top face on the bed, shaft hole pointing up."""

    kind: Literal["knob"] = "knob"
    diameter: float = Field(30.0, description="outside diameter, mm")
    height: float = Field(18.0, description="height, mm")
    shaft_diameter: float = Field(6.0, description="shaft diameter (hole), mm")
    shaft_depth: float = Field(12.0, description="depth of the shaft hole, mm")
    d_flat: bool = Field(True, description="D-shaped hole for a shaft with a flat side")
    ridges: int = Field(18, ge=0, le=90, description="grip ridges around the side, 0 for smooth")

    def problems(self) -> list[str]:
        out = positive(
            diameter=self.diameter,
            height=self.height,
            shaft_diameter=self.shaft_diameter,
            shaft_depth=self.shaft_depth,
        )
        if out:
            return out
        if self.shaft_diameter >= self.diameter - 3:
            out.append(
                f"shaft_diameter {self.shaft_diameter} mm leaves under 1.5 mm of wall in"
                f" a {self.diameter} mm knob"
            )
        if self.shaft_depth >= self.height - 0.8:
            out.append(
                f"shaft_depth {self.shaft_depth} mm must be less than the height"
                f" {self.height} mm minus 0.8 mm, or the hole comes through the top"
            )
        return out


class DrawerHandle(SpecNode):
    """A bar pull for a drawer or door: a grip on two posts with screw pilot holes in their
    ends. Prints on its side (the profile on the bed): x = length + post width, z = width."""

    kind: Literal["drawer_handle"] = "drawer_handle"
    hole_spacing: float = Field(96.0, description="centre-to-centre distance of the screws, mm")
    clearance: float = Field(25.0, description="room for the fingers behind the grip, mm")
    width: float = Field(12.0, description="width of the grip (printed height), mm")
    thickness: float = Field(8.0, description="thickness of grip and posts, mm")
    hole_diameter: float = Field(3.3, ge=0, description="screw pilot hole (3.3 for M4), mm")
    hole_depth: float = Field(12.0, description="depth of the pilot holes, mm")

    def problems(self) -> list[str]:
        out = positive(
            hole_spacing=self.hole_spacing,
            clearance=self.clearance,
            width=self.width,
            thickness=self.thickness,
            hole_depth=self.hole_depth,
        )
        if out:
            return out
        if self.hole_spacing <= 2 * self.thickness:
            out.append(
                f"hole_spacing {self.hole_spacing} mm must be more than twice the"
                f" thickness {self.thickness} mm"
            )
        out += hole_fits(self.hole_diameter, min(self.width, self.thickness), "a post")
        if self.hole_depth >= self.clearance + self.thickness - 1:
            out.append(
                f"hole_depth {self.hole_depth} mm would come out through the grip; use"
                f" under {self.clearance + self.thickness - 1:.1f} mm"
            )
        return out


class Funnel(SpecNode):
    """A funnel: a cone narrowing to a spout. Prints wide mouth down."""

    kind: Literal["funnel"] = "funnel"
    top_diameter: float = Field(80.0, description="outside diameter of the mouth, mm")
    spout_diameter: float = Field(12.0, description="outside diameter of the spout, mm")
    cone_height: float = Field(45.0, description="height of the cone, mm")
    spout_length: float = Field(25.0, ge=0, description="length of the straight spout, mm")
    wall: float = Field(1.6, description="wall thickness, mm")

    def problems(self) -> list[str]:
        out = positive(
            top_diameter=self.top_diameter,
            spout_diameter=self.spout_diameter,
            cone_height=self.cone_height,
            wall=self.wall,
        )
        if out:
            return out
        if self.spout_diameter >= self.top_diameter:
            out.append("spout_diameter must be smaller than top_diameter")
        out += wall_vs("wall", self.wall, self.spout_diameter, "a spout")
        return out


class Wedge(SpecNode):
    """A wedge (door stop, shim, laptop riser): a ramp rising along X to `height`."""

    kind: Literal["wedge"] = "wedge"
    length: float = Field(120.0, description="length along the slope's run (X), mm")
    width: float = Field(40.0, description="width (Y), mm")
    height: float = Field(25.0, description="height at the thick end, mm")
    tip: float = Field(1.0, ge=0, description="thickness at the thin end, mm")

    def problems(self) -> list[str]:
        out = positive(length=self.length, width=self.width, height=self.height)
        if not out and self.tip >= self.height:
            out.append(f"tip {self.tip} mm must be thinner than the height {self.height} mm")
        return out
