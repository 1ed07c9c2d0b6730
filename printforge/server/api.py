"""The API's methods, registered once in the handler table (websocket, /api/rpc and REST)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from printforge.models.job import JobState
from printforge.models.request import PrintRequest, SliceOverrides, request_text_problem
from printforge.runtime.errors import InputError, InsufficientStorage
from printforge.runtime.system import data_dir_usage, disk_full, process_usage
from printforge.server.api_objects import register_object_endpoints
from printforge.server.auth import CAPABILITIES, Role
from printforge.server.ownership import PRINTER, printer_job, runs_own_job
from printforge.server.ownership import check_may_cancel as _check_may_cancel
from printforge.server.rpc import CallContext, Endpoint, HandlerTable, NoParams
from printforge.server.state import STATE_KEY, ServerState
from printforge.server.views import job_view, printer_view

__all__ = ["UPLOAD_NAME", "build_table", "check_disk"]

UPLOAD_NAME = re.compile(r"^[0-9a-f]{64}\.(stl|3mf|obj|gcode)$")


class SubmitParams(BaseModel):
    """Exactly one of `request` (a sentence) or `upload` (a name returned by POST /api/uploads)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    request: str | None = None
    upload: str | None = Field(None, description="<sha256>.<stl|3mf|obj|gcode> from /api/uploads")
    printer: str | None = Field(None, max_length=200)
    material: str | None = Field(None, max_length=100)
    copies: int = Field(1, ge=1, le=100)
    priority: int = Field(0, ge=-100, le=100)
    slice: SliceOverrides | None = None
    print_: bool = Field(True, alias="print", description="false: stop after slicing")
    providers: list[str] | None = Field(
        None, max_length=10, description="LLM provider order for research, from [llm.provider]"
    )
    model: str | None = Field(None, max_length=200, description="LLM model of the first provider")
    tags: list[str] = Field(
        default_factory=list, max_length=20, description="the printer must have every one"
    )
    nozzle_diameter: float | None = Field(None, gt=0, le=2.0, description="the printer's, mm")
    not_before: datetime | None = Field(
        None, description="not dispatched before this time (ISO 8601 with a zone)"
    )

    @field_validator("request")
    @classmethod
    def _usable_request(cls, text: str | None) -> str | None:
        # The same sentence as the command line's ("the request is empty"), not pydantic's.
        problem = None if text is None else request_text_problem(text)
        if problem is not None:
            raise ValueError(problem)
        return text


class JobIdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)


class AnswerParams(BaseModel):
    """The answer to the question of a job in state needs_input."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=2000)


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: JobState | None = None
    limit: int = Field(100, ge=1, le=1000)


class PrinterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    printer: str = Field(min_length=1, max_length=200)


class SubscribeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: Literal["all", "own", "none"] | list[str] = "all"
    printers: bool = True


class CreateKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "operator", "admin"] = "operator"
    capabilities: list[Literal["printer"]] = Field(
        default_factory=list,
        max_length=len(CAPABILITIES),
        description="printer: may pause, resume, cancel and clear any printer (operator keys)",
    )


class KeyIdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str = Field(min_length=1, max_length=64)


def _state(ctx: CallContext) -> ServerState:
    return ctx.app[STATE_KEY]


def _statuses(state: ServerState) -> dict[str, Any]:
    return {s.id: s for s in state.orch.printers.statuses()}


def _check_material_loaded(printers: Any, printer: str | None, material: str) -> None:
    """Refuse now what could never print: the scheduler only hands a job to a printer with its
    material loaded, so such a job would wait for ever beside an idle printer."""
    names = [printer] if printer is not None else printers.names()
    loaded = {name: printers.entry(name).material for name in names}
    if any(m.casefold() == material.casefold() for m in loaded.values()):
        return
    if printer is not None:
        raise InputError(
            f"printer {printer} has {loaded[printer]} loaded, not {material}: leave out"
            f' "material" or "printer", or load {material} and set it in [printers.{printer}]'
        )
    if names:
        raise InputError(
            f"no printer has {material} loaded (loaded: {', '.join(sorted(set(loaded.values())))});"
            f' load it and set material = "{material}" in a printer\'s [printers.NAME] table,'
            ' or leave out "material"'
        )


def check_disk(state: ServerState) -> None:
    """Refuse work that needs disk while the data directory's disk is below the floor."""
    floor = state.settings.server.min_free_bytes
    free = data_dir_usage(state.settings.data_dir)["free_bytes"]
    if free < floor:
        raise InsufficientStorage(
            f"only {free // 2**20} MiB free on the disk of the data directory, below"
            f" server.min_free_bytes ({floor // 2**20} MiB): free some space and try again"
        )


async def _handle_submit(ctx: CallContext, p: SubmitParams) -> dict[str, Any]:
    state = _state(ctx)
    check_disk(state)
    if (p.request is None) == (p.upload is None):
        raise InputError('give exactly one of "request" (a sentence) or "upload"')
    source: dict[str, Any] = {"text": p.request}
    if p.upload is not None:
        if not UPLOAD_NAME.match(p.upload):
            raise InputError(
                f"upload {p.upload!r} is not an upload name (POST /api/uploads returns one)"
            )
        path = state.uploads_dir / p.upload
        if not path.is_file():
            raise InputError(f"no upload named {p.upload!r}", code="not_found")
        key = "gcode_path" if path.suffix == ".gcode" else "model_path"
        source = {key: path}
    if p.material is not None and state.settings.material_key(p.material) is None:
        known = ", ".join(sorted(state.settings.materials)) or "none"
        raise InputError(f"unknown material {p.material!r} (known: {known})")
    if p.printer is not None:
        state.orch.printers.get(p.printer)
    if p.material is not None and p.print_:
        _check_material_loaded(state.orch.printers, p.printer, p.material)
    if p.providers is not None:
        # Only what the server's operator configured (with its keys and budgets) can be chosen.
        known = {*state.settings.llm.provider, "offline"}
        unknown = [name for name in p.providers if name not in known]
        if unknown or not p.providers:
            raise InputError(
                f"unknown LLM provider {', '.join(map(repr, unknown)) or '(none given)'}"
                f" (configured: {', '.join(sorted(known))})"
            )
    try:
        request = PrintRequest(
            **source,
            printer=p.printer,
            material=p.material,
            copies=p.copies,
            priority=p.priority,
            slice=p.slice or SliceOverrides(),
            print=p.print_,
            providers=p.providers,
            llm_model=p.model,
            tags=p.tags,
            nozzle_diameter=p.nozzle_diameter,
            not_before=p.not_before,
        )
    except ValueError as err:
        raise InputError(f"invalid request: {err}") from None
    try:
        job = await state.orch.submit(request, submitted_by=ctx.principal.key_id)
    except Exception as err:
        if disk_full(err):
            raise InsufficientStorage(
                "no space left on the disk of the data directory: free some space and try again"
            ) from err
        raise
    ids = job.copies or [job.id]
    if ctx.client is not None:
        ctx.client.own(ids)
    return {"job_id": job.id, "job_ids": ids, "state": job.state.value}


async def _handle_get(ctx: CallContext, p: JobIdParams) -> dict[str, Any]:
    state = _state(ctx)
    job = await state.orch.get(p.job_id)
    return job_view(job, state.orch.job_dir(job.id), _statuses(state), state.orch.wait_reason(job))


async def _handle_list(ctx: CallContext, p: ListParams) -> dict[str, Any]:
    state = _state(ctx)
    jobs = await state.orch.list_jobs(p.state, p.limit)
    statuses = _statuses(state)
    return {
        "jobs": [
            job_view(j, state.orch.job_dir(j.id), statuses, state.orch.wait_reason(j)) for j in jobs
        ]
    }


async def _handle_cancel(ctx: CallContext, p: JobIdParams) -> dict[str, Any]:
    state = _state(ctx)
    await _check_may_cancel(ctx, p.job_id)
    job = await state.orch.cancel(p.job_id)
    return job_view(job, state.orch.job_dir(job.id), _statuses(state))


async def _handle_answer(ctx: CallContext, p: AnswerParams) -> dict[str, Any]:
    state = _state(ctx)
    await _check_may_cancel(ctx, p.job_id, "answer")
    job = await state.orch.answer(p.job_id, p.text)
    return job_view(job, state.orch.job_dir(job.id), _statuses(state))


async def _handle_printers(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    state = _state(ctx)
    out = []
    for status in state.orch.printers.statuses():
        view = printer_view(status)
        entry = state.orch.printers.entry(status.id)
        view["bed_clear_required"] = entry.bed_clear_required
        view["reserved_by"] = state.orch.printers.reserved_by(status.id)
        view["tags"] = entry.tags
        view["material"] = entry.material
        spool = state.orch.spools.loaded(status.id)
        view["spool"] = spool.model_dump(mode="json") if spool is not None else None
        out.append(view)
    return {"printers": out}


async def _printer_action(ctx: CallContext, p: PrinterParams, action: str) -> dict[str, Any]:
    state = _state(ctx)
    driver = state.orch.printers.get(p.printer)
    if action == "pause":
        await driver.pause()
    elif action == "resume":
        await driver.resume()
    elif action == "cancel":
        # Cancelling the job (not just the stream) keeps the store truthful about why it ended.
        job_id = printer_job(ctx, p.printer)
        if job_id:
            if not ctx.principal.can(PRINTER):
                # Admitted as the owner of the job it ran when the call came: still its own?
                await _check_may_cancel(ctx, job_id)
            await state.orch.cancel(job_id)
        else:
            await driver.cancel()
    elif action == "confirm_bed_clear":
        await state.orch.printers.confirm_bed_clear(p.printer)
    return printer_view(state.orch.printers.get(p.printer).status())


async def _handle_pause(ctx: CallContext, p: PrinterParams) -> dict[str, Any]:
    return await _printer_action(ctx, p, "pause")


async def _handle_resume(ctx: CallContext, p: PrinterParams) -> dict[str, Any]:
    return await _printer_action(ctx, p, "resume")


async def _handle_printer_cancel(ctx: CallContext, p: PrinterParams) -> dict[str, Any]:
    return await _printer_action(ctx, p, "cancel")


async def _handle_bed_clear(ctx: CallContext, p: PrinterParams) -> dict[str, Any]:
    return await _printer_action(ctx, p, "confirm_bed_clear")


async def _handle_health(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    state = _state(ctx)
    report = await state.orch.health_report()
    report["server"] = {
        "websocket_clients": len(state.broadcaster.clients) if state.broadcaster else 0,
        "ready": state.ready,
    }
    report["system"] = {
        "data_dir": data_dir_usage(state.settings.data_dir),
        "process": process_usage(),
    }
    return report


async def _handle_subscribe(ctx: CallContext, p: SubscribeParams) -> dict[str, Any]:
    if ctx.client is None:
        raise InputError("events.subscribe is only meaningful on the websocket")
    ctx.client.subscribe(p.jobs, p.printers)
    return {"jobs": p.jobs, "printers": p.printers}


async def _handle_info(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    from printforge import __version__

    state = _state(ctx)
    pr = ctx.principal
    return {
        "version": __version__,
        "mock": state.settings.mock,
        "printers": state.orch.printers.names(),
        "materials": sorted(state.settings.materials),
        "default_material": state.settings.default_material,
        "role": pr.role.name.lower(),
        "key_name": pr.name,
        "capabilities": _capabilities(pr),
    }


async def _handle_whoami(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    pr = ctx.principal
    return {
        "key_id": pr.key_id,
        "name": pr.name,
        "role": pr.role.name.lower(),
        "capabilities": _capabilities(pr),
    }


def _capabilities(pr: Any) -> list[str]:
    """What the key may do beyond its role (an admin: everything), so a client shows the right
    controls."""
    return [cap for cap in CAPABILITIES if pr.can(cap)]


async def _handle_key_create(ctx: CallContext, p: CreateKeyParams) -> dict[str, Any]:
    keys = _state(ctx).keys
    key = keys.create(p.name, Role.parse(p.role), tuple(p.capabilities))
    return {
        "key": key,
        "key_id": key.split("_", 2)[1],
        "name": p.name,
        "role": p.role,
        "capabilities": sorted(set(p.capabilities)),
    }


async def _handle_key_list(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    return {"keys": [r.public() for r in _state(ctx).keys.records()]}


async def _handle_key_revoke(ctx: CallContext, p: KeyIdParams) -> dict[str, Any]:
    state = _state(ctx)
    state.keys.revoke(p.key_id)
    if state.broadcaster is not None:
        state.broadcaster.revoke(p.key_id)
    return {"revoked": p.key_id}


# Who may move a printer without the printer capability: the owner of the print on it.
_OWN_PRINT = "the printer running a job this key submitted"

_JOB_EXAMPLE = {"job_id": "3f2a9c0b1d4e", "job_ids": ["3f2a9c0b1d4e"], "state": "queued"}


def build_table() -> HandlerTable:
    t = HandlerTable()
    op, admin = Role.OPERATOR, Role.ADMIN
    for ep in (
        Endpoint(
            "job.submit",
            _handle_submit,
            SubmitParams,
            op,
            "Submit a request or an upload",
            ("POST", "/api/jobs"),
            202,
            _JOB_EXAMPLE,
        ),
        Endpoint(
            "job.get",
            _handle_get,
            JobIdParams,
            summary="One job",
            http=("GET", "/api/jobs/{job_id}"),
        ),
        Endpoint(
            "job.list",
            _handle_list,
            ListParams,
            summary="Jobs, newest first",
            http=("GET", "/api/jobs"),
        ),
        Endpoint(
            "job.cancel",
            _handle_cancel,
            JobIdParams,
            op,
            "Cancel a job",
            ("POST", "/api/jobs/{job_id}/cancel"),
        ),
        Endpoint(
            "job.answer",
            _handle_answer,
            AnswerParams,
            op,
            "Answer the question of a job in state needs_input; the job runs again",
            ("POST", "/api/jobs/{job_id}/answer"),
        ),
        Endpoint(
            "printer.list",
            _handle_printers,
            summary="Printers and their live status",
            http=("GET", "/api/printers"),
        ),
        Endpoint(
            "printer.pause",
            _handle_pause,
            PrinterParams,
            op,
            "Pause the current print",
            ("POST", "/api/printers/{printer}/pause"),
            capability=PRINTER,
            exempt=runs_own_job,
            exempt_doc=_OWN_PRINT,
        ),
        Endpoint(
            "printer.resume",
            _handle_resume,
            PrinterParams,
            op,
            "Resume a paused print",
            ("POST", "/api/printers/{printer}/resume"),
            capability=PRINTER,
            exempt=runs_own_job,
            exempt_doc=_OWN_PRINT,
        ),
        Endpoint(
            "printer.cancel",
            _handle_printer_cancel,
            PrinterParams,
            op,
            "Cancel the printer's current job",
            ("POST", "/api/printers/{printer}/cancel"),
            capability=PRINTER,
            exempt=runs_own_job,
            exempt_doc=_OWN_PRINT,
        ),
        Endpoint(
            "printer.confirm_bed_clear",
            _handle_bed_clear,
            PrinterParams,
            op,
            "Confirm the bed is clear",
            ("POST", "/api/printers/{printer}/confirm_bed_clear"),
            capability=PRINTER,
        ),
        Endpoint(
            "health.get",
            _handle_health,
            summary="Health of agents, providers, printers, store",
            http=("GET", "/api/health"),
        ),
        Endpoint(
            "events.subscribe",
            _handle_subscribe,
            SubscribeParams,
            summary="Choose which notifications this websocket receives",
        ),
        Endpoint(
            "server.info",
            _handle_info,
            summary="Version, printers, materials and the caller's role",
            http=("GET", "/api/info"),
        ),
        Endpoint(
            "auth.whoami",
            _handle_whoami,
            summary="The calling key's id, name and role",
            http=("GET", "/api/auth/whoami"),
        ),
        Endpoint(
            "auth.create_key",
            _handle_key_create,
            CreateKeyParams,
            admin,
            "Create an API key (shown once)",
            ("POST", "/api/auth/keys"),
            201,
        ),
        Endpoint(
            "auth.list_keys",
            _handle_key_list,
            role=admin,
            summary="API keys (no secrets)",
            http=("GET", "/api/auth/keys"),
        ),
        Endpoint(
            "auth.revoke_key",
            _handle_key_revoke,
            KeyIdParams,
            admin,
            "Revoke an API key",
            ("POST", "/api/auth/keys/{key_id}/revoke"),
        ),
    ):
        t.register(ep)
    register_object_endpoints(t)
    from printforge.server.vision_api import register_vision

    register_vision(t)
    # Notifications' dead letters (issue 15) live in their own module.
    from printforge.server.notify_api import register_notify
    from printforge.server.queue_api import register_queue
    from printforge.server.spool_api import register_spools

    register_notify(t)
    register_queue(t)
    register_spools(t)
    # The dashboard's console and layer view (issue 15).
    from printforge.server.console_api import register_console
    from printforge.server.layer_api import register_layers

    register_console(t)
    register_layers(t)
    return t
