"""Klipper status as Moonraker publishes it, read into printer state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from printforge.hardware.mqtt.klipper import (
    KlipperState,
    RpcResponse,
    ServerInfo,
    merge_status,
    reply_fits,
    rpc_request,
)
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
        ("ready", None, PrinterState.IDLE),
    ],
)
def test_states(webhooks: str, print_state: str | None, expected: PrinterState) -> None:
    tree: dict[str, dict[str, Any]] = {"webhooks": {"state": webhooks}}
    if print_state is not None:
        tree["print_stats"] = {"state": print_state}
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


def test_an_empty_tree_says_nothing_about_readiness() -> None:
    # Nothing queried yet, or Klippy gone: not "ready" by default (issue 19 item 3).
    k = KlipperState.of({})
    assert k.state is PrinterState.CONNECTING
    assert "unknown" in (k.message or "")
    assert KlipperState.of({"print_stats": {"state": "standby"}}).state is PrinterState.CONNECTING


def test_server_info_says_whether_klippy_is_there() -> None:
    # moonraker/server.py _handle_info_request, as real Moonraker 0.11 answers without Klippy.
    absent = ServerInfo.model_validate(
        {
            "klippy_connected": False,
            "klippy_state": "disconnected",
            "components": ["klippy_connection", "mqtt"],
            "failed_components": [],
            "warnings": [],
            "moonraker_version": "v0.11.0",
        }
    )
    assert not absent.ready
    ready = ServerInfo(klippy_connected=True, klippy_state="ready")
    assert ready.ready
    assert not ServerInfo(klippy_connected=True, klippy_state="startup").ready


@pytest.mark.parametrize(
    ("method", "result", "fits"),
    [
        ("printer.print.pause", "ok", True),
        # Another client's server.info answer under the same id is no answer to a pause.
        ("printer.print.pause", {"klippy_connected": True, "klippy_state": "ready"}, False),
        ("server.info", {"klippy_connected": False, "klippy_state": "disconnected"}, True),
        ("server.info", "ok", False),
        ("printer.objects.query", {"eventtime": 1.0, "status": {"webhooks": {}}}, True),
        ("printer.objects.query", {"objects": ["webhooks"]}, False),
        ("printer.objects.list", {"objects": ["webhooks"]}, True),
        ("printer.info", {"state": "ready", "state_message": "Printer is ready"}, True),
    ],
)
def test_a_reply_must_fit_the_method_it_answers(method: str, result: Any, fits: bool) -> None:
    assert reply_fits(method, RpcResponse(id="pf-x-1", result=result)) is fits
    # An error with our id is always ours: errors have one shape for every method.
    error = RpcResponse.model_validate(
        {"id": "pf-x-1", "error": {"code": 503, "message": "Klippy Host not connected"}}
    )
    assert reply_fits(method, error)


def test_request_ids_are_strings_with_a_random_part_per_driver() -> None:
    from printforge.hardware.mqtt.moonraker import MoonrakerConfig, MoonrakerDriver
    from printforge.models.printer import PrinterProfile

    def driver() -> MoonrakerDriver:
        config = MoonrakerConfig(broker="mqtt://127.0.0.1:1", instance="k", http_url="http://x")
        return MoonrakerDriver("k", config, PrinterProfile(name="generic-220"))

    a, b = driver(), driver()
    ids_a = {a._next_id() for _ in range(50)}
    ids_b = {b._next_id() for _ in range(50)}
    assert len(ids_a) == 50 and not ids_a & ids_b
    assert not ids_a & {str(n) for n in range(1, 1000)}  # other clients number 1, 2, 3…
