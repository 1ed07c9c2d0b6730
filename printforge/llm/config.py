"""The [llm] config section: providers, routing order, limits, budgets, prices, cache."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["CacheSettings", "LLMSettings", "ProviderSettings"]


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["openai", "anthropic", "openai_compatible", "offline"]
    model: str | None = None
    escalation_model: str | None = Field(
        None, description="larger model tried when the answer fails validation"
    )
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    timeout_s: float = Field(60.0, gt=0)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    enabled: bool = True


class CacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    ttl_s: int = Field(86400, ge=1)


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: list[str] = Field(default_factory=lambda: ["offline"])
    provider: dict[str, ProviderSettings] = Field(default_factory=dict)
    # USD per million tokens, by model name: {"gpt-4o-mini" = {input = 0.15, output = 0.6}}
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    budget_per_job_usd: float = Field(0.50, ge=0)
    budget_per_day_usd: float = Field(10.0, ge=0)
    repair_rounds: int = Field(3, ge=0, le=10)
    max_tokens: int = Field(2048, ge=64, description="answer length limit per call")
    # The router is the only retry loop; these shape it (per provider, per call).
    max_attempts: int = Field(2, ge=1, le=10, description="tries per provider before failing over")
    backoff_initial_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(8.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    max_retry_after_s: float = Field(
        20.0, ge=0, description="a longer Retry-After fails over instead of waiting"
    )
    max_rate_wait_s: float = Field(
        2.0, ge=0, description="wait at most this long for a local rate limit, else fail over"
    )
    breaker_failure_threshold: int = Field(3, ge=1)
    breaker_reset_s: float = Field(60.0, gt=0)
    spend_file: str | None = Field(
        "llm-spend.json", description="spend ledger under data_dir; empty to keep it in memory"
    )
    cache: CacheSettings = Field(default_factory=CacheSettings)
