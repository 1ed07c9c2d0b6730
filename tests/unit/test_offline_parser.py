"""The offline parser as a table: request text -> family and dimensions, and refusals that say
what was understood. Sizes are checked on the built mesh where the family's outer size is plain."""

from __future__ import annotations

from typing import Any

import pytest

from printforge.geometry import build_mesh, spec_problems
from printforge.llm.offline import parse_request
from printforge.llm.offline.quantities import number_words_to_digits, scan
from printforge.llm.offline.spelling import correct_spelling
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import InputError

PROFILE = PrinterProfile(name="test")


def part(text: str) -> dict[str, Any]:
    spec = parse_request(text)
    assert spec_problems(spec, PROFILE) == []
    return spec.parts[0].model_dump(mode="json")  # type: ignore[no-any-return]


FIELDS = [
    # (request, kind, expected fields)
    (
        "a washer 1/4 inch inner diameter, 3/4 inch outer diameter, 2 mm thick",
        "washer",
        {"inner_diameter": 6.35, "outer_diameter": 19.05, "thickness": 2.0},
    ),
    ("an M5 washer", "washer", {"inner_diameter": 5.5, "outer_diameter": 10.0}),
    (
        "a tube twenty five mm tall with walls 2 mm thick and 30mm OD",
        "tube",
        {"outer_diameter": 30.0, "inner_diameter": 26.0, "height": 25.0},
    ),
    (
        "a pipe 40 mm long, inner radius 5 mm, outer radius 8 mm",
        "tube",
        {"outer_diameter": 16.0, "inner_diameter": 10.0, "height": 40.0},
    ),
    (
        "a box with lid 3 x 2 x 1 inches, 2mm walls",
        "box_with_lid",
        {"size": [76.2, 50.8, 25.4], "wall": 2.0},
    ),
    (
        "a box with a lid, inside 50 x 40 x 30 mm, 3 mm walls",
        "box_with_lid",
        {"size": [56.0, 46.0, 33.0], "wall": 3.0},
    ),
    (
        "a hex spacer 10 mm across flats, 15 mm tall, 5 mm hole",
        "spacer",
        {"outer_diameter": 11.547, "hole_diameter": 5.0, "height": 15.0, "hexagonal": True},
    ),
    ("a spacer for M3, 10 mm long", "spacer", {"hole_diameter": 3.4, "height": 10.0}),
    (
        "a 40-tooth gear module 1, 5 mm bore, 6 mm thick",
        "gear",
        {"teeth": 40, "module": 1.0, "bore": 5.0, "thickness": 6.0},
    ),
    ("a gear with twenty teeth, module 2", "gear", {"teeth": 20, "module": 2.0}),
    ("an enclosure for a raspberry pi", "enclosure", {"board_size": [85.0, 56.0]}),
    (
        "a case for a 60 x 40 mm board, 2.5 mm walls",
        "enclosure",
        {"board_size": [60.0, 40.0], "wall": 2.5},
    ),
    (
        "an L bracket 40 mm, 20 mm wide, 4 mm thick with M4 holes",
        "l_bracket",
        {"leg_a": 40.0, "leg_b": 40.0, "width": 20.0, "thickness": 4.0, "hole_diameter": 4.5},
    ),
    (
        "a shelf bracket 150 x 120 x 25 mm",
        "shelf_bracket",
        {"leg_a": 150.0, "leg_b": 120.0, "width": 25.0},
    ),
    ("a wall hook 30 mm deep, 60 mm tall", "wall_hook", {"reach": 30.0, "back_height": 60.0}),
    ("a cable clip for a 6 mm cable", "cable_clip", {"cable_diameter": 6.0}),
    (
        "a pipe clamp for 25 mm pipe with M4 screws",
        "pipe_clamp",
        {"pipe_diameter": 25.0, "hole_diameter": 4.5},
    ),
    ("a phone stand at 70 degrees", "phone_stand", {"angle": 70.0, "width": 70.0}),
    ("a tablet stand", "phone_stand", {"width": 140.0}),
    ("a vase 12 cm tall radius 4 cm", "vase", {"height": 120.0}),
    ("a straight vase 80 mm diameter, 150 mm tall", "vase", {"radii": [40.0, 40.0]}),
    (
        "a planter 10 cm diameter 8 cm tall",
        "plant_pot",
        {"top_diameter": 100.0, "height": 80.0, "drain_hole_diameter": 8.0},
    ),
    (
        "a pencil cup 70 mm diameter 100 mm tall without drain hole",
        "plant_pot",
        {"drain_hole_diameter": 0.0},
    ),
    ('a name plate saying "OFFICE"', "nameplate", {"text": "OFFICE", "style": "raised"}),
    (
        "an engraved door sign that says KITCHEN",
        "nameplate",
        {"text": "KITCHEN", "style": "engraved"},
    ),
    ("a 60 mm round cookie cutter", "cookie_cutter", {"shape": "circle", "size": 60.0}),
    ("a star cookie cutter 70 mm", "cookie_cutter", {"shape": "star", "size": 70.0}),
    (
        "a tray 120 x 80 x 30 mm with 3 compartments",
        "tray",
        {"size": [120.0, 80.0, 30.0], "compartments_x": 3},
    ),
    (
        "a 2x3 compartments organizer 100x150x40",
        "tray",
        {"compartments_x": 2, "compartments_y": 3, "size": [100.0, 150.0, 40.0]},
    ),
    (
        "a plate 100x60x3 mm with four M3 holes at the corners",
        "plate",
        {
            "size": [100.0, 60.0],
            "thickness": 3.0,
            "hole_diameter": 3.4,
            "hole_columns": 2,
            "hole_rows": 2,
        },
    ),
    ("a 30 mm sphere", "sphere", {"radius": 15.0}),
    ("cylinder 2 inches tall and 1 inch wide", "cylinder", {"radius": 12.7, "height": 50.8}),
    # The thickness is the whole coaster, rim included.
    (
        "coaster 100 mm diameter 5 mm thick",
        "coaster",
        {"diameter": 100.0, "thickness": 3.0, "rim_height": 2.0},
    ),
    ("gear 30 teeth 1.5 module 8 mm bore", "gear", {"teeth": 30, "module": 1.5, "bore": 8.0}),
    ("pi zero case", "enclosure", {"board_size": [65.0, 30.0], "hole_inset": 3.5}),
    (
        "a spacer 5 mm tall 10 mm wide with a 3 mm hole",
        "spacer",
        {"outer_diameter": 10.0, "hole_diameter": 3.0, "height": 5.0},
    ),
    ("a keychain tag that says HELLO", "nameplate", {"text": "HELLO", "hole_diameter": 4.0}),
    ("a towel hook", "wall_hook", {"reach": 40.0}),
    (
        "standoffs for a raspberry pi, 8 mm tall",
        "standoffs",
        {"spacing": [58.0, 49.0], "height": 8.0, "base_thickness": 2.0},
    ),
    (
        "loose standoffs 40 x 30 mm apart for M3",
        "standoffs",
        {"spacing": [40.0, 30.0], "hole_diameter": 3.4, "base_thickness": 0.0},
    ),
    (
        "hex standoff M3 x 10 mm",
        "spacer",
        {"hole_diameter": 3.4, "height": 10.0, "hexagonal": True},
    ),
    (
        "an 8 mm thick plate 150 mm long and 100 mm wide with 6 holes",
        "plate",
        {"size": [150.0, 100.0], "thickness": 8.0, "hole_columns": 3, "hole_rows": 2},
    ),
    (
        "make a washer with an outside diameter of 30mm and an inside diameter of 10mm",
        "washer",
        {"outer_diameter": 30.0, "inner_diameter": 10.0},
    ),
    (
        "a box with lid that is 100mm long, 60mm wide and 40mm tall",
        "box_with_lid",
        {"size": [100.0, 60.0, 40.0]},
    ),
    ("a spur gear with 24 teeth and a diameter of 52 mm", "gear", {"teeth": 24, "module": 2.0}),
    ("a phone holder", "phone_stand", {"angle": 65.0}),
    ("a 10 cm tall vase", "vase", {"height": 100.0, "radii": [18.75, 25.0, 17.5, 20.0]}),
    ("a cone 40 mm diameter 50 mm tall", "cone", {"radius_bottom": 20.0, "height": 50.0}),
]


@pytest.mark.parametrize(("text", "kind", "expected"), FIELDS, ids=[f[0][:40] for f in FIELDS])
def test_family_and_fields(text: str, kind: str, expected: dict[str, Any]) -> None:
    got = part(text)
    assert got["kind"] == kind
    for key, value in expected.items():
        if isinstance(value, float | list):
            assert got[key] == pytest.approx(value, abs=0.01), key
        else:
            assert got[key] == value, key


MESH_SIZES = [
    ("a 20 mm calibration cube", (20, 20, 20)),
    ("a calibration cube", (20, 20, 20)),
    ("a cube with 1 inch sides", (25.4, 25.4, 25.4)),
    ("a block 4 x 2 x 1 cm", (40, 20, 10)),
    ("a peg one and a half inch diameter, two inches long", (38.1, 38.1, 50.8)),
    ("a disc 30 mm diameter 3 mm thick", (30, 30, 3)),
    ("a plate 100x60x3 mm with four M3 holes 80 mm apart", (100, 60, 3)),
    ("a plate 80 x 80 x 4 with 6 holes in a circle", (80, 80, 4)),
    ("a hex nut 13 mm across flats, 6 mm thick, M8", (15.01, 13, 6)),
]


@pytest.mark.parametrize(("text", "size"), MESH_SIZES, ids=[m[0][:40] for m in MESH_SIZES])
def test_built_size(text: str, size: tuple[float, float, float]) -> None:
    mesh = build_mesh(parse_request(text))
    assert mesh.is_watertight
    assert sorted(mesh.extents) == pytest.approx(sorted(size), abs=0.1)


REFUSALS = [
    ("purple monkey dishwasher", ["understood nothing", "what kind of part"]),
    ("something 20 mm", ["understood only the sizes 20 mm", "what kind of part"]),
    ("a washer 20 mm", ["understood a washer, outer diameter 20 mm", "inner diameter"]),
    ("a box with a lid", ["understood a box with lid", "outer size"]),
    ("a box", ["understood a box", "the box's outer size"]),
    ("", ["understood nothing"]),
    ("a gear", ["understood a gear", "number of teeth"]),
    ("a tube 30 mm OD", ["outer diameter 30 mm", "inner diameter"]),
    ("an enclosure", ["board's size or name"]),
    ("a name plate", ["the text"]),
    ("a gingerbread man cookie cutter", ["outline it knows"]),
    ("a phone stand at 20 degrees", ["angle 20 degrees", "between 40 and 85"]),
    ("a statue of a dragon", ["organic sculpted shapes"]),
    ("a cube", ["side length"]),
]


@pytest.mark.parametrize(("text", "says"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_say_what_was_understood(text: str, says: list[str]) -> None:
    with pytest.raises(InputError) as info:
        parse_request(text)
    for phrase in says:
        assert phrase in info.value.message


def test_too_big_for_the_spec_is_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match="wall"):
        parse_request("a box with lid 10 x 10 x 10 mm, 6 mm walls")


def test_defaults_are_written_into_the_description() -> None:
    spec = parse_request("a wall hook 30 mm deep")
    assert spec.description is not None
    assert "reach 30 mm" in spec.description and "Assumed:" in spec.description


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("twenty five", "25"),
        ("one hundred and twenty", "120"),
        ("one and a half inch", "1.5 inch"),
        ("half an inch", "0.5 inch"),
        ("a dozen holes", "12 holes"),
        ("three quarters", "3 quarters"),
        ("three quarter inch", "0.75 inch"),
        ("five eighths of an inch", "0.625 inch"),
        ("half inch spacer", "0.5 inch spacer"),
    ],
)
def test_number_words(text: str, digits: str) -> None:
    assert number_words_to_digits(text) == digits


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("20 mm diameter", [("diameter", 20.0)]),
        ("radius of 4 cm", [("radius", 40.0)]),
        ("10mm across flats", [("across_flats", 10.0)]),
        ("walls 2 mm thick", [("wall", 2.0)]),
        ("2 mm thick walls", [("wall", 2.0)]),
        ('1/4" hole', [("hole", 6.35)]),
        ("1 1/2 in tall", [("height", 38.1)]),
        ("height of 3 cm, 5 mm wide", [("height", 30.0), ("width", 5.0)]),
    ],
)
def test_lengths_are_labelled(text: str, labels: list[tuple[str, float]]) -> None:
    got = [(q.label, round(q.mm, 3)) for q in scan(text).quantities]
    assert got == [(label, pytest.approx(v, abs=0.001)) for label, v in labels]


def test_counts_and_screws_are_not_lengths() -> None:
    s = scan("a plate with four M3 holes and 20 teeth")
    assert s.counts == {"hole": 4, "tooth": 20} and s.screw == 3.0 and s.quantities == []


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("enclousre for a pi", "enclosure for a pi"),
        ("a cilinder 30mm diamter", "a cylinder 30mm diameter"),
        ("2mm thicknes, 10 widht", "2mm thickness, 10 width"),
        ("4 compartmants", "4 compartments"),
        # Real words one edit from a keyword, plurals and number words stay as they are.
        ("a weight of eighty grams", "a weight of eighty grams"),
        ("a candle holder with spaces", "a candle holder with spaces"),
        ("gutter brackets, hearing aid", "gutter brackets, hearing aid"),
        ("washers and cutters", "washers and cutters"),
        # Sharing a dropped letter is not one edit: "saucer" is no "spacer".
        ("a pot with a saucer", "a pot with a saucer"),
        # Four-letter names: two swapped letters only; "near" and "hear" are words.
        ("a gaer and a tary", "a gear and a tray"),
        ("near the hook, hear", "near the hook, hear"),
    ],
)
def test_only_keyword_typos_are_corrected(text: str, fixed: str) -> None:
    assert correct_spelling(text) == fixed


def test_a_bearing_number_is_a_name_not_a_length() -> None:
    s = scan("a spacer for a 608zz bearing, 5 mm long")
    assert s.bearing == ("608", 8.0, 22.0, 7.0)
    assert [q.mm for q in s.quantities] == [5.0]
    spacer = parse_request("a shim washer for a 625 bearing").parts[0]
    # Rides the 5 mm shaft and touches only the inner race of the 16 mm bearing.
    assert spacer.inner_diameter == 5.2 and spacer.outer_diameter < 9  # type: ignore[union-attr]


def test_a_foot_is_a_length_only_before_a_dimension_word() -> None:
    assert [round(q.mm, 1) for q in scan("a foot long rod 10 mm diameter").quantities] == [
        304.8,
        10.0,
    ]
    spec = parse_request("a foot for my shelf, 20mm tall, 30mm diameter")
    assert spec.family == "cylinder"


def test_a_box_with_a_number_of_sides_is_polygonal() -> None:
    pot = parse_request("an 8 sided box 60mm").parts[0]
    assert pot.kind == "plant_pot" and pot.sides == 8  # type: ignore[union-attr]
    assert pot.drain_hole_diameter == 0  # type: ignore[union-attr]


def test_a_pair_of_gears_is_two_meshing_gears_not_four() -> None:
    spec = parse_request("two gears, 20 and 40 teeth, module 1")
    assert [(p.teeth, p.module) for p in spec.parts] == [(20, 1.0), (40, 1.0)]  # type: ignore[union-attr]
    assert spec.description is not None and "30 mm between their centres" in spec.description
    assert build_mesh(spec).is_watertight
