"""The virtual camera following real virtual printers: a VirtualDriver printing sliced G-code in
this process, a whole mock-mode orchestrator whose virtual printer gets its camera, and the
`printforge virtual-camera` command."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from printforge.hardware.camera.client import CameraClient
from printforge.hardware.camera.events import read_ground_truth
from printforge.hardware.camera.follow import DriverSource
from printforge.hardware.camera.worker import RenderPool
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import MaterialProfile, PrinterStatus
from printforge.models.request import PrintRequest, SliceOverrides
from printforge.settings import load_settings
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params
from tests.fakes.camera import FIRST_FRAME_S, PROFILE, box_stl, pixels, served

REPO = Path(__file__).resolve().parents[2]
PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)


@pytest.fixture(scope="module")
def renderer() -> Iterator[RenderPool]:
    pool = RenderPool()
    yield pool
    pool.shutdown()


def _orange(frame: NDArray[np.int16]) -> int:
    """Pixels of the default filament colour: the part (and nothing else on the bed)."""
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return int(((r > 2.0 * g) & (r > 3.0 * b) & (r > 60)).sum())


async def _until(driver: VirtualDriver, check: Callable[[PrinterStatus], bool]) -> None:
    changed = asyncio.Event()
    remove = driver.add_listener(lambda _s: changed.set())
    try:
        async with asyncio.timeout(120):
            while not check(driver.status()):
                changed.clear()
                await changed.wait()
    finally:
        remove()


def _layer(status: PrinterStatus) -> int:
    return (status.progress.layer or 0) if status.progress is not None else 0


@pytest.mark.asyncio
async def test_the_camera_follows_a_virtual_print(tmp_path: Path, renderer: RenderPool) -> None:
    stl = box_stl(tmp_path)
    gcode = tmp_path / "box.gcode"
    params = resolve_params(SlicerSettings(), PROFILE, PLA, SliceOverrides())
    await asyncio.to_thread(slice_file, stl, gcode, params, PROFILE)
    truth = tmp_path / "truth.jsonl"
    driver = VirtualDriver("v1", VirtualConfig(sim_speed=1000.0), PROFILE, PLA)
    async with driver:
        source = DriverSource(driver, lambda job: stl if job == "job-7" else None)
        async with served(
            renderer, source, seed=2, failures=["clog@70"], ground_truth=str(truth)
        ) as (camera, _, client):

            async def print_it() -> None:
                async for _ in driver.stream(gcode, job_id="job-7"):
                    pass

            printing = asyncio.create_task(print_it())
            frames = []
            heights = []
            for layer in (20, 60):
                await _until(driver, lambda s, at=layer: _layer(s) >= at)
                await driver.pause()
                view = camera.sample()
                # The part is as high as the layers the printer reports done (one may lag).
                assert abs(view.height - 0.2 * view.layer) <= 0.21
                assert view.job == "job-7" and view.layers_total == 80
                heights.append(view.height)
                frames.append(pixels(await client.snapshot()))
                await driver.resume()
            async with asyncio.timeout(120):
                await printing
            done = camera.sample()
            events = camera.describe()["events"]
        assert done.height == pytest.approx(16.0, abs=0.01)
        assert done.layer == 80
    assert 4.0 <= heights[0] < heights[1] <= 16.0
    assert _orange(frames[1]) > 1.2 * _orange(frames[0])  # the part grew in the picture
    prints, logged = read_ground_truth(truth)
    assert [p["job_id"] for p in prints] == ["job-7"]
    (clog,) = logged
    # It starts at the first look at layer 70 or later: how much later depends on when the
    # camera looks (a loaded machine renders fewer frames), its height on nothing but its layer.
    assert clog.kind == "clog" and 70 <= clog.layer <= 80
    assert clog.z_mm == pytest.approx(0.2 * clog.layer, abs=0.25)
    assert events[0]["started_layer"] == clog.layer


@pytest.mark.asyncio
async def test_mock_mode_gives_each_virtual_printer_a_camera(tmp_path: Path) -> None:
    from printforge.orchestrator.service import Orchestrator

    stl = box_stl(tmp_path, (12.0, 12.0, 4.0))
    settings = load_settings(
        env="development",
        overrides={
            "data_dir": str(tmp_path / "data"),
            "mock": True,
            "sim_speed": 2000.0,
            "virtual_cameras": True,
            "printers": {
                "mk3": {"driver": "marlin", "port": "/dev/null"},
                "plain": {"camera": {"virtual": {"seed": 4, "failures": ["blob@5"]}}},
            },
        },
    )
    async with Orchestrator(settings) as orch:
        cameras = {name: orch.printers.entry(name).camera for name in ("mk3", "plain")}
        for camera in cameras.values():
            assert camera is not None and camera.snapshot_url and camera.stream_url
            assert camera.position is not None and camera.look_at is not None
        job = await orch.submit(PrintRequest(model_path=stl, printer="plain"))
        job = await orch.wait(job.id, timeout=120)
        assert job.state.value == "completed", job.error
        frames = {}
        for name, camera in cameras.items():
            async with CameraClient.from_config(camera) as client:  # type: ignore[arg-type]
                client.timeout_s = FIRST_FRAME_S
                frames[name] = pixels(await client.snapshot())
        assert _orange(frames["plain"]) > 300  # the printed part on its bed
        assert _orange(frames["mk3"]) == 0  # nothing printed on this one
    prints, events = read_ground_truth(tmp_path / "data" / "cameras" / "plain.jsonl")
    assert [p["job_id"] for p in prints] == [job.id]
    (blob,) = events
    # Planned for layer 5; at 2000x a look can come a layer late, and the log says when it did.
    assert (blob.kind, blob.planned_layer) == ("blob", 5) and blob.layer >= 5


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "printforge", "--data-dir", str(tmp_path / "d"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _url_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the command prints its URL first, or dies saying why
    assert line.startswith("virtual camera on http://"), (line, proc.stderr and proc.stderr.read())
    return line.split()[3].rstrip("/")


@pytest.mark.asyncio
async def test_virtual_camera_command_serves_until_interrupted(tmp_path: Path) -> None:
    stl = box_stl(tmp_path)
    truth = tmp_path / "truth.jsonl"
    proc = _start(
        [
            "virtual-camera", "--mesh", str(stl), "--port", "0", "--seed", "5",
            "--layer-seconds", "0.05", "--failure", "spaghetti@10", "--nuisance", "hand@3",
            "--ground-truth", str(truth),
        ],
        tmp_path,
    )  # fmt: skip
    try:
        url = await asyncio.to_thread(_url_line, proc)
        async with CameraClient(f"{url}/?action=snapshot", f"{url}/?action=stream") as client:
            client.timeout_s = FIRST_FRAME_S
            assert pixels(await client.snapshot()).shape == (480, 640, 3)
            assert pixels(await client.next_frame()).shape == (480, 640, 3)
            # The failure is scheduled for layer 10: on a busy machine the first frames can come
            # before it, so keep watching frames (each one waits on the camera) until the log
            # records it, as a person watching the stream would.
            for _ in range(2000):
                if truth.exists() and '"spaghetti"' in truth.read_text():
                    break
                await client.next_frame()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    assert "virtual camera stopped" in err
    _, events = read_ground_truth(truth)
    assert {e.kind for e in events} >= {"spaghetti", "hand"}


@pytest.mark.asyncio
async def test_virtual_camera_command_follows_the_builtin_virtual_printer(tmp_path: Path) -> None:
    stl = box_stl(tmp_path, (14.0, 10.0, 3.0))
    proc = _start(
        ["virtual-camera", "--mesh", str(stl), "--printer", "virtual", "--port", "0",
         "--sim-speed", "3000", "--seed", "1"],
        tmp_path,
    )  # fmt: skip
    try:
        url = await asyncio.to_thread(_url_line, proc)
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("print 1 of 1: printed"), line
        async with CameraClient(f"{url}/snapshot", timeout_s=FIRST_FRAME_S) as client:
            frame = pixels(await client.snapshot())
        assert _orange(frame) > 100  # the part it printed, on the bed
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--failure", "spaghetti"], "--failure: 'spaghetti': a failure needs its layer"),
        (["--nuisance", "rain"], "unknown kind 'rain'"),
        (["--printer", "nosuch"], "no printer named 'nosuch'"),
        (["--ground-truth", "/nonexistent/dir/t.jsonl"], "does not exist"),
    ],
)
def test_virtual_camera_command_refuses_bad_flags(
    tmp_path: Path, args: list[str], message: str
) -> None:
    stl = box_stl(tmp_path)
    proc = _start(["virtual-camera", "--mesh", str(stl), "--port", "0", *args], tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert message in err and err.count("\n") == 1, err
