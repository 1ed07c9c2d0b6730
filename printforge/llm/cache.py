"""The response cache: aiocache in memory by default, Redis when configured.

Keyed by provider, model, prompt and schema, so a changed schema or prompt never reuses an answer.
Only answers that passed validation are stored. Every key starts with `key_prefix`, so two
installs sharing one Redis keep apart.

The cache is an optimisation, never a dependency: when Redis fails (down, slow, wrong password)
the router runs without it for `retry_s`, logs that once, and tries again after. The Redis URL may
carry a password; only `redact_url` of it is ever shown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from printforge.llm.base import LLMRequest, LLMResponse
from printforge.llm.config import CacheSettings, redact_url
from printforge.llm.schema import schema_fingerprint
from printforge.runtime.errors import ConfigError
from printforge.runtime.health import HealthRegistry, HealthState

__all__ = ["ResponseCache", "cache_key"]

log = logging.getLogger(__name__)


def _printer_key(request: LLMRequest) -> list[float]:
    p = request.printer
    assert p is not None
    return [p.bed_x, p.bed_y, p.max_z, p.nozzle_diameter]


def cache_key(provider: str, model: str, request: LLMRequest) -> str:
    """The key without the install's prefix (`ResponseCache` adds `key_prefix:`)."""
    payload = json.dumps(
        {
            "p": provider,
            "m": model,
            "s": request.system,
            "msgs": [[m.role, m.content] for m in request.messages],
            "schema": schema_fingerprint(request.json_schema)[0],
            "t": request.temperature,
            "text": request.text,
            # What the answer was checked against: a design that fits one bed may not fit the
            # next, and the offline provider's answer depends on it.
            **({"printer": _printer_key(request)} if request.printer is not None else {}),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "llm:" + hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """Validated answers by key; a failing backend degrades to no cache, never to an error."""

    def __init__(
        self,
        settings: CacheSettings,
        *,
        health: HealthRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._health = health
        self._clock = clock
        self._cache: Any = None
        self._down_until: float | None = None
        self.last_error: str | None = None
        self.hits = 0
        self.misses = 0
        self.failures = 0
        if settings.enabled and settings.backend == "redis" and settings.redis_url is None:
            # Fail at startup, not at the first design.
            raise ConfigError("llm.cache.redis_url is required when backend = 'redis'")

    @property
    def url(self) -> str | None:
        """The Redis URL with its password masked (safe to print)."""
        url = self.settings.redis_url
        return redact_url(url.get_secret_value()) if url is not None else None

    def _scrub(self, text: str) -> str:
        url = self.settings.redis_url
        if url is None:
            return text
        secret = url.get_secret_value()
        password = urlsplit(secret).password
        text = text.replace(secret, redact_url(secret))
        for word in filter(None, {password, unquote(password or "")}):
            text = text.replace(word, "***")
        return text

    def preload(self) -> None:
        """Import the cache's client (aiocache, and redis-py with it): hundreds of ms, which
        the first design would otherwise spend on the event loop. Any thread."""
        if self.settings.enabled:
            import aiocache  # noqa: F401

    def _backend(self) -> Any:
        if self._cache is not None:
            return self._cache
        from aiocache import Cache

        prefix = self.settings.key_prefix
        if self.settings.backend != "redis":
            self._cache = Cache(Cache.MEMORY, namespace=f"{prefix}:")
            return self._cache
        if Cache.REDIS is None:  # aiocache leaves it unset when redis-py is not installed
            raise ConfigError(
                "llm.cache.backend = 'redis' needs the redis client:"
                " pip install 'printforge[redis]'"
            )
        assert self.settings.redis_url is not None
        # Built from the parts rather than Cache.from_url, which passes a %-escaped password
        # through still escaped and drops the ACL user name.
        parts = urlsplit(self.settings.redis_url.get_secret_value())
        pool: dict[str, Any] = {"socket_timeout": self.settings.timeout_s}
        if parts.username:
            pool["username"] = unquote(parts.username)
        db = parts.path.strip("/")
        self._cache = Cache(
            Cache.REDIS,
            endpoint=parts.hostname,
            port=parts.port or 6379,
            db=int(db) if db else 0,
            password=unquote(parts.password) if parts.password else None,
            namespace=prefix,  # RedisCache joins it with ':'
            timeout=self.settings.timeout_s,
            create_connection_timeout=self.settings.timeout_s,
            connection_pool_kwargs=pool,
        )
        return self._cache

    @property
    def state(self) -> str:
        """`off`, `up`, or `down` (running without the cache until the retry time)."""
        if not self.settings.enabled:
            return "off"
        if self._down_until is not None and self._clock() < self._down_until:
            return "down"
        return "up"

    def _usable(self) -> bool:
        return self.state == "up"

    def _on_error(self, op: str, err: Exception) -> None:
        self.failures += 1
        reason = self._scrub(f"{type(err).__name__}: {err}".rstrip(": "))
        was_down = self._down_until is not None
        self._down_until = self._clock() + self.settings.retry_s
        self.last_error = reason
        if self._health is not None:
            # Degraded, never unhealthy: every job still runs, only without reuse.
            record = self._health.get(self.settings.backend, "llm_cache")
            record.failures += 1
            record.consecutive_failures += 1
            record.last_error = reason
            record.state = HealthState.DEGRADED
            record.detail = {"url": self.url, "key_prefix": self.settings.key_prefix}
        if not was_down:
            # State changes only: a dead Redis must not log once per request.
            log.warning(
                "LLM cache %s failed (%s); running without the cache for %g s",
                op,
                reason,
                self.settings.retry_s,
            )

    def _on_ok(self) -> None:
        if self._health is not None and self.settings.backend == "redis":
            record = self._health.get(self.settings.backend, "llm_cache")
            record.consecutive_failures = 0
            record.state = HealthState.HEALTHY
            record.detail = {"url": self.url, "key_prefix": self.settings.key_prefix}
        if self._down_until is not None:
            log.warning("LLM cache is back (%s)", self.url or self.settings.backend)
            self._down_until = None
            self.last_error = None

    async def get(self, key: str) -> LLMResponse | None:
        if not self._usable():
            return None
        backend = self._backend()
        try:
            raw = await backend.get(key)
        except Exception as err:  # a cache outage must never fail a design
            self._on_error("read", err)
            return None
        self._on_ok()
        if raw is None:
            self.misses += 1
            return None
        try:
            found = LLMResponse.model_validate_json(raw)
        except ValueError as err:
            # Another version's entry under the same prefix: a miss, not a failure.
            log.info("ignoring an unreadable LLM cache entry: %s", type(err).__name__)
            self.misses += 1
            return None
        self.hits += 1
        return found.model_copy(update={"cached": True})

    async def put(self, key: str, response: LLMResponse) -> None:
        if not self._usable():
            return
        backend = self._backend()
        try:
            await backend.set(key, response.model_dump_json(), ttl=self.settings.ttl_s)
        except Exception as err:
            self._on_error("write", err)
            return
        self._on_ok()

    async def probe(self) -> str | None:
        """One read of a key nobody writes; None when the cache answers, else why not."""
        if not self.settings.enabled:
            return None
        try:
            await self._backend().get("probe")
        except ConfigError as err:
            return err.message
        except Exception as err:
            self._on_error("probe", err)
            return self.last_error
        self._on_ok()
        return None

    def describe(self) -> dict[str, Any]:
        """Status for `printforge providers` and health: never the password."""
        return {
            "enabled": self.settings.enabled,
            "backend": self.settings.backend,
            "url": self.url if self.settings.backend == "redis" else None,
            "key_prefix": self.settings.key_prefix,
            "ttl_s": self.settings.ttl_s,
            "state": self.state,
            "last_error": self.last_error,
            "hits": self.hits,
            "misses": self.misses,
            "failures": self.failures,
        }

    async def close(self) -> None:
        cache, self._cache = self._cache, None
        if cache is None:
            return
        client = getattr(cache, "client", None)
        try:
            if client is not None and hasattr(client, "aclose"):
                # redis-py >= 5.0.1 deprecates the close() that aiocache 0.12 calls.
                await client.aclose()
            else:
                await cache.close()
        except Exception as err:  # closing a dead connection must not fail shutdown
            log.info("closing the LLM cache: %s", self._scrub(type(err).__name__))
