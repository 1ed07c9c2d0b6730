"""The design spec validates itself with messages a person or a model can act on."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from printforge.models.spec import FAMILY_KINDS, DesignSpec


def _spec(*parts: dict[str, object]) -> DesignSpec:
    return DesignSpec.model_validate({"name": "t", "parts": list(parts)})


def test_schema_is_json_and_has_every_kind() -> None:
    schema = DesignSpec.model_json_schema()
    text = json.dumps(schema)
    kinds = (
        "box",
        "rounded_box",
        "cylinder",
        "cone",
        "sphere",
        "torus",
        "polygon_prism",
        "polygon",
        "circle",
        "rectangle",
        "rounded_rectangle",
        "text",
        "linear_extrude",
        "revolve",
        "union",
        "difference",
        "intersection",
        "hull",
        "translate",
        "rotate",
        "scale",
        "mirror",
        "linear_pattern",
        "grid_pattern",
        "circular_pattern",
        *FAMILY_KINDS,
    )
    for kind in kinds:
        assert f'"const": "{kind}"' in text, kind


def test_every_field_is_described_for_the_model() -> None:
    schema = DesignSpec.model_json_schema()
    missing = [
        f"{name}.{field}"
        for name, definition in schema["$defs"].items()
        for field, prop in definition.get("properties", {}).items()
        if field != "kind" and "description" not in prop
    ]
    assert missing == []


def test_round_trip_and_family() -> None:
    spec = _spec(
        {
            "kind": "translate",
            "offset": [1, 2, 3],
            "children": [{"kind": "box_with_lid", "size": [50, 40, 30]}],
        }
    )
    again = DesignSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert spec.family == "box_with_lid"
    assert _spec({"kind": "gear"}).family == "gear"
    cut = _spec(
        {
            "kind": "difference",
            "children": [
                {"kind": "plate", "size": [40, 40]},
                {"kind": "cylinder", "height": 9, "radius": 2},
            ],
        }
    )
    assert cut.family == "plate"
    assert (
        _spec({"kind": "union", "children": [{"kind": "box", "size": [1, 1, 1]}]}).family == "union"
    )


@pytest.mark.parametrize("kind", FAMILY_KINDS)
def test_family_defaults_are_valid(kind: str) -> None:
    needs = {
        "box_with_lid": {"size": [60, 40, 30]},
        "tray": {"size": [60, 40, 20]},
        "enclosure": {"board_size": [60, 40]},
        "standoffs": {"spacing": [58, 49]},
        "plate": {"size": [50, 50]},
        "nameplate": {"text": "Hi"},
        "tube": {"outer_diameter": 10, "inner_diameter": 8, "height": 10},
        "washer": {"outer_diameter": 10, "inner_diameter": 4},
        "fan_plate": {"fan": 80},
        "fan_duct": {"fan_in": 80, "fan_out": 60},
        "tool_holder": {"holes": [3, 4, 5]},
        "sliding_box": {"size": [80, 50, 30]},
        "grommet": {"panel_hole": 25, "bore": 12},
        "cable_comb": {"cable_diameter": 3, "columns": 6},
    }
    _spec({"kind": kind, **needs.get(kind, {})})


@pytest.mark.parametrize(
    ("part", "words"),
    [
        ({"kind": "box", "size": [20, 0, 20]}, "size must be above 0 mm"),
        ({"kind": "box", "size": [20, -5, 20]}, "size must be above 0 mm"),
        ({"kind": "box", "size": [20, 5, float("inf")]}, "finite number"),
        ({"kind": "cylinder", "height": 10, "radius": 0}, "radius must be above 0 mm"),
        ({"kind": "sphere", "radius": -2}, "radius must be above 0"),
        ({"kind": "torus", "major_radius": 5, "minor_radius": 6}, "less than major_radius"),
        ({"kind": "rounded_box", "size": [10, 10, 5], "radius": 6}, "too large"),
        ({"kind": "polygon_prism", "sides": 2, "radius": 5, "height": 3}, "greater than or"),
        ({"kind": "box_with_lid", "size": [20, 20, 20], "wall": 12}, "too thick"),
        ({"kind": "box_with_lid", "size": [40, 40, 20], "floor": 25}, "thinner than the box"),
        ({"kind": "box_with_lid", "size": [40, 30, 20], "corner_radius": 15.5}, "at most 15"),
        ({"kind": "tray", "size": [30, 30, 10], "compartments_x": 12}, "use fewer"),
        (
            {"kind": "tube", "outer_diameter": 10, "inner_diameter": 12, "height": 5},
            "must be smaller than outer_diameter",
        ),
        (
            {"kind": "plate", "size": [40, 40], "hole_diameter": 5, "holes": [[19, 0]]},
            "runs off the 40.0 x 40.0 mm plate",
        ),
        (
            {"kind": "plate", "size": [40, 40], "hole_diameter": 8, "holes": [[0, 0], [4, 0]]},
            "overlap",
        ),
        ({"kind": "l_bracket", "width": 10, "hole_diameter": 8}, "does not fit"),
        ({"kind": "l_bracket", "leg_a": 3, "thickness": 4}, "less than both legs"),
        ({"kind": "gear", "module": 1, "teeth": 10, "bore": 9}, "leaves no rim"),
        ({"kind": "enclosure", "board_size": [6, 40], "hole_inset": 3.5}, "outside"),
        (
            {
                "kind": "nameplate",
                "text": "A",
                "thickness": 1,
                "text_depth": 2,
                "style": "engraved",
            },
            "less than the thickness",
        ),
        ({"kind": "cookie_cutter", "shape": "polygon"}, "at least 3 points"),
        ({"kind": "vase", "radii": [5, 6], "wall": 6}, "too thick"),
        ({"kind": "revolve", "profiles": [{"kind": "circle", "radius": 5}]}, "x >= 0"),
        (
            {"kind": "scale", "factors": [1, 0, 1], "children": [{"kind": "sphere", "radius": 1}]},
            "use mirror",
        ),
        (
            {
                "kind": "linear_extrude",
                "height": 2,
                "profiles": [{"kind": "polygon", "points": [[0, 0], [1, 1], [2, 2]]}],
            },
            "no area",
        ),
    ],
)
def test_impossible_nodes_refused_with_reason(part: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _spec(part)


def test_a_tray_with_too_thick_walls_is_told_about_its_walls_only() -> None:
    with pytest.raises(ValidationError) as info:
        _spec({"kind": "tray", "size": [50, 50, 50], "wall": 30})
    text = str(info.value)
    assert "too thick" in text
    assert "compartments" not in text  # it has one; "use fewer" would be no advice at all


def test_nested_errors_name_the_node() -> None:
    with pytest.raises(ValidationError) as info:
        _spec(
            {
                "kind": "difference",
                "children": [
                    {"kind": "box", "size": [10, 10, 10]},
                    {"kind": "cylinder", "height": 12, "radius": -1},
                ],
            }
        )
    text = str(info.value)
    assert "cylinder: radius must be above 0 mm" in text


def test_unknown_fields_and_kinds_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        _spec({"kind": "box", "size": [1, 1, 1], "colour": "red"})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        _spec({"kind": "dodecahedron", "size": 3})


def test_figure_eight_polygon_is_called_self_crossing_not_flat() -> None:
    # Its two loops cancel to zero area, but the points are far from one line: telling a model
    # to "give 3 points not on one line" would not help it fix the order.
    bowtie = {"kind": "polygon", "points": [[0, 0], [10, 10], [10, 0], [0, 10]]}
    with pytest.raises(ValidationError, match="crosses itself"):
        _spec({"kind": "linear_extrude", "height": 5, "profiles": [bowtie]})
    line = {"kind": "polygon", "points": [[0, 0], [5, 5], [10, 10]]}
    with pytest.raises(ValidationError, match="not on one line"):
        _spec({"kind": "linear_extrude", "height": 5, "profiles": [line]})
