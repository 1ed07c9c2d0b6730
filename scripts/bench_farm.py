#!/usr/bin/env python3
"""Farm bus benchmark: N simulated printers on one broker, jobs dispatched over the bus.

Starts its own mosquitto on a free loopback port unless --broker is given, runs the printers in
`printforge node --virtual` processes (one connection per printer, status at 1 Hz), discovers
them from this process like `printforge serve` does (BusDiscovery + PrinterManager), and keeps
dispatching small jobs to them while it measures:

- command round trip: a command published until its reply arrives (uploads, starts, pings);
- status fan-out: a status's publish time on the node until this process has parsed it;
- CPU of every process involved (nodes, this one, the broker if it is ours), in % of one core;
- resident memory of those processes, per printer.

The farm runs twice in one invocation, on the same broker: without a farm key and with one
(every command, status, event and reply signed and verified, HMAC-SHA256), so the cost of
signing is read from two figures taken under the same conditions (`--signing` picks one).
Ends with one line per run:
signing=off printers=N p50_command_ms=… p99_command_ms=… p99_status_ms=… cpu_pct=… …
signing=on printers=N …
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from printforge.hardware.mqtt.discovery import BusDiscovery  # noqa: E402
from printforge.hardware.mqtt.messages import StatusMessage  # noqa: E402
from printforge.hardware.mqtt.remote import RemotePrinterDriver  # noqa: E402
from printforge.hardware.mqtt.sim.mosquitto import LocalMosquitto  # noqa: E402
from printforge.orchestrator.printers import PrinterManager  # noqa: E402
from printforge.runtime.errors import PrintforgeError  # noqa: E402
from printforge.settings import load_settings  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def job_gcode(folder: Path, moves: int) -> Path:
    # Long, slow moves: a few lines make a print of a couple of seconds at the sim speed used.
    lines = ["G90", "G92 E0", "G1 Z0.3 F600"]
    for i in range(moves):
        x = 20 + (i % 2) * 150
        lines.append(f"G1 X{x} Y{20 + i} E{i * 2.5:.1f} F3000")
    path = folder / f"bench-{moves}.gcode"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_nodes(
    args: argparse.Namespace, url: str, prefix: str, farm_key: str | None
) -> list[subprocess.Popen[str]]:
    share = [
        args.printers // args.nodes + (1 if i < args.printers % args.nodes else 0)
        for i in range(args.nodes)
    ]
    procs = []
    for i, count in enumerate(share):
        if count == 0:
            continue
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "printforge",
                    "node",
                    "--broker",
                    url,
                    "--topic-prefix",
                    prefix,
                    "--node-id",
                    f"bench{i}",
                    "--virtual" if args.virtual_printers else "--sim-printers",
                    str(count),
                    "--status-interval",
                    str(args.status_interval),
                    "--sim-speed",
                    str(args.sim_speed),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={
                    **os.environ,
                    "PRINTFORGE_LOG_LEVEL": "ERROR",
                    **({"PRINTFORGE_BUS__FARM_KEY": farm_key} if farm_key else {}),
                },
            )
        )
    return procs


class Measure:
    def __init__(self) -> None:
        self.on = False
        self.command_ms: list[float] = []
        self.status_ms: list[float] = []
        self.jobs_done = 0
        self.jobs_failed = 0

    def status(self, printer_id: str, msg: StatusMessage | None) -> None:
        if self.on and msg is not None:
            self.status_ms.append((time.time() - msg.ts) * 1000)


async def drive(
    args: argparse.Namespace,
    url: str,
    nodes: list[subprocess.Popen[str]],
    broker_pid: int | None,
    prefix: str,
    farm_key: str | None,
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            overrides={
                "data_dir": tmp,
                "log_level": "ERROR",
                "bus": {
                    "broker": url,
                    "topic_prefix": prefix,
                    "command_timeout_s": 60.0,
                    "command_retry_s": 10.0,
                    "stale_after_s": 30.0,
                    "farm_key": farm_key,
                },
            }
        )
        manager = PrinterManager(settings)
        disc = BusDiscovery(settings, manager)
        measure = Measure()
        disc.farm.add_listener(measure.status)
        original = disc.farm.request

        async def timed(printer_id, cmd, **kw):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            reply = await original(printer_id, cmd, **kw)
            if measure.on:
                measure.command_ms.append((time.perf_counter() - started) * 1000)
            return reply

        disc.farm.request = timed  # type: ignore[method-assign]
        await disc.start(wait_s=30)
        for proc in nodes:
            assert proc.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
            if not line:
                raise SystemExit("a node did not start")
        async with asyncio.timeout(180):
            while sum(manager.available(n) for n in manager.names()) < args.printers:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        # Reference measured in the same run: one command at a time on an idle farm.
        probe = manager.get(manager.names()[0])
        assert isinstance(probe, RemotePrinterDriver)
        ref_ms = []
        for _ in range(100):
            started = time.perf_counter()
            await probe.ping()
            ref_ms.append((time.perf_counter() - started) * 1000)
        # Parts of different lengths, as in a real farm: jobs do not end in lockstep.
        parts = [job_gcode(Path(tmp), round(args.moves * f)) for f in (0.5, 0.75, 1, 1.25, 1.5)]
        stop_at = time.monotonic() + args.warmup + args.duration

        async def worker(name: str) -> None:
            driver = manager.get(name)
            assert isinstance(driver, RemotePrinterDriver)
            # Spread the farm's jobs over time rather than starting 500 at once.
            await asyncio.sleep(random.uniform(0, args.idle))
            while time.monotonic() < stop_at:
                try:
                    gcode = random.choice(parts)
                    async for _ in driver.stream(gcode, job_id=uuid.uuid4().hex):
                        pass
                    measure.jobs_done += measure.on
                except PrintforgeError as err:
                    measure.jobs_failed += 1
                    print(f"job on {name} failed: {err}", file=sys.stderr)
                await asyncio.sleep(random.uniform(0.5, 1.5) * args.idle)

        async def pinger(name: str) -> None:
            # Commands besides the jobs' own: what a dashboard or an operator sends.
            driver = manager.get(name)
            assert isinstance(driver, RemotePrinterDriver)
            while time.monotonic() < stop_at:
                await asyncio.sleep(random.uniform(0.5, 1.5) * args.ping_every)
                try:
                    await driver.ping()
                except PrintforgeError as err:
                    print(f"ping of {name} failed: {err}", file=sys.stderr)

        lags: list[float] = []

        async def lag_probe() -> None:
            # How late this process's event loop runs a timer: its own share of the latency.
            while time.monotonic() < stop_at:
                t = time.perf_counter()
                await asyncio.sleep(0.05)
                lags.append((time.perf_counter() - t - 0.05) * 1000)

        workers = [asyncio.create_task(worker(n)) for n in manager.names()]
        workers.append(asyncio.create_task(lag_probe()))
        workers += [asyncio.create_task(pinger(n)) for n in manager.names()]
        await asyncio.sleep(args.warmup)
        pids = [p.pid for p in nodes] + ([broker_pid] if broker_pid else [])
        cpu0 = sum(cpu_seconds(p) for p in pids) + self_cpu()
        wall0 = time.monotonic()
        measure.on = True
        await asyncio.sleep(args.duration)
        measure.on = False
        wall = time.monotonic() - wall0
        cpu = sum(cpu_seconds(p) for p in pids) + self_cpu() - cpu0
        rss = sum(rss_mib(p) for p in pids) + rss_mib(os.getpid())
        if os.environ.get("BENCH_VERBOSE"):
            for pid in pids:
                print(
                    f"# pid {pid}: cpu {cpu_seconds(pid):.1f}s rss {rss_mib(pid):.0f}MiB",
                    file=sys.stderr,
                )
            print(
                f"# orchestrator loop lag p50 {percentile(lags, 50):.1f} ms"
                f" p99 {percentile(lags, 99):.1f} ms",
                file=sys.stderr,
            )
            print(
                f"# self: cpu {self_cpu():.1f}s rss {rss_mib(os.getpid()):.0f}MiB", file=sys.stderr
            )
        await asyncio.gather(*workers, return_exceptions=True)
        await disc.stop()
    n = args.printers
    print(
        f"# {len(measure.command_ms)} commands, {len(measure.status_ms)} statuses,"
        f" {measure.jobs_done} jobs done ({measure.jobs_failed} failed) in {wall:.1f}s;"
        f" {len(nodes)} node processes",
        file=sys.stderr,
    )
    return (
        f"signing={'on' if farm_key else 'off'} printers={n}"
        f" p50_command_ms={statistics.median(measure.command_ms):.1f}"
        f" p99_command_ms={percentile(measure.command_ms, 99):.1f}"
        f" p99_status_ms={percentile(measure.status_ms, 99):.1f}"
        f" cpu_pct={cpu / wall * 100:.0f}"
        f" rss_mib_per_printer={rss / n:.2f}"
        f" ref_idle_command_ms={statistics.median(ref_ms):.1f}"
        f" p99_over_idle={percentile(measure.command_ms, 99) / statistics.median(ref_ms):.0f}x"
    )


_gc_started = 0.0
GC_PAUSES_MS: list[float] = []


def _gc_probe(phase: str, info: dict[str, int]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    elif info.get("generation") == 2:
        GC_PAUSES_MS.append((time.perf_counter() - _gc_started) * 1000)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--printers", type=int, default=100)
    p.add_argument("--broker", help="mqtt://HOST:PORT; default: start a private mosquitto")
    p.add_argument("--nodes", type=int, default=2, help="node processes sharing the printers")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--idle", type=float, default=2.0, help="mean pause between a printer's jobs")
    p.add_argument("--moves", type=int, default=100, help="moves per job (3 s each, real time)")
    p.add_argument("--ping-every", type=float, default=5.0, help="mean seconds between pings")
    p.add_argument("--sim-speed", type=float, default=20.0)
    p.add_argument(
        "--virtual-printers",
        action="store_true",
        help="full virtual Marlin printers (wire-level, ~2 ms CPU per printer-second) instead"
        " of the light simulated ones",
    )
    p.add_argument("--status-interval", type=float, default=1.0)
    p.add_argument("--prefix", default=f"bench{uuid.uuid4().hex[:8]}")
    p.add_argument(
        "--signing",
        choices=("both", "off", "on"),
        default="both",
        help="run without a farm key, with one (signed messages), or both in turn (default)",
    )
    args = p.parse_args()
    if os.environ.get("BENCH_VERBOSE"):
        import gc

        gc.callbacks.append(_gc_probe)
    if args.printers < 1 or args.nodes < 1:
        p.error("--printers and --nodes must be at least 1")
    broker = None
    folder = None
    if args.broker:
        url = args.broker
    else:
        folder = tempfile.TemporaryDirectory()
        broker = LocalMosquitto(Path(folder.name))
        broker.start()
        url = broker.url
    modes = {"both": (False, True), "off": (False,), "on": (True,)}[args.signing]
    lines = []
    try:
        for signed in modes:
            # A fresh key and topic prefix per run: the runs share nothing but the broker.
            farm_key = secrets.token_urlsafe(32) if signed else None
            prefix = f"{args.prefix}-{'signed' if signed else 'plain'}/v1"
            nodes = start_nodes(args, url, prefix, farm_key)
            try:
                line = asyncio.run(
                    drive(args, url, nodes, broker.pid if broker else None, prefix, farm_key)
                )
            finally:
                stop_nodes(nodes)
            print(line, file=sys.stderr, flush=True)
            lines.append(line)
    finally:
        if broker is not None:
            broker.stop()
        if folder is not None:
            folder.cleanup()
    for line in lines:
        print(line, flush=True)
    return 0


def stop_nodes(nodes: list[subprocess.Popen[str]]) -> None:
    for proc in nodes:
        proc.terminate()
    for proc in nodes:
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


if __name__ == "__main__":
    raise SystemExit(main())
