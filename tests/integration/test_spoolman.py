"""Issue 15, item 4: Spoolman as the source of spools, and a cancelled print charged by its
progress, with the orchestrator, its SQLite store and a virtual printer all real.

`FakeSpoolman` is a small aiohttp server speaking the part of Spoolman's documented REST API
printforge uses: `GET /api/v1/spool`, `GET|PATCH /api/v1/spool/{id}` and
`PUT /api/v1/spool/{id}/use` with `{"use_weight": grams}`, returning spool objects of
Spoolman's shape (a nested `filament` with its `vendor`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from printforge.models.event import JobEvent
from printforge.models.job import JobState, StageName
from printforge.models.request import PrintRequest
from printforge.orchestrator.service import Orchestrator
from printforge.runtime.errors import InputError
from printforge.settings import Settings, load_settings


def _spool(spool_id: int, material: str, remaining: float) -> dict[str, Any]:
    return {
        "id": spool_id,
        "registered": "2026-11-02T10:00:00Z",
        "first_used": None,
        "last_used": None,
        "filament": {
            "id": 100 + spool_id,
            "registered": "2026-11-02T09:58:00Z",
            "name": f"Galaxy {material}",
            "vendor": {"id": 1, "registered": "2026-11-02T09:57:00Z", "name": "Prusament"},
            "material": material,
            "density": 1.24,
            "diameter": 1.75,
            "weight": 1000.0,
            "spool_weight": 200.0,
        },
        "initial_weight": 1000.0,
        "remaining_weight": remaining,
        "used_weight": 1000.0 - remaining,
        "archived": False,
        "extra": {},
    }


class FakeSpoolman:
    """Spoolman's spool endpoints; the first `fail_use` uses are answered 503."""

    def __init__(self, fail_use: int = 0) -> None:
        self.spools = {7: _spool(7, "PLA", 812.5), 8: _spool(8, "PETG", 300.0)}
        self.fail_use = fail_use
        self.uses: list[float] = []
        self.patches: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_get("/api/v1/spool", self._list)
        app.router.add_get("/api/v1/spool/{id}", self._get)
        app.router.add_patch("/api/v1/spool/{id}", self._patch)
        app.router.add_put("/api/v1/spool/{id}/use", self._use)
        self.runner = web.AppRunner(app)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def _find(self, request: web.Request) -> dict[str, Any]:
        spool = self.spools.get(int(request.match_info["id"]))
        if spool is None:
            raise web.HTTPNotFound(text='{"message": "No spool with ID found."}')
        return spool

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.spools.values()))

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self._find(request))

    async def _patch(self, request: web.Request) -> web.Response:
        spool = self._find(request)
        body = await request.json()
        self.patches.append(body)
        spool.update(body)
        spool["used_weight"] = spool["initial_weight"] - spool["remaining_weight"]
        return web.json_response(spool)

    async def _use(self, request: web.Request) -> web.Response:
        spool = self._find(request)
        if self.fail_use:
            self.fail_use -= 1
            return web.json_response({"message": "database is locked"}, status=503)
        grams = float((await request.json())["use_weight"])
        self.uses.append(grams)
        spool["remaining_weight"] -= grams
        spool["used_weight"] += grams
        return web.json_response(spool)


@pytest_asyncio.fixture
async def spoolman() -> AsyncIterator[FakeSpoolman]:
    server = FakeSpoolman(fail_use=1)
    await server.start()
    yield server
    await server.runner.cleanup()


def _settings(tmp_path: Path, sim_speed: float, **extra: Any) -> Settings:
    return load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "sim_speed": sim_speed,
            "default_printer": "mk3",
            "printers": {"mk3": {"driver": "virtual", "profile": "generic-220"}},
            **extra,
        }
    )


@pytest.mark.asyncio
async def test_spoolman_spools_are_loaded_charged_and_resent_after_a_failure(
    tmp_path: Path, spoolman: FakeSpoolman
) -> None:
    settings = _settings(
        tmp_path, 5000.0, spoolman={"url": spoolman.url + "/", "refresh_s": 3600.0}
    )
    async with Orchestrator(settings) as orch:
        tracker = orch.spools
        listed = tracker.spools()
        assert [(s.id, s.material, s.source) for s in listed] == [
            (7, "PLA", "spoolman"),
            (8, "PETG", "spoolman"),
        ]
        assert listed[0].name == "Prusament Galaxy PLA"
        # Loading a spool loads its material on the printer.
        await tracker.load("mk3", 8)
        assert orch.printers.entry("mk3").material == "PETG"
        await tracker.load("mk3", 7)
        assert orch.printers.entry("mk3").material == "PLA"
        with pytest.raises(InputError, match="add the spool there"):
            await tracker.add(material="PLA", remaining_weight=1000.0)

        job = await orch.wait((await orch.submit(PrintRequest(text="a 20 mm cube"))).id, 120)
        assert job.state is JobState.COMPLETED, job.error
        assert job.gcode is not None
        needed = round(job.gcode.filament_g, 2)
        await tracker.settle()
        # Spoolman answered 503: nothing reached it, but the grams are off the spool here.
        assert spoolman.uses == []
        spool = tracker.loaded("mk3")
        assert spool is not None and spool.remaining_weight == pytest.approx(812.5 - needed)

        await tracker.refresh()  # sends what it had not had, then reads the spools again
        assert spoolman.uses == [pytest.approx(needed)]
        spool = tracker.loaded("mk3")
        assert spool is not None and spool.remaining_weight == pytest.approx(812.5 - needed)
        await tracker.refresh()
        assert len(spoolman.uses) == 1  # sent once

        weighed = await tracker.update(7, remaining_weight=640.0)
        assert spoolman.patches == [{"remaining_weight": 640.0}]
        assert weighed.remaining_weight == 640.0 and weighed.printer == "mk3"

    # Restarted: the loaded spool is remembered; Spoolman still has the grams.
    async with Orchestrator(settings) as orch:
        spool = orch.spools.loaded("mk3")
        assert spool is not None and (spool.id, spool.remaining_weight) == (7, 640.0)


@pytest.mark.asyncio
async def test_a_cancelled_print_is_charged_by_its_progress(tmp_path: Path) -> None:
    # Slow enough that the print is cancelled part-way: a 20 mm cube prints for seconds.
    async with Orchestrator(_settings(tmp_path, 100.0)) as orch:
        spool = await orch.spools.add(material="PLA", remaining_weight=900.0, printer="mk3")
        sub = orch.bus.subscribe(maxsize=1000)
        job = await orch.submit(PrintRequest(text="a 20 mm cube"))
        try:
            async with asyncio.timeout(120):
                async for event in sub:
                    if (
                        isinstance(event, JobEvent)
                        and event.job_id == job.id
                        and event.kind == "stage.progress"
                        and event.stage is StageName.PRINTER
                        and (event.progress or 0.0) >= 0.2
                    ):
                        break
        finally:
            sub.close()
        cancelled = await orch.cancel(job.id)
        assert cancelled.state is JobState.CANCELLED
        assert cancelled.gcode is not None
        await orch.spools.settle()
        charged = orch.spools.get(spool.id)
        needed = cancelled.gcode.filament_g
        assert 0.15 * needed < charged.used_weight < needed
        assert charged.remaining_weight == pytest.approx(900.0 - charged.used_weight)
        async with orch.store.db.execute(
            "SELECT grams, printer FROM spool_usage WHERE job_id = ?", (job.id,)
        ) as cur:
            rows = await cur.fetchall()
        assert rows == [(pytest.approx(charged.used_weight), "mk3")]
