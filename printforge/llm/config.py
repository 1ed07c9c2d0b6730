"""The [llm] config section: providers, routing order, limits, budgets, prices, cache."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["CacheSettings", "LLMSettings", "ProviderSettings", "redact_url"]

_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, for logs, errors and status output."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL for aiocache (redis://[:password@]host[:port][/db])."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (expected redis://[:password@]host[:port][/db])"
    if parts.scheme != "redis":
        # aiocache registers only the plain scheme: no rediss:// (TLS) and no unix sockets.
        return f"must start with redis:// (got {parts.scheme or 'no'} scheme)"
    if not parts.hostname:
        return "names no host (expected redis://[:password@]host[:port][/db])"
    if port == 0:
        return "has port 0"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"has database {db!r}; it must be a number, e.g. redis://host:6379/0"
    return None


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
    # hide_input: a rejected redis_url may carry a password; errors name the key, not the value.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    # A SecretStr because the URL may carry the Redis password: it is shown redacted everywhere.
    redis_url: SecretStr | None = None
    ttl_s: int = Field(86400, ge=1)
    key_prefix: str = Field(
        "printforge",
        description="start of every cache key; give each install sharing one Redis its own",
    )
    timeout_s: float = Field(
        1.0, gt=0, description="per cache operation; a slower cache is treated as down"
    )
    retry_s: float = Field(
        30.0, ge=0, description="after a cache failure, run without the cache this long"
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        problem = _redis_url_problem(value.get_secret_value())
        if problem is not None:
            # Never echo the URL itself: it may hold the password.
            raise ValueError(f"llm.cache.redis_url {problem}")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value):
            raise ValueError(
                "llm.cache.key_prefix must be 1-64 characters of letters, digits and _ . : -"
            )
        return value


class LLMSettings(BaseModel):
    # Keys and the Redis URL live in this tree: a validation error must not echo them.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

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
