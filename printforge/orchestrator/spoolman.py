"""A Spoolman server (https://github.com/Donkie/Spoolman) as the source of spools.

Only the documented REST API is used: `GET /api/v1/spool` (every spool, with its filament),
`GET /api/v1/spool/{id}`, `PATCH /api/v1/spool/{id}` (set `remaining_weight`, `archived`) and
`PUT /api/v1/spool/{id}/use` with `{"use_weight": grams}` (what a print took; Spoolman
subtracts it). Which spool a printer has loaded is kept by printforge, as Moonraker keeps its
"active spool" id: Spoolman has no notion of printers.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from printforge.models.spool import Spool, SpoolmanSettings
from printforge.runtime.errors import ConnectionLost, InputError

__all__ = ["SpoolmanClient", "spool_from_spoolman"]

log = logging.getLogger(__name__)


def spool_from_spoolman(data: dict[str, Any]) -> Spool:
    """One Spoolman spool object as a printforge Spool (grams, Spoolman's own names)."""
    filament = data.get("filament") or {}
    vendor = (filament.get("vendor") or {}).get("name")
    name = " ".join(str(p) for p in (vendor, filament.get("name")) if p) or None
    return Spool(
        id=int(data["id"]),
        material=str(filament.get("material") or "unknown"),
        name=name,
        initial_weight=data.get("initial_weight"),
        remaining_weight=max(0.0, float(data.get("remaining_weight") or 0.0)),
        used_weight=max(0.0, float(data.get("used_weight") or 0.0)),
        archived=bool(data.get("archived", False)),
        source="spoolman",
    )


class SpoolmanClient:
    def __init__(self, settings: SpoolmanSettings) -> None:
        assert settings.url is not None
        self.base = f"{settings.url}/api/v1"
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            raise RuntimeError("the Spoolman client is not started")
        url = f"{self.base}{path}"
        try:
            async with self._session.request(method, url, json=body) as resp:
                if resp.status == 404:
                    raise InputError(f"Spoolman has no {path.strip('/')}", code="not_found")
                if resp.status >= 400:
                    text = (await resp.text())[:200]
                    raise ConnectionLost(
                        f"Spoolman answered {resp.status} to {method} {path}: {text}"
                    )
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ConnectionLost(
                f"Spoolman at {self.base} is unreachable: {err or type(err).__name__}"
            ) from err

    async def spools(self) -> list[Spool]:
        data = await self._call("GET", "/spool")
        if not isinstance(data, list):
            raise ConnectionLost("Spoolman's /api/v1/spool did not answer a list")
        return [spool_from_spoolman(item) for item in data]

    async def spool(self, spool_id: int) -> Spool:
        return spool_from_spoolman(await self._call("GET", f"/spool/{int(spool_id)}"))

    async def use(self, spool_id: int, grams: float) -> Spool:
        data = await self._call(
            "PUT", f"/spool/{int(spool_id)}/use", {"use_weight": round(grams, 2)}
        )
        return spool_from_spoolman(data)

    async def update(self, spool_id: int, changes: dict[str, Any]) -> Spool:
        return spool_from_spoolman(await self._call("PATCH", f"/spool/{int(spool_id)}", changes))
