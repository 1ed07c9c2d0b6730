"""Spools and job constraints as data: Spoolman's spool shape, the short-spool reason, and the
request fields a job is constrained by (issue 15)."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from printforge.models.request import PrintRequest
from printforge.models.spool import Spool, SpoolmanSettings, spool_short_reason
from printforge.orchestrator.spoolman import spool_from_spoolman


@pytest.mark.parametrize(
    ("remaining", "needed", "reason"),
    [
        (12.0, 30.0, "spool on mk3 has 12 g, job needs 30 g"),
        (30.0, 30.0, None),
        (500.0, 4.2, None),
        (0.0, 0.5, "spool on mk3 has 0 g, job needs 0.5 g"),
        (1.0, 3.9246, "spool on mk3 has 1 g, job needs 3.9 g"),
    ],
)
def test_short_spool_reason(remaining: float, needed: float, reason: str | None) -> None:
    spool = Spool(id=1, material="PLA", remaining_weight=remaining)
    assert spool_short_reason("mk3", spool, needed) == reason


def test_a_spoolman_spool_reads_as_a_printforge_spool() -> None:
    spool = spool_from_spoolman(
        {
            "id": 4,
            "filament": {"id": 9, "name": "Galaxy Black", "material": "PETG",
                         "vendor": {"id": 1, "name": "Prusament"}},
            "initial_weight": 1000.0,
            "remaining_weight": -3.0,  # Spoolman lets a spool go below zero
            "used_weight": 1003.0,
            "archived": True,
        }
    )  # fmt: skip
    assert (spool.id, spool.material, spool.name) == (4, "PETG", "Prusament Galaxy Black")
    assert (spool.remaining_weight, spool.archived, spool.source) == (0.0, True, "spoolman")
    bare = spool_from_spoolman({"id": 5, "filament": {"id": 2}})
    assert (bare.material, bare.name, bare.remaining_weight) == ("unknown", None, 0.0)


def test_spoolman_url_is_http_and_loses_its_trailing_slash() -> None:
    assert SpoolmanSettings(url="http://spoolman.lan:7912/").url == "http://spoolman.lan:7912"
    assert not SpoolmanSettings().enabled
    with pytest.raises(ValidationError, match="http"):
        SpoolmanSettings(url="spoolman.lan:7912")


def test_request_constraints_are_cleaned_and_a_time_needs_its_zone() -> None:
    request = PrintRequest(text="a cube", tags=[" enclosed", "0.6mm", "enclosed"])
    assert request.tags == ["0.6mm", "enclosed"]
    when = datetime.fromisoformat("2026-12-08T06:00:00+01:00")
    assert PrintRequest(text="a cube", not_before=when).not_before == when
    with pytest.raises(ValidationError, match="time zone"):
        PrintRequest(text="a cube", not_before=datetime(2026, 12, 8, 6))
    with pytest.raises(ValidationError, match="1 to 64"):
        PrintRequest(text="a cube", tags=[""])
    # Stored requests from before these fields load as unconstrained.
    old = PrintRequest.model_validate_json('{"text": "a cube", "printer": "mk3"}')
    assert (old.tags, old.nozzle_diameter, old.not_before) == ([], None, None)
