"""The sentences our README, docs and issues show people must make the part they describe.

They are the first thing a person types; each once came out wrong while hundreds of other
phrasings passed ("... with 2 mm walls and a lid" built an open tray)."""

from __future__ import annotations

import pytest

from printforge.geometry import build_mesh
from printforge.llm.offline import parse_request
from printforge.models.printer import PrinterProfile

PROFILE = PrinterProfile(name="mk3", bed_x=250, bed_y=210, max_z=210)


def test_the_readme_box_has_its_lid_and_walls() -> None:
    spec = parse_request("a 60 x 40 x 30 mm box with 2 mm walls and a lid", PROFILE)
    assert spec.family == "box_with_lid"
    part = spec.parts[0].model_dump()
    assert part["size"] == [60.0, 40.0, 30.0]
    assert part["wall"] == 2.0
    mesh = build_mesh(spec, PROFILE)
    assert mesh.is_watertight
    assert len(mesh.split(only_watertight=False)) == 2, "a box and its lid, side by side"
    assert mesh.extents[2] == pytest.approx(30.0, abs=0.1)


@pytest.mark.parametrize(
    "text",
    [
        "a 60 x 40 x 30 mm box with 2 mm walls and lid",
        "a storage bin 100x80x60 with 1.5mm walls and a snap-on lid",
    ],
)
def test_a_lid_named_after_other_features_still_counts(text: str) -> None:
    assert parse_request(text, PROFILE).family == "box_with_lid"


@pytest.mark.parametrize(
    "text", ["a box 50x50x50 without a lid", "an open box 50 by 50 by 50 mm, no lid"]
)
def test_a_box_without_a_lid_stays_open(text: str) -> None:
    assert parse_request(text, PROFILE).family == "tray"


def test_the_calibration_cube() -> None:
    spec = parse_request("a 20 mm calibration cube", PROFILE)
    mesh = build_mesh(spec, PROFILE)
    assert mesh.is_watertight
    assert list(mesh.extents) == pytest.approx([20.0, 20.0, 20.0], abs=0.1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a nameplate with the text ROOM 12", "ROOM 12"),
        ("a door sign that says WORKSHOP 2026", "WORKSHOP 2026"),
        ("a sign saying HEIGHT LIMIT 2.1M", "HEIGHT LIMIT 2.1M"),
        ("a sign saying OFFICE 100 x 30 mm", "OFFICE"),
        ("a name tag saying BOB 3 mm thick", "BOB"),
        ("a desk sign reading DAD 120mm wide", "DAD"),
    ],
)
def test_a_number_on_a_sign_is_text_unless_it_is_a_size(text: str, words: str) -> None:
    # Door numbers and years are what signs are for; "100 x 30 mm" after the text is its size.
    spec = parse_request(text, PROFILE)
    assert spec.parts[0].model_dump()["text"] == words
    assert build_mesh(spec, PROFILE).is_watertight
