"""Round ten's regression set (tests/data/research/round10.jsonl), kept after fixing the classes
of failure a blind tuning set (setE, 80 requests) found on the offline reader: standard parts
read from their tables (ISO 4032 nuts, hex key series, aluminium profiles), counts that name
what holes are for ("3 screw holes"), sizes that say where holes sit ("8 mm from the edges"),
a second size the part does not use, openings cut in a box's wall, and what a print cannot be
(electronics, working mechanisms, the fit of someone's own appliance), which is asked about.

The rows are phrased differently from the tuning set, so they test the class, not its
wording. Each row is checked the way round nine's are (see test_research_round9.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from printforge.geometry import build_mesh
from printforge.llm.offline import parse_request
from printforge.runtime.errors import InputError
from tests.unit.test_research_round9 import check, profile

__all__ = ["profile"]  # the fixture, shared with round nine

ROWS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "research" / "round10.jsonl")
    .read_text()
    .splitlines()
    if line.strip()
]


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_round_ten_request(row: dict[str, Any], profile: Any) -> None:
    expect = row["expect"]
    if expect.get("refuse"):
        try:
            spec = parse_request(row["request"], profile)
        except InputError as err:
            assert err.message.startswith("cannot design"), err.message
            return
        # Not refused outright: then it must stop with a question (a not_built requirement).
        assert any(r.status == "not_built" for r in spec.requirements), spec.requirements
        return
    spec = parse_request(row["request"], profile)
    missing = [f"{r.text}: {r.note}" for r in spec.requirements if r.status == "not_built"]
    assert not missing, missing
    mesh = build_mesh(spec, profile)
    assert check(expect, spec, mesh) == []


def test_a_range_of_hex_keys_is_the_sizes_sold() -> None:
    """ "1.5 to 10 mm" hex keys are the nine keys of a metric set, not 1.5, 2.5, 3.5 ..."""
    spec = parse_request("a stand for allen keys from 1.5mm up to 10mm")
    node = spec.parts[0].model_dump(mode="json")
    assert node["holes"] == [1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]


def test_a_second_size_nobody_used_is_asked_about() -> None:
    """Every size written as A x B is accounted for on its own: the one the part did not use
    is not_built (it used to be marked built because another size was read)."""
    spec = parse_request("a tray 100 x 60 x 25 with a 12 x 6 mm sticker")
    statuses = {r.text: r.status for r in spec.requirements if "12 x 6" in r.text}
    assert statuses == {"12 x 6 mm": "not_built"}
