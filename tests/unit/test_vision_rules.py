"""Telemetry rules and the recovery policy (issue 17): pure functions, table tests."""

from __future__ import annotations

import pytest

from printforge.models.printer import PrinterState, PrinterStatus, PrintProgress, Temperature
from printforge.vision.config import DetectionConfig
from printforge.vision.recovery import RESLICE_CHANGES, decide
from printforge.vision.telemetry import THERMAL_SAMPLES, TelemetryRules


def _status(
    state: PrinterState = PrinterState.PRINTING,
    hotend: tuple[float, float] = (210.0, 210.0),
    lines: int = 100,
    resends: int = 0,
    message: str | None = None,
) -> PrinterStatus:
    return PrinterStatus(
        id="p",
        driver="virtual",
        state=state,
        temperatures={"hotend": Temperature(actual=hotend[0], target=hotend[1])},
        progress=PrintProgress(lines_acked=lines, lines_total=1000, resends=resends),
        message=message,
    )


def test_a_heater_still_heating_up_is_no_anomaly() -> None:
    rules = TelemetryRules()
    found = [rules.see(_status(hotend=(25.0 + i, 210.0), lines=i), float(i)) for i in range(30)]
    assert not any(found)


def test_a_heater_that_drifts_after_reaching_its_target_is_an_anomaly() -> None:
    rules = TelemetryRules()
    assert rules.see(_status(hotend=(209.0, 210.0), lines=1), 0.0) == []
    found = []
    for i in range(THERMAL_SAMPLES):
        found += rules.see(_status(hotend=(180.0, 210.0), lines=2 + i), 1.0 + i)
    assert [f.kind for f in found] == ["thermal"]
    # Said once, not on every report after.
    assert rules.see(_status(hotend=(170.0, 210.0), lines=99), 20.0) == []


def test_stalled_progress() -> None:
    rules = TelemetryRules(DetectionConfig(stall_s=60))
    assert rules.see(_status(lines=5), 0.0) == []
    assert rules.see(_status(lines=5), 59.0) == []
    assert [f.kind for f in rules.see(_status(lines=5), 61.0)] == ["stalled"]


def test_a_paused_print_is_not_stalled() -> None:
    rules = TelemetryRules(DetectionConfig(stall_s=60))
    rules.see(_status(lines=5), 0.0)
    assert rules.see(_status(state=PrinterState.PAUSED, lines=5), 500.0) == []


def test_a_resend_storm() -> None:
    rules = TelemetryRules(DetectionConfig(resends_per_min=10))
    assert rules.see(_status(lines=1, resends=0), 0.0) == []
    assert rules.see(_status(lines=2, resends=8), 30.0) == []
    assert [f.kind for f in rules.see(_status(lines=3, resends=20), 50.0)] == ["resend_storm"]


def test_resends_spread_over_an_hour_are_no_storm() -> None:
    rules = TelemetryRules(DetectionConfig(resends_per_min=10))
    found = [rules.see(_status(lines=i, resends=i), 60.0 * i) for i in range(60)]
    assert not any(found)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("paused by firmware (filament_runout 0)", "firmware"),
        ("Filament runout", "firmware"),
        ("busy: processing", None),
    ],
)
def test_firmware_messages(message: str, kind: str | None) -> None:
    found = TelemetryRules().see(_status(message=message), 0.0)
    assert [f.kind for f in found] == ([kind] if kind else [])


def test_recovery_first_retries_then_reslices_then_gives_up() -> None:
    first = decide("spaghetti", failures=1, max_attempts=3)
    assert first.action == "retry" and first.change == {}
    second = decide("spaghetti", failures=2, max_attempts=3)
    assert second.action == "reslice" and second.change == RESLICE_CHANGES["spaghetti"]
    assert decide("spaghetti", failures=3, max_attempts=3).action == "give_up"


def test_recovery_cancels_only_the_failed_object_of_a_plate() -> None:
    d = decide("detached", failures=1, max_attempts=3, objects=["a", "b"], failed_object="b")
    assert (d.action, d.object) == ("cancel_object", "b")
    # One object left (or none known): the plate cannot go on without it.
    assert (
        decide("detached", failures=1, max_attempts=3, objects=["b"], failed_object="b").action
        == "retry"
    )


def test_every_failure_kind_has_a_reslice_change() -> None:
    from printforge.hardware.camera.config import FAILURE_KINDS
    from printforge.models.request import SliceOverrides

    for kind in FAILURE_KINDS:
        SliceOverrides.model_validate(RESLICE_CHANGES[kind])  # each change is a real override
