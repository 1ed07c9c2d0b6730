"""The reference Marlin itself, driven with raw pyserial writes: exact bytes, as Marlin answers.

Every expectation here comes from Marlin's source (see ``marlin_lines``), so that the host
conformance tests are measured against Marlin and not against our reading of a host.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.conformance.conftest import RawHost
from tests.conformance.marlin_lines import (
    CAP_ORDER,
    FREE_TEXT,
    LEGACY,
    LINES,
    LineClass,
    classify,
)
from tests.conformance.marlin_reference import Busy, Executed, MarlinReference
from tests.conformance.marlin_wire import checksum, frame, strtol

pytestmark = pytest.mark.conformance

Make = Callable[..., tuple[MarlinReference, RawHost]]
IDLE_STATES = " T:25.00 /0.00 B:25.00 /0.00 @:0 B@:0"


def handshake(host: RawHost) -> None:
    host.send(0, "M110 N0")
    assert host.line() in ("ok", "ok N0 P15 B3")


def executed(ref: MarlinReference, count: int, timeout: float = 10.0) -> list[Executed]:
    assert ref.wait_until(lambda r: len(r.executed) >= count, timeout), ref.executed
    return ref.snapshot()[0]


# ---- the table ------------------------------------------------------------------------------


def test_every_table_entry_matches_its_own_pattern() -> None:
    assert len(LINES) >= 80
    for entry in (*LINES, *LEGACY):
        assert entry.matches(entry.text), entry
        assert entry.source and entry.function and entry.host
    assert classify("Error:No Line Number with checksum, Last Line: 7") is None  # 1.x only
    assert classify("// action:out_of_filament T0") is None  # Repetier's, not Marlin's


def test_table_classes_of_the_lines_hosts_trip_on() -> None:
    cases = {
        "echo:busy: processing": LineClass.BUSY,
        "echo:busy: paused for user": LineClass.BUSY,
        "echo:busy: paused for input": LineClass.BUSY,
        "ok N12 P15 B3": LineClass.OK_ADVANCED,
        "//action:paused": LineClass.ACTION_NOTICE,
        "//action:resumed": LineClass.ACTION_NOTICE,
        "//action:pause": LineClass.ACTION_COMMAND,
        "//action:cancel": LineClass.ACTION_COMMAND,
        "Error:Printer halted. kill() called!": LineClass.ERROR_FATAL,
        "Error:Thermal Runaway, system stopped! Heater_ID: E0": LineClass.ERROR_FATAL,
        "Error:checksum mismatch, Last Line: 41": LineClass.ERROR_RECOVERABLE,
        "Resend: 42": LineClass.RESEND,
        IDLE_STATES: LineClass.TEMPERATURE,
        "Cap:EMERGENCY_PARSER:1": LineClass.CAPABILITY,
    }
    for line, cls in cases.items():
        entry = classify(line)
        assert entry is not None and entry.cls is cls, (line, entry)


def test_wire_helpers_follow_c() -> None:
    assert strtol("  -12abc") == -12 and strtol("*") == 0 and strtol("") == 0
    assert frame(0, "M110 N0") == b"N0 M110 N0*125\n"  # the handshake every host sends
    assert checksum(b"N1 G28") == 0x4E ^ 0x31 ^ 0x20 ^ 0x47 ^ 0x32 ^ 0x38 == 18


# ---- ok and ADVANCED_OK -----------------------------------------------------------------------


def test_plain_ok_after_each_command(marlin: Make) -> None:
    ref, host = marlin()
    host.send(0, "M110 N0")
    assert host.read_raw_until(b"\n") == b"ok\n"
    host.send(1, "G1 X10 F3000")
    assert host.read_raw_until(b"\n") == b"ok\n"
    host.write(b"G1 X5*99\n")  # no N: queued without any check, the bad checksum ignored
    assert host.read_raw_until(b"\n") == b"ok\n"
    assert executed(ref, 3)[1:] == [Executed(1, "G1 X10 F3000"), Executed(None, "G1 X5")]


def test_advanced_ok_names_the_acknowledged_line_and_counts_it_in_b(marlin: Make) -> None:
    """N is the executed command's own number, B counts the ring *with* that command in it."""
    ref, host = marlin(advanced_ok=True, move_time_s=100.0, keepalive_interval_s=0)
    host.send(0, "M110 N0")
    assert host.line() == "ok N0 P15 B3"
    host.send(1, "M0")  # holds the ring's head until the user confirms
    executed(ref, 2)
    host.send(2, "G1 X1")
    host.send(3, "G1 X2")
    assert ref.wait_until(lambda r: r.queued == 3, 10)
    ref.confirm()
    assert [host.line(), host.line(), host.line()] == [
        "ok N1 P15 B1",  # M0's ok: its own N, while N2 and N3 were already received
        "ok N2 P14 B2",
        "ok N3 P13 B3",
    ]
    host.write(b"G1 X3\n")
    assert host.line() == "ok P12 B3"  # unnumbered: no N field
    host.send(4, "M105")
    assert host.line() == "ok" + IDLE_STATES  # M105 prints its own ok: never the fields


# ---- line numbers, checksums, resend ------------------------------------------------------------


def test_checksum_mismatch_exact_bytes(marlin: Make) -> None:
    _, host = marlin(advanced_ok=True)
    handshake(host)
    host.write(b"N1 G1 X1*0\n")
    assert host.read_raw_until(b"ok\n") == (
        b"Error:checksum mismatch, Last Line: 0\nResend: 1\nok\n"  # plain ok, even ADVANCED_OK
    )


def test_line_number_gap_exact_bytes(marlin: Make) -> None:
    ref, host = marlin()
    handshake(host)
    host.send(5, "G1 X1")
    assert host.read_raw_until(b"ok\n") == (
        b"Error:Line Number is not Last Line Number+1, Last Line: 0\nResend: 1\nok\n"
    )
    assert ref.resend_requests == [1]


def test_no_checksum_with_line_number(marlin: Make) -> None:
    _, host = marlin()
    handshake(host)
    host.write(b"N1 G1 X1\n")
    assert host.read_raw_until(b"ok\n") == (
        b"Error:No Checksum with line number, Last Line: 0\nResend: 1\nok\n"
    )


def test_repeated_line_is_dropped_without_any_answer(marlin: Make) -> None:
    """bugfix-2.1.x: N == last_N or last_N - 1 is 'a request-for-resend line already in transit'."""
    ref, host = marlin()
    handshake(host)
    host.send(1, "G1 X1")
    assert host.line() == "ok"
    host.send(1, "G1 X1")
    host.send(0, "M110 N0")  # M110 is exempt from the number check: it is taken
    host.send(1, "G1 X2")
    assert host.line() == "ok"
    assert host.line() == "ok"
    assert ref.ignored_duplicates == [1]
    assert [e.command for e in executed(ref, 4)] == ["M110 N0", "G1 X1", "M110 N0", "G1 X2"]


def test_repeated_line_before_the_duplicate_rule_asks_for_a_resend(marlin: Make) -> None:
    _, host = marlin(drop_duplicate_lines=False)
    handshake(host)
    host.send(1, "G1 X1")
    assert host.line() == "ok"
    host.send(1, "G1 X1")
    assert host.lines_until("ok") == [
        "Error:Line Number is not Last Line Number+1, Last Line: 1",
        "Resend: 2",
        "ok",
    ]


def test_m110_sets_the_number_and_reports_it(marlin: Make) -> None:
    _, host = marlin()
    host.send(0, "M110 N100")  # the number after M110 counts, not the line's own N
    assert host.line() == "ok"
    host.send(101, "G1 X1")
    assert host.line() == "ok"
    host.write(b"M110\n")
    assert host.lines_until("ok") == ["Line: 101", "ok"]


# ---- busy keepalives --------------------------------------------------------------------------


def test_keepalive_during_a_long_g28(marlin: Make) -> None:
    ref, host = marlin(keepalive_interval_s=0.2, command_time_s={"G28": 1.5})
    handshake(host)
    host.send(1, "G28")
    host.send(2, "G1 X5")  # read into the ring during G28, acknowledged after it
    lines = host.lines_until("ok")
    assert set(lines[:-1]) == {"echo:busy: processing"} and len(lines) >= 3, lines
    assert host.line() == "ok"
    assert ref.queued == 0
    host.write(b"M113\n")
    assert host.lines_until("ok") == ["echo:M113 S0", "ok"]  # a float interval shows its int


def test_m0_waits_paused_for_user_until_m108(marlin: Make) -> None:
    ref, host = marlin(keepalive_interval_s=0.2)
    handshake(host)
    host.send(1, "M0 Remove the part")
    assert host.line() == "echo:Remove the part"
    assert host.line() == "echo:busy: paused for user"
    host.write(b"M108\n")  # the emergency parser ends the wait as the bytes arrive
    lines = host.lines_until(lambda s: s == "ok")
    assert set(lines[:-1]) <= {"echo:busy: paused for user"}
    assert host.line() == "ok"  # the M108 line itself, queued behind M0
    assert [e.command for e in executed(ref, 3)] == ["M110 N0", "M0 Remove the part", "M108"]


def test_m0_is_unknown_without_emergency_parser_or_lcd(marlin: Make) -> None:
    _, host = marlin(emergency_parser=False)
    handshake(host)
    host.send(1, "M0")
    assert host.lines_until("ok") == ['echo:Unknown command: "M0"', "ok"]


def test_paused_for_input_variant(marlin: Make) -> None:
    _, host = marlin(keepalive_interval_s=0.2, user_wait_state=Busy.PAUSED_FOR_INPUT, user_wait_s=5)
    handshake(host)
    host.send(1, "M1")
    assert host.line() == "echo:busy: paused for input"


# ---- temperatures -----------------------------------------------------------------------------


def test_m105_and_autoreport(marlin: Make) -> None:
    _, host = marlin()
    handshake(host)
    host.send(1, "M105")
    assert host.read_raw_until(b"\n") == b"ok" + IDLE_STATES.encode() + b"\n"
    host.send(2, "M155 S1")
    assert host.line() == "ok"
    assert host.line(5) == IDLE_STATES  # leading space: print_heater_states' own


def test_two_extruders(marlin: Make) -> None:
    _, host = marlin(extruders=2)
    handshake(host)
    host.send(1, "M104 T1 S200")
    assert host.line() == "ok"
    host.send(2, "M105")
    line = host.line()
    assert re.fullmatch(
        r"ok T:25\.00 /0\.00 B:25\.00 /0\.00 T0:25\.00 /0\.00 T1:\d+\.\d\d /200\.00 "
        r"@:0 B@:0 @0:0 @1:127",
        line,
    ), line


def test_m109_prints_states_with_w_and_keepalives(marlin: Make) -> None:
    _, host = marlin(heat_rate_c_s=100.0, temp_residency_s=2.0, keepalive_interval_s=0.3)
    handshake(host)
    host.send(1, "M109 S60")
    lines = host.lines_until("ok")
    temps = [s for s in lines if s.startswith(" T:")]
    assert temps[0].endswith(" W:?") and temps[0].startswith(" T:25.00 /60.00")
    assert any(re.search(r" W:\d+$", s) for s in temps), temps
    assert "echo:busy: processing" in lines  # BUSY_WHILE_HEATING
    for line in lines[:-1]:
        entry = classify(line)
        assert entry is not None and entry.cls in (LineClass.TEMPERATURE, LineClass.BUSY), line


def test_m108_ends_a_heating_wait(marlin: Make) -> None:
    ref, host = marlin(heat_rate_c_s=0.001)
    handshake(host)
    host.send(1, "M109 S200")
    assert host.line().endswith(" W:?")
    host.send(2, "M108")  # numbered: the emergency parser reads past N and '*'
    lines = host.lines_until("ok")
    assert host.line() == "ok"
    assert [e.command for e in executed(ref, 3)][1:] == ["M109 S200", "M108"]
    assert ref.hotends[0].target == 200.0, lines  # M108 ends the wait, the target stays


# ---- M115, M114, unknown -----------------------------------------------------------------------


def test_m115_firmware_and_caps(marlin: Make) -> None:
    _, host = marlin(advanced_ok=True, emergency_parser=False)
    handshake(host)
    host.send(1, "M115")
    lines = host.lines_until(lambda s: s.startswith("ok"))
    assert lines[0].startswith("FIRMWARE_NAME:Marlin bugfix-2.1.x (")
    assert [s.split(":")[1] for s in lines[1:-1]] == list(CAP_ORDER)  # no Cap:ADVANCED_OK
    assert "Cap:EMERGENCY_PARSER:0" in lines and "Cap:AUTOREPORT_TEMP:1" in lines
    assert "Cap:HOST_ACTION_COMMANDS:1" in lines and lines[-1] == "ok N1 P15 B3"


def test_m114_unknown_and_m118(marlin: Make) -> None:
    _, host = marlin()
    handshake(host)
    host.send(1, "G1 X10 Y20 Z0.2 E1.5")
    host.send(2, "M114")
    assert host.lines_until(lambda s: s.startswith("X:"))[-1] == (
        "X:10.00 Y:20.00 Z:0.20 E:1.50 Count X:800 Y:1600 Z:80"
    )
    assert host.line() == "ok"
    host.send(3, "G999")
    assert host.lines_until("ok") == ['echo:Unknown command: "G999"', "ok"]
    host.send(4, "M118 A1 action:cancel")
    assert host.lines_until("ok") == ["//action:cancel", "ok"]


# ---- M600 and M112 ----------------------------------------------------------------------------


def test_m600_announces_its_own_pause_and_resume(marlin: Make) -> None:
    ref, host = marlin(
        keepalive_interval_s=0.2, heat_rate_c_s=2000.0, pause_park_s=0.3, pause_load_s=0.3
    )
    handshake(host)
    host.send(1, "M600")
    head = host.lines_until("echo:busy: paused for user")
    assert head[0] == "//action:paused"
    assert head[-2] == "echo:Insert filament and send M108"
    host.send(2, "M108")
    tail = host.lines_until("ok")
    assert host.line() == "ok"  # the M108 itself
    significant = [s for s in head + tail if not s.startswith("echo:busy:")]
    assert significant == [
        "//action:paused",
        "echo:Insert filament and send M108",
        "//action:resumed",
        "ok",
    ]
    assert [e.command for e in executed(ref, 3)][1:] == ["M600", "M108"]


def test_m112_halts_through_the_emergency_parser_even_mid_g28(marlin: Make) -> None:
    ref, host = marlin(command_time_s={"G28": 30.0}, keepalive_interval_s=0)
    handshake(host)
    host.send(1, "G28")
    executed(ref, 2)
    host.send(2, "M112")
    assert host.lines_until("//action:poweroff") == [
        "echo:M112 Shutdown",
        "Error:Printer halted. kill() called!",
        "//action:poweroff",
    ]
    before = ref.bytes_in
    host.send(3, "M105")
    assert ref.wait_until(lambda r: r.bytes_in > before, 5)
    assert ref.halted and ref.snapshot()[1][-1] == "//action:poweroff"  # nothing answered


def test_m112_without_emergency_parser_waits_its_turn(marlin: Make) -> None:
    _, host = marlin(emergency_parser=False, command_time_s={"G28": 0.5}, keepalive_interval_s=0)
    handshake(host)
    host.send(1, "G28")
    host.send(2, "M112")  # numbered, so not caught early either: it runs after G28
    assert host.lines_until("//action:poweroff") == [
        "ok",
        "echo:M112 Shutdown",
        "Error:Printer halted. kill() called!",
        "//action:poweroff",
    ]


# ---- faults -------------------------------------------------------------------------------------


def test_corrupt_checksum_every_n(marlin: Make) -> None:
    ref, host = marlin(corrupt_checksum_every=2)
    host.send(0, "M110 N0")  # numbered line 1 of the count
    assert host.line() == "ok"
    host.send(1, "G1 X1")  # 2: corrupted
    assert host.lines_until("ok")[0] == "Error:checksum mismatch, Last Line: 0"
    host.send(1, "G1 X1")  # 3
    assert host.line() == "ok"
    assert [e.command for e in executed(ref, 2)] == ["M110 N0", "G1 X1"]


def test_drop_ok_every_n(marlin: Make) -> None:
    ref, host = marlin(drop_ok_every=2)
    handshake(host)
    host.send(1, "G1 X1")
    host.send(2, "G1 X2")
    assert host.line() == "ok"
    executed(ref, 3)
    assert ref.dropped_oks == ["ok"] and ref.snapshot()[1] == ["ok", "ok"]


def test_unsolicited_lines(marlin: Make) -> None:
    ref, host = marlin(unsolicited={1: ["//action:pause"]})
    handshake(host)
    host.send(1, "G1 X1")
    assert host.lines_until("ok") == ["//action:pause", "ok"]
    ref.emit("echo:hello")
    assert host.line() == "echo:hello"


def test_a_full_rx_buffer_drops_bytes(marlin: Make) -> None:
    ref, host = marlin(rx_buffer_bytes=64, keepalive_interval_s=0)
    handshake(host)
    host.send(1, "M0")
    executed(ref, 2)
    for n in (2, 3, 4):
        host.send(n, f"G1 X{n}")
    assert ref.wait_until(lambda r: r.queued == 4, 10)  # the ring is full: the RX buffer fills
    burst = b"".join(frame(n, f"G1 X{n}") for n in range(5, 13))
    total = ref.bytes_in + len(burst)
    host.write(burst)
    assert ref.wait_until(lambda r: r.bytes_in == total, 10)
    assert ref.rx_dropped == len(burst) - 63  # a ring of 64 holds 63
    kept = burst[:63]
    intact = [int(m) for m in re.findall(rb"N(\d+) [^\n]*\n", kept[: kept.rindex(b"\n") + 1])]
    ref.confirm()
    wanted = 5 + len(intact)
    assert [e.line for e in executed(ref, wanted)][1:] == [1, 2, 3, 4, *intact]


# ---- everything the reference prints is in the table --------------------------------------------


def test_every_line_the_reference_prints_is_in_the_table(marlin: Make) -> None:
    ref, host = marlin(
        advanced_ok=True,
        extruders=2,
        keepalive_interval_s=0.2,
        heat_rate_c_s=500.0,
        temp_residency_s=0.5,
        user_wait_s=0.5,
        pause_park_s=0.2,
        pause_load_s=0.2,
        command_time_s={"G28": 0.5},
    )
    script = [
        "M110 N0",
        "M115",
        "M105",
        "M155 S1",
        "G28",
        "M109 S50",
        "M190 S40",
        "M600",
        "M0 Done",
        "M114",
        "M113",
        "M110",
        "G999",
        "G1 X1",
    ]
    for n, command in enumerate(script):
        host.send(n, command)
        host.lines_until(lambda s: s.startswith("ok"), 15)
    host.write(b"N99 G1 X1*0\n")  # a line number error
    host.lines_until("ok")
    host.write(b"M112\n")
    host.lines_until("//action:poweroff")
    unknown = [line for line in ref.snapshot()[1] if classify(line) is None]
    assert unknown == ["echo:Done"]  # M0's own text, which only the free-text entries take
    assert classify("echo:Done", free_text=True) is FREE_TEXT[0]
