"""Health records: what each agent, provider and printer last did, in one shape."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

__all__ = ["HealthRecord", "HealthRegistry", "HealthState"]


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


_ORDER = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.UNHEALTHY: 2}


class HealthRecord(BaseModel):
    name: str
    component: str = "agent"
    state: HealthState = HealthState.HEALTHY
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    last_latency_s: float | None = None
    calls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    breaker: str | None = None
    detail: dict[str, object] = Field(default_factory=dict)


class HealthRegistry:
    """Every component's record, by `component/name`, updated by the runtime guard."""

    def __init__(self) -> None:
        self._records: dict[str, HealthRecord] = {}

    def get(self, name: str, component: str = "agent") -> HealthRecord:
        key = f"{component}/{name}"
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = HealthRecord(name=name, component=component)
        return record

    def put(self, record: HealthRecord) -> None:
        self._records[f"{record.component}/{record.name}"] = record

    def record_success(
        self, name: str, latency_s: float, *, component: str = "agent", slow_s: float | None = None
    ) -> HealthRecord:
        r = self.get(name, component)
        r.calls += 1
        r.consecutive_failures = 0
        r.last_latency_s = latency_s
        r.last_success_at = datetime.now(UTC)
        r.state = (
            HealthState.DEGRADED
            if slow_s is not None and latency_s > slow_s
            else HealthState.HEALTHY
        )
        return r

    def record_failure(
        self, name: str, error: str, *, component: str = "agent", unhealthy_after: int = 3
    ) -> HealthRecord:
        r = self.get(name, component)
        r.calls += 1
        r.failures += 1
        r.consecutive_failures += 1
        r.last_error = error
        r.last_error_at = datetime.now(UTC)
        r.state = (
            HealthState.UNHEALTHY
            if r.consecutive_failures >= unhealthy_after
            else HealthState.DEGRADED
        )
        return r

    def records(self) -> list[HealthRecord]:
        return sorted(self._records.values(), key=lambda r: (r.component, r.name))

    def overall(self) -> HealthState:
        worst = HealthState.HEALTHY
        for r in self._records.values():
            if _ORDER[r.state] > _ORDER[worst]:
                worst = r.state
        return worst
