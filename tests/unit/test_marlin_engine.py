"""The send-ahead engine, driven by hand: what it writes for each thing the printer says."""

from __future__ import annotations

import asyncio

import pytest

from printforge.hardware.marlin.engine import LineEngine, is_heating_wait
from printforge.hardware.marlin.protocol import Ok, frame
from printforge.runtime.errors import PrinterDisconnected


class Wire:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.writes.append(data)

    def numbers(self) -> list[int]:
        out = []
        for chunk in self.writes:
            for line in chunk.splitlines():
                out.append(int(line.split(b" ", 1)[0][1:]))
        return out

    def clear(self) -> None:
        self.writes.clear()


JOB = [f"G1 X{i}.000 Y{i}.000 F3000" for i in range(40)]  # 36-38 bytes framed


def _engine(**kw: object) -> tuple[LineEngine, Wire]:
    wire = Wire()
    engine = LineEngine(wire, ok_timeout_s=kw.pop("ok_timeout_s", 60.0), **kw)  # type: ignore[arg-type]
    return engine, wire


@pytest.mark.asyncio
async def test_window_is_slots_plus_ring() -> None:
    engine, wire = _engine(slots=4, rx_bytes=128)
    engine.start_job(JOB)
    sent = wire.numbers()
    # Four lines for the slots, then as many as fit 127 bytes of ring.
    ring = sum(len(frame(n, JOB[n - 1])) for n in sent[4:])
    assert len(sent) >= 5 and ring <= 127
    assert ring + len(frame(sent[-1] + 1, JOB[sent[-1]])) > 127
    wire.clear()
    engine.on_ok(Ok())
    assert wire.numbers() == [sent[-1] + 1]  # one ok frees room for one more line
    assert engine.job_acked == 1


@pytest.mark.asyncio
async def test_ping_pong_sends_one_line_per_ok() -> None:
    engine, wire = _engine(ping_pong=True)
    engine.start_job(JOB)
    assert wire.numbers() == [1]
    engine.on_ok(Ok())
    assert wire.numbers() == [1, 2]


@pytest.mark.asyncio
async def test_resend_rewinds_once_and_swallows_stale_oks() -> None:
    engine, wire = _engine()
    engine.start_job(JOB)
    sent = wire.numbers()
    engine.on_ok(Ok())  # line 1 done
    last = max(wire.numbers())
    wire.clear()
    # Line 2 arrived corrupted; the lines behind it are refused one by one.
    engine.on_line_error(2)
    assert wire.numbers() == []  # nothing more goes out until the resend request
    engine.on_resend(2)
    engine.on_ok(Ok())
    first_retry = wire.numbers()
    assert first_retry[0] == 2
    for _stale in range(3, last + 1):
        engine.on_resend(2)
        engine.on_ok(Ok())
    assert engine.stats.rewinds == 1
    assert wire.numbers().count(2) == 1  # rewound exactly once
    assert engine.job_acked == 1  # the error reports' oks acknowledged nothing
    engine.on_ok(Ok())
    assert engine.job_acked == 2
    assert sent[0] == 1


@pytest.mark.asyncio
async def test_advanced_ok_tells_how_far_the_firmware_got() -> None:
    engine, _wire = _engine(slots=4)
    engine.start_job(JOB)
    # The firmware received line 6, three of its four slots are taken: lines 1-3 are done.
    engine.on_ok(Ok(line=6, planner_free=10, buffer_free=1))
    assert engine.job_acked == 3
    assert engine.advanced
    # A lost ok costs nothing: the next one carries the truth.
    engine.on_ok(Ok(line=8, planner_free=10, buffer_free=2))
    assert engine.job_acked == 6


@pytest.mark.asyncio
async def test_watchdog_probes_for_a_lost_ok() -> None:
    engine, wire = _engine(ok_timeout_s=0.05, ping_pong=True)
    engine.start_job(JOB)
    assert wire.numbers() == [1]
    await asyncio.sleep(0.12)
    assert engine.stats.watchdog_probes >= 1
    assert wire.numbers()[:2] == [1, 1]  # the oldest line again
    # The firmware already had it: it asks for line 2, so line 1's ok was lost.
    engine.on_resend(2)
    engine.on_ok(Ok())
    assert engine.job_acked == 1
    assert 2 in wire.numbers()


@pytest.mark.asyncio
async def test_fallback_to_ping_pong_when_resends_climb() -> None:
    engine, _wire = _engine()
    engine.start_job(JOB * 10)
    for _ in range(12):
        engine.on_ok(Ok())
        engine.on_resend(engine.acked + 1)
        engine.on_ok(Ok())
    assert engine.stats.fallbacks == 1
    assert engine.in_flight <= 1


@pytest.mark.asyncio
async def test_failure_reaches_every_waiter() -> None:
    engine, _wire = _engine()
    waiter = engine.submit("M105")
    engine.fail(PrinterDisconnected("gone"))
    with pytest.raises(PrinterDisconnected):
        await waiter
    with pytest.raises(PrinterDisconnected):
        await engine.submit("M105")


@pytest.mark.asyncio
async def test_send_now_goes_past_a_full_window_numbered_in_order() -> None:
    # A heating wait keeps every slot and the ring full; M108 must reach the wire at once.
    engine, wire = _engine(slots=4, rx_bytes=128)
    engine.submit("M109 S210")
    engine.start_job(JOB)
    sent = wire.numbers()
    held = engine.next_n - engine.tx  # a numbered line the window holds back, if any
    wire.clear()
    future = engine.send_now("M108")
    numbers = wire.numbers()
    # Gapless: a line already numbered goes first, then M108 with the next number.
    assert numbers == list(range(sent[-1] + 1, sent[-1] + 2 + held))
    assert wire.writes[-1].endswith(frame(numbers[-1], "M108"))
    assert engine.heating_wait_in_flight() == (1, "M109 S210")
    assert engine.oldest_in_flight() == (1, "M109 S210")
    for _ in range(numbers[-1]):  # one `ok` per line up to M108's, in order
        engine.on_ok(Ok())
    await asyncio.wait_for(future, 1)  # its own `ok` completes it, counted like any line
    assert engine.heating_wait_in_flight() is None


@pytest.mark.parametrize(
    ("command", "waits"),
    [
        ("M109 S210", True),
        ("M190 S60", True),
        ("m109 s200", True),
        ("M109S210", True),
        ("M303 E0 S210 C8", True),
        ("M191 S40", True),
        ("M104 S210", False),
        ("M1090", False),
        ("M400", False),
        ("G4 S10", False),
    ],
)
def test_which_commands_are_heating_waits(command: str, waits: bool) -> None:
    assert is_heating_wait(command) is waits
