"""One typical request per part family, as a spec: for the benchmark, the docs and as
few-shot examples for a language model writing specs."""

from __future__ import annotations

from typing import Any

from printforge.models.spec import DesignSpec

__all__ = ["EXAMPLES", "example_spec"]

EXAMPLES: dict[str, dict[str, Any]] = {
    "box_with_lid": {"kind": "box_with_lid", "size": [80, 60, 40], "wall": 2, "corner_radius": 4},
    "tray": {"kind": "tray", "size": [120, 80, 30], "compartments_x": 3, "compartments_y": 2},
    # A Raspberry Pi 4: its holes are not centred on the board, so they are listed.
    "enclosure": {
        "kind": "enclosure",
        "board_size": [85, 56],
        "headroom": 20,
        "holes": [[3.5, 3.5], [61.5, 3.5], [3.5, 52.5], [61.5, 52.5]],
        "ports": [{"side": "left", "width": 12, "height": 7}],
    },
    "l_bracket": {
        "kind": "l_bracket",
        "width": 25,
        "leg_a": 50,
        "leg_b": 50,
        "thickness": 5,
        "holes_per_leg": 2,
    },
    "shelf_bracket": {"kind": "shelf_bracket", "width": 25, "leg_a": 150, "leg_b": 120},
    "wall_hook": {"kind": "wall_hook", "width": 20, "back_height": 60, "reach": 35},
    "cable_clip": {"kind": "cable_clip", "cable_diameter": 8, "width": 12},
    "pipe_clamp": {"kind": "pipe_clamp", "pipe_diameter": 22, "width": 18},
    "phone_stand": {"kind": "phone_stand", "width": 75, "angle": 65},
    "gear": {"kind": "gear", "module": 2, "teeth": 30, "thickness": 8, "bore": 6},
    "tube": {"kind": "tube", "outer_diameter": 25, "inner_diameter": 21, "height": 60},
    "washer": {"kind": "washer", "outer_diameter": 16, "inner_diameter": 6.4, "thickness": 1.6},
    "spacer": {"kind": "spacer", "outer_diameter": 8, "hole_diameter": 3.4, "height": 12},
    "standoffs": {"kind": "standoffs", "spacing": [58, 49], "height": 8},
    "plate": {
        "kind": "plate",
        "size": [100, 60],
        "thickness": 4,
        "hole_diameter": 4.5,
        "hole_columns": 4,
        "hole_rows": 2,
        "corner_radius": 4,
    },
    "vase": {"kind": "vase", "height": 150, "radii": [35, 50, 30, 40], "wall": 1.6},
    "plant_pot": {"kind": "plant_pot", "height": 90, "top_diameter": 100, "bottom_diameter": 75},
    "nameplate": {"kind": "nameplate", "text": "Workshop", "text_height": 12},
    "cookie_cutter": {"kind": "cookie_cutter", "shape": "heart", "size": 70},
    "coaster": {"kind": "coaster", "diameter": 95, "thickness": 3, "rim_height": 2},
    "knob": {"kind": "knob", "diameter": 30, "height": 18, "shaft_diameter": 6},
    "drawer_handle": {"kind": "drawer_handle", "hole_spacing": 96, "clearance": 25},
    "funnel": {"kind": "funnel", "top_diameter": 80, "spout_diameter": 12},
    "wedge": {"kind": "wedge", "length": 120, "width": 40, "height": 25},
    "pegboard_hook": {"kind": "pegboard_hook", "board": "skadis", "reach": 40},
    "fan_plate": {"kind": "fan_plate", "fan": 120, "second_fan": 80},
    "fan_duct": {"kind": "fan_duct", "fan_in": 120, "fan_out": 80, "length": 50},
    "pin_hinge": {"kind": "pin_hinge", "length": 40, "leaf_width": 20, "thickness": 2},
    "tool_holder": {"kind": "tool_holder", "holes": [2, 2.5, 3, 4, 5, 6], "hex": True},
    "sliding_box": {"kind": "sliding_box", "size": [80, 50, 30]},
    "grommet": {"kind": "grommet", "panel_hole": 25, "panel_thickness": 3, "bore": 12},
    "bag_clip": {"kind": "bag_clip", "length": 100},
    "cable_comb": {"kind": "cable_comb", "cable_diameter": 3, "columns": 6, "rows": 4},
}


def example_spec(kind: str) -> DesignSpec:
    """A valid spec for `kind`'s example."""
    return DesignSpec.model_validate(
        {"name": f"example {kind.replace('_', ' ')}", "parts": [EXAMPLES[kind]]}
    )
