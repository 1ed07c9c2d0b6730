#!/usr/bin/env python3
"""Failure detection against the twin, measured on the virtual camera.

Each scenario is a part (sliced by the built-in slicer), a seed, and either one injected
failure (at a seeded layer, 30 to 70 % of the way up) or none; every print also gets random
nuisances (light, a knock, a hand, another filament, the head in front) at `--nuisance-rate`
per layer. The virtual camera serves each print over HTTP and the bench fetches a snapshot per
layer through `CameraClient`, as the orchestrator does; the detector sees only the pictures,
the G-code and the camera's pose. The bench reads the camera's ground truth to score it.

A detected failure is recovered by the recovery policy (printforge/vision/recovery.py): the bed
is cleared (the one thing a person does), and the job printed again, or re-sliced after a
second failure; a reprint draws its own failure at `--retry-failure-rate`. A failed job counts
as recovered when a print of it reached the end with no failure missed and no false stop,
within the policy's attempts.

Tuning seeds (`--set tune`, from 1000) and evaluation seeds (`--set eval`, from 1) never
overlap. The last line is `recall=… false_positive_layer_rate=… median_layers_to_pause=…
recovered=…`.

Usage: python scripts/bench_detect.py [--set eval|tune] [--seeds N] [--parts box,cylinder,bracket]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from printforge.hardware.camera.client import CameraClient  # noqa: E402
from printforge.hardware.camera.config import (  # noqa: E402
    FAILURE_KINDS,
    CameraConfig,
    VirtualCameraOptions,
)
from printforge.hardware.camera.follow import ManualSource  # noqa: E402
from printforge.hardware.camera.server import CameraServer  # noqa: E402
from printforge.hardware.camera.virtual import VirtualCamera, default_pose  # noqa: E402
from printforge.hardware.camera.worker import RenderPool  # noqa: E402
from printforge.models.printer import MaterialProfile, PrinterProfile, PrinterState  # noqa: E402
from printforge.models.request import SliceOverrides  # noqa: E402
from printforge.slicing.builtin import slice_file  # noqa: E402
from printforge.slicing.config import SlicerSettings  # noqa: E402
from printforge.slicing.params import resolve_params  # noqa: E402
from printforge.vision.compare import decode  # noqa: E402
from printforge.vision.detector import DetectionConfig, Detector  # noqa: E402
from printforge.vision.diagnosis import write_diagnosis  # noqa: E402
from printforge.vision.recovery import decide  # noqa: E402
from printforge.vision.toolpath import Toolpath, read_toolpath  # noqa: E402
from printforge.vision.twin import Pinhole, Twin  # noqa: E402

PROFILE = PrinterProfile(name="generic-220")
PLA = MaterialProfile(name="PLA", hotend_temp=210, bed_temp=60, max_hotend_temp=235)
SEED_BASE = {"eval": 1, "tune": 1000}


def make_parts(folder: Path, names: list[str]) -> dict[str, Path]:
    """Small test parts as STL: a box, a cylinder and an L bracket (10 to 11 mm tall)."""
    import manifold3d
    import trimesh

    def bracket() -> trimesh.Trimesh:
        base = manifold3d.Manifold.cube((24.0, 10.0, 4.0))
        upright = manifold3d.Manifold.cube((6.0, 10.0, 11.0)).translate((18.0, 0.0, 0.0))
        solid = (base + upright).to_mesh()
        return trimesh.Trimesh(solid.vert_properties[:, :3], solid.tri_verts)

    makers = {
        "box": lambda: trimesh.creation.box((20.0, 16.0, 10.0)),
        "cylinder": lambda: trimesh.creation.cylinder(radius=9.0, height=11.0, sections=48),
        "bracket": bracket,
    }
    out = {}
    for name in names:
        path = folder / f"{name}.stl"
        makers[name]().export(path)
        out[name] = path
    return out


@dataclass
class Part:
    name: str
    stl: Path
    gcode: Path
    toolpath: Toolpath


@dataclass
class PrintResult:
    part: str
    seed: int
    kind: str  # injected failure, or "clean"
    onset: int | None  # layer the failure was first shown
    stopped_at: int | None  # layer of the first stop at or after the onset
    false_stops: list[int] = field(default_factory=list)
    clean_layers: int = 0
    layers: int = 0
    detected_kind: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.kind != "clean"


class Bench:
    def __init__(self, parts: dict[str, Part], args: argparse.Namespace, out: Path) -> None:
        self.parts = parts
        self.args = args
        self.out = out
        self.pool = RenderPool()
        self.config = DetectionConfig(threshold=args.threshold, persistence=args.persistence)
        pose = default_pose(PROFILE, None)
        self.camera = CameraConfig(
            virtual=VirtualCameraOptions(), position=pose.position, look_at=pose.look_at
        )
        self.pinhole = Pinhole(pose.position, pose.look_at, pose.fov_deg, 640, 480)
        self.twins = {name: Twin(p.toolpath, self.pinhole) for name, p in parts.items()}
        self.pictures = 0

    async def print_once(
        self, part: Part, seed: int, kind: str, onset_share: float, nuisance_rate: float
    ) -> PrintResult:
        layers = part.toolpath.layers
        failures = []
        if kind != "clean":
            failures = [f"{kind}@{max(8, round(onset_share * layers))}"]
        options = VirtualCameraOptions(seed=seed, failures=failures, nuisance_rate=nuisance_rate)
        source = ManualSource()
        camera = VirtualCamera(
            "bench", source, PROFILE, self.pool, options=options, config=self.camera
        )
        server = CameraServer(camera, "127.0.0.1", 0)
        detector = Detector(self.twins[part.name], self.config)
        rng = np.random.default_rng((seed, 7))
        result = PrintResult(part.name, seed, kind, None, None, layers=layers)
        t0 = time.perf_counter()
        await camera.start()
        await server.start()
        try:
            async with CameraClient(server.snapshot_url, timeout_s=30) as client:
                tp = part.toolpath
                for layer in range(0, layers + 1):
                    height = float(tp.heights[layer - 1]) if layer else 0.0
                    if layer == 0:
                        head = (110.0, 187.0, 15.0)  # parked at the back before the print
                    else:
                        # Wherever the nozzle is on this layer when the picture is taken.
                        cells = np.argwhere(tp.cells[layer - 1])
                        r, c = cells[int(rng.integers(len(cells)))]
                        x = tp.origin[0] + (c + 0.5) * tp.cell_mm
                        y = tp.origin[1] + (r + 0.5) * tp.cell_mm
                        head = (float(x), float(y), height)
                    source.set(
                        job=f"{part.name}-{seed}-{kind}",
                        mesh=part.stl,
                        state=PrinterState.PRINTING,
                        layer=layer,
                        layers_total=layers,
                        height=height,
                        head=head,
                    )
                    await camera.part()
                    frame = decode(await client.snapshot())
                    verdict = detector.observe(layer, frame)
                    failure = next((e for e in camera.events if e.category == "failure"), None)
                    if failure is not None and failure.started_layer is not None:
                        result.onset = failure.started_layer
                    failing_now = result.onset is not None and layer >= result.onset
                    if not failing_now and "score" in verdict.detail:
                        result.clean_layers += 1
                    if verdict.stop:
                        if failing_now:
                            result.stopped_at = layer
                            result.detected_kind = verdict.kind
                            if self.pictures < self.args.pictures:
                                self.pictures += 1
                                name = f"detect-{kind}-{part.name}-{seed}.png"
                                write_diagnosis(self.out / name, detector, verdict)
                            break
                        result.false_stops.append(layer)
                        detector.streak = 0  # a person resumes; the watch goes on
        finally:
            await server.stop()
            await camera.stop()
        result.seconds = time.perf_counter() - t0
        return result

    async def job(self, part: Part, seed: int, kind: str) -> tuple[list[PrintResult], bool]:
        """A job: its first print, then the recovery policy's reprints. Returns the prints and
        whether the job ended with a good print."""
        rng = np.random.default_rng((seed, 11))
        prints = []
        attempt_kind = kind
        for attempt in range(1, self.config.max_retries + 3):
            onset = float(rng.uniform(0.3, 0.7))
            result = await self.print_once(
                part, seed * 10 + attempt, attempt_kind, onset, self.args.nuisance_rate
            )
            prints.append(result)
            line = (
                f"  {part.name:8s} seed {seed:4d} try {attempt} {attempt_kind:15s}"
                f" onset {result.onset} stop {result.stopped_at} as {result.detected_kind}"
                f" false stops {result.false_stops} ({result.seconds:.0f} s)"
            )
            print(line, flush=True)
            if not result.failed:
                return prints, not result.false_stops
            if result.stopped_at is None:
                return prints, False  # missed: the job "finished" with a failed part
            decision = decide(
                result.detected_kind, failures=attempt, max_attempts=self.config.max_retries + 2
            )
            if decision.action == "give_up":
                return prints, False
            # A reprint fails again by chance only (the bed cleared, maybe re-sliced).
            again = rng.random() < self.args.retry_failure_rate
            attempt_kind = (
                FAILURE_KINDS[int(rng.integers(len(FAILURE_KINDS)))] if again else "clean"
            )
        return prints, False


def prepare(names: list[str], folder: Path) -> dict[str, Part]:
    stls = make_parts(folder, names)
    params = resolve_params(SlicerSettings(), PROFILE, PLA, SliceOverrides())
    parts = {}
    for name, stl in stls.items():
        gcode = folder / f"{name}.gcode"
        slice_file(stl, gcode, params, PROFILE)
        parts[name] = Part(name, stl, gcode, read_toolpath(gcode.read_text(), PROFILE))
    return parts


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("eval", "tune"), default="eval")
    ap.add_argument("--seeds", type=int, default=2, help="scenarios per part and failure kind")
    ap.add_argument(
        "--clean", type=int, default=None, help="clean prints per part (default: 2x seeds)"
    )
    ap.add_argument("--parts", default="box,cylinder,bracket")
    ap.add_argument("--kinds", default=",".join(FAILURE_KINDS))
    ap.add_argument("--nuisance-rate", type=float, default=0.06)
    ap.add_argument("--retry-failure-rate", type=float, default=0.2)
    ap.add_argument("--threshold", type=float, default=DetectionConfig().threshold)
    ap.add_argument("--persistence", type=int, default=DetectionConfig().persistence)
    ap.add_argument("--pictures", type=int, default=0, help="diagnosis PNGs to write")
    ap.add_argument("--out", type=Path, default=None, help="folder for pictures and JSON")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    names = [n for n in args.parts.split(",") if n]
    kinds = [k for k in args.kinds.split(",") if k]
    base = SEED_BASE[args.set]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        parts = prepare(names, Path(tmp))
        bench = Bench(parts, args, out)
        jobs: list[tuple[list[PrintResult], bool]] = []
        t0 = time.perf_counter()
        try:
            for name in names:
                for i in range(args.seeds):
                    for k, kind in enumerate(kinds):
                        seed = base + 100 * i + k
                        jobs.append(await bench.job(parts[name], seed, kind))
                for i in range(args.clean if args.clean is not None else 2 * args.seeds):
                    jobs.append(await bench.job(parts[name], base + 100 * i + 50, "clean"))
        finally:
            await bench.pool.stop()
        wall = time.perf_counter() - t0
    firsts = [prints[0] for prints, _ in jobs]
    failed = [r for r in firsts if r.failed and r.onset is not None]
    caught = [r for r in failed if r.stopped_at is not None]
    every = [r for prints, _ in jobs for r in prints]
    clean_layers = sum(r.clean_layers for r in every)
    false_stops = sum(len(r.false_stops) for r in every)
    delays = [r.stopped_at - r.onset for r in caught if r.stopped_at is not None and r.onset]
    recovered = [ok for (prints, ok) in jobs if prints[0].failed and prints[0].onset is not None]
    by_kind = {}
    for kind in kinds:
        of = [r for r in failed if r.kind == kind]
        got = [r for r in of if r.stopped_at is not None]
        by_kind[kind] = {
            "prints": len(of),
            "caught": len(got),
            "median_layers": statistics.median([r.stopped_at - r.onset for r in got])
            if got
            else None,
            "kind_right": sum(r.detected_kind == kind for r in got),
        }
    summary: dict[str, Any] = {
        "set": args.set,
        "prints": len(every),
        "failed_prints": len(failed),
        "recall": len(caught) / len(failed) if failed else None,
        "false_positive_layer_rate": false_stops / clean_layers if clean_layers else None,
        "false_stops": false_stops,
        "clean_layers": clean_layers,
        "median_layers_to_pause": statistics.median(delays) if delays else None,
        "recovered": sum(recovered) / len(recovered) if recovered else None,
        "by_kind": by_kind,
        "wall_s": round(wall, 1),
        "threshold": args.threshold,
        "persistence": args.persistence,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for kind, row in by_kind.items():
            print(f"{kind:16s} {row}")
        print(
            f"{len(every)} prints, {clean_layers} clean layers, {false_stops} false stops,"
            f" {wall:.0f} s"
        )

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    print(
        f"recall={pct(summary['recall'])}"
        f" false_positive_layer_rate={pct(summary['false_positive_layer_rate'])}"
        f" median_layers_to_pause={summary['median_layers_to_pause']}"
        f" recovered={pct(summary['recovered'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
