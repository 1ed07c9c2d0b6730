"""`printforge virtual-printer` and `printforge print` as a user runs them: two processes, a pty."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.vmarlin import cube_gcode, expected_moves, numbered_moves_gcode, write_gcode

CLI = [sys.executable, "-m", "printforge"]


@contextlib.contextmanager
def _board(*flags: str, clean_exit: bool = False) -> Iterator[str]:
    """A `virtual-printer` process; yields its device. With `clean_exit`, SIGTERM must end it
    with status 0."""
    with subprocess.Popen(
        [*CLI, "virtual-printer", "--baud", "1000000", *flags], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    if clean_exit:
        assert proc.returncode == 0


@pytest.fixture
def virtual_printer(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "moves.log"
    flags = ("--sim-speed", "100000", "--noise-rate", "0.02", "--seed", "5", "--log", str(log))
    with _board(*flags, clean_exit=True) as device:
        assert device.startswith("/dev/")
        yield device, log


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTFORGE_ENV": "development"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def test_print_streams_a_file_and_exits_zero(
    tmp_path: Path, virtual_printer: tuple[str, Path]
) -> None:
    device, log = virtual_printer
    text = cube_gcode(size=3.0, layer=0.5)
    path = write_gcode(tmp_path, text)
    done = _run("print", str(path), "--port", device, "--baud", "1000000", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    assert summary["lines_acked"] == summary["lines_total"] > 0
    assert summary["firmware"].startswith("Marlin")
    # The same port again, with the progress display this time.
    again = _run("print", str(path), "--port", device, "--baud", "1000000")
    assert again.returncode == 0, again.stderr
    assert "printed" in again.stdout
    assert log.exists()


def test_print_bad_input_is_one_clear_line(
    tmp_path: Path, virtual_printer: tuple[str, Path]
) -> None:
    device, _log = virtual_printer
    binary = tmp_path / "image.gcode"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    good = write_gcode(tmp_path, "G28\nG1 X1 F600\n")
    for args, message in [
        (["print", str(binary), "--port", device], "not a text G-code file"),
        (["print", str(tmp_path / "missing.gcode"), "--port", device], "not found"),
        (["print", str(good), "--port", str(tmp_path / "ttyNONE")], "does not exist"),
    ]:
        done = _run(*args)
        assert done.returncode == 1
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_the_log_holds_every_move_once_in_order(tmp_path: Path) -> None:
    log = tmp_path / "moves.log"
    text = cube_gcode(size=2.0, layer=0.5)
    path = write_gcode(tmp_path, text)
    flags = ("--sim-speed", "100000", "--noise-rate", "0.02", "--seed", "9", "--log", str(log))
    with _board(*flags) as device:
        done = _run("print", str(path), "--port", device, "--baud", "1000000", "--json")
        assert done.returncode == 0, done.stderr
    entries = [ln.split(" ", 1) for ln in log.read_text().splitlines()]
    numbers = [int(n[1:]) for n, _ in entries]
    assert numbers == sorted(set(numbers))
    assert [cmd for _, cmd in entries] == expected_moves(text)


def test_a_dead_heater_is_caught_by_the_host_through_the_cli(tmp_path: Path) -> None:
    # The board (100x simulated time) loses its bed heater at the first command and has no
    # thermal protection. `print --printer` reads the host's watchdog from the config's
    # [printers.NAME.thermal] table, its periods scaled to the board's speed by hand.
    text = "M140 S60\nM190 S60\nG28\n" + "\n".join(f"G1 X{i} F600" for i in range(20)) + "\n"
    path = write_gcode(tmp_path, text)
    with subprocess.Popen(
        [
            *CLI,
            "virtual-printer",
            "--baud",
            "1000000",
            "--sim-speed",
            "100",
            "--heater-fails-at-line",
            "4",
            "--failing-heater",
            "bed",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            device = proc.stdout.readline().strip()
            config = tmp_path / "farm.toml"
            config.write_text(
                f'[printers.bench]\ndriver = "marlin"\nport = "{device}"\nbaud = 1000000\n'
                "temp_interval_s = 1.0\n\n[printers.bench.thermal]\nbed_heating_period_s = 0.6\n"
            )
            done = _run("print", str(path), "--printer", "bench", "--config", str(config), "--json")
            typo = tmp_path / "typo.toml"
            typo.write_text(config.read_text().replace("bed_heating_period_s", "bed_heat_s"))
            refused = _run("print", str(path), "--printer", "bench", "--config", str(typo))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    assert done.returncode == 1, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]["message"]
    assert "host thermal watchdog: bed heating failed" in error
    assert "emergency stop (M112) sent" in error
    assert refused.returncode == 2  # a configuration error
    assert "printers.bench.thermal.bed_heat_s: unknown key" in refused.stderr


@pytest.mark.parametrize("switch", [[], ["--no-thermal-watchdog"]], ids=["on", "off"])
def test_a_hotend_dying_just_short_of_its_target(tmp_path: Path, switch: list[str]) -> None:
    # The hotend dies right after M109 returned, a degree short of its target, before any
    # report showed it there. The watchdog stops the print; with the switch off, nothing does.
    text = "M104 S200\nM109 S200\n" + "\n".join(f"G1 X{i} F600" for i in range(120)) + "\n"
    path = write_gcode(tmp_path, text)
    flags = ["--sim-speed", "100", "--move-time", "3", "--heater-fails-at-line", "8"]
    with _board(*flags) as device:
        config = tmp_path / "farm.toml"
        config.write_text(
            f'[printers.bench]\ndriver = "marlin"\nport = "{device}"\nbaud = 1000000\n'
            "temp_interval_s = 1.0\n\n[printers.bench.thermal]\nrunaway_period_s = 0.4\n"
        )
        # With the watchdog on, as a person runs it (no --json): the verdict is one clear line.
        output = ["--json"] if switch else []
        done = _run(
            "print", str(path), "--printer", "bench", "--config", str(config), *output, *switch
        )
    if switch:
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["lines_acked"] == 122
    else:
        assert done.returncode == 1
        said = [ln for ln in done.stderr.splitlines() if "watchdog" in ln]
        assert len(said) == 1, done.stderr
        assert said[0].startswith("printforge: printer bench: host thermal watchdog: hotend")
        assert "thermal runaway" in said[0] and "on the way to 200.0 °C" in said[0]
        assert "Traceback" not in done.stderr and "WARNING" not in done.stderr


@pytest.mark.parametrize(
    ("flags", "reported"), [([], "1"), (["--no-emergency-parser"], "0")], ids=["on", "off"]
)
def test_m115_tells_whether_the_board_has_an_emergency_parser(
    flags: list[str], reported: str
) -> None:
    import serial

    with _board(*flags) as device, serial.Serial(device, 1_000_000, timeout=10) as port:
        port.write(b"M115\n")
        caps: list[str] = []
        while not any(ln.startswith("ok") for ln in caps):
            line = port.readline().decode().strip()
            assert line, f"no answer to M115 (got {caps})"
            caps.append(line)
    assert f"Cap:EMERGENCY_PARSER:{reported}" in caps


def test_sigterm_while_the_bed_heats_stops_the_print_safely(tmp_path: Path) -> None:
    # A real-time board: M190 to 60 °C would take over two minutes, far beyond the safe stop's
    # 30 s. SIGTERM stops `print` like Ctrl-C; the board's EMERGENCY_PARSER takes the M108 that
    # ends the wait, so the lift and the park run at once.
    import time

    log = tmp_path / "moves.log"
    text = "G1 X5 F6000\nM140 S60\nM190 S60\n" + "\n".join(f"G1 X{i} F600" for i in range(6, 99))
    path = write_gcode(tmp_path, text + "\n")
    with _board("--sim-speed", "1", "--log", str(log)) as device:
        command = ["print", str(path), "--port", device, "--baud", "1000000", "--json"]
        with subprocess.Popen(
            [*CLI, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            try:
                # The board writes its log twice a second: the first move means M190 is next.
                deadline = time.monotonic() + 60
                while not (log.is_file() and "G1 X5 F6000" in log.read_text()):
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, "the print never started"
                    time.sleep(0.1)
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert proc.returncode == 130, err
        assert "printforge: interrupted" in err
        # --json still answers, with the same progress keys as a finished print.
        summary = json.loads(out)
        assert summary["ok"] is False
        assert summary["error"]["code"] == "interrupted"
        assert summary["lines_total"] == 96
        assert 1 <= summary["lines_acked"] < 96
        assert "safe stop incomplete" not in err and "Traceback" not in err, err
        deadline = time.monotonic() + 20
        while "G1 X0.00 Y220.00 F6000" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    moves = [ln.split(" ", 1)[1] for ln in log.read_text().splitlines()]
    assert moves[-2:] == ["G1 Z10.00 F600", "G1 X0.00 Y220.00 F6000"]  # lifted, then parked


def test_a_disconnect_says_where_to_resume_from(tmp_path: Path) -> None:
    # Comment lines between the moves, as a slicer writes them: the count of acknowledged
    # commands is then not the file line, and a maker resuming needs the file line.
    body = "".join(f"; move {i}\nG1 X{i % 50 + 1} Y1 F3000\n" for i in range(200))
    path = write_gcode(tmp_path, "G28\n" + body)
    text_lines = path.read_text().splitlines()
    # On a pty the fault line is the protocol's N; the job starts at N4.
    with _board("--sim-speed", "100000", "--disconnect-at-line", "60") as device:
        done = _run("print", str(path), "--port", device, "--baud", "1000000", "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["error"]["code"] == "printer_disconnected"
    assert summary["lines_total"] == 201
    acked = summary["last_acked_line"]
    assert summary["lines_acked"] == acked
    assert {"bytes_acked", "resends", "elapsed_s", "lines_per_s"} <= summary.keys()
    assert 0 < acked < 60
    file_line = summary["last_acked_file_line"]
    assert file_line == 2 * acked - 1  # G28, then a comment before every move
    assert not text_lines[file_line - 1].startswith(";")
    with _board("--sim-speed", "100000", "--disconnect-at-line", "60") as device:
        plain = _run("print", str(path), "--port", device, "--baud", "1000000")
    assert plain.returncode == 1
    assert "disconnected" in plain.stderr
    # How many `ok`s made it before the board vanished depends on timing: check the pairing.
    said = re.search(r"last acknowledged command: (\d+) of 201 \(file line (\d+)\)", plain.stderr)
    assert said is not None, plain.stderr
    assert int(said.group(2)) == 2 * int(said.group(1)) - 1
    assert "Traceback" not in plain.stderr


def test_a_bad_flag_value_is_one_clear_line(
    tmp_path: Path, virtual_printer: tuple[str, Path]
) -> None:
    device, _log = virtual_printer
    good = write_gcode(tmp_path, "G28\n")
    done = _run("print", str(good), "--port", device, "--baud", "0")
    assert done.returncode == 1
    assert "--baud 0: input should be greater than 0" in done.stderr
    assert "unexpected error" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    # A file another process writes has no event to wait on: poll, with a generous limit.
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_z_pauses_and_resumes_a_print(tmp_path: Path) -> None:
    # A maker used to a host's Pause button presses Ctrl-Z: the printer parks with the heaters
    # kept, and Ctrl-Z again puts it back; the job's moves still run once each, in order.
    log = tmp_path / "moves.log"
    text = numbered_moves_gcode(300)
    path = write_gcode(tmp_path, text)
    flags = ("--sim-speed", "1", "--move-time", "0.02", "--log", str(log))
    with (
        _board(*flags) as device,
        subprocess.Popen(
            [*CLI, "print", str(path), "--port", device, "--baud", "1000000", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        assert proc.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        # A reader thread, so that a print that does not answer fails the test, not hangs it.
        reader = threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stderr], daemon=True)
        reader.start()
        try:
            _wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 10)
            proc.send_signal(signal.SIGTSTP)
            said = [lines.get(timeout=60), lines.get(timeout=60)]
            assert said[0].startswith("printforge: pausing"), said
            assert said[1].startswith("printforge: paused (heaters kept on)"), said
            # generic-220's park corner (the board appends its log every half second)
            _wait_for(lambda: "X0.00 Y220.00" in log.read_text())
            proc.send_signal(signal.SIGTSTP)
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.wait(timeout=120)
            reader.join(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = "".join(lines.queue)
    assert proc.returncode == 0, err
    assert "printforge: resumed" in err
    assert json.loads(out)["ok"] is True
    entries = [ln.split(" ", 1) for ln in log.read_text().splitlines()]
    numbers = [int(n[1:]) for n, _ in entries]
    assert numbers == sorted(set(numbers))
    job = set(expected_moves(text))
    assert [cmd for _, cmd in entries if cmd in job] == expected_moves(text)
    extra = [cmd for _, cmd in entries if cmd not in job]
    assert extra[:3] == ["G1 E-2.00 F2400", "G1 Z10.00 F600", "G1 X0.00 Y220.00 F6000"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--log", "{tmp}/no/such/dir/moves.log"], "--log {tmp}/no/such/dir/moves.log: the folder"),
        (["--link", "{tmp}/no/such/dir/tty"], "--link {tmp}/no/such/dir/tty: the folder"),
        (["--noise-rate", "2"], "--noise-rate 2.0: input should be less than 1"),
    ],
)
def test_virtual_printer_bad_option_is_one_clear_line(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    # A --log in a missing folder used to leave the board serving after the error, for ever.
    done = _run("virtual-printer", *(f.format(tmp=tmp_path) for f in flags))
    assert done.returncode == 1
    assert message.format(tmp=tmp_path) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""  # no device path: nothing was served


def test_ctrl_backslash_is_the_emergency_stop(tmp_path: Path) -> None:
    # Ctrl-\ used to kill the host at once with the heaters on; it is now M112 ahead of the queue.
    log = tmp_path / "moves.log"
    path = write_gcode(tmp_path, numbered_moves_gcode(300))
    flags = ("--sim-speed", "1", "--move-time", "0.02", "--log", str(log))
    with (
        _board(*flags) as device,
        subprocess.Popen(
            [*CLI, "print", str(path), "--port", device, "--baud", "1000000", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        try:
            _wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 10)
            proc.send_signal(signal.SIGQUIT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 1, err
    assert "emergency stop: M112 sent" in err
    summary = json.loads(out)
    assert summary["error"]["code"] == "printer_fault"
    assert "emergency stop (M112)" in summary["error"]["message"]
    assert 0 < summary["lines_acked"] < summary["lines_total"] == 302


def test_print_refuses_a_file_the_gate_refuses_before_touching_the_printer(
    tmp_path: Path, virtual_printer: tuple[str, Path]
) -> None:
    device, log = virtual_printer
    unsafe = write_gcode(tmp_path, "G28\nM104 S300\nM500\nG1 X 300 Y10 F3000\n")
    done = _run("print", str(unsafe), "--port", device, "--baud", "1000000")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for words in ("M104 S300", "M500", "moves X to 300", "Not sent", "--no-gate"):
        assert words in lines[0]
    moved = log.read_text() if log.exists() else ""
    assert "X300" not in moved.replace(" ", "")
    # A file meant for a bigger bed goes once its profile is given; --no-gate is the override.
    wide = write_gcode(tmp_path, "G28\nG1 X240 Y10 F3000\n", name="wide.gcode")
    refused = _run("print", str(wide), "--port", device, "--baud", "1000000")
    assert refused.returncode == 1 and "generic-220" in refused.stderr
    sent = _run(
        "print", str(wide), "--port", device, "--baud", "1000000", "--profile", "prusa-mk3s"
    )
    assert sent.returncode == 0, sent.stderr
    forced = _run("print", str(unsafe), "--port", device, "--baud", "1000000", "--no-gate")
    assert forced.returncode == 0, forced.stderr
