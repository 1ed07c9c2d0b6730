"""The whole pipeline on embedded defaults.

Offline research, CAD, the built-in slicer and a virtual printer, all real.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from printforge.agents.base import Agent, AgentContext, load_agent
from printforge.models.artifact import file_sha256
from printforge.models.event import JobEvent
from printforge.models.job import JobState, StageName, StageState
from printforge.models.printer import PrinterState
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator, _build_agent
from printforge.runtime.errors import ConnectionLost, InputError, PrinterBusy, PrinterFault
from printforge.settings import Settings, load_settings

CUBE = "a 20 mm calibration cube"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "sim_speed": 2000.0}
    base.update(overrides)
    return load_settings(overrides=base)


async def events_until(sub: Any, job_id: str, predicate: Any, timeout: float = 60) -> JobEvent:
    async with asyncio.timeout(timeout):
        async for event in sub:
            if isinstance(event, JobEvent) and event.job_id == job_id and predicate(event):
                return event
    raise AssertionError("bus closed")


@pytest.mark.asyncio
async def test_a_cube_goes_through_all_four_stages(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Orchestrator(settings) as orch:
        sub = orch.bus.subscribe()
        job = await orch.submit(PrintRequest(text=CUBE))
        job = await orch.wait(job.id, timeout=90)
        seen: list[tuple[str, str | None]] = []
        while not sub._queue.empty():
            event = sub._queue.get_nowait()
            if isinstance(event, JobEvent) and event.kind in ("stage.started", "stage.completed"):
                seen.append((event.kind, event.stage.value if event.stage else None))
    assert job.state is JobState.COMPLETED, job.error
    assert [s.name for s in job.stages] == list(StageName)
    assert all(s.state is StageState.COMPLETED for s in job.stages)
    assert all((s.duration_s or 0) > 0 for s in job.stages)
    assert seen == [
        (kind, stage)
        for stage in ("research", "cad", "slicer", "printer")
        for kind in ("stage.started", "stage.completed")
    ]
    folder = settings.jobs_dir / job.id
    for name in ("request.json", "spec.json", "model.stl", "model.gcode", "report.json"):
        assert (folder / name).is_file(), name
    assert job.mesh is not None and job.gcode is not None and job.spec is not None
    for artifact in (job.spec, job.mesh, job.gcode):
        assert artifact.sha256 == file_sha256(artifact.path)
    assert job.mesh.watertight
    assert all(abs(d - 20.0) <= 0.1 for d in job.mesh.size_mm)
    report = json.loads((folder / "report.json").read_text())
    assert report["state"] == "completed"
    assert report["report"]["gate"]["passed"] is True
    assert report["report"]["printer"]["lines_acked"] == report["report"]["printer"]["lines_total"]


@pytest.mark.asyncio
async def test_nonsense_fails_in_research_with_a_clear_message(tmp_path: Path) -> None:
    async with Orchestrator(make_settings(tmp_path)) as orch:
        job = await orch.submit(PrintRequest(text="the colour of yesterday's dreams"))
        job = await orch.wait(job.id, timeout=30)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "invalid_input"
    assert job.stage(StageName.RESEARCH).state is StageState.FAILED
    assert job.stage(StageName.CAD).state is StageState.PENDING


class FlakyAgent(Agent[Any, Any]):
    """A real agent that loses its connection on the first attempts, then does the work."""

    def __init__(self, inner: Agent[Any, Any], failures: int) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.failures = failures
        self.calls = 0

    async def run(self, inp: Any, ctx: AgentContext) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionLost(f"injected failure {self.calls}")
        return await self.inner.run(inp, ctx)


@pytest.mark.asyncio
async def test_a_transient_fault_is_retried_by_the_runtime_layer(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        agents={"cad": {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.02}},
    )
    cad = FlakyAgent(load_agent("cad")(settings), failures=2)  # type: ignore[call-arg]
    async with Orchestrator(settings, agents={"cad": cad}) as orch:
        job = await orch.submit(PrintRequest(text=CUBE, print=False))
        job = await orch.wait(job.id, timeout=60)
        health = orch.health.get("cad")
    assert job.state is JobState.COMPLETED, job.error
    assert job.stage(StageName.CAD).attempts == 3
    assert job.stage(StageName.PRINTER).state is StageState.SKIPPED
    assert health.failures == 2 and health.consecutive_failures == 0


class BusyOnceAgent(Agent[Any, Any]):
    """The real printer agent, whose first start finds the printer printing another job (one
    another instance started there): the refusal a bus printer's node gives."""

    def __init__(self, inner: Agent[Any, Any]) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.calls = 0

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def run(self, inp: Any, ctx: AgentContext) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise PrinterBusy(f"start on {ctx.printer}: {ctx.printer} is printing job other")
        return await self.inner.run(inp, ctx)


@pytest.mark.asyncio
async def test_a_start_refused_as_busy_is_queued_again_not_failed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    orch = Orchestrator(settings)
    printer = _build_agent("printer", settings, orch)
    busy = BusyOnceAgent(printer)
    orch._agent_overrides["printer"] = busy
    async with orch:
        job = await orch.submit(PrintRequest(text=CUBE))
        job = await orch.wait(job.id, timeout=120)
        reasons = [r for _, _, _, r in await orch.store.transitions(job.id)]
    assert job.state is JobState.COMPLETED, job.error
    assert busy.calls == 2
    assert "printer busy with another job" in reasons
    assert "re-queued after printer loss" in reasons


@pytest.mark.asyncio
async def test_cancel_while_printing_stops_safely(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sim_speed=5.0)
    async with Orchestrator(settings) as orch:
        sub = orch.bus.subscribe()
        job = await orch.submit(PrintRequest(text=CUBE))
        await events_until(
            sub,
            job.id,
            lambda e: e.stage is StageName.PRINTER and e.kind == "stage.progress",
        )
        job = await orch.cancel(job.id)
        status = orch.printers.get("virtual").status()
    assert job.state is JobState.CANCELLED
    assert job.stage(StageName.PRINTER).state is StageState.CANCELLED
    assert status.state is not PrinterState.PRINTING


@pytest.mark.asyncio
async def test_a_vanished_printer_interrupts_the_job(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        printers={"virtual": {"driver": "virtual", "disconnect_at_line": 40}},
        orchestrator={"requeue_interrupted": False},
    )
    async with Orchestrator(settings) as orch:
        job = await orch.submit(PrintRequest(text=CUBE))
        job = await orch.wait(job.id, timeout=90)
    assert job.state is JobState.INTERRUPTED
    assert job.error is not None and job.error.code == "printer_disconnected"
    assert job.last_acked_line == 39
    assert job.stage(StageName.PRINTER).state is StageState.INTERRUPTED


@pytest.mark.asyncio
async def test_a_job_whose_printer_vanished_is_requeued_onto_another(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        printers={
            "virtual": {"driver": "virtual", "disconnect_at_line": 40},
            "spare": {"driver": "virtual"},
        },
        orchestrator={"requeue_interrupted": True, "max_print_attempts": 2},
    )
    async with Orchestrator(settings) as orch:
        job = await orch.submit(PrintRequest(text=CUBE))
        job = await orch.wait(job.id, timeout=90)
        history = await orch.store.transitions(job.id)
    assert job.state is JobState.COMPLETED, job.error
    assert job.printer == "spare"
    targets = [t for _, t, _, _ in history]
    assert targets.count("printing") == 2
    assert targets.count("interrupted") == 1
    assert targets[-1] == "completed"


@pytest.mark.asyncio
async def test_shutdown_mid_print_is_recorded_and_survives_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sim_speed=2.0)
    orch = Orchestrator(settings)
    await orch.start()
    sub = orch.bus.subscribe()
    printing = await orch.submit(PrintRequest(text=CUBE))
    await events_until(sub, printing.id, lambda e: e.state is JobState.PRINTING)
    waiting = await orch.submit(PrintRequest(text="a 10 mm cube"))
    await orch.stop()

    async with Orchestrator(settings) as again:
        first = await again.get(printing.id)
        assert first.state is JobState.INTERRUPTED
        second = await again.get(waiting.id)
        # Its research/CAD/slicing can be redone, so it is queued again (and may start now).
        assert second.state is not JobState.INTERRUPTED
        assert second.state is not JobState.FAILED


@pytest.mark.asyncio
async def test_bed_clear_and_priority_decide_the_next_print(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, printers={"virtual": {"driver": "virtual", "bed_clear_required": True}}
    )
    async with Orchestrator(settings) as orch:
        sub = orch.bus.subscribe()
        first = await orch.submit(PrintRequest(text="a 10 mm cube"))
        first = await orch.wait(first.id, timeout=60)
        assert first.state is JobState.COMPLETED
        status = next(s for s in orch.printers.statuses() if s.id == "virtual")
        assert status.state is PrinterState.FINISHED
        low = await orch.submit(PrintRequest(text="a 10 mm cube", priority=0))
        high = await orch.submit(PrintRequest(text="a 12 mm cube", priority=9))
        waiting: set[str] = set()
        async with asyncio.timeout(60):
            async for e in sub:
                if isinstance(e, JobEvent) and e.message == "waiting for a printer":
                    waiting.add(e.job_id)
                    if {low.id, high.id} <= waiting:
                        break
        await asyncio.sleep(0.1)  # let both reach the scheduler's waiting list
        assert set(orch.scheduler.waiting()) == {low.id, high.id}
        assert (await orch.get(low.id)).state is JobState.SLICING
        await orch.printers.confirm_bed_clear("virtual")
        high = await orch.wait(high.id, timeout=60)
        low_now = await orch.get(low.id)
        assert high.state is JobState.COMPLETED
        assert low_now.state is not JobState.COMPLETED  # it waits for the bed again
        await orch.printers.confirm_bed_clear("virtual")
        low = await orch.wait(low.id, timeout=60)
        assert low.state is JobState.COMPLETED


@pytest.mark.asyncio
async def test_copies_print_the_same_gcode(tmp_path: Path) -> None:
    async with Orchestrator(make_settings(tmp_path)) as orch:
        first = await orch.submit(PrintRequest(text="a 10 mm cube", copies=2))
        ids = first.copies
        jobs = [await orch.wait(i, timeout=60) for i in ids]
    assert [j.state for j in jobs] == [JobState.COMPLETED] * 2
    assert jobs[1].stage(StageName.SLICER).state is StageState.SKIPPED
    assert jobs[0].gcode is not None and jobs[1].gcode is not None
    assert jobs[0].gcode.sha256 == jobs[1].gcode.sha256


@pytest.mark.asyncio
async def test_unsafe_gcode_is_refused_before_the_printer(tmp_path: Path) -> None:
    gcode = tmp_path / "evil.gcode"
    gcode.write_text("G28\nM104 S200\nG1 X10 Y10 Z0.3 E1 F1200\nM500 ; store settings\n")
    async with Orchestrator(make_settings(tmp_path)) as orch:
        job = await orch.submit(PrintRequest(gcode_path=gcode))
        job = await orch.wait(job.id, timeout=30)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "unsafe_gcode"
    assert "M500" in job.error.message


@pytest.mark.asyncio
async def test_cancelling_a_copy_that_waits_for_its_original(tmp_path: Path) -> None:
    async with Orchestrator(make_settings(tmp_path, sim_speed=5.0)) as orch:
        first = await orch.submit(PrintRequest(text=CUBE, copies=2))
        copy_id = first.copies[1]
        copy = await orch.cancel(copy_id)
        assert copy.state is JobState.CANCELLED
        original = await orch.cancel(first.id)
    assert original.state is JobState.CANCELLED


@pytest.mark.asyncio
async def test_no_more_than_k_printers_heat_at_once(tmp_path: Path) -> None:
    names = ["p1", "p2", "p3"]
    settings = make_settings(
        tmp_path,
        sim_speed=200.0,
        printers={n: {"driver": "virtual"} for n in names},
        server={"max_heating": 1},
    )
    # Per printer: the order of its first report with a heater target set, and of its first
    # report with every heater at target. Both listeners see the same reports in the same order.
    order = itertools.count()
    started: dict[str, int] = {}
    reached: dict[str, int] = {}

    def watch(status: Any) -> None:
        temps = [t for t in status.temperatures.values() if t.target > 0]
        if temps and status.id not in started:
            started[status.id] = next(order)
        if temps and status.id not in reached and all(t.actual >= t.target - 2 for t in temps):
            reached[status.id] = next(order)

    async with Orchestrator(settings) as orch:
        orch.printers.add_listener(watch)
        # One job per printer: which printer a free job takes depends on when its slice is
        # done (CPU stages share the worker pool), and this test is about the heating gate.
        jobs = [
            await orch.submit(PrintRequest(text=f"a {10 + i} mm cube", printer=name))
            for i, name in enumerate(names)
        ]
        done = [await orch.wait(j.id, timeout=120) for j in jobs]
    assert [j.state for j in done] == [JobState.COMPLETED] * 3
    assert {j.printer for j in done} == set(names)  # all three printers printed
    by_start = sorted(names, key=lambda n: started[n])
    for before, after in itertools.pairwise(by_start):
        # The next printer only began to heat once the one before was at temperature.
        assert started[after] > reached[before], (started, reached)


@pytest.mark.asyncio
async def test_a_print_on_a_printer_that_never_connected_is_refused_not_queued_for_ever(
    tmp_path: Path,
) -> None:
    # One command-line job (wait_for_offline_printers off) is told at once; a server waits.
    port = tmp_path / "ttyNOPE0"
    settings = make_settings(
        tmp_path,
        printers={"mk3": {"driver": "marlin", "port": str(port)}},
        orchestrator={"wait_for_offline_printers": False},
    )
    async with Orchestrator(settings) as orch:
        assert set(orch.never_started()) == {"mk3"}
        with pytest.raises(InputError, match=rf"no printer to print on \(mk3: .*{port}") as err:
            await orch.submit(PrintRequest(text=CUBE))
        assert err.value.code == "printer_unavailable"
        with pytest.raises(InputError, match="mk3"):
            await orch.submit(PrintRequest(text=CUBE, printer="mk3"))
        # Designing and slicing need no printer.
        job = await orch.submit(PrintRequest(text=CUBE, print=False))
        job = await orch.wait(job.id, timeout=60)
    assert job.state is JobState.COMPLETED, job.error


@pytest.mark.asyncio
async def test_a_printer_switched_on_after_start_is_picked_up_and_prints(tmp_path: Path) -> None:
    import sys

    port = tmp_path / "ttyLATE0"
    settings = make_settings(
        tmp_path,
        printers={"mk3": {"driver": "marlin", "port": str(port)}},
        orchestrator={"printer_retry_max_s": 0.5},
    )
    async with Orchestrator(settings) as orch:
        assert set(orch.never_started()) == {"mk3"}
        # Accepted and queued: the printer is tried again in the background.
        job = await orch.submit(PrintRequest(text="a 10 mm cube"))
        board = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "printforge", "virtual-printer", "--link", str(port),
            "--sim-speed", "2000", "--data-dir", str(tmp_path / "vp"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            job = await orch.wait(job.id, timeout=120)
        finally:
            board.terminate()
            await asyncio.wait_for(board.wait(), 30)
        assert orch.never_started() == {}
    assert job.state is JobState.COMPLETED, job.error
    assert job.printer == "mk3"


@pytest.mark.asyncio
async def test_one_printer_down_does_not_refuse_jobs_the_others_can_print(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        printers={
            "mk3": {"driver": "marlin", "port": str(tmp_path / "ttyNOPE0")},
            "v1": {"driver": "virtual"},
        },
    )
    async with Orchestrator(settings) as orch:
        assert set(orch.never_started()) == {"mk3"}
        job = await orch.submit(PrintRequest(text=CUBE))
        job = await orch.wait(job.id, timeout=60)
    assert job.state is JobState.COMPLETED, job.error
    assert job.printer == "v1"


class FaultyOn(Agent[Any, Any]):
    """The real printer agent, except that one printer's firmware halts every print."""

    def __init__(self, inner: Agent[Any, Any], bad: str) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.bad = bad

    async def run(self, inp: Any, ctx: AgentContext) -> Any:
        if ctx.printer == self.bad:
            raise PrinterFault(f"printer {self.bad}: thermal runaway")
        return await self.inner.run(inp, ctx)


@pytest.mark.asyncio
async def test_one_faulty_printer_does_not_open_the_breaker_for_the_others(
    tmp_path: Path,
) -> None:
    # One breaker for the whole printer agent let a single bad printer fail every print on a
    # farm with "circuit open"; each printer has its own.
    settings = make_settings(
        tmp_path,
        printers={"bad": {"driver": "virtual"}, "good": {"driver": "virtual"}},
        agents={"printer": {"breaker_failure_threshold": 2, "breaker_reset_s": 600}},
    )
    async with Orchestrator(settings) as orch:
        agent = FaultyOn(orch.agents["printer"], bad="bad")
        orch.agents["printer"] = agent
        assert orch.pipeline is not None
        orch.pipeline.agents["printer"] = agent
        for _ in range(2):
            job = await orch.submit(PrintRequest(text=CUBE, printer="bad"))
            job = await orch.wait(job.id, timeout=60)
            assert job.state is JobState.FAILED and job.error is not None
            assert job.error.code == "printer_fault"
        refused = await orch.submit(PrintRequest(text=CUBE, printer="bad"))
        refused = await orch.wait(refused.id, timeout=60)
        assert refused.error is not None and refused.error.code == "circuit_open"
        job = await orch.submit(PrintRequest(text=CUBE, printer="good"))
        job = await orch.wait(job.id, timeout=60)
    assert job.state is JobState.COMPLETED, job.error
