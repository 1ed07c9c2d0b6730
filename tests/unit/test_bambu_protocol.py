"""Bambu LAN reports read into printer state; request frames."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from printforge.hardware.mqtt.bambu import BambuConfig
from printforge.hardware.mqtt.bambu_protocol import (
    CANCELLED,
    BambuState,
    echo_of,
    error_code,
    merge_report,
    non_numeric,
    request,
)
from printforge.hardware.mqtt.config import BrokerAddress
from printforge.models.printer import PrinterState


@pytest.mark.parametrize(
    ("gcode_state", "expected"),
    [
        ("IDLE", PrinterState.IDLE),
        ("PREPARE", PrinterState.HEATING),
        ("RUNNING", PrinterState.PRINTING),
        ("PAUSE", PrinterState.PAUSED),
        ("FINISH", PrinterState.IDLE),
        # A resting state (pybambu treats IDLE, FAILED and FINISH alike); an error makes it a
        # fault, see test_a_cancel_is_no_fault.
        ("FAILED", PrinterState.IDLE),
        ("something", PrinterState.IDLE),
    ],
)
def test_states(gcode_state: str, expected: PrinterState) -> None:
    assert BambuState.of({"gcode_state": gcode_state}).state is expected


def test_error_codes() -> None:
    assert error_code(0x0300_4000) == "0300_4000"
    assert error_code(0x0C00_8001) == "0C00_8001"
    running_with_error = BambuState.of({"gcode_state": "RUNNING", "print_error": 0x0300_4000})
    assert running_with_error.state is PrinterState.FAULTED
    assert running_with_error.message == "HMS 0300_4000"


def test_partial_reports_fold_into_progress() -> None:
    tree: dict[str, Any] = {}
    merge_report(
        tree,
        {
            "gcode_state": "RUNNING",
            "nozzle_temper": 219.5,
            "nozzle_target_temper": 220,
            "bed_temper": 55,
            "mc_percent": 10,
        },
    )
    merge_report(tree, {"mc_percent": 40, "mc_remaining_time": 12})
    b = BambuState.of(tree)
    assert b.temperatures["hotend"].actual == 219.5 and b.temperatures["bed"].target == 0
    progress = b.progress(1000, 5.0)
    assert progress is not None and progress.bytes_acked == 400 and progress.eta_s == 720.0
    assert BambuState.of({}).progress(1000, 0.0) is None


def test_request_frames() -> None:
    assert json.loads(request("pushing", "pushall", 1)) == {
        "pushing": {"sequence_id": "1", "command": "pushall"}
    }
    line = json.loads(request("print", "gcode_line", 2, param="G28\n"))
    assert line["print"] == {"sequence_id": "2", "command": "gcode_line", "param": "G28\n"}


def test_reports_come_from_the_printer_itself_over_tls_by_default() -> None:
    cfg = BambuConfig(host="192.0.2.7", serial="01S00C123", access_code="12345678")
    assert cfg.address() == BrokerAddress(host="192.0.2.7", port=8883, tls=True)
    assert cfg.ftp_tls


@pytest.mark.parametrize(
    ("broker", "expected"),
    [
        ("mqtt://127.0.0.1:18830", BrokerAddress(host="127.0.0.1", port=18830, tls=False)),
        ("mqtts://farm.lan", BrokerAddress(host="farm.lan", port=8883, tls=True)),
    ],
)
def test_a_shared_broker_decides_the_transport(broker: str, expected: BrokerAddress) -> None:
    cfg = BambuConfig(host="127.0.0.1", serial="s", access_code="1", broker=broker)
    assert cfg.address() == expected


@pytest.mark.parametrize("broker", ["http://farm.lan:1883", "mqtt://", "mqtt://farm.lan:port"])
def test_a_malformed_broker_is_refused_with_the_reason(broker: str) -> None:
    with pytest.raises(ValidationError, match="broker"):
        BambuConfig(host="127.0.0.1", serial="s", access_code="1", broker=broker)


def test_fields_that_are_not_numbers_are_found_and_numeric_strings_read() -> None:
    section = {
        "mc_percent": "abc",
        "bed_temper": True,
        "nozzle_temper": "215.5",
        "print_error": None,
    }
    assert non_numeric(section) == ["mc_percent", "bed_temper"]
    state = BambuState.of({"gcode_state": "RUNNING", "nozzle_temper": "215.5", "mc_percent": "42"})
    assert state.temperatures["hotend"].actual == 215.5
    assert state.percent == 42


def test_layers_are_read_into_the_progress() -> None:
    tree = {"gcode_state": "RUNNING", "mc_percent": 40, "layer_num": 12, "total_layer_num": 30}
    progress = BambuState.of(tree).progress(1000, 5.0)
    assert progress is not None and (progress.layer, progress.layers_total) == (12, 30)
    idle = BambuState.of({"gcode_state": "IDLE", "layer_num": 0, "total_layer_num": 0})
    assert (idle.layer, idle.layers_total) == (None, None)


# pybambu (ha-bambulab custom_components/bambu_lab/pybambu/models.py, print_update): the fields it
# documents from a printer's report, in the example it keeps in its source.
PYBAMBU_IDLE_REPORT = {
    "gcode_start_time": "1681479206",
    "gcode_state": "IDLE",
    "mc_print_stage": "1",
    "mc_percent": 100,
    "mc_remaining_time": 0,
    "wifi_signal": "-53dBm",
    "print_type": "idle",
    "ipcam": {"ipcam_dev": "1", "ipcam_record": "enable", "timelapse": "disable"},
    "layer_num": 0,
    "total_layer_num": 0,
}


def test_pybambus_documented_report_reads_as_an_idle_printer() -> None:
    b = BambuState.of(PYBAMBU_IDLE_REPORT)
    assert b.state is PrinterState.IDLE and b.percent == 100 and b.remaining_min == 0
    assert (b.layer, b.layers_total) == (None, None)  # 0 of 0: no plan, not "layer 0"


@pytest.mark.parametrize(
    ("report", "file", "subtask"),
    [
        # X1, a LAN print of a 3MF (pybambu's table): the plate path and the subtask.
        (
            {"gcode_file": "/data/Metadata/plate_1.gcode", "subtask_name": "Clamshell Parts Box"},
            "/data/Metadata/plate_1.gcode",
            "Clamshell Parts Box",
        ),
        # P1, Bambu Studio's LAN print: the file, and its name as the subtask.
        ({"gcode_file": "36mm.gcode.3mf", "subtask_name": "36mm"}, "36mm.gcode.3mf", "36mm"),
        ({"gcode_file": "", "subtask_name": ""}, None, None),
    ],
)
def test_a_print_is_named_by_file_and_subtask(
    report: dict[str, Any], file: str | None, subtask: str | None
) -> None:
    b = BambuState.of({"gcode_state": "RUNNING", **report})
    assert (b.gcode_file, b.subtask_name) == (file, subtask)


def test_a_cancel_is_no_fault() -> None:
    # A cancel ends FAILED with print_error 50348044 (0x0300400C), which goes back to 0 a few
    # seconds later (pybambu: "event_print_canceled"); FAILED is then at rest, like FINISH.
    assert CANCELLED == 50348044
    cancelled = BambuState.of({"gcode_state": "FAILED", "print_error": 50348044})
    assert cancelled.state is PrinterState.IDLE and cancelled.cancelled
    assert "cancelled" in (cancelled.message or "")
    assert BambuState.of({"gcode_state": "FAILED", "print_error": 0}).state is PrinterState.IDLE
    # Still printing while the cancel code is already out: printing, not faulted.
    running = BambuState.of({"gcode_state": "RUNNING", "print_error": 50348044})
    assert running.state is PrinterState.PRINTING
    # A real failure is a fault while its code stands.
    failed = BambuState.of({"gcode_state": "FAILED", "print_error": 0x0300_4000})
    assert failed.state is PrinterState.FAULTED and failed.message == "HMS 0300_4000"


@pytest.mark.parametrize(
    ("section", "echo"),
    [
        ({"command": "pause", "sequence_id": "7", "result": "success"}, ("7", "pause")),
        (
            {"command": "project_file", "sequence_id": "10000000", "result": "failed"},
            ("10000000", "project_file"),
        ),
        # The printer's own reports carry its sequence id too: never an answer.
        ({"command": "push_status", "sequence_id": "2021", "msg": 1}, None),
        ({"command": "stop", "result": "success"}, None),  # a client that sent no id
        ({"gcode_state": "IDLE"}, None),
    ],
)
def test_echoes_are_told_from_reports(
    section: dict[str, Any], echo: tuple[str, str] | None
) -> None:
    assert echo_of(section) == echo


def test_sequence_ids_start_at_a_random_base_per_driver() -> None:
    from printforge.hardware.mqtt.bambu import BambuDriver
    from printforge.models.printer import PrinterProfile

    def driver() -> BambuDriver:
        cfg = BambuConfig(host="127.0.0.1", serial="s", access_code="12345678")
        return BambuDriver("x1", cfg, PrinterProfile(name="generic-220"))

    a, b = driver(), driver()
    ids_a = [a._next_id() for _ in range(20)]
    assert all(i.isdigit() and int(i) < 2**31 for i in ids_a)  # numbers, as the printers use
    assert not set(ids_a) & {b._next_id() for _ in range(20)}
    assert not set(ids_a) & {"0", "1", "2", "10000000"}  # other clients' ids
