"""Virtual cameras for the virtual printers of a process (mock mode, `driver = "virtual"`).

The owner of the printers (the orchestrator's printer manager) calls `attach` for each printer
it adds and `detach` when it removes one. A virtual printer whose config has a
`[printers.NAME.camera]` table, or every virtual printer when the rig is told so
(`virtual_cameras = true`), gets a virtual camera on a loopback port; `attach` returns the camera
config with that camera's URLs and pose filled in, which is what the rest of printforge then
reads, exactly as it would read a real camera's. A real printer's camera is left as configured.

One render worker serves all the cameras of the rig.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from printforge.hardware.base import PrinterDriver
from printforge.hardware.camera.config import CameraConfig, VirtualCameraOptions
from printforge.hardware.camera.follow import DriverSource
from printforge.hardware.camera.server import CameraServer
from printforge.hardware.camera.virtual import VirtualCamera
from printforge.hardware.camera.worker import RenderPool

__all__ = ["VirtualCameraRig"]

log = logging.getLogger(__name__)


class VirtualCameraRig:
    """Starts, reports and stops the virtual cameras of one process's printers.

    Args:
        mesh_for_job: the STL a job printed (None when it has none, e.g. a G-code job).
        every_virtual: give each virtual printer a camera, configured or not.
        truth_dir: where each camera writes its ground-truth log, `NAME.jsonl`, unless its
            options name a file; None writes none.
    """

    def __init__(
        self,
        mesh_for_job: Callable[[str], Path | None],
        *,
        every_virtual: bool = False,
        truth_dir: Path | None = None,
    ) -> None:
        self.mesh_for_job = mesh_for_job
        self.every_virtual = every_virtual
        self.truth_dir = truth_dir
        self.servers: dict[str, CameraServer] = {}
        self._pool: RenderPool | None = None

    async def attach(
        self, driver: PrinterDriver, camera: CameraConfig | None
    ) -> CameraConfig | None:
        """Start a virtual camera for `driver` if it should have one; the camera config the
        printer now has (URLs and pose of its virtual camera), else `camera` unchanged."""
        from printforge.hardware.virtual.driver import VirtualDriver

        if not isinstance(driver, VirtualDriver):
            if camera is not None and camera.virtual is not None:
                log.warning(
                    "printers.%s.camera.virtual is ignored: %s is a real printer here"
                    " (mock mode is off); its camera is %s",
                    driver.name,
                    driver.name,
                    "the configured URL" if camera.snapshot_url or camera.stream_url else "none",
                )
            return camera
        if camera is None and not self.every_virtual:
            return None
        if driver.name in self.servers:
            raise ValueError(f"printer {driver.name} already has a virtual camera")
        options = (camera.virtual if camera is not None else None) or VirtualCameraOptions()
        if options.ground_truth is None and self.truth_dir is not None:
            self.truth_dir.mkdir(parents=True, exist_ok=True)
            truth = self.truth_dir / f"{driver.name}.jsonl"
            options = options.model_copy(update={"ground_truth": str(truth)})
        if self._pool is None:
            self._pool = RenderPool()
        cam = VirtualCamera(
            driver.name,
            DriverSource(driver, self.mesh_for_job),
            driver.profile,
            self._pool,
            options=options,
            config=camera,
        )
        server = CameraServer(cam, options.host, options.port)
        await server.start()
        self.servers[driver.name] = server
        log.info("printer %s: virtual camera on %s", driver.name, server.url)
        pose = cam.pose
        base = camera.model_dump(exclude={"virtual"}) if camera is not None else {}
        return CameraConfig.model_validate(
            {
                **base,
                "snapshot_url": server.snapshot_url,
                "stream_url": server.stream_url,
                "position": pose.position,
                "look_at": pose.look_at,
                "fov_deg": pose.fov_deg,
                "resolution": (pose.width, pose.height),
                "virtual": options,
            }
        )

    async def detach(self, name: str) -> None:
        """Stop a printer's camera; with the last one, the render worker goes too."""
        server = self.servers.pop(name, None)
        try:
            if server is not None:
                await server.stop()
        finally:
            if not self.servers:
                pool, self._pool = self._pool, None
                if pool is not None:
                    await pool.stop()

    async def stop(self) -> None:
        errors: list[str] = []
        for name in reversed(list(self.servers)):
            try:
                await self.detach(name)
            except Exception as err:  # collect; the others still stop
                errors.append(f"{name}: {err}")
        if errors:
            log.warning("virtual cameras did not stop cleanly: %s", "; ".join(errors))
