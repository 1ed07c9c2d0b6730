#!/usr/bin/env python3
"""Server benchmark: many websocket clients submitting jobs while a farm of virtual printers runs.

Starts `printforge serve` (mock mode) as a subprocess on a free loopback port with N virtual
printers, slices one small part once, uploads its G-code, then C websocket clients each submit
J print jobs of that G-code over JSON-RPC and wait for their jobs' events. Every tenth client
(--watch-every) watches everything, every job and printer status, as dashboards do. It reports:

  accepted jobs/s      job.submit replies per second during the submission burst
  event latency        p50/p99 from a job event's creation in the server to its arrival here
  server memory        RSS and peak RSS of the server process; with --batches N, the RSS
                       after each batch as a ratio to the first (the plateau): a per-job
                       leak makes it grow batch after batch (target: within 10 %)
  reference            p50 round trip of `auth.whoami` on the idle server, measured first in
                       the same run; latencies are also printed as a ratio to it and to the
                       100 ms target
  server CPU per job   CPU time of the server's event-loop thread and of the server process
                       (its threads, not the worker processes) from the first submit to the
                       last job's end, per finished job. On a shared 2-core machine the
                       latencies follow the load average (3x between load 10 and 20); this
                       moves far less, so it is the figure to compare two versions by there

Usage:
    python scripts/bench_server.py [--clients 200] [--printers 50] [--jobs-per-client 2]
                                   [--sim-speed 100] [--timeout 300] [--batches 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.serve_process import ServeProcess

KEY = "bench-admin-key-0123456789"
TARGET_P99_S = 0.100
TARGET_RSS_GROWTH = 0.10  # RSS after the last batch within 10 % of the first batch's
TERMINAL = {"completed", "failed", "cancelled", "interrupted"}


def _config(path: Path, printers: int) -> Path:
    lines = [
        "[server]",
        "rate_limit_per_minute = 1000000",
        f"max_heating = {printers}",
        "[orchestrator]",
        "max_active_jobs = 8",
    ]
    for n in range(1, printers + 1):
        lines += [f"[printers.vp{n:02d}]", 'driver = "virtual"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of the server's main thread (its event loop) and of the
    server process: work done, which the machine's load changes far less than latencies."""
    tick = os.sysconf("SC_CLK_TCK")

    def parse(path: str) -> float:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    return parse(f"/proc/{pid}/task/{pid}/stat"), parse(f"/proc/{pid}/stat")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, watch_all: bool) -> None:
        self.ws = ws
        self.watch_all = watch_all
        self.next_id = 1
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.latencies: list[float] = []
        self.mine: set[str] = set()
        self.done: set[str] = set()
        self.all_done = asyncio.Event()
        self.expected = 0

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        msg_id = self.next_id
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[msg_id] = fut
        await self.ws.send_str(
            json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        )
        reply = await fut
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]  # type: ignore[no-any-return]

    async def read_loop(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.replies:
                self.replies.pop(data["id"]).set_result(data)
            elif data.get("method") == "job.event":
                ev = data["params"]
                self.latencies.append(now - datetime.fromisoformat(ev["ts"]).timestamp())
                if ev["job_id"] in self.mine and ev["kind"] == "state" and ev["state"] in TERMINAL:
                    self.done.add(ev["job_id"])
                    if self.expected and len(self.done) >= self.expected:
                        self.all_done.set()


async def _reference_rtt(session: aiohttp.ClientSession, url: str) -> float:
    ws = await session.ws_connect(f"{url}/ws", headers={"Authorization": f"Bearer {KEY}"})
    client = Client(ws, watch_all=False)
    reader = asyncio.create_task(client.read_loop())
    await client.call("events.subscribe", {"jobs": "none", "printers": False})
    rtts = []
    for _ in range(200):
        t0 = time.perf_counter()
        await client.call("auth.whoami", {})
        rtts.append(time.perf_counter() - t0)
    await ws.close()
    await reader
    return statistics.median(rtts)


async def _prepare_gcode(session: aiohttp.ClientSession, url: str) -> str:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with session.post(
        f"{url}/api/jobs", json={"request": "a 10 mm cube", "print": False}, headers=headers
    ) as resp:
        job_id = (await resp.json())["job_id"]
    while True:
        async with session.get(f"{url}/api/jobs/{job_id}", headers=headers) as resp:
            job = await resp.json()
        if job["state"] in TERMINAL:
            break
        await asyncio.sleep(0.2)
    if job["state"] != "completed":
        raise SystemExit(f"could not slice the benchmark part: {job['error']}")
    async with session.get(f"{url}{job['artifacts']['gcode']}", headers=headers) as resp:
        gcode = await resp.read()
    async with session.post(
        f"{url}/api/uploads", params={"filename": "bench.gcode"}, data=gcode, headers=headers
    ) as resp:
        return str((await resp.json())["upload"])


async def _batch(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    url: str,
    upload: str,
    server: ServeProcess,
) -> dict[str, Any]:
    """One round: connect the clients, submit every job, wait for all of them, disconnect."""
    clients: list[Client] = []
    readers = []
    for n in range(args.clients):
        ws = await session.ws_connect(
            f"{url}/ws", headers={"Authorization": f"Bearer {KEY}"}, max_msg_size=0
        )
        client = Client(ws, watch_all=bool(args.watch_every) and n % args.watch_every == 0)
        clients.append(client)
        readers.append(asyncio.create_task(client.read_loop()))
    await asyncio.gather(
        *(
            c.call(
                "events.subscribe",
                {"jobs": "all" if c.watch_all else "own", "printers": c.watch_all},
            )
            for c in clients
        )
    )
    for c in clients:
        c.latencies.clear()
        c.expected = args.jobs_per_client

    async def submit_all(c: Client) -> None:
        for _ in range(args.jobs_per_client):
            result = await c.call("job.submit", {"upload": upload})
            c.mine.update(result["job_ids"])

    pid = server.proc.pid  # type: ignore[union-attr]
    cpu0 = _cpu_s(pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(submit_all(c) for c in clients))
    submit_s = time.perf_counter() - t0
    peak_rss = 0
    try:
        async with asyncio.timeout(args.timeout):
            waiter = asyncio.gather(*(c.all_done.wait() for c in clients))
            while not waiter.done():
                peak_rss = max(peak_rss, _rss_kib(server.proc.pid)[0])  # type: ignore[union-attr]
                await asyncio.wait({waiter}, timeout=1.0)
        finished = True
    except TimeoutError:
        finished = False
    run_s = time.perf_counter() - t0
    cpu1 = _cpu_s(pid)
    for c in clients:
        await c.ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    return {
        "clients": clients,
        "submit_s": submit_s,
        "run_s": run_s,
        "finished": finished,
        "peak_rss": peak_rss,
        "loop_cpu_s": cpu1[0] - cpu0[0],
        "proc_cpu_s": cpu1[1] - cpu0[1],
    }


async def run(args: argparse.Namespace, server: ServeProcess) -> dict[str, Any]:
    url = server.url
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    conn = aiohttp.TCPConnector(limit=0)
    batches = []
    rss_after: list[float] = []
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
        reference = await _reference_rtt(session, url)
        upload = await _prepare_gcode(session, url)
        for _ in range(args.batches):
            batches.append(await _batch(args, session, url, upload, server))
            # After the batch, with every job finished and every client gone: what is still
            # held. The first batch's figure is the plateau the others are compared with.
            rss_after.append(_rss_kib(server.proc.pid)[0] / 1024)  # type: ignore[union-attr]
        rss, hwm = _rss_kib(server.proc.pid)  # type: ignore[union-attr]
    clients = [c for b in batches for c in b["clients"]]
    own = [lat for c in clients if not c.watch_all for lat in c.latencies]
    watchers = [lat for c in clients if c.watch_all for lat in c.latencies]
    every = own + watchers
    done = sum(len(c.done) for c in clients)
    accepted = args.clients * args.jobs_per_client * args.batches
    submit_s = sum(b["submit_s"] for b in batches)
    return {
        "clients": args.clients,
        "printers": args.printers,
        "batches": args.batches,
        "jobs": accepted,
        "jobs_finished": done,
        "all_finished": all(b["finished"] for b in batches),
        "submit_s": submit_s,
        "accepted_per_s": accepted / submit_s,
        "run_s": sum(b["run_s"] for b in batches),
        "events": len(every),
        "p50_ms": _pct(every, 0.50) * 1000,
        "p99_ms": _pct(every, 0.99) * 1000,
        "p99_own_ms": _pct(own, 0.99) * 1000,
        "p99_watchers_ms": _pct(watchers, 0.99) * 1000,
        "max_ms": max(every) * 1000 if every else float("nan"),
        "reference_rtt_ms": reference * 1000,
        "rss_mib": rss / 1024,
        "peak_rss_mib": max(hwm, *(b["peak_rss"] for b in batches)) / 1024,
        "rss_after_batch_mib": rss_after,
        "rss_ratio_to_first": [r / rss_after[0] for r in rss_after],
        "loop_cpu_ms_per_job": 1000 * sum(b["loop_cpu_s"] for b in batches) / max(1, done),
        "proc_cpu_ms_per_job": 1000 * sum(b["proc_cpu_s"] for b in batches) / max(1, done),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--printers", type=int, default=50)
    parser.add_argument("--jobs-per-client", type=int, default=2)
    parser.add_argument("--sim-speed", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="per batch")
    parser.add_argument(
        "--batches",
        type=int,
        default=1,
        help="rounds of --clients x --jobs-per-client on one server; RSS after each is printed"
        " as a ratio to the first (a leak shows as a ratio growing with the rounds)",
    )
    parser.add_argument(
        "--watch-every", type=int, default=10, help="every Nth client watches everything; 0 none"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-log", metavar="FILE", help="copy the server's log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        config = _config(Path(tmp) / "bench.toml", args.printers)
        server = ServeProcess(Path(tmp) / "data", KEY, sim_speed=args.sim_speed, config=config)
        server.start(timeout=60)
        try:
            r = asyncio.run(run(args, server))
        finally:
            server.stop()
            if args.keep_log:
                Path(args.keep_log).write_text(server.log.read_text())
    if args.json:
        print(json.dumps(r))
        return 0
    print(
        f"server benchmark: {r['clients']} websocket clients, {r['printers']} virtual printers,"
        f" {r['jobs']} print jobs"
    )
    print(
        f"  accepted jobs/s        {r['accepted_per_s']:8.1f}"
        f"   ({r['jobs']} in {r['submit_s']:.2f} s)"
    )
    print(
        f"  jobs finished          {r['jobs_finished']:8d}   in {r['run_s']:.1f} s"
        f"{'' if r['all_finished'] else '  (TIMED OUT)'}"
    )
    print(f"  events received        {r['events']:8d}")
    print(f"  event latency p50      {r['p50_ms']:8.2f} ms")
    print(
        f"  event latency p99      {r['p99_ms']:8.2f} ms   ({r['p99_ms'] / 100:.2f} x the 100 ms"
        f" target, {r['p99_ms'] / r['reference_rtt_ms']:.1f} x idle RTT)"
    )
    print(
        f"    own-job clients p99  {r['p99_own_ms']:8.2f} ms;  watch-all clients p99"
        f" {r['p99_watchers_ms']:.2f} ms;  max {r['max_ms']:.1f} ms"
    )
    print(f"  reference: idle RTT    {r['reference_rtt_ms']:8.3f} ms (auth.whoami, one client)")
    print(
        f"  server CPU per job     {r['loop_cpu_ms_per_job']:8.1f} ms event loop,"
        f" {r['proc_cpu_ms_per_job']:.1f} ms server process"
    )
    print(f"  server memory          {r['rss_mib']:8.1f} MiB RSS, peak {r['peak_rss_mib']:.1f} MiB")
    per_job = args.clients * args.jobs_per_client
    for n, (mib, ratio) in enumerate(
        zip(r["rss_after_batch_mib"], r["rss_ratio_to_first"], strict=True), start=1
    ):
        print(
            f"    RSS after batch {n}     {mib:8.1f} MiB   ({ratio:.3f} x the first plateau,"
            f" {n * per_job} jobs)"
        )
    leak_ok = r["rss_ratio_to_first"][-1] <= 1.0 + TARGET_RSS_GROWTH
    return 0 if r["all_finished"] and r["p99_ms"] < TARGET_P99_S * 1000 and leak_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
