"""Health per component: `/health/components` and `/health/components/{name}`.

One shape for every kind — agent, printer, store, broker, LLM provider — so a probe or a
person can ask about one thing by name:

    {"name", "component", "status", "last_check", "latency_s", "message", "detail"}

`status` is healthy, degraded or unhealthy, or `unknown` for an LLM provider nothing has
called yet (it may not even have a key: a call would tell, and a health check must not spend
money to find out). `last_check` is when the component last showed how it is (its last call,
its last status, the broker's last (dis)connection; for the store, now: it is queried on each
request). `latency_s` is what was measured — an agent or provider call, the store query — and
null where nothing is timed (a printer's or broker's connection state).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from printforge.models.printer import PrinterState, PrinterStatus
from printforge.runtime.errors import InputError
from printforge.runtime.health import HealthRecord, HealthState

if TYPE_CHECKING:
    from printforge.server.state import ServerState

__all__ = ["KINDS", "component_health", "find_component"]

KINDS = ("agent", "printer", "store", "broker", "llm")
_ORDER = {"healthy": 0, "unknown": 0, "degraded": 1, "unhealthy": 2}
_PRINTER_STATUS = {
    PrinterState.OFFLINE: "unhealthy",
    PrinterState.FAULTED: "unhealthy",
    PrinterState.CONNECTING: "degraded",
}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _last_check(record: HealthRecord) -> datetime | None:
    seen = [t for t in (record.last_success_at, record.last_error_at) if t is not None]
    return max(seen) if seen else None


def _view(
    name: str,
    component: str,
    status: str,
    last_check: datetime | None,
    latency_s: float | None,
    message: str | None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "component": component,
        "status": status,
        "last_check": _iso(last_check),
        "latency_s": round(latency_s, 6) if latency_s is not None else None,
        "message": message,
        "detail": detail or {},
    }


def _record_view(record: HealthRecord, *, timed: bool) -> dict[str, Any]:
    healthy = record.state is HealthState.HEALTHY
    message = None if healthy else record.last_error
    if record.calls == 0 and record.last_error is None:
        message = "no call yet"
    return _view(
        record.name,
        record.component,
        record.state.value,
        _last_check(record),
        record.last_latency_s if timed and record.calls else None,
        message,
        {
            "calls": record.calls,
            "failures": record.failures,
            "consecutive_failures": record.consecutive_failures,
            "last_error": record.last_error,
            "last_error_at": _iso(record.last_error_at),
            **({"breaker": record.breaker} if record.breaker else {}),
            **record.detail,
        },
    )


async def _agents(state: ServerState) -> list[dict[str, Any]]:
    orch = state.orch
    records = {r.name: r for r in orch.health.records() if r.component == "agent"}
    views = []
    for name in sorted(set(orch.agents) | set(records)):
        record = records.get(name) or HealthRecord(name=name)
        view = _record_view(record, timed=True)
        agent = orch.agents.get(name)
        own = await agent.health() if agent is not None else None
        if own is not None:
            # The agent's own check (research: its providers) can only make it look worse.
            if _ORDER[own.state.value] > _ORDER[view["status"]]:
                view["status"] = own.state.value
                view["message"] = own.last_error or "see detail"
            view["detail"]["own_check"] = {"state": own.state.value, **own.detail}
        views.append(view)
    return views


def _printer_view(status: PrinterStatus, record: HealthRecord | None) -> dict[str, Any]:
    health = _PRINTER_STATUS.get(status.state, "healthy")
    message = status.message
    if message is None and record is not None and record.state is not HealthState.HEALTHY:
        message = record.last_error
    if message is None and health != "healthy":
        message = f"printer is {status.state.value}"
    return _view(
        status.id,
        "printer",
        health,
        status.updated_at,
        None,
        message,
        {
            "state": status.state.value,
            "driver": status.driver,
            "job_id": status.job_id,
            "material": status.material,
            "profile": status.profile,
        },
    )


def _printers(state: ServerState) -> list[dict[str, Any]]:
    records = {r.name: r for r in state.orch.health.records() if r.component == "printer"}
    return [
        _printer_view(s, records.get(s.id))
        for s in sorted(state.orch.printers.statuses(), key=lambda s: s.id)
    ]


async def _store(state: ServerState) -> dict[str, Any]:
    store = state.orch.store
    started = time.perf_counter()
    try:
        counts = await store.counts()
    except Exception as err:  # a closed or broken store is the answer, not a 500
        latency = time.perf_counter() - started
        return _view(
            "store",
            "store",
            "unhealthy",
            datetime.now(UTC),
            latency,
            f"{type(err).__name__}: {err}",
            {"path": str(store.path)},
        )
    latency = time.perf_counter() - started
    total = sum(counts.values())
    return _view(
        "store",
        "store",
        "healthy",
        datetime.now(UTC),
        latency,
        f"{total} job(s)",
        {"path": str(store.path), "kind": store.dialect, "jobs": counts},
    )


def _brokers(state: ServerState) -> list[dict[str, Any]]:
    return [
        _record_view(r, timed=False) for r in state.orch.health.records() if r.component == "broker"
    ]


def _providers(state: ServerState) -> list[dict[str, Any]]:
    records = {r.name: r for r in state.orch.health.records() if r.component == "llm"}
    llm = state.settings.llm
    views = []
    for name in dict.fromkeys([*llm.providers, *records]):
        record = records.get(name)
        kind = llm.provider[name].kind if name in llm.provider else None
        if record is not None and record.calls:
            view = _record_view(record, timed=True)
        elif kind == "offline":
            # Built in, no network, no key: it answers whenever it is asked.
            view = _view(name, "llm", "healthy", None, None, "built in; no call yet")
        else:
            view = _view(name, "llm", "unknown", None, None, "no call yet")
        view["detail"].update(kind=kind, in_order=name in llm.providers)
        views.append(view)
    return views


async def component_health(state: ServerState) -> list[dict[str, Any]]:
    """Every component, in KINDS order."""
    return [
        *await _agents(state),
        *_printers(state),
        await _store(state),
        *_brokers(state),
        *_providers(state),
    ]


async def find_component(state: ServerState, name: str, kind: str | None = None) -> dict[str, Any]:
    """One component by name (and kind, where a name is used twice); InputError otherwise."""
    if kind is not None and kind not in KINDS:
        raise InputError(
            f"unknown component kind {kind!r} (one of {', '.join(KINDS)})", code="not_found"
        )
    found = [
        v
        for v in await component_health(state)
        if v["name"] == name and (kind is None or v["component"] == kind)
    ]
    if not found:
        raise InputError(f"no component named {name!r}", code="not_found")
    if len(found) > 1:
        # An agent and a printer may share a name ("printer"): ask by kind, never guess.
        paths = ", ".join(f"/health/components/{v['component']}/{name}" for v in found)
        raise InputError(f"{name!r} names {len(found)} components; ask for one: {paths}")
    return found[0]
