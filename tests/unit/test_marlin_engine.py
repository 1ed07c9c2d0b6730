"""The send-ahead engine, driven by hand: what it writes for each thing the printer says."""

from __future__ import annotations

import asyncio

import pytest

from printforge.hardware.marlin.engine import LineEngine, is_heating_wait
from printforge.hardware.marlin.protocol import Ok, Temperatures, frame
from printforge.runtime.errors import PrinterDisconnected


class Wire:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.written = asyncio.Event()

    def __call__(self, data: bytes) -> None:
        self.writes.append(data)
        self.written.set()

    async def next_write(self) -> bytes:
        """Wait for the engine's next write (the watchdog's, in these tests)."""
        self.written.clear()
        count = len(self.writes)
        async with asyncio.timeout(10):
            while len(self.writes) == count:
                await self.written.wait()
                self.written.clear()
        return self.writes[-1]

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
async def test_advanced_ok_acknowledges_the_line_it_names() -> None:
    """Marlin's `ok N<n>` names the command it acknowledges (queue.cpp `ok_to_send`), and B
    still counts that command in the ring."""
    engine, _wire = _engine(slots=4)
    engine.start_job(JOB)
    engine.on_ok(Ok(line=1, planner_free=14, buffer_free=0))  # 1 ran; 2, 3, 4 are queued
    assert engine.job_acked == 1
    assert engine.advanced and engine.planner_free == 14
    # Two `ok`s lost on the way back cost nothing: the next one names line 4.
    engine.on_ok(Ok(line=4, planner_free=11, buffer_free=0))
    assert engine.job_acked == 4
    # A plain `ok` on such a board only ever follows `Resend:`: it acknowledges nothing.
    engine.on_ok(Ok())
    assert engine.job_acked == 4


@pytest.mark.asyncio
async def test_advanced_ok_at_the_handshake_gives_the_firmware_bufsize() -> None:
    engine, wire = _engine(slots=4, rx_bytes=128)
    engine.reset(0)
    engine.submit("M110 N0")
    # BUFSIZE 8: with the M110 alone in the ring, B = 8 - 1.
    engine.on_ok(Ok(line=0, planner_free=15, buffer_free=7))
    assert (engine.slots, engine.planner_blocks) == (8, 16)
    wire.clear()
    engine.start_job(JOB)
    assert len(wire.numbers()) >= 8  # eight slots, then the ring


@pytest.mark.asyncio
async def test_slots_the_firmware_took_itself_are_left_alone() -> None:
    """B says three of four slots are still taken after line 1 leaves, but only line 2 of ours
    can be there: the firmware queued two commands of its own (a runout script's M600)."""
    engine, wire = _engine(slots=4, rx_bytes=40)
    engine.submit("G28")
    engine.submit("G1 X1")
    engine.on_ok(Ok(line=1, planner_free=15, buffer_free=0))
    wire.clear()
    engine.start_job(JOB)
    # Two slots for us (line 2 holds one), then 39 bytes of ring: one more 37-byte line.
    assert len(wire.numbers()) == 1 + 1


@pytest.mark.asyncio
async def test_the_ok_after_resend_acknowledges_nothing_whatever_its_form() -> None:
    engine, _wire = _engine(slots=4)
    engine.start_job(JOB)
    engine.on_ok(Ok(line=1, planner_free=15, buffer_free=0))
    engine.on_line_error(3)
    engine.on_resend(3)
    # Some 2.0.x builds printed the running command's fields here (2.1.x: a plain `ok`).
    engine.on_ok(Ok(line=2, planner_free=15, buffer_free=1))
    assert engine.job_acked == 1
    engine.on_ok(Ok(line=2, planner_free=15, buffer_free=1))  # line 2's own `ok`
    assert engine.job_acked == 2


@pytest.mark.asyncio
async def test_m105_answer_acknowledges_up_to_the_m105_and_absorbs_a_stray_ok() -> None:
    engine, _wire = _engine(slots=4)
    engine.submit("G1 X1")
    engine.submit("M105")
    engine.submit("G1 X2")
    # A plain `ok` lost: M105's `ok T:` still says lines 1 and 2 ran, and not line 3.
    engine.on_ok(Ok(temperatures=Temperatures({"T": (20.0, 0.0)})))
    assert engine.acked == 2
    # A stray `ok` (not ours) takes line 3's place ...
    engine.submit("M105")
    engine.on_ok(Ok())
    assert engine.acked == 3
    engine.on_ok(Ok())  # ... line 3's own `ok` then acknowledges the M105 early ...
    assert engine.acked == 4
    engine.on_ok(Ok(temperatures=Temperatures({"T": (20.0, 0.0)})))  # ... and its answer
    assert engine.acked == 4  # is absorbed: no M105 in flight, nothing more acknowledged
    engine.submit("G1 X3")
    engine.on_ok(Ok())
    assert engine.acked == 5 and engine.in_flight == 0


@pytest.mark.asyncio
async def test_watchdog_probes_with_a_fresh_m105_never_the_same_line() -> None:
    """Current Marlin drops a copy of a line it has (N = last_N or last_N - 1) without an
    answer, so the watchdog never sends a line again: it sends a new numbered M105."""
    engine, wire = _engine(ok_timeout_s=0.05, ping_pong=True)
    engine.start_job(JOB)
    assert wire.numbers() == [1]
    # The job's next line has no number yet (the window holds it back), so the probe is
    # line 2 and goes alone: nothing held is pushed past the window with it.
    assert await wire.next_write() == frame(2, "M105")
    assert wire.numbers() == [1, 2] and engine.stats.watchdog_probes == 1
    # Line 1's `ok` had been lost: the probe's `ok T:` acknowledges both.
    engine.on_ok(Ok(temperatures=Temperatures({"T": (20.0, 0.0)})))
    assert engine.job_acked == 1 and engine.acked == 2
    assert wire.numbers()[-1] == 3  # and the job goes on


@pytest.mark.asyncio
async def test_a_resend_after_a_probe_acknowledges_nothing() -> None:
    """Line 2 was lost: the probe (line 3) leaves a gap and Marlin asks for line 2. That says
    line 1 was read, not that it ran: line 1 stays in flight until its own `ok`."""
    engine, wire = _engine(ok_timeout_s=0.05, slots=4)
    engine.start_job(JOB[:2])
    assert await wire.next_write() == frame(3, "M105")
    assert wire.numbers() == [1, 2, 3]
    wire.clear()
    engine.on_line_error(2)
    engine.on_resend(2)
    engine.on_ok(Ok())  # the error report's
    assert engine.acked == 0
    assert wire.numbers() == [2, 3]
    for _ in range(3):
        engine.on_ok(Ok())
    assert engine.acked == 3 and engine.job_done


@pytest.mark.asyncio
async def test_the_handshake_m110_is_sent_again() -> None:
    engine, wire = _engine(ok_timeout_s=0.05)
    engine.reset(0)
    engine.submit("M110 N0")
    await wire.next_write()
    assert wire.writes[:2] == [frame(0, "M110 N0")] * 2


@pytest.mark.asyncio
async def test_a_probe_waits_a_period_more_when_the_ring_is_full() -> None:
    """A command running long without keepalives, the RX ring full behind it (as the window
    counts it): the first silent period sends nothing that would be dropped; the second
    sends the probe all the same, as an `ok` may as well have been lost."""
    engine, wire = _engine(ok_timeout_s=60, slots=4, rx_bytes=120)
    engine.submit("G28")
    engine.start_job(JOB)
    sent = wire.numbers()
    assert engine._rx_room() < len(frame(sent[-1] + 1, "M105"))
    engine._on_watchdog()
    assert wire.numbers() == sent and engine.stats.watchdog_probes == 0
    engine._on_watchdog()
    assert wire.writes[-1] == frame(sent[-1] + 1, "M105")
    engine.on_busy()  # a sign of life starts the count again
    engine._on_watchdog()
    assert engine.stats.watchdog_probes == 1


@pytest.mark.asyncio
async def test_no_more_than_two_probes_wait_behind_a_silent_command() -> None:
    engine, wire = _engine(ok_timeout_s=60)
    engine.submit("G28")
    for _ in range(5):
        engine._on_watchdog()  # the timer firing, five silent periods in a row
    assert wire.numbers() == [1, 2, 3] and engine.stats.watchdog_probes == 2
    engine.on_ok(Ok())  # G28 is done; the probes are answered in order
    engine.on_ok(Ok(temperatures=Temperatures({"T": (20.0, 0.0)})))
    engine.on_ok(Ok(temperatures=Temperatures({"T": (20.0, 0.0)})))
    assert engine.in_flight == 0


@pytest.mark.asyncio
async def test_keepalives_restart_the_watchdog() -> None:
    engine, _wire = _engine(ok_timeout_s=60)
    engine.submit("G28")
    armed = engine._watchdog
    assert armed is not None
    engine.on_busy()
    assert engine._watchdog is not armed and armed.cancelled()  # a fresh period starts
    assert engine.stats.keepalives == 1


@pytest.mark.asyncio
async def test_a_line_whose_n_was_corrupted_runs_unknown_and_its_ok_is_not_ours() -> None:
    """`N2 G1 …` arrived as `O2 G1 …`: 2.1.x queued it unnumbered, unchecked; line 3 then
    left a gap (Resend: 2), and the garbage ran as an unknown command, with an `ok`."""
    engine, _wire = _engine(slots=4)
    engine.start_job(JOB)
    engine.on_ok(Ok())  # line 1
    engine.on_line_error(2)
    engine.on_resend(2)
    engine.on_ok(Ok())  # the error report's
    engine.on_unknown_command(f"O2 {JOB[1]}")
    engine.on_ok(Ok())  # the garbage's
    assert engine.acked == 1 and engine.stats.stray_oks == 1
    engine.on_unknown_command("G999")  # a real unknown command of the file gets its ok
    engine.on_ok(Ok())  # line 2, sent again
    assert engine.acked == 2


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
