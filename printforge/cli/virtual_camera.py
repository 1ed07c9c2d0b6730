"""`printforge virtual-camera`: a virtual webcam over HTTP, watching a print of a mesh.

With `--printer NAME` the configured virtual printer NAME (the built-in `virtual` by default
config) prints `--mesh` in this process, through the same chain as any job, and the camera
follows it: the head where the simulated machine has it, the part as high as it has grown.
Without `--printer` the camera prints the mesh by itself, a layer every `--layer-seconds`.
Either way it serves /snapshot, /stream, /?action=snapshot|stream and POST /inject until
interrupted, and prints its URL first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "virtual-camera",
        help="serve a virtual webcam (snapshot and MJPEG) watching a print of a mesh",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--mesh", metavar="STL", required=True, help="the part being printed")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (0: a free one)")
    p.add_argument(
        "--printer",
        metavar="NAME",
        help="follow this virtual printer printing the mesh (in this process); without it,"
        " the camera prints the mesh by itself",
    )
    p.add_argument(
        "--prints", type=int, default=1, metavar="N", help="with --printer: print N times"
    )
    p.add_argument("--sim-speed", type=float, metavar="N", help="with --printer: its speed-up")
    p.add_argument(
        "--layer-seconds",
        type=float,
        default=0.5,
        metavar="S",
        help="without --printer: seconds per layer",
    )
    p.add_argument(
        "--layer-height", type=float, default=0.2, metavar="MM", help="without --printer"
    )
    p.add_argument("--profile", help="printer profile without --printer (default: generic-220)")
    p.add_argument("--seed", type=int, default=0, help="seed of random events and sensor noise")
    p.add_argument(
        "--failure",
        action="append",
        default=[],
        metavar="KIND@LAYER",
        help="inject a failure in every print: spaghetti, detached, layer_shift,"
        " under_extrusion, clog, blob (repeatable)",
    )
    p.add_argument(
        "--nuisance",
        action="append",
        default=[],
        metavar="KIND[@LAYER[+N]]",
        help="light, shake, hand, color, head_front; without @LAYER now and then (repeatable)",
    )
    p.add_argument("--failure-rate", type=float, default=0.0, metavar="P")
    p.add_argument("--nuisance-rate", type=float, default=0.0, metavar="P")
    p.add_argument("--color", metavar="#RRGGBB", help="filament colour")
    p.add_argument("--fps", type=float, metavar="N", help="frames per second of the stream")
    p.add_argument(
        "--ground-truth", metavar="FILE", help="append injected events here (JSON lines)"
    )
    p.set_defaults(handler=_handle)


def _options(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from printforge.hardware.camera.config import VirtualCameraOptions
    from printforge.runtime.errors import InputError

    values: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "seed": args.seed,
        "failures": args.failure,
        "nuisances": args.nuisance,
        "failure_rate": args.failure_rate,
        "nuisance_rate": args.nuisance_rate,
    }
    if args.color is not None:
        values["color"] = args.color
    if args.fps is not None:
        values["fps"] = args.fps
    if args.ground_truth is not None:
        values["ground_truth"] = str(Path(args.ground_truth).expanduser().absolute())
    try:
        return VirtualCameraOptions.model_validate(values)
    except ValidationError as err:
        problems = []
        for item in err.errors(include_url=False):
            flag = "--" + str(item["loc"][0]).replace("_", "-").removesuffix("s")
            problems.append(f"{flag}: {str(item['msg']).removeprefix('Value error, ')}")
        raise InputError("; ".join(problems)) from None


def _handle(args: argparse.Namespace) -> Any:
    from printforge.runtime.errors import InputError

    mesh = Path(args.mesh).expanduser().absolute()
    if not mesh.is_file():
        raise InputError(f"--mesh {args.mesh}: no such file")
    if args.prints < 1:
        raise InputError("--prints must be at least 1")
    if args.layer_seconds <= 0 or args.layer_height <= 0:
        raise InputError("--layer-seconds and --layer-height must be positive")
    if args.ground_truth is not None:
        folder = Path(args.ground_truth).expanduser().absolute().parent
        if not folder.is_dir():
            raise InputError(f"--ground-truth: the folder {folder} does not exist")
    options = _options(args)
    if args.printer:
        return _follow_printer(args, mesh, options)
    return _by_itself(args, mesh, options)


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _announce(url: str) -> None:
    # One line on stdout that scripts (and the tests) wait for.
    print(f"virtual camera on {url}/ (snapshot {url}/snapshot, stream {url}/stream)", flush=True)


async def _by_itself(args: argparse.Namespace, mesh: Path, options: Any) -> int:
    from printforge.cli import load_cli_settings
    from printforge.hardware.camera.follow import ClockSource
    from printforge.hardware.camera.server import CameraServer
    from printforge.hardware.camera.virtual import VirtualCamera
    from printforge.hardware.camera.worker import RenderPool
    from printforge.runtime.errors import InputError

    settings = load_cli_settings(args)
    name = args.profile or "generic-220"
    if name not in settings.printer_profiles:
        known = ", ".join(sorted(settings.printer_profiles))
        raise InputError(f"--profile: unknown printer profile {name!r} (known: {known})")
    profile = settings.printer_profiles[name]
    pool = RenderPool()
    try:
        bed_center = (0.0, 0.0) if profile.origin_center else (profile.bed_x / 2, profile.bed_y / 2)
        part = await pool.describe(str(mesh), bed_center)
        source = ClockSource(
            mesh,
            part.top,
            part.center,
            part.half,
            layer_height=args.layer_height,
            layer_s=args.layer_seconds,
        )
        camera = VirtualCamera("virtual-camera", source, profile, pool, options=options)
        server = CameraServer(camera, options.host, options.port)
        await server.start()
        try:
            _announce(server.url)
            await _until_stopped()
        finally:
            await server.stop()
    finally:
        await pool.stop()
    print("printforge: virtual camera stopped", file=sys.stderr)
    return 0


async def _follow_printer(args: argparse.Namespace, mesh: Path, options: Any) -> int:
    from printforge.cli import load_cli_settings
    from printforge.models.job import JobState
    from printforge.models.request import PrintRequest
    from printforge.orchestrator.service import Orchestrator
    from printforge.runtime.errors import InputError

    camera = {"virtual": options.model_dump(mode="json")}
    with tempfile.TemporaryDirectory(prefix="printforge-vcam-") as scratch:
        # Its own data directory unless one is given: a server on the usual one keeps its
        # jobs, and this command's prints do not land in its job list.
        data_dir = getattr(args, "data_dir", None) or scratch
        args.data_dir = data_dir
        probe = load_cli_settings(args)
        if args.printer not in probe.printers:
            known = ", ".join(sorted(probe.printers))
            raise InputError(f"--printer: no printer named {args.printer!r} (configured: {known})")
        entry = probe.printers[args.printer]
        if entry.driver != "virtual" and not probe.mock:
            raise InputError(
                f"--printer {args.printer} is a {entry.driver} printer; a virtual camera follows"
                " a virtual one (driver virtual, or mock mode: PRINTFORGE_ENV=staging)"
            )
        merged = {**(entry.camera.model_dump(exclude_none=True) if entry.camera else {}), **camera}
        settings = load_cli_settings(
            args,
            sim_speed=args.sim_speed,
            printers={args.printer: {"camera": merged}},
        )
        settings.orchestrator.requeue_interrupted = False
        settings.orchestrator.wait_for_offline_printers = False
        async with Orchestrator(settings) as orch:
            camera_config = orch.printers.entry(args.printer).camera
            if camera_config is None or camera_config.snapshot_url is None:
                # The printer manager gives every virtual printer with a camera table one.
                raise InputError(f"--printer {args.printer}: no virtual camera was started")
            _announce(camera_config.snapshot_url.removesuffix("/snapshot"))
            stopper = asyncio.create_task(_until_stopped())
            try:
                for number in range(1, args.prints + 1):
                    request = PrintRequest(model_path=mesh, printer=args.printer)
                    job = await orch.submit(request)
                    waiter = asyncio.create_task(orch.wait(job.id))
                    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    if stopper.done():
                        waiter.cancel()
                        return 0
                    job = waiter.result()
                    state = "printed" if job.state is JobState.COMPLETED else job.state.value
                    print(f"print {number} of {args.prints}: {state} (job {job.id})", flush=True)
                    if job.state is not JobState.COMPLETED:
                        message = job.error.message if job.error else "no reason given"
                        print(f"printforge: {message}", file=sys.stderr, flush=True)
                        break
                    if orch.printers.entry(args.printer).bed_clear_required:
                        await orch.printers.confirm_bed_clear(args.printer)
                await stopper
            finally:
                stopper.cancel()
    print("printforge: virtual camera stopped", file=sys.stderr)
    return 0
