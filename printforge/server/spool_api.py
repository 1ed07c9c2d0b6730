"""Materials and spools (issue 15, item 4): printer.set_material, printer.load_spool and
spool.list / spool.add / spool.update.

The names follow Spoolman's spool (`remaining_weight`, `initial_weight`, grams) and Moonraker's
spoolman component, which keeps one "active spool" id per printer: here `printer.load_spool`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.models.spool import Spool
from printforge.server.auth import Role
from printforge.server.ownership import PRINTER
from printforge.server.rpc import CallContext, Endpoint, Forbidden, HandlerTable
from printforge.server.state import STATE_KEY
from printforge.server.views import printer_view

__all__ = ["register_spools"]


class MaterialParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    printer: str = Field(min_length=1, max_length=200)
    material: str = Field(min_length=1, max_length=100, description="a [materials.*] name")


class LoadSpoolParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    printer: str = Field(min_length=1, max_length=200)
    spool_id: int | None = Field(..., ge=1, description="null: take the spool off")


class SpoolListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archived: bool = Field(False, description="list archived spools too")


class SpoolAddParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    material: str = Field(min_length=1, max_length=100)
    remaining_weight: float = Field(ge=0, le=100_000, description="filament on it now, g")
    initial_weight: float | None = Field(None, ge=0, le=100_000, description="when new, g")
    name: str | None = Field(None, max_length=200)
    printer: str | None = Field(None, min_length=1, max_length=200, description="load it here")


class SpoolUpdateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spool_id: int = Field(ge=1)
    remaining_weight: float | None = Field(None, ge=0, le=100_000, description="weighed, g")
    material: str | None = Field(None, min_length=1, max_length=100)
    name: str | None = Field(None, max_length=200)
    archived: bool | None = None


def _spool(spool: Spool | None) -> dict[str, Any] | None:
    return spool.model_dump(mode="json") if spool is not None else None


def _printer(ctx: CallContext, name: str) -> dict[str, Any]:
    orch = ctx.app[STATE_KEY].orch
    view = printer_view(orch.printers.get(name).status())
    view["material"] = orch.printers.entry(name).material
    view["spool"] = _spool(orch.spools.loaded(name))
    return view


async def _handle_set_material(ctx: CallContext, p: MaterialParams) -> dict[str, Any]:
    await ctx.app[STATE_KEY].orch.spools.set_material(p.printer, p.material)
    return _printer(ctx, p.printer)


async def _handle_load_spool(ctx: CallContext, p: LoadSpoolParams) -> dict[str, Any]:
    await ctx.app[STATE_KEY].orch.spools.load(p.printer, p.spool_id)
    return _printer(ctx, p.printer)


async def _handle_list(ctx: CallContext, p: SpoolListParams) -> dict[str, Any]:
    spools = ctx.app[STATE_KEY].orch.spools
    return {
        "source": "spoolman" if spools.spoolman is not None else "printforge",
        "spools": [_spool(s) for s in spools.spools(archived=p.archived)],
    }


async def _handle_add(ctx: CallContext, p: SpoolAddParams) -> dict[str, Any]:
    if p.printer is not None and not ctx.principal.can(PRINTER):
        # Loading it there says what the printer holds, as printer.load_spool does.
        raise Forbidden(
            "spool.add with a printer needs the printer capability (admin keys have it);"
            " add the spool without one, and let whoever tends the printer load it"
        )
    spool = await ctx.app[STATE_KEY].orch.spools.add(
        material=p.material,
        remaining_weight=p.remaining_weight,
        initial_weight=p.initial_weight,
        name=p.name,
        printer=p.printer,
    )
    return _spool(spool) or {}


async def _handle_update(ctx: CallContext, p: SpoolUpdateParams) -> dict[str, Any]:
    spool = await ctx.app[STATE_KEY].orch.spools.update(
        p.spool_id,
        remaining_weight=p.remaining_weight,
        material=p.material,
        name=p.name,
        archived=p.archived,
    )
    return _spool(spool) or {}


def register_spools(t: HandlerTable) -> None:
    op = Role.OPERATOR
    for ep in (
        # What a printer holds decides what prints on it, at what temperatures: said by whoever
        # tends the printer (the printer capability), as a bed clear is.
        Endpoint("printer.set_material", _handle_set_material, MaterialParams, op,
                 "Say which material is loaded on a printer (takes off a spool of another)",
                 ("POST", "/api/printers/{printer}/material"), capability=PRINTER),
        Endpoint("printer.load_spool", _handle_load_spool, LoadSpoolParams, op,
                 "Load a spool on a printer (its material with it), or take it off (null)",
                 ("POST", "/api/printers/{printer}/spool"), capability=PRINTER),
        Endpoint("spool.list", _handle_list, SpoolListParams, summary="Spools and where they are",
                 http=("GET", "/api/spools")),
        Endpoint("spool.add", _handle_add, SpoolAddParams, op,
                 "Add a spool (not with Spoolman as the source)", ("POST", "/api/spools"), 201),
        Endpoint("spool.update", _handle_update, SpoolUpdateParams, op,
                 "Set a spool's remaining grams (weighed), material, name or archived",
                 ("POST", "/api/spools/{spool_id}/update")),
    ):  # fmt: skip
        t.register(ep)
