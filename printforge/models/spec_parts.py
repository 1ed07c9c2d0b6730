"""Parametric part families of the design spec, part 1: containers, brackets and mounts.

A family node builds its bodies in print orientation, resting on z = 0 and centred in XY; its
docstring says which way up it prints and what its size fields measure.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from printforge.models.spec_base import SpecNode, hole_fits, positive, vec, wall_vs

__all__ = [
    "BoxWithLid",
    "CableClip",
    "Enclosure",
    "LBracket",
    "PhoneStand",
    "PipeClamp",
    "Port",
    "ShelfBracket",
    "Tray",
    "WallHook",
]


# containers ------------------------------------------------------------------------------------


class BoxWithLid(SpecNode):
    """An open box and a separate lid whose lip fits inside it; two bodies printed side by side.
    The box prints opening up; the lid prints top plate down with its lip pointing up."""

    kind: Literal["box_with_lid"] = "box_with_lid"
    size: list[float] = vec(3, "[x, y, z] outer size of the box without its lid, mm")
    wall: float = Field(2.0, description="side wall thickness in mm")
    floor: float = Field(2.0, description="bottom thickness in mm")
    lid_thickness: float = Field(2.0, description="thickness of the lid's top plate in mm")
    lip_height: float = Field(4.0, description="height of the lid's lip that goes into the box")
    clearance: float = Field(0.2, ge=0, le=2, description="gap between lip and box wall, mm")
    corner_radius: float = Field(
        0.0,
        ge=0,
        description="outer vertical edge rounding, mm; half the shorter side gives"
        " round ends (a round box when x = y)",
    )

    def problems(self) -> list[str]:
        out = positive(
            size=self.size, wall=self.wall, floor=self.floor, lid_thickness=self.lid_thickness
        )
        if out:
            return out
        x, y, z = self.size
        out += wall_vs("wall", self.wall, min(x, y), "a box")
        if self.floor >= z:
            out.append(f"floor {self.floor} mm must be thinner than the box height {z} mm")
        elif self.lip_height < 0 or self.lip_height >= z - self.floor:
            out.append(
                f"lip_height {self.lip_height} mm must be 0 or more and less than the"
                f" inside depth {z - self.floor:.1f} mm"
            )
        inner = min(x, y) - 4 * self.wall - 2 * self.clearance
        if not out and self.lip_height > 0 and inner <= 0:
            out.append("the box is too small for a lid lip; make it larger or set lip_height 0")
        # Exactly half the shorter side is allowed: round ends, or a round box with a lid.
        if self.corner_radius * 2 > min(x, y) + 1e-9:
            out.append(
                f"corner_radius {self.corner_radius} mm is too large for the box;"
                f" use at most {min(x, y) / 2:.1f} mm"
            )
        return out


class Tray(SpecNode):
    """An open box or tray, optionally split into compartments by dividers. Prints opening up."""

    kind: Literal["tray"] = "tray"
    size: list[float] = vec(3, "[x, y, z] outer size, mm")
    wall: float = Field(2.0, description="side wall thickness in mm")
    floor: float = Field(2.0, description="bottom thickness in mm")
    corner_radius: float = Field(0.0, ge=0, description="outer vertical edge rounding, mm")
    compartments_x: int = Field(1, ge=1, le=20, description="compartments along X (1 = none)")
    compartments_y: int = Field(1, ge=1, le=20, description="compartments along Y (1 = none)")

    def problems(self) -> list[str]:
        out = positive(size=self.size, wall=self.wall, floor=self.floor)
        if out:
            return out
        x, y, z = self.size
        out += wall_vs("wall", self.wall, min(x, y), "a tray")
        if self.floor >= z:
            out.append(f"floor {self.floor} mm must be thinner than the tray height {z} mm")
        for n, span, axis in ((self.compartments_x, x, "x"), (self.compartments_y, y, "y")):
            cell = (span - (n + 1) * self.wall) / n
            # With one compartment a lack of room is the wall's fault, already said above.
            if cell < 2 and n > 1:
                out.append(f"{n} compartments along {axis} leave {cell:.1f} mm each; use fewer")
        if self.corner_radius * 2 >= min(x, y):
            out.append(f"corner_radius {self.corner_radius} mm is too large for the tray")
        return out


class Port(SpecNode):
    """A rectangular opening in one side wall of an enclosure (USB, power, cables)."""

    kind: Literal["port"] = "port"
    side: Literal["front", "back", "left", "right"] = Field(
        description="wall it goes through: front = -Y, back = +Y, left = -X, right = +X"
    )
    position: float = Field(0.0, description="centre along the wall from its middle, mm")
    bottom: float = Field(0.0, description="bottom of the opening above the board's top, mm")
    width: float = Field(description="opening width along the wall, mm")
    height: float = Field(description="opening height, mm")

    def problems(self) -> list[str]:
        return positive(width=self.width, height=self.height)


class Enclosure(SpecNode):
    """A case for a circuit board: a box with screw standoffs under the board's mounting holes
    and a lid with a lip. Two bodies. Outer size = board + 2 x (gap + wall).

    The board sits centred in the box. Its standoffs go under `holes` when given (board
    coordinates: origin at the board's front-left corner, the -X/-Y corner in the box, x along
    board_size[0]); otherwise four of them sit `hole_inset` from every board edge."""

    kind: Literal["enclosure"] = "enclosure"
    board_size: list[float] = vec(2, "[x, y] size of the circuit board, mm")
    board_thickness: float = Field(1.6, description="PCB thickness, mm")
    headroom: float = Field(15.0, description="free height above the board for parts, mm")
    wall: float = Field(2.0, description="wall, floor and lid thickness, mm")
    gap: float = Field(1.0, ge=0, description="space between board edge and wall, mm")
    standoff_height: float = Field(5.0, description="board distance above the floor, mm")
    hole_diameter: float = Field(2.5, description="standoff pilot hole for the screws, mm")
    hole_inset: float = Field(
        3.5, description="board mounting hole centres from board edges, when `holes` is not given"
    )
    holes: list[list[float]] | None = Field(
        None,
        max_length=12,
        description="mounting hole centres [x, y] in mm from the board's front-left corner"
        " (x along board_size[0]); replaces hole_inset unless null or empty",
    )
    lip_height: float = Field(3.0, ge=0, description="lid lip height, mm")
    clearance: float = Field(0.2, ge=0, le=2, description="lid lip play, mm")
    ports: list[Port] = Field(
        default_factory=list, max_length=12, description="openings in the side walls for connectors"
    )

    def outer(self) -> tuple[float, float, float]:
        bx, by = self.board_size
        m = 2 * (self.gap + self.wall)
        return (
            bx + m,
            by + m,
            self.wall + self.standoff_height + self.board_thickness + self.headroom,
        )

    def standoff_diameter(self) -> float:
        """Outside diameter of a standoff: its pilot hole plus two perimeters of wall."""
        return max(self.hole_diameter + 2.4, self.hole_diameter * 2)

    def hole_centres(self) -> list[tuple[float, float]]:
        """Standoff centres in the box's frame (board centred on the origin)."""
        bx, by = self.board_size
        if self.holes:
            return [(float(h[0]) - bx / 2, float(h[1]) - by / 2) for h in self.holes]
        hx, hy = bx / 2 - self.hole_inset, by / 2 - self.hole_inset
        return [(sx * hx, sy * hy) for sx in (-1, 1) for sy in (-1, 1)]

    def problems(self) -> list[str]:
        out = positive(
            board_size=self.board_size,
            board_thickness=self.board_thickness,
            headroom=self.headroom,
            wall=self.wall,
            standoff_height=self.standoff_height,
            hole_diameter=self.hole_diameter,
            hole_inset=self.hole_inset,
        )
        if out:
            return out
        if self.holes:
            return self._hole_list_problems() + self._port_problems()
        bx, by = self.board_size
        if 2 * self.hole_inset >= min(bx, by):
            out.append(
                f"hole_inset {self.hole_inset} mm puts the mounting holes outside the"
                f" {bx} x {by} mm board; use under {min(bx, by) / 2:.1f} mm"
            )
        if self.hole_diameter + 1.2 > 2 * self.hole_inset + 2 * self.gap:
            out.append(
                f"hole_diameter {self.hole_diameter} mm is too big for a standoff"
                f" {self.hole_inset} mm from the board edge; use a larger hole_inset"
            )
        return out + self._port_problems()

    def _hole_list_problems(self) -> list[str]:
        out: list[str] = []
        bx, by = self.board_size
        r_hole, r_post = self.hole_diameter / 2, self.standoff_diameter() / 2
        for i, h in enumerate(self.holes or []):
            if len(h) != 2:
                out.append(f"hole {i + 1} must be [x, y] (got {len(h)} numbers)")
                continue
            x, y = h
            # The hole must be on the board; its standoff may reach into the gap but not the wall.
            if not (r_hole <= x <= bx - r_hole and r_hole <= y <= by - r_hole):
                out.append(
                    f"hole {i + 1} at [{x:g}, {y:g}] is not on the {bx:g} x {by:g} mm"
                    " board (x from 0 to board_size[0], y from 0 to board_size[1],"
                    " from the board's front-left corner)"
                )
            elif min(x, bx - x, y, by - y) + self.gap < r_post:
                out.append(
                    f"hole {i + 1} at [{x:g}, {y:g}]: its {2 * r_post:.1f} mm standoff"
                    " runs into the wall; move it in or widen the gap"
                )
        if out:
            return out
        spots = self.hole_centres()
        for i, (xa, ya) in enumerate(spots):
            for j in range(i + 1, len(spots)):
                xb, yb = spots[j]
                if ((xa - xb) ** 2 + (ya - yb) ** 2) ** 0.5 < 2 * r_post:
                    out.append(
                        f"holes {i + 1} and {j + 1} are closer than one standoff"
                        f" ({2 * r_post:.1f} mm): their standoffs would merge"
                    )
        return out

    def _port_problems(self) -> list[str]:
        out: list[str] = []
        ox, oy, oz = self.outer()
        board_top = self.wall + self.standoff_height + self.board_thickness
        for i, port in enumerate(self.ports):
            along = ox if port.side in ("front", "back") else oy
            room = along / 2 - self.wall
            if abs(port.position) + port.width / 2 > room:
                out.append(
                    f"port {i + 1} ({port.side}) runs past the corner: keep"
                    f" |position| + width/2 under {room:.1f} mm"
                )
            if board_top + port.bottom < self.wall or board_top + port.bottom + port.height > oz:
                out.append(
                    f"port {i + 1} ({port.side}) leaves the wall: its top must stay"
                    f" under {oz - board_top:.1f} mm above the board and its bottom"
                    f" above the floor"
                )
        return out

    def port_boxes(self) -> list[tuple[tuple[float, float, float], tuple[float, float, float]]]:
        """Centre and size of each port's cutter, through its wall and 1 mm beyond."""
        ox, oy, _ = self.outer()
        board_top = self.wall + self.standoff_height + self.board_thickness
        out = []
        for p in self.ports:
            z = board_top + p.bottom + p.height / 2
            depth = self.wall + 2
            if p.side in ("front", "back"):
                y = (oy - self.wall) / 2 * (1 if p.side == "back" else -1)
                out.append(((p.position, y, z), (p.width, depth, p.height)))
            else:
                x = (ox - self.wall) / 2 * (1 if p.side == "right" else -1)
                out.append(((x, p.position, z), (depth, p.width, p.height)))
        return out


# brackets and mounts ---------------------------------------------------------------------------


class LBracket(SpecNode):
    """An L-shaped angle bracket with screw holes in both legs and optional triangular braces.
    Prints with the horizontal leg on the bed: x = leg_a, y = width, z = leg_b."""

    kind: Literal["l_bracket"] = "l_bracket"
    width: float = Field(20.0, description="width of both legs (along Y), mm")
    leg_a: float = Field(40.0, description="length of the horizontal leg, mm")
    leg_b: float = Field(40.0, description="height of the upright leg, mm")
    thickness: float = Field(4.0, description="thickness of both legs, mm")
    hole_diameter: float = Field(4.5, ge=0, description="screw hole diameter, 0 for none")
    holes_per_leg: int = Field(1, ge=0, le=6, description="screw holes in each leg")
    brace: bool = Field(True, description="add triangular braces at both sides")

    def problems(self) -> list[str]:
        out = positive(
            width=self.width, leg_a=self.leg_a, leg_b=self.leg_b, thickness=self.thickness
        )
        if out:
            return out
        t = self.thickness
        if t >= min(self.leg_a, self.leg_b):
            out.append(
                f"thickness {t} mm must be less than both legs ({self.leg_a} and {self.leg_b} mm)"
            )
            return out
        if self.holes_per_leg and self.hole_diameter:
            side = self.width - (2 * t if self.brace else 0)
            out += hole_fits(
                self.hole_diameter,
                side,
                "the width between the braces" if self.brace else "the leg width",
            )
            free = min(self.leg_a, self.leg_b) - t
            pitch = free / self.holes_per_leg
            if self.hole_diameter >= pitch - 1.0:
                out.append(
                    f"{self.holes_per_leg} holes of {self.hole_diameter} mm do not fit"
                    f" along a leg with {free:.1f} mm free; use fewer or smaller holes"
                )
        return out


class ShelfBracket(SpecNode):
    """A shelf bracket: two legs joined by a diagonal strut, screw holes in both legs. Prints
    lying on its side (the L profile on the bed): x = leg_a, y = leg_b, z = width."""

    kind: Literal["shelf_bracket"] = "shelf_bracket"
    width: float = Field(20.0, description="width of the bracket (printed height), mm")
    leg_a: float = Field(100.0, description="length of the leg under the shelf, mm")
    leg_b: float = Field(100.0, description="length of the leg on the wall, mm")
    thickness: float = Field(5.0, description="thickness of legs and strut, mm")
    hole_diameter: float = Field(4.5, ge=0, description="screw hole diameter, 0 for none")
    holes_per_leg: int = Field(2, ge=0, le=6, description="screw holes in each leg")

    def problems(self) -> list[str]:
        out = positive(
            width=self.width, leg_a=self.leg_a, leg_b=self.leg_b, thickness=self.thickness
        )
        if out:
            return out
        if 3 * self.thickness >= min(self.leg_a, self.leg_b):
            out.append(
                f"thickness {self.thickness} mm is too thick for legs of {self.leg_a} and"
                f" {self.leg_b} mm; use under {min(self.leg_a, self.leg_b) / 3:.1f} mm"
            )
        if self.holes_per_leg and self.hole_diameter:
            out += hole_fits(self.hole_diameter, self.width, "the bracket width")
        return out


class WallHook(SpecNode):
    """A J-shaped wall hook: a back plate with screw holes and an arm that curls up at the tip.
    Prints on its side (the J profile on the bed): x = reach, y = back_height, z = width."""

    kind: Literal["wall_hook"] = "wall_hook"
    width: float = Field(15.0, description="width of the hook (printed height), mm")
    back_height: float = Field(50.0, description="height of the plate on the wall, mm")
    reach: float = Field(30.0, description="how far the hook stands off the wall, mm")
    tip_height: float = Field(12.0, description="how high the tip rises above the arm, mm")
    thickness: float = Field(5.0, description="material thickness, mm")
    hole_diameter: float = Field(4.0, ge=0, description="screw hole diameter, 0 for none")
    holes: int = Field(2, ge=0, le=4, description="screw holes in the back plate")

    def problems(self) -> list[str]:
        out = positive(
            width=self.width,
            back_height=self.back_height,
            reach=self.reach,
            tip_height=self.tip_height,
            thickness=self.thickness,
        )
        if out:
            return out
        if 2 * self.thickness >= self.reach:
            out.append(
                f"reach {self.reach} mm must be more than twice the thickness {self.thickness} mm"
            )
        if self.thickness >= self.back_height / 2:
            out.append(
                f"back_height {self.back_height} mm is too short for thickness {self.thickness} mm"
            )
        if self.holes and self.hole_diameter:
            out += hole_fits(self.hole_diameter, self.width, "the hook width")
        return out


class CableClip(SpecNode):
    """A screw-on clip holding one cable against a wall: an arch over the cable and a tab with a
    screw hole. Prints on its side (the profile on the bed): z = width."""

    kind: Literal["cable_clip"] = "cable_clip"
    cable_diameter: float = Field(6.0, description="diameter of the cable it holds, mm")
    width: float = Field(10.0, description="width along the cable (printed height), mm")
    thickness: float = Field(2.0, description="material thickness, mm")
    hole_diameter: float = Field(3.5, ge=0, description="screw hole in the tab, 0 for none")
    tab_length: float = Field(10.0, description="length of the screw tab beside the arch, mm")

    def problems(self) -> list[str]:
        out = positive(
            cable_diameter=self.cable_diameter,
            width=self.width,
            thickness=self.thickness,
            tab_length=self.tab_length,
        )
        if out:
            return out
        out += hole_fits(self.hole_diameter, min(self.width, self.tab_length), "the tab")
        return out


class PipeClamp(SpecNode):
    """A saddle clamp for a pipe or rod with a screw flange on each side. Prints on its side
    (the profile on the bed): x = pipe + 2 flanges, z = width."""

    kind: Literal["pipe_clamp"] = "pipe_clamp"
    pipe_diameter: float = Field(20.0, description="outside diameter of the pipe, mm")
    width: float = Field(15.0, description="width along the pipe (printed height), mm")
    thickness: float = Field(3.0, description="material thickness, mm")
    flange_length: float = Field(12.0, description="length of each screw flange, mm")
    hole_diameter: float = Field(4.5, ge=0, description="screw hole per flange, 0 for none")

    def problems(self) -> list[str]:
        out = positive(
            pipe_diameter=self.pipe_diameter,
            width=self.width,
            thickness=self.thickness,
            flange_length=self.flange_length,
        )
        if out:
            return out
        out += hole_fits(self.hole_diameter, min(self.width, self.flange_length), "a flange")
        return out


class PhoneStand(SpecNode):
    """A desk stand holding a phone or tablet leaning back. Prints on its side (the profile on
    the bed): x = base_depth, y = total height, z = width."""

    kind: Literal["phone_stand"] = "phone_stand"
    width: float = Field(70.0, description="width of the stand (printed height), mm")
    base_depth: float = Field(90.0, description="depth of the foot on the desk, mm")
    back_height: float = Field(90.0, description="length of the leaning back support, mm")
    angle: float = Field(65.0, ge=40, le=85, description="back support angle from the desk, °")
    device_thickness: float = Field(12.0, description="slot for the phone incl. case, mm")
    lip_height: float = Field(12.0, description="height of the front lip, mm")
    thickness: float = Field(5.0, description="material thickness, mm")

    def problems(self) -> list[str]:
        out = positive(
            width=self.width,
            base_depth=self.base_depth,
            back_height=self.back_height,
            device_thickness=self.device_thickness,
            lip_height=self.lip_height,
            thickness=self.thickness,
        )
        if out:
            return out
        need = 2 * self.thickness + self.device_thickness + 10
        if self.base_depth < need:
            out.append(
                f"base_depth {self.base_depth} mm is too short for the slot; use at"
                f" least {need:.0f} mm"
            )
        return out
