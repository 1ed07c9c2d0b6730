"""Klipper status as Moonraker publishes it, read into printer state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from printforge.hardware.mqtt.klipper import KlipperState, merge_status, rpc_request
from printforge.models.printer import PrinterState


@pytest.mark.parametrize(
    ("webhooks", "print_state", "expected"),
    [
        ("ready", "standby", PrinterState.IDLE),
        ("ready", "printing", PrinterState.PRINTING),
        ("ready", "paused", PrinterState.PAUSED),
        ("ready", "complete", PrinterState.IDLE),
        ("ready", "cancelled", PrinterState.IDLE),
        ("ready", "error", PrinterState.FAULTED),
        ("shutdown", "printing", PrinterState.FAULTED),
        ("startup", "standby", PrinterState.CONNECTING),
    ],
)
def test_states(webhooks: str, print_state: str, expected: PrinterState) -> None:
    tree = {"webhooks": {"state": webhooks}, "print_stats": {"state": print_state}}
    assert KlipperState.of(tree).state is expected


def test_partial_updates_merge_into_progress_and_temperatures() -> None:
    tree: dict[str, dict[str, Any]] = {}
    merge_status(
        tree,
        {
            "print_stats": {"state": "printing", "filename": "a.gcode", "print_duration": 10.0},
            "virtual_sdcard": {"file_size": 1000, "file_position": 0},
            "extruder": {"temperature": 200.0, "target": 210.0},
        },
    )
    merge_status(tree, {"virtual_sdcard": {"file_position": 250}, "extruder": {"temperature": 209}})
    k = KlipperState.of(tree)
    assert k.filename == "a.gcode"
    assert k.progress is not None and k.progress.fraction == 0.25
    assert k.progress.eta_s == pytest.approx(30.0)
    assert k.temperatures["hotend"].actual == 209 and k.temperatures["hotend"].target == 210
    assert "bed" not in k.temperatures


def test_shutdown_message_is_kept() -> None:
    tree = {"webhooks": {"state": "shutdown", "state_message": "MCU 'mcu' shutdown"}}
    k = KlipperState.of(tree)
    assert k.state is PrinterState.FAULTED and k.message == "MCU 'mcu' shutdown"


def test_rpc_frame() -> None:
    frame = json.loads(rpc_request("printer.print.start", {"filename": "x.gcode"}, 7))
    assert frame == {
        "jsonrpc": "2.0",
        "method": "printer.print.start",
        "params": {"filename": "x.gcode"},
        "id": 7,
    }
    assert "params" not in json.loads(rpc_request("printer.print.pause", None, 8))
