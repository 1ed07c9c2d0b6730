"""The detector on the virtual camera over HTTP (issue 17): the twin drawn from the G-code
lines up with what the camera shows; a clean print with a hand in view and a change of light
is never stopped; a part knocked off the bed is stopped within a few layers; and the twin has
exactly the layers of the one layer model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from printforge.gcode.analysis import analyse_gcode
from printforge.hardware.camera.follow import ManualSource
from printforge.hardware.camera.virtual import default_pose
from printforge.hardware.camera.worker import RenderPool
from printforge.models.printer import MaterialProfile
from printforge.models.request import SliceOverrides
from printforge.slicing.builtin import slice_file
from printforge.slicing.config import SlicerSettings
from printforge.slicing.params import resolve_params
from printforge.vision.compare import decode
from printforge.vision.config import DetectionConfig
from printforge.vision.detector import Detector
from printforge.vision.toolpath import Toolpath, read_toolpath
from printforge.vision.twin import Pinhole, Twin
from tests.fakes.camera import PROFILE, box_stl, printing, served

PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def renderer() -> Iterator[RenderPool]:
    pool = RenderPool()
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def part(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Toolpath]:
    folder = tmp_path_factory.mktemp("part")
    stl = box_stl(folder, (18.0, 14.0, 6.0))
    gcode = folder / "box.gcode"
    slice_file(
        stl, gcode, resolve_params(SlicerSettings(), PROFILE, PLA, SliceOverrides()), PROFILE
    )
    return stl, gcode, read_toolpath(gcode.read_text(), PROFILE)


def _twin(toolpath: Toolpath) -> Twin:
    pose = default_pose(PROFILE, None)
    return Twin(toolpath, Pinhole(pose.position, pose.look_at, pose.fov_deg, 640, 480))


def test_the_twin_has_the_layers_of_the_layer_model(part: tuple[Path, Path, Toolpath]) -> None:
    _, gcode, toolpath = part
    assert toolpath.layers == analyse_gcode(gcode, PROFILE).layers
    twin = _twin(toolpath)
    areas = [int(twin.render(n).mask.sum()) for n in (0, 5, 15, toolpath.layers)]
    assert areas[0] == 0 and areas[1] < areas[2] < areas[3]


async def _watch(
    renderer: RenderPool, part: tuple[Path, Path, Toolpath], **camera: object
) -> tuple[list[int], int]:
    """Print the part layer by layer on the virtual camera; the layers at which the detector
    stopped, and how many layers it compared."""
    stl, _, toolpath = part
    detector = Detector(_twin(toolpath), DetectionConfig(start_layer=4))
    source = ManualSource()
    stops, compared = [], 0
    rng = np.random.default_rng(5)
    async with served(renderer, source, seed=9, **camera) as (cam, _, client):
        for layer in range(toolpath.layers + 1):
            z = float(toolpath.heights[layer - 1]) if layer else 0.0
            cells = np.argwhere(toolpath.cells[max(layer - 1, 0)])
            r, c = cells[int(rng.integers(len(cells)))]
            head = (
                (110.0, 187.0, 15.0)
                if layer == 0
                else (toolpath.origin[0] + c * 0.4, toolpath.origin[1] + r * 0.4, z)
            )
            source.set(**printing(stl, layer, z, head=head, layers_total=toolpath.layers))
            await cam.part()
            frame = decode(await client.snapshot())
            verdict = await asyncio.to_thread(detector.observe, layer, frame)
            compared += "score" in verdict.detail
            if verdict.stop:
                stops.append(layer)
                detector.streak = 0
    return stops, compared


@pytest.mark.asyncio
async def test_a_clean_print_with_nuisances_is_never_stopped(
    renderer: RenderPool, part: tuple[Path, Path, Toolpath]
) -> None:
    stops, compared = await _watch(renderer, part, nuisances=["hand@12", "light@18+3"])
    assert compared >= 20
    assert stops == []


@pytest.mark.asyncio
async def test_a_part_knocked_off_is_stopped_within_three_layers(
    renderer: RenderPool, part: tuple[Path, Path, Toolpath]
) -> None:
    stops, _ = await _watch(renderer, part, failures=["detached@14"])
    assert stops and 14 <= stops[0] <= 17
