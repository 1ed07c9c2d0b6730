"""`job.snapshots` and the pictures a watched print leaves (issue 17): the snapshot taken at
each layer change, the diagnosis of a detected failure (the frame beside the twin), and the
timelapse (an artifact, `/api/jobs/ID/artifacts/timelapse`).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from printforge.orchestrator.watch import list_snapshots
from printforge.runtime.errors import InputError
from printforge.server.rpc import CallContext, Endpoint, HandlerTable
from printforge.server.state import STATE_KEY
from printforge.server.views import open_servable

__all__ = ["register_vision", "register_vision_routes"]

# Only names the watch writes: never a path a caller makes up.
_PICTURE = re.compile(r"^(snapshots/layer-\d{4}\.jpg|diagnosis/layer-\d{4}\.png)$")


class SnapshotsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    limit: int = Field(500, ge=1, le=10_000, description="the newest this many")


async def _handle_snapshots(ctx: CallContext, p: SnapshotsParams) -> dict[str, Any]:
    state = ctx.app[STATE_KEY]
    job = await state.orch.get(p.job_id)
    folder = state.orch.job_dir(job.id)
    shots = list_snapshots(folder)[-p.limit :]
    for shot in shots:
        shot["url"] = f"/api/jobs/{job.id}/pictures/{shot['file']}"
    diagnosis = dict(job.report.get("vision", {}).get("diagnosis") or {})
    if diagnosis.get("picture"):
        diagnosis["url"] = f"/api/jobs/{job.id}/pictures/{diagnosis['picture']}"
    return {
        "job_id": job.id,
        "snapshots": shots,
        "last": shots[-1] if shots else None,
        "diagnosis": diagnosis or None,
        "timelapse": f"/api/jobs/{job.id}/artifacts/timelapse"
        if (folder / "timelapse.mp4").is_file()
        else None,
    }


async def _handle_picture(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    name = request.match_info["name"]
    if not _PICTURE.match(name):
        raise InputError(f"no picture named {name!r}", code="not_found")
    job = await state.orch.get(request.match_info["job_id"])
    path = state.orch.job_dir(job.id) / name
    missing = InputError(f"job {job.id} has no {name}", code="not_found")
    if path.resolve() != path.absolute():
        raise missing  # a symlink on the way (the job's folder, or snapshots/): never followed
    f = open_servable(path, missing)
    kind = "image/jpeg" if name.endswith(".jpg") else "image/png"
    return web.Response(body=f, headers={"Content-Type": kind, "Cache-Control": "no-cache"})


def register_vision(table: HandlerTable) -> None:
    table.register(
        Endpoint(
            "job.snapshots",
            _handle_snapshots,
            SnapshotsParams,
            summary="A job's snapshots (one per layer change), its diagnosis and timelapse",
            http=("GET", "/api/jobs/{job_id}/snapshots"),
            result_example={
                "job_id": "3f2a9c0b1d4e",
                "snapshots": [
                    {
                        "layer": 12,
                        "file": "snapshots/layer-0012.jpg",
                        "bytes": 41233,
                        "url": "/api/jobs/3f2a9c0b1d4e/pictures/snapshots/layer-0012.jpg",
                    }
                ],
                "last": None,
                "diagnosis": None,
                "timelapse": None,
            },
        )
    )


def register_vision_routes(app: web.Application) -> None:
    app.router.add_get("/api/jobs/{job_id}/pictures/{name:.+}", _handle_picture)
