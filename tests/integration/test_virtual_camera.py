"""The virtual camera as a webcam: served on a free port, read by the real client and by a raw
HTTP client, following a print as it rises, and showing each failure where it belongs.

Failures are checked against the same camera without them (same seed, same frames, so the
same sensor noise): what changed must be where the failure is, judged from masks the tests
take from frames themselves (the part, the head), not from the renderer's own geometry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from numpy.typing import NDArray

from printforge.hardware.camera.events import read_ground_truth
from printforge.hardware.camera.follow import ManualSource, PrintView
from printforge.hardware.camera.mjpeg import is_jpeg
from printforge.hardware.camera.worker import RenderPool
from printforge.runtime.errors import InputError
from tests.fakes.camera import box_stl, changed, pixels, printing, served

pytestmark = pytest.mark.asyncio

Mask = NDArray[np.bool_]
TOP = 16.0  # the box's height


@pytest.fixture(scope="module")
def renderer() -> Iterator[RenderPool]:
    pool = RenderPool()
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return box_stl(tmp_path_factory.mktemp("part"))


def _box(mask: Mask) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    assert xs.size, "nothing there"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


async def _frames(
    renderer: RenderPool, views: list[dict[str, Any]], **options: Any
) -> list[NDArray[np.int16]]:
    """One frame per view, from a fresh camera (so frame numbers, and noise, line up)."""
    source = ManualSource(PrintView())
    out = []
    async with served(renderer, source, **options) as (_, _, client):
        for view in views:
            source.set(**view)
            out.append(pixels(await client.snapshot()))
    return out


# serving ---------------------------------------------------------------------------------------
async def test_served_as_a_webcam_and_read_by_the_client(renderer: RenderPool, mesh: Path) -> None:
    source = ManualSource(PrintView(**printing(mesh, 30, 6.0, head=(110.0, 110.0, 6.0))))
    async with served(renderer, source, seed=1, fps=20) as (_, server, client):
        snap = await client.snapshot()
        assert pixels(snap).shape == (480, 640, 3)
        assert is_jpeg(await client.next_frame())
        async with aiohttp.ClientSession() as http:
            for path in ("/?action=snapshot", "/webcam/?action=snapshot"):
                async with http.get(server.url + path) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"] == "image/jpeg"
                    assert is_jpeg(await resp.read())
            # The stream read raw, without our parser: the boundary from the header, two parts.
            async with http.get(server.url + "/?action=stream") as resp:
                ctype = resp.headers["Content-Type"]
                assert ctype.startswith("multipart/x-mixed-replace")
                boundary = ("--" + ctype.split("boundary=")[1]).encode()
                data = b""
                async with asyncio.timeout(60):
                    while data.count(boundary) < 3:
                        data += await resp.content.readany()
            parts = data.split(boundary)[1:3]
            for part in parts:
                head, _, body = part.partition(b"\r\n\r\n")
                assert b"Content-Type: image/jpeg" in head
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                assert is_jpeg(body[:length])
            async with http.get(server.url + "/?action=dance") as resp:
                assert resp.status == 400


async def test_the_picture_follows_the_print_as_it_rises(renderer: RenderPool, mesh: Path) -> None:
    empty, low, high = await _frames(
        renderer,
        [printing(None, 0, 0.0), printing(mesh, 20, 4.0), printing(mesh, 60, 12.0)],
    )
    part_low, part_high = changed(empty, low), changed(empty, high)
    grew = changed(low, high)
    # The part takes more of the picture as it rises, and it grows upwards from where it was.
    assert part_high.sum() > part_low.sum() * 1.2
    x0, y0, x1, y1 = _box(part_low)
    gx0, gy0, gx1, _ = _box(grew)
    assert gy0 < y0 - 5  # higher in the picture than the part was
    assert x0 - 15 <= gx0 and gx1 <= x1 + 15  # and over the same footprint
    assert grew[y1 - 3 :].sum() == 0  # its bottom rows (the first layers) stayed as they were


# failures --------------------------------------------------------------------------------------
async def _failure_vs_clean(
    renderer: RenderPool, mesh: Path, kind: str, params: dict[str, Any], head: bool = False
) -> tuple[NDArray[np.int16], NDArray[np.int16], NDArray[np.int16]]:
    """Frames at 12 mm of a print that failed at 4 mm (layer 20), of the clean print, and of
    the clean print when it was 4 mm high."""
    where = (110.0, 110.0, 4.0) if head else None
    at4 = printing(mesh, 20, 4.0, head=where)
    at12 = printing(mesh, 60, 12.0, head=(110.0, 110.0, 12.0) if head else None)
    results = []
    for inject in (True, False):
        source = ManualSource(PrintView(**at4))
        async with served(renderer, source, seed=7) as (camera, _, client):
            frames = [pixels(await client.snapshot())]
            if inject:
                event = camera.inject(kind, 20, params=params)
                assert event.started_layer == 20 and event.started_z == 4.0
            source.set(**at12)
            frames.append(pixels(await client.snapshot()))
        results.append(frames)
    (_, failed), (clean4, clean12) = results
    return failed, clean12, clean4


async def test_clog_adds_nothing_after_its_height(renderer: RenderPool, mesh: Path) -> None:
    failed, clean12, clean4 = await _failure_vs_clean(renderer, mesh, "clog", {})
    assert changed(failed, clean4).mean() < 0.001  # the part stayed as it was at 4 mm
    missing = changed(failed, clean12)
    assert missing.sum() > 1000
    # What is missing is what the clean print grew since.
    grew = changed(clean4, clean12)
    assert (missing & grew).sum() > 0.8 * missing.sum()


def _part_mask(frame: NDArray[np.int16]) -> Mask:
    """Where the part is in a frame: filament orange, not the gold bed or the grey frame."""
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    mask: Mask = (r > 2.0 * g) & (r > 3.0 * b) & (r > 60)
    return mask


async def test_layer_shift_moves_only_what_is_above(renderer: RenderPool, mesh: Path) -> None:
    failed, clean12, _ = await _failure_vs_clean(
        renderer, mesh, "layer_shift", {"dx": 6.0, "dy": 0.0}
    )
    diff = changed(failed, clean12)
    assert diff.sum() > 500
    x0, _, x1, bottom = _box(_part_mask(clean12))
    # The lowest rows of the part (its first 4 mm, seen from the front) did not move...
    _, _, _, lowest_change = _box(diff)
    assert lowest_change < bottom - 8
    # ...the top moved right: part beyond its old right edge, bed or ledge at its left edge.
    xs = np.nonzero(diff)[1]
    assert (xs > x1).sum() > 20
    assert (xs < x0 + 15).sum() > 20


async def test_under_extrusion_leaves_gaps_in_the_new_layers_only(
    renderer: RenderPool, mesh: Path
) -> None:
    failed, clean12, _ = await _failure_vs_clean(renderer, mesh, "under_extrusion", {"gaps": 0.5})
    diff = changed(failed, clean12)
    part = _part_mask(clean12)
    assert diff.sum() > 300
    grown = np.zeros_like(part)
    ys, xs = np.nonzero(part)
    grown[max(ys.min() - 2, 0) : ys.max() + 3, max(xs.min() - 2, 0) : xs.max() + 3] = True
    assert (diff & ~grown).sum() == 0  # gaps are in the part, nowhere else
    _, _, _, lowest_change = _box(diff)
    assert lowest_change < ys.max() - 8  # and not in its first layers


async def test_detached_part_is_moved_on_the_bed(renderer: RenderPool, mesh: Path) -> None:
    failed, clean12, _ = await _failure_vs_clean(
        renderer, mesh, "detached", {"dx": 45.0, "dy": 0.0, "yaw_deg": 30.0, "tilt_deg": 0.0}
    )
    diff = changed(failed, clean12)
    _, _, px1, py1 = _box(_part_mask(clean12))
    # The knocked part lies well to the right of where the part stands...
    assert (_part_mask(failed)[:, px1 + 20 :]).sum() > 500
    # ...and where its base was, the bed shows (the new layers hang above it in the air).
    assert diff[py1 - 6 : py1 + 1].sum() > 50


async def test_spaghetti_tangles_around_the_part(renderer: RenderPool, mesh: Path) -> None:
    failed, clean12, clean4 = await _failure_vs_clean(renderer, mesh, "spaghetti", {})
    strands = changed(failed, clean4)
    x0, y0, x1, y1 = _box(_part_mask(clean12))
    assert strands.sum() > 1000
    ys, xs = np.nonzero(strands)
    # Centred on the part, and lying beyond it on the bed too.
    assert x0 <= xs.mean() <= x1 and y0 - 40 <= ys.mean() <= y1 + 40
    outside = strands.copy()
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    assert outside.sum() > 200


async def test_blob_grows_on_the_nozzle(renderer: RenderPool, mesh: Path) -> None:
    failed, clean12, _ = await _failure_vs_clean(
        renderer, mesh, "blob", {"mm_per_layer": 0.2, "max_mm": 10.0}, head=True
    )
    # The head, from the same view without it, tells where the nozzle is.
    (no_head,) = await _frames(renderer, [printing(mesh, 60, 12.0)], seed=7)
    head = changed(no_head, clean12)
    hx0, hy0, hx1, hy1 = _box(head)
    blob = changed(failed, clean12)
    assert blob.sum() > 200
    ys, xs = np.nonzero(blob)
    assert hx0 <= xs.mean() <= hx1
    assert ys.mean() > hy1 - (hy1 - hy0) / 3  # at the bottom of the head: the nozzle


# nuisances ---------------------------------------------------------------------------------------
async def _run_layers(
    renderer: RenderPool, mesh: Path, layers: list[int], **options: Any
) -> tuple[list[dict[str, Any]], list[bytes]]:
    source = ManualSource(PrintView(**printing(mesh, 1, 0.2, head=(110.0, 110.0, 0.2))))
    frames: list[bytes] = []
    async with served(renderer, source, **options) as (camera, _, client):
        for layer in range(1, max(layers) + 1):
            height = min(layer * 0.2, TOP)
            source.set(layer=layer, height=height, head=(110.0, 110.0, height))
            camera.sample()
            if layer in layers:
                frames.append(await client.snapshot())
        events = [e.public() for e in camera.events]
    return events, frames


async def test_nuisances_are_reproducible_by_seed(renderer: RenderPool, mesh: Path) -> None:
    options = {"nuisances": ["hand", "light", "shake", "head_front"], "nuisance_rate": 0.05}
    first = await _run_layers(renderer, mesh, [40, 70], seed=11, **options)
    again = await _run_layers(renderer, mesh, [40, 70], seed=11, **options)
    other = await _run_layers(renderer, mesh, [40, 70], seed=12, **options)
    assert first[0] and first[0] == again[0]
    assert first[1] == again[1]  # the very same JPEG bytes
    assert [(e["kind"], e["layer"]) for e in other[0]] != [
        (e["kind"], e["layer"]) for e in first[0]
    ]


@pytest.mark.parametrize("kind", ["light", "shake", "hand", "color", "head_front"])
async def test_each_nuisance_shows_and_is_logged(
    renderer: RenderPool, mesh: Path, tmp_path: Path, kind: str
) -> None:
    truth = tmp_path / "truth.jsonl"
    frames = []
    for nuisance in ([f"{kind}@30+10"], []):
        _, (frame,) = await _run_layers(
            renderer, mesh, [35], seed=3, nuisances=nuisance, ground_truth=str(truth)
        )
        frames.append(pixels(frame))
    diff = changed(frames[0], frames[1])
    assert diff.mean() > 0.002, f"{kind} did not change the picture"
    prints, events = read_ground_truth(truth)
    assert len(prints) == 2
    (event,) = events
    assert (event.kind, event.category, event.layer, event.z_mm) == (kind, "nuisance", 30, 6.0)
    assert event.end_layer == 35  # the camera stopped while it was still on: it ended there


async def test_injection_is_refused_with_a_reason(renderer: RenderPool, mesh: Path) -> None:
    source = ManualSource(PrintView(**printing(mesh, 5, 1.0)))
    async with served(renderer, source) as (camera, server, _):
        with pytest.raises(InputError, match="unknown event kind 'fire'"):
            camera.inject("fire")
        with pytest.raises(InputError, match="has no parameter 'speed'"):
            camera.inject("layer_shift", params={"speed": 3})
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/inject", json={"kind": "clog", "layer": 0}) as r:
                assert r.status == 400
                assert "layer counts from 1" in await r.text()
            async with http.post(server.url + "/inject", json={"kind": "hand", "layers": 2}) as r:
                assert r.status == 200
                event = await r.json()
            assert event["kind"] == "hand" and event["started_layer"] == 5
            async with http.get(server.url + "/status") as r:
                status = await r.json()
        assert [e["kind"] for e in status["events"]] == ["hand"]
