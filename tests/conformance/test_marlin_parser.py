"""Every line of Marlin's own table (``marlin_lines``) through printforge's parser.

The table was written from Marlin's source by someone who had not read our parser; each entry
says what class of line it is and whether it acknowledges a command. Here ``parse_line`` must
put every one of them, and the legacy lines hosts still meet, in that class, and read the
figures a host acts on (ADVANCED_OK's N/P/B, ``Last Line``, temperatures, action names).
"""

from __future__ import annotations

import re

import pytest

from printforge.hardware.marlin import protocol as p
from tests.conformance.marlin_lines import LEGACY, LINES, LineClass, MarlinLine

pytestmark = pytest.mark.conformance


def our_class(msg: p.Message) -> LineClass:
    """The table's class of what ``parse_line`` made of a line."""
    match msg:
        case p.Ok(temperatures=temps) if temps is not None:
            return LineClass.TEMPERATURE  # M105's own ok: acknowledges the M105
        case p.Ok() if msg.advanced:
            return LineClass.OK_ADVANCED
        case p.Ok():
            return LineClass.OK
        case p.Busy():
            return LineClass.BUSY
        case p.Resend():
            return LineClass.RESEND
        case p.FirmwareError(fatal=True):
            return LineClass.ERROR_FATAL
        case p.FirmwareError():
            return LineClass.ERROR_RECOVERABLE
        case p.Temperatures():
            return LineClass.TEMPERATURE
        case p.Position():
            return LineClass.POSITION
        case p.ActionNotice():
            return LineClass.ACTION_NOTICE
        case p.Action():
            return LineClass.ACTION_COMMAND
        case p.Capability() | p.FirmwareInfo():
            return LineClass.CAPABILITY
        case p.Start():
            return LineClass.START
        case p.Echo() | p.Other():
            return LineClass.ECHO
    raise AssertionError(f"unexpected message {msg!r}")


def _id(entry: MarlinLine) -> str:
    return f"{entry.cls.name}:{entry.text[:48]}"


@pytest.mark.parametrize("entry", [*LINES, *LEGACY], ids=_id)
def test_every_marlin_line_is_read_as_its_class(entry: MarlinLine) -> None:
    msg = p.parse_line(entry.text)
    assert our_class(msg) is entry.cls, (entry.text, msg, entry.host)
    # Only an `ok` line may take a command off the host's count, and every acknowledging line
    # must be one (M105's `ok T:` included).
    if entry.acks:
        assert isinstance(msg, p.Ok), msg


@pytest.mark.parametrize("entry", [e for e in LINES if e.cls is LineClass.OK_ADVANCED], ids=_id)
def test_advanced_ok_fields(entry: MarlinLine) -> None:
    msg = p.parse_line(entry.text)
    assert isinstance(msg, p.Ok) and msg.advanced
    numbered = re.search(r"\bN(-?\d+)", entry.text)
    assert msg.line == (int(numbered.group(1)) if numbered else None)
    assert (msg.planner_free, msg.buffer_free) == (15, 3)


@pytest.mark.parametrize(
    "entry", [e for e in (*LINES, *LEGACY) if e.cls is LineClass.ERROR_RECOVERABLE], ids=_id
)
def test_line_errors_carry_the_last_line(entry: MarlinLine) -> None:
    msg = p.parse_line(entry.text)
    assert isinstance(msg, p.FirmwareError) and msg.last_line == 7


@pytest.mark.parametrize("entry", [e for e in LINES if e.cls is LineClass.TEMPERATURE], ids=_id)
def test_temperature_lines_give_every_heater(entry: MarlinLine) -> None:
    msg = p.parse_line(entry.text)
    temps = msg.temperatures if isinstance(msg, p.Ok) else msg
    assert isinstance(temps, p.Temperatures)
    heaters = re.findall(r"\b(T\d?|B):(-?[\d.]+)", entry.text)
    assert {name: temps.values[name][0] for name, _ in heaters} == {
        name: float(value) for name, value in heaters
    }
    # The `W:` field is only printed by a running M109/M190 wait.
    assert (temps.wait is not None) == (" W:" in entry.text)


def test_multi_extruder_status_keys() -> None:
    line = next(e.text for e in LINES if e.text.startswith(" T:") and " T1:" in e.text)
    msg = p.parse_line(line)
    assert isinstance(msg, p.Temperatures)
    assert msg.as_status() == {
        "hotend0": (210.0, 210.0),
        "hotend1": (25.0, 0.0),
        "bed": (60.0, 60.0),
    }


@pytest.mark.parametrize(
    "entry",
    [e for e in LINES if e.cls in (LineClass.ACTION_COMMAND, LineClass.ACTION_NOTICE)],
    ids=_id,
)
def test_action_names(entry: MarlinLine) -> None:
    msg = p.parse_line(entry.text)
    assert isinstance(msg, p.Action | p.ActionNotice)
    name, _, args = entry.text.removeprefix("//action:").partition(" ")
    assert (msg.name, msg.args) == (name, args)


def test_keepalive_reasons() -> None:
    reasons = {e.text: p.parse_line(e.text) for e in LINES if e.cls is LineClass.BUSY}
    assert reasons == {
        "echo:busy: processing": p.Busy("processing"),
        "echo:busy: paused for user": p.Busy("paused for user"),
        "echo:busy: paused for input": p.Busy("paused for input"),
    }
    assert [m.waits_for_user for m in reasons.values()] == [False, True, True]
