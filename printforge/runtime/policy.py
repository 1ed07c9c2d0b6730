"""How one kind of call is guarded: timeout, retries, backoff, breaker.

Shared by the agents and the LLM providers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CallPolicy", "PolicyOverride"]


class CallPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(300.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=20)
    backoff_initial_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    backoff_multiplier: float = Field(2.0, ge=1)
    jitter: float = Field(0.5, ge=0, le=1, description="fraction of each delay randomised")
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_reset_s: float = Field(30.0, gt=0)
    slow_call_s: float = Field(30.0, gt=0, description="slower than this marks health degraded")


class PolicyOverride(BaseModel):
    """A partial CallPolicy: only the keys given replace the defaults."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1, le=20)
    backoff_initial_s: float | None = Field(None, ge=0)
    backoff_max_s: float | None = Field(None, ge=0)
    backoff_multiplier: float | None = Field(None, ge=1)
    jitter: float | None = Field(None, ge=0, le=1)
    breaker_failure_threshold: int | None = Field(None, ge=1)
    breaker_reset_s: float | None = Field(None, gt=0)
    slow_call_s: float | None = Field(None, gt=0)

    def apply(self, base: CallPolicy) -> CallPolicy:
        return base.model_copy(update=self.model_dump(exclude_none=True))
