"""The design spec: a typed JSON tree of solids that nobody executes as code.

Every node carries a `kind` literal. Lengths are millimetres, angles degrees. Primitives follow
OpenSCAD's conventions (a box sits on its corner unless `center`, a cylinder stands on z = 0
centred on its axis, a sphere is centred on the origin) so the tree converts one-to-one to a
`.scad` file. Each node checks itself (`problems()`); a node with problems does not validate,
and the message says what to change. Part families (box with lid, gear, bracket...) live in
`spec_parts.py` and `spec_items.py` and are nodes like any other; `spec_base.py` holds the base
class they all share.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from printforge.models.spec_base import SpecNode, positive, vec
from printforge.models.spec_extra import (
    BagClip,
    CableComb,
    FanDuct,
    FanPlate,
    Grommet,
    PegboardHook,
    PinHinge,
    SlidingBox,
    ToolHolder,
)
from printforge.models.spec_items import (
    Coaster,
    CookieCutter,
    DrawerHandle,
    Funnel,
    Gear,
    Knob,
    Nameplate,
    PlantPot,
    Plate,
    Spacer,
    Standoffs,
    Tube,
    Vase,
    Washer,
    Wedge,
)
from printforge.models.spec_parts import (
    BoxWithLid,
    CableClip,
    Enclosure,
    LBracket,
    PhoneStand,
    PipeClamp,
    Port,
    ShelfBracket,
    Tray,
    WallHook,
)

__all__ = [
    "FAMILY_KINDS",
    "ROLES",
    "BagClip",
    "Box",
    "BoxWithLid",
    "CableClip",
    "CableComb",
    "Circle",
    "CircularPattern",
    "Coaster",
    "Cone",
    "CookieCutter",
    "Cylinder",
    "DesignSpec",
    "Difference",
    "DrawerHandle",
    "Enclosure",
    "FanDuct",
    "FanPlate",
    "Funnel",
    "Gear",
    "GridPattern",
    "Grommet",
    "Hull",
    "Intersection",
    "Knob",
    "LBracket",
    "LinearExtrude",
    "LinearPattern",
    "Mirror",
    "Nameplate",
    "Node",
    "PegboardHook",
    "PhoneStand",
    "PinHinge",
    "PipeClamp",
    "PlantPot",
    "Plate",
    "Polygon",
    "PolygonPrism",
    "Port",
    "Profile",
    "Rectangle",
    "Requirement",
    "Revolve",
    "Rotate",
    "RoundedBox",
    "RoundedRectangle",
    "Scale",
    "ShelfBracket",
    "SlidingBox",
    "Spacer",
    "SpecNode",
    "Sphere",
    "Standoffs",
    "Text",
    "ToolHolder",
    "Torus",
    "Translate",
    "Tray",
    "Tube",
    "Union",
    "Vase",
    "WallHook",
    "Washer",
    "Wedge",
]

# The part-family kinds: nodes with named dimensions whose builders know their print pose.
FAMILY_KINDS = (
    "box_with_lid",
    "tray",
    "enclosure",
    "l_bracket",
    "shelf_bracket",
    "wall_hook",
    "cable_clip",
    "pipe_clamp",
    "phone_stand",
    "gear",
    "tube",
    "washer",
    "spacer",
    "standoffs",
    "plate",
    "vase",
    "plant_pot",
    "nameplate",
    "cookie_cutter",
    "coaster",
    "knob",
    "drawer_handle",
    "funnel",
    "wedge",
    "pegboard_hook",
    "fan_plate",
    "fan_duct",
    "pin_hinge",
    "tool_holder",
    "sliding_box",
    "grommet",
    "bag_clip",
    "cable_comb",
)

# The families written as generic nodes (geometry/expand.py): the generic builder builds them,
# and their sizes are the expanded trees'. One list for the builder, the bounds and the exports.
EXPANDED_FAMILIES: frozenset[str] = frozenset(FAMILY_KINDS[FAMILY_KINDS.index("pegboard_hook") :])


# primitives ------------------------------------------------------------------------------------


class Box(SpecNode):
    """A rectangular block. With center=false one corner sits at the origin (OpenSCAD cube)."""

    kind: Literal["box"] = "box"
    size: list[float] = vec(3, "[x, y, z] outer size in mm")
    center: bool = Field(False, description="centre the box on the origin instead of its corner")

    def problems(self) -> list[str]:
        return positive(size=self.size)


class RoundedBox(SpecNode):
    """A block with its vertical edges rounded (flat top and bottom print cleanly)."""

    kind: Literal["rounded_box"] = "rounded_box"
    size: list[float] = vec(3, "[x, y, z] outer size in mm")
    radius: float = Field(description="rounding radius of the vertical edges, mm")
    center: bool = Field(False, description="centre on the origin instead of the corner")

    def problems(self) -> list[str]:
        out = positive(size=self.size, radius=self.radius)
        if not out and 2 * self.radius >= min(self.size[:2]):
            out.append(
                f"radius {self.radius} mm is too large for a {self.size[0]} x"
                f" {self.size[1]} mm box; use under {min(self.size[:2]) / 2:.1f} mm"
            )
        return out


class Cylinder(SpecNode):
    """An upright cylinder on z = 0 centred on the Z axis (OpenSCAD cylinder)."""

    kind: Literal["cylinder"] = "cylinder"
    height: float = Field(description="height along Z in mm")
    radius: float = Field(description="radius in mm (half the diameter)")
    center: bool = Field(False, description="centre vertically on z = 0 instead of standing on it")

    def problems(self) -> list[str]:
        return positive(height=self.height, radius=self.radius)


class Cone(SpecNode):
    """A cone or truncated cone on z = 0 centred on the Z axis; radius_top 0 makes a point."""

    kind: Literal["cone"] = "cone"
    height: float = Field(description="height along Z in mm")
    radius_bottom: float = Field(description="radius at the bottom, mm")
    radius_top: float = Field(0.0, ge=0, description="radius at the top, mm (0 = pointed)")
    center: bool = Field(False, description="centre vertically on z = 0")

    def problems(self) -> list[str]:
        out = positive(height=self.height)
        if (
            self.radius_bottom < 0
            or self.radius_top < 0
            or max(self.radius_bottom, self.radius_top) <= 0
        ):
            out.append("radius_bottom and radius_top must be 0 or more, and one above 0")
        return out


class Sphere(SpecNode):
    """A sphere centred on the origin."""

    kind: Literal["sphere"] = "sphere"
    radius: float = Field(description="radius in mm")

    def problems(self) -> list[str]:
        return positive(radius=self.radius)


class Torus(SpecNode):
    """A ring (doughnut) lying flat, centred on the origin."""

    kind: Literal["torus"] = "torus"
    major_radius: float = Field(description="from the centre to the middle of the tube, mm")
    minor_radius: float = Field(description="radius of the tube itself, mm")

    def problems(self) -> list[str]:
        out = positive(major_radius=self.major_radius, minor_radius=self.minor_radius)
        if not out and self.minor_radius >= self.major_radius:
            out.append(
                f"minor_radius {self.minor_radius} mm must be less than major_radius"
                f" {self.major_radius} mm"
            )
        return out


class PolygonPrism(SpecNode):
    """A regular polygon prism (hexagon, octagon...) standing on z = 0, a corner on +X.
    For a hexagon measured across flats F, radius = F / 1.732."""

    kind: Literal["polygon_prism"] = "polygon_prism"
    sides: int = Field(6, ge=3, le=64, description="number of sides")
    radius: float = Field(description="centre-to-corner radius, mm")
    height: float = Field(description="height along Z, mm")
    center: bool = Field(False, description="centre vertically on z = 0")

    def problems(self) -> list[str]:
        return positive(radius=self.radius, height=self.height)


# 2-D profiles ----------------------------------------------------------------------------------


class Polygon(SpecNode):
    """A closed outline through [x, y] points (no self-crossing), moved by `position`."""

    kind: Literal["polygon"] = "polygon"
    points: list[list[float]] = Field(min_length=3, description="[x, y] corners in order, mm")
    position: list[float] = vec(2, "[x, y] offset, mm", [0.0, 0.0])

    def problems(self) -> list[str]:
        if any(len(p) != 2 for p in self.points):
            return ["every point must be [x, y]"]
        area = 0.0
        for (ax, ay), (bx, by) in zip(self.points, self.points[1:] + self.points[:1], strict=True):
            area += ax * by - bx * ay
        if abs(area) / 2 < 0.01:
            (x0, y0), *rest = self.points
            fx, fy = max(rest, key=lambda q: (q[0] - x0) ** 2 + (q[1] - y0) ** 2)
            spread = max(abs((fx - x0) * (qy - y0) - (qx - x0) * (fy - y0)) for qx, qy in rest)
            if spread >= 0.02:
                # A figure-eight: its two loops cancel out, so the points are not on one line.
                return [
                    "the outline crosses itself and its loops cancel out; list the corners"
                    " in order around the outline"
                ]
            return ["the polygon encloses no area; give at least 3 points not on one line"]
        return []


class Circle(SpecNode):
    """A circle centred on `position`."""

    kind: Literal["circle"] = "circle"
    radius: float = Field(description="radius, mm")
    position: list[float] = vec(2, "[x, y] centre, mm", [0.0, 0.0])

    def problems(self) -> list[str]:
        return positive(radius=self.radius)


class Rectangle(SpecNode):
    """A rectangle; with center=false its corner is at `position` (OpenSCAD square)."""

    kind: Literal["rectangle"] = "rectangle"
    size: list[float] = vec(2, "[x, y] size, mm")
    center: bool = Field(False, description="centre on `position` instead of its corner")
    position: list[float] = vec(2, "[x, y] offset, mm", [0.0, 0.0])

    def problems(self) -> list[str]:
        return positive(size=self.size)


class RoundedRectangle(SpecNode):
    """A rectangle with rounded corners; with center=false its corner is at `position`."""

    kind: Literal["rounded_rectangle"] = "rounded_rectangle"
    size: list[float] = vec(2, "[x, y] size, mm")
    radius: float = Field(description="corner radius, mm")
    center: bool = Field(False, description="centre on `position` instead of its corner")
    position: list[float] = vec(2, "[x, y] offset, mm", [0.0, 0.0])

    def problems(self) -> list[str]:
        out = positive(size=self.size, radius=self.radius)
        if not out and 2 * self.radius >= min(self.size):
            out.append(
                f"radius {self.radius} mm is too large for a {self.size[0]} x"
                f" {self.size[1]} mm rectangle"
            )
        return out


class Text(SpecNode):
    """Text drawn with printforge's built-in stroke font (A-Z, 0-9, basic punctuation)."""

    kind: Literal["text"] = "text"
    text: str = Field(
        min_length=1, max_length=80, description="the text; lower case is drawn as capitals"
    )
    size: float = Field(10.0, description="height of a capital letter, mm")
    halign: Literal["left", "center", "right"] = Field("left", description="anchor on X")
    valign: Literal["baseline", "center", "top"] = Field("baseline", description="anchor on Y")
    position: list[float] = vec(2, "[x, y] anchor point, mm", [0.0, 0.0])

    def problems(self) -> list[str]:
        out = positive(size=self.size)
        if not self.text.strip():
            out.append("text is empty")
        return out


Profile = Annotated[
    Polygon | Circle | Rectangle | RoundedRectangle | Text, Field(discriminator="kind")
]


class LinearExtrude(SpecNode):
    """2-D profiles (merged, minus cutouts) pushed up along Z from z = 0."""

    kind: Literal["linear_extrude"] = "linear_extrude"
    height: float = Field(description="extrusion height, mm")
    profiles: list[Profile] = Field(min_length=1, description="outlines to extrude (merged)")
    cutouts: list[Profile] = Field(default_factory=list, description="outlines cut away")
    twist: float = Field(
        0.0,
        description="twist over the height in degrees, clockwise seen"
        " from above like OpenSCAD (spiral vases)",
    )
    scale_top: float = Field(1.0, gt=0, description="size of the top relative to the bottom")
    center: bool = Field(False, description="centre vertically on z = 0")

    def problems(self) -> list[str]:
        return positive(height=self.height)


class Revolve(SpecNode):
    """2-D profiles turned around the Z axis: profile X becomes the radius, profile Y the height
    (OpenSCAD rotate_extrude). Profiles must lie at x >= 0."""

    kind: Literal["revolve"] = "revolve"
    profiles: list[Profile] = Field(min_length=1, description="outlines to revolve (merged)")
    cutouts: list[Profile] = Field(default_factory=list, description="outlines cut away")
    angle: float = Field(360.0, gt=0, le=360, description="sweep angle, °")

    def problems(self) -> list[str]:
        for p in self.profiles:
            if isinstance(p, Polygon) and min(x for x, _ in p.points) + p.position[0] < -1e-9:
                return ["revolved polygon points must have x >= 0 (x is the radius)"]
            if isinstance(p, Circle) and p.position[0] - p.radius < -1e-9:
                return [
                    "a revolved circle must lie at x >= 0: set position x to at least"
                    f" its radius {p.radius} mm"
                ]
        return []


# booleans, transforms, patterns ----------------------------------------------------------------


class Union(SpecNode):
    """All children merged into one solid."""

    kind: Literal["union"] = "union"
    children: list[Node] = Field(min_length=1, description="solids to merge")


class Difference(SpecNode):
    """The first child with every later child cut away from it (holes, pockets, slots)."""

    kind: Literal["difference"] = "difference"
    children: list[Node] = Field(
        min_length=1, description="first: the solid kept; the rest: what is cut away"
    )


class Intersection(SpecNode):
    """Only the volume all children share."""

    kind: Literal["intersection"] = "intersection"
    children: list[Node] = Field(min_length=1, description="solids whose common volume is kept")


class Hull(SpecNode):
    """The convex hull of all children: the tightest solid wrapping them (rounded slabs,
    tapered joints between two shapes)."""

    kind: Literal["hull"] = "hull"
    children: list[Node] = Field(min_length=1, description="solids to wrap")


class Translate(SpecNode):
    """Children moved by an offset."""

    kind: Literal["translate"] = "translate"
    offset: list[float] = vec(3, "[x, y, z] move in mm")
    children: list[Node] = Field(min_length=1, description="solids to move (merged)")


class Rotate(SpecNode):
    """Children rotated about the X, then Y, then Z axis through the origin (OpenSCAD rotate)."""

    kind: Literal["rotate"] = "rotate"
    angles: list[float] = vec(3, "[x, y, z] rotation in degrees, applied X then Y then Z")
    children: list[Node] = Field(min_length=1, description="solids to rotate (merged)")


class Scale(SpecNode):
    """Children stretched by a factor per axis about the origin."""

    kind: Literal["scale"] = "scale"
    factors: list[float] = vec(3, "[x, y, z] scale factors (1 = unchanged)")
    children: list[Node] = Field(min_length=1, description="solids to scale (merged)")

    def problems(self) -> list[str]:
        return (
            []
            if all(f > 0 for f in self.factors)
            else [f"scale factors {self.factors} must all be above 0; use mirror to flip"]
        )


class Mirror(SpecNode):
    """Children mirrored in the plane through the origin with the given normal."""

    kind: Literal["mirror"] = "mirror"
    normal: list[float] = vec(3, "[x, y, z] normal of the mirror plane, e.g. [1, 0, 0]")
    children: list[Node] = Field(min_length=1, description="solids to mirror (merged)")

    def problems(self) -> list[str]:
        return [] if math.hypot(*self.normal) > 1e-9 else ["normal must not be [0, 0, 0]"]


class LinearPattern(SpecNode):
    """`count` copies of the children, each moved `step` further than the one before."""

    kind: Literal["linear_pattern"] = "linear_pattern"
    count: int = Field(ge=1, le=200, description="number of copies including the first")
    step: list[float] = vec(3, "[x, y, z] distance from one copy to the next, mm")
    children: list[Node] = Field(min_length=1, description="solids to repeat (merged)")


class GridPattern(SpecNode):
    """Copies of the children on a grid in the XY plane, centred on the origin by default."""

    kind: Literal["grid_pattern"] = "grid_pattern"
    columns: int = Field(ge=1, le=100, description="copies along X")
    rows: int = Field(ge=1, le=100, description="copies along Y")
    spacing: list[float] = vec(2, "[x, y] centre-to-centre distance, mm")
    center: bool = Field(True, description="centre the grid on the origin (else start there)")
    children: list[Node] = Field(min_length=1, description="solids to repeat (merged)")

    def problems(self) -> list[str]:
        return positive(spacing=self.spacing)


class CircularPattern(SpecNode):
    """`count` copies of the children turned about the Z axis, evenly over `angle` degrees.
    Put the children off the axis first (translate) to get a ring of holes or spokes."""

    kind: Literal["circular_pattern"] = "circular_pattern"
    count: int = Field(ge=1, le=360, description="number of copies including the first")
    angle: float = Field(360.0, gt=0, le=360, description="total angle covered, °")
    children: list[Node] = Field(min_length=1, description="solids to repeat (merged)")


Node = Annotated[
    Box
    | RoundedBox
    | Cylinder
    | Cone
    | Sphere
    | Torus
    | PolygonPrism
    | LinearExtrude
    | Revolve
    | Union
    | Difference
    | Intersection
    | Hull
    | Translate
    | Rotate
    | Scale
    | Mirror
    | LinearPattern
    | GridPattern
    | CircularPattern
    | BoxWithLid
    | Tray
    | Enclosure
    | LBracket
    | ShelfBracket
    | WallHook
    | CableClip
    | PipeClamp
    | PhoneStand
    | Gear
    | Tube
    | Washer
    | Spacer
    | Standoffs
    | Plate
    | Vase
    | PlantPot
    | Nameplate
    | CookieCutter
    | Coaster
    | Knob
    | DrawerHandle
    | Funnel
    | Wedge
    | PegboardHook
    | FanPlate
    | FanDuct
    | PinHinge
    | ToolHolder
    | SlidingBox
    | Grommet
    | BagClip
    | CableComb,
    Field(discriminator="kind"),
]

for _model in (
    Union,
    Difference,
    Intersection,
    Hull,
    Translate,
    Rotate,
    Scale,
    Mirror,
    LinearPattern,
    GridPattern,
    CircularPattern,
):
    _model.model_rebuild()


RoleName = Literal[
    "size",
    "hole",
    "wall",
    "dimension",
    "fit",
    "clearance",
    "count",
    "angle",
    "text",
    "feature",
    "context",
]
ROLES: tuple[str, ...] = get_args(RoleName)


class Requirement(BaseModel):
    """One thing the request asks for and what the design did with it. Every number, count,
    text, named feature, fit and clearance in the request gets one, so nothing vanishes."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    text: str = Field(description="the request's own words for it, e.g. '4 mm thick'")
    role: RoleName = Field(
        description="size: an outside extent of the part; hole: a hole or bore diameter;"
        " wall: a wall thickness; dimension: another length; fit: the size of what it fits;"
        " clearance, count, angle, text (to put on the part), feature (a named feature),"
        " context (words that do not change the shape)"
    )
    status: Literal["built", "assumed", "not_built"] = Field(
        description="built: the design realises it; assumed: a default chosen for what the"
        " request left open; not_built: the design cannot do it"
    )
    value: float | None = Field(
        None, description="the length in mm (or count, or angle) it asks for; null for words"
    )
    spec_path: str | None = Field(
        None, description="where the spec realises it, e.g. 'parts[0].size[2]'; null if none"
    )
    note: str | None = Field(
        None, description="the value used; for not_built, why and what is built instead"
    )


class DesignSpec(BaseModel):
    """A printable design: one or more parts, each printed as its own body on the bed.
    Prefer one part-family node (box_with_lid, gear, l_bracket...) when one fits the request;
    build anything else from primitives, profiles, booleans and transforms."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=120, description="short name of the design")
    description: str | None = Field(None, description="what the part is for, in a sentence")
    parts: list[Node] = Field(
        min_length=1,
        max_length=32,
        description="the bodies to print; each is laid out next to the others on the bed",
    )
    requirements: list[Requirement] = Field(
        default_factory=list,
        max_length=80,
        description="every requirement found in the request and its status",
    )
    auto_orient: bool = Field(
        True,
        description="turn free-form parts to the resting pose with least overhang; part"
        " families keep their designed print pose",
    )

    @property
    def family(self) -> str:
        """The part family of the first part: its `kind`, looking through single-child
        transforms and into the kept (first) child of a difference, so a plate with extra
        cutouts is still a "plate"."""
        node: object = self.parts[0]
        while (
            isinstance(node, Translate | Rotate | Scale | Mirror) and len(node.children) == 1
        ) or isinstance(node, Difference):
            node = node.children[0]
        return str(node.kind)  # type: ignore[attr-defined]
