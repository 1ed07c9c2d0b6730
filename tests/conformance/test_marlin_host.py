"""printforge's host against the reference Marlin, black box: only ``python -m printforge print``.

Each test prints a small file through the CLI to a ``MarlinReference`` on a real pty, with
short timeouts set through a config file (``[printers.ref]``, ``ok_timeout_s``,
``handshake_timeout_s``) and a short keepalive interval on the board, then judges the run by the
board's own logs: every line of the file executed exactly once and in order, no ``Resend:``
asked for, no line sent twice, no command the file does not hold (besides the handshake and
temperature polling), and no success reported before the board had run the last line.

These are the defects of issue 19 (items 1, 2 and 8). Each failed on the driver before the fix,
where it was marked ``xfail(strict=True)`` with the failure it showed:
(a) ``echo:busy: processing`` did not restart the lost-ok watchdog, so ``ok_timeout_s`` into
the G28 the host sent ``N4 G28`` again and Marlin, with N5-N7 queued, answered
``Resend: 8``; (b) ``ok N P B`` was read as "the last line received", so the handshake never
completed; (c) during M600 the host sent ``N9 M600`` again and, on ``//action:paused``, parked
itself (``N12 M400`` ran after the file's lines), and the CLI exited 0 while the board was
still inside M600; (d) during M0 the host sent ``N6 M0`` again, and with the older duplicate
rule took Marlin's ``Resend:`` for acknowledgements and exited before the lines after M0 ran.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import RawHost
from tests.conformance.marlin_lines import classify
from tests.conformance.marlin_reference import Executed, MarlinReference
from tests.fakes.vmarlin import numbered_moves_gcode

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parents[2]
# What a host may send besides the file: the handshake and temperature reporting/polling.
HOUSEKEEPING = re.compile(r"M110(?: N-?\d+)?|M115|M105|M155 S\d+|M113(?: S\d+)?")
OK_TIMEOUT_S = 1.5  # the host's lost-ok watchdog, lowered so a test takes seconds
KEEPALIVE_S = 0.3  # the board's busy interval (Marlin: 2 s, M113), lowered to match

VARIANTS = [
    pytest.param(True, id="bugfix-2.1.x"),  # a repeated N == last_N or last_N-1 is dropped silently
    pytest.param(False, id="before-duplicate-rule"),  # ... answered Error + Resend
]


@dataclass
class PrintRun:
    rc: int | None
    result: dict[str, Any] | None
    stderr: str
    executed: list[Executed]
    executed_at_exit: list[Executed]
    received: list[str]
    sent: list[str]
    resend_requests: list[int]
    ignored_duplicates: list[int]


def file_commands(text: str) -> list[str]:
    lines = (line.split(";")[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def run_print(tmp_path: Path, gcode: str, *, cli_timeout: float = 30.0, **options: Any) -> PrintRun:
    """Print ``gcode`` through the CLI to a reference built with ``options``; after the CLI
    exits, let the board finish what it holds (bounded), as a real board does."""
    path = tmp_path / "job.gcode"
    path.write_text(gcode)
    ref = MarlinReference(**options).start()
    try:
        config = tmp_path / "printforge.toml"
        config.write_text(
            "[printers.ref]\n"
            'driver = "marlin"\n'
            f'port = "{ref.port}"\n'
            f"ok_timeout_s = {OK_TIMEOUT_S}\n"
            "handshake_timeout_s = 5.0\n"
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "printforge", "print", str(path), "--printer", "ref"]
        cmd += ["--config", str(config), "--json", "--data-dir", str(tmp_path / "data")]
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        rc: int | None
        try:
            out, err = proc.communicate(timeout=cli_timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            rc = None
        at_exit, _ = ref.snapshot()
        ref.wait_until(lambda r: r.idle, 10.0)
        executed, sent = ref.snapshot()
        assert not ref.errors, ref.errors
        result = None
        for line in reversed(out.strip().splitlines()):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
        return PrintRun(
            rc,
            result,
            err,
            executed,
            at_exit,
            list(ref.received),
            sent,
            list(ref.resend_requests),
            list(ref.ignored_duplicates),
        )
    finally:
        ref.stop()


def problems(run: PrintRun, gcode: str) -> list[str]:
    """Everything that is not what a correct host does against real Marlin."""
    commands = file_commands(gcode)
    found: list[str] = []
    ok = run.rc == 0 and bool(run.result and run.result.get("ok"))
    if not ok:
        error = (run.result or {}).get("error") or run.stderr.strip()[-300:]
        found.append(f"the print did not succeed: exit {run.rc}, {error}")
    if run.resend_requests:
        found.append(f"Marlin had to ask for resends: Resend: {run.resend_requests}")
    numbers = Counter(
        int(m.group(1)) for line in run.received if (m := re.match(r"\s*N(-?\d+)", line))
    )
    repeated = sorted(n for n, count in numbers.items() if count > 1)
    if repeated:
        found.append(
            f"the host sent lines {repeated} more than once while Marlin held them "
            f"({len(run.ignored_duplicates)} of those dropped silently by the duplicate rule)"
        )
    job = [e.command for e in run.executed if not HOUSEKEEPING.fullmatch(e.command)]
    if job != commands:
        twice = sorted({c for c in job if job.count(c) > commands.count(c)})
        missing = [c for c in commands if c not in job]
        extra = [c for c in job if c not in commands]
        found.append(
            f"the board did not run the file once, in order: {len(job)} of {len(commands)} "
            f"commands; run twice {twice}; never run {missing[:5]}; foreign {extra[:8]}"
        )
    foreign = []
    for line in run.received:
        text = re.sub(r"^\s*N-?\d+\s*", "", line).split("*")[0].strip()
        if text not in commands and not HOUSEKEEPING.fullmatch(text):
            foreign.append(text)
    if foreign:
        found.append(f"the host sent commands the file does not hold: {foreign[:8]}")
    if ok and commands:
        at_exit = [e.command for e in run.executed_at_exit]
        if len([c for c in at_exit if not HOUSEKEEPING.fullmatch(c)]) < len(commands):
            found.append(
                "the CLI reported success before the board had run the file's last line "
                f"(it had run {at_exit[-1:]} when the CLI exited)"
            )
    return found


def assert_conforms(run: PrintRun, gcode: str) -> None:
    found = problems(run, gcode)
    assert not found, "\n".join(found)


# ---- (a) a long G28 with real keepalives ---------------------------------------------------------

LONG_G28 = "G28\nG90\n" + "".join(f"G1 X{10 + i} Y10 F3000\n" for i in range(10))


@pytest.mark.parametrize("drop_duplicates", VARIANTS)
def test_long_g28_with_keepalives_needs_no_resend(tmp_path: Path, drop_duplicates: bool) -> None:
    run = run_print(
        tmp_path,
        LONG_G28,
        command_time_s={"G28": 3 * OK_TIMEOUT_S},
        keepalive_interval_s=KEEPALIVE_S,
        drop_duplicate_lines=drop_duplicates,
    )
    assert "echo:busy: processing" in run.sent
    assert_conforms(run, LONG_G28)


# ---- (b) an ADVANCED_OK board --------------------------------------------------------------------

MOVES_200 = numbered_moves_gcode(198)  # G90, G92 and 198 moves: a 200-line file


def test_advanced_ok_board_prints_every_line_once(tmp_path: Path) -> None:
    run = run_print(
        tmp_path, MOVES_200, advanced_ok=True, move_time_s=0.004, keepalive_interval_s=KEEPALIVE_S
    )
    assert any(line.startswith("ok N0 P") for line in run.sent)
    assert_conforms(run, MOVES_200)


# ---- (c) M600: the firmware pauses by itself -----------------------------------------------------

M600_JOB = "G28\nG90\nM83\nG1 X10 Y10 F3000\nG1 X20 E1\nM600\nG1 X30 E1\nG1 X40 E1\n"


def test_m600_pause_notice_is_not_a_pause_request(tmp_path: Path) -> None:
    run = run_print(
        tmp_path,
        M600_JOB,
        command_time_s={"G28": 0.2},
        keepalive_interval_s=KEEPALIVE_S,
        heat_rate_c_s=2000.0,
        pause_park_s=0.3,
        pause_load_s=0.3,
        user_wait_s=3 * OK_TIMEOUT_S,  # the user loads filament and presses the button
    )
    assert "//action:paused" in run.sent and "//action:resumed" in run.sent
    assert_conforms(run, M600_JOB)


# ---- (d) M0: paused for user ---------------------------------------------------------------------

M0_JOB = "G28\nG1 X10 Y10 F3000\nM0 Remove the part\nG1 X30\nG1 X40\n"


@pytest.mark.parametrize("drop_duplicates", VARIANTS)
def test_m0_paused_for_user_keeps_the_host_waiting(tmp_path: Path, drop_duplicates: bool) -> None:
    run = run_print(
        tmp_path,
        M0_JOB,
        command_time_s={"G28": 0.2},
        keepalive_interval_s=KEEPALIVE_S,
        user_wait_s=3 * OK_TIMEOUT_S,
        drop_duplicate_lines=drop_duplicates,
    )
    assert "echo:busy: paused for user" in run.sent
    assert_conforms(run, M0_JOB)


# ---- (e) the lost-ok watchdog, with both duplicate rules -------------------------------------

MOVES_40 = numbered_moves_gcode(38)


@pytest.mark.parametrize("drop_duplicates", VARIANTS)
def test_lost_oks_are_recovered_without_sending_a_line_twice(
    tmp_path: Path, drop_duplicates: bool
) -> None:
    """Every 9th `ok` is lost on the way back. The host must notice (the last line's `ok` is
    lost too, so only its watchdog can) and must not find out by sending a line again: current
    Marlin drops such a copy without a word, older builds answer with a `Resend:` that says
    how far Marlin has read, not how far it has run."""
    run = run_print(tmp_path, MOVES_40, drop_ok_every=9, drop_duplicate_lines=drop_duplicates)
    assert len(run.executed) >= 40 and run.result is not None
    assert run.result["watchdog_probes"] >= 1  # the last `ok` was lost: silence, a probe
    assert_conforms(run, MOVES_40)


@pytest.mark.parametrize("drop_duplicates", VARIANTS)
def test_a_silent_long_command_is_waited_for(tmp_path: Path, drop_duplicates: bool) -> None:
    """A build without keepalives (M113 S0, or no HOST_KEEPALIVE_FEATURE): the G28 is silent
    for three watchdog periods. The probes queue behind it and are answered in order; nothing
    is acknowledged early and nothing is sent twice."""
    run = run_print(
        tmp_path,
        LONG_G28,
        command_time_s={"G28": 3 * OK_TIMEOUT_S},
        keepalive_interval_s=0,
        drop_duplicate_lines=drop_duplicates,
    )
    assert not any(line.startswith("echo:busy") for line in run.sent)
    assert run.result is not None and run.result["watchdog_probes"] >= 1
    assert_conforms(run, LONG_G28)


# ---- control: a host that follows Marlin passes every check above -----------------------------


def follow_marlin(gcode: str, **options: Any) -> PrintRun:
    """A minimal ping-pong host that reads Marlin as its source says: any line (a keepalive, a
    temperature) is a sign of life, only an acknowledging line releases the next command, an
    action notice is left alone. It shows the checks and the reference accept correct hosts."""
    ref = MarlinReference(**options).start()
    try:
        host = RawHost(ref.port)
        try:
            for number, command in enumerate(["M110 N0", *file_commands(gcode)]):
                host.send(number, command)
                while True:
                    line = host.line(timeout=OK_TIMEOUT_S)  # the lost-ok watchdog
                    assert not line.startswith(("Resend:", "Error:")), line
                    entry = classify(line)
                    if entry is not None and entry.acks:
                        break
        finally:
            host.close()
        at_exit, _ = ref.snapshot()
        assert ref.wait_until(lambda r: r.idle, 10.0)
        executed, sent = ref.snapshot()
        assert not ref.errors, ref.errors
        return PrintRun(
            0,
            {"ok": True},
            "",
            executed,
            at_exit,
            list(ref.received),
            sent,
            list(ref.resend_requests),
            list(ref.ignored_duplicates),
        )
    finally:
        ref.stop()


@pytest.mark.parametrize(
    ("gcode", "options"),
    [
        pytest.param(
            LONG_G28,
            {"command_time_s": {"G28": 3 * OK_TIMEOUT_S}, "keepalive_interval_s": KEEPALIVE_S},
            id="long-g28",
        ),
        pytest.param(MOVES_200, {"advanced_ok": True, "move_time_s": 0.004}, id="advanced-ok"),
        pytest.param(
            M600_JOB,
            {
                "command_time_s": {"G28": 0.2},
                "keepalive_interval_s": KEEPALIVE_S,
                "heat_rate_c_s": 2000.0,
                "pause_park_s": 0.3,
                "pause_load_s": 0.3,
                "user_wait_s": 3 * OK_TIMEOUT_S,
            },
            id="m600",
        ),
        pytest.param(
            M0_JOB,
            {
                "command_time_s": {"G28": 0.2},
                "keepalive_interval_s": KEEPALIVE_S,
                "user_wait_s": 3 * OK_TIMEOUT_S,
            },
            id="m0",
        ),
    ],
)
def test_a_host_that_follows_marlin_conforms(gcode: str, options: dict[str, Any]) -> None:
    assert_conforms(follow_marlin(gcode, **options), gcode)
