"""The response cache: aiocache in memory by default, Redis when configured.

Keyed by provider, model, prompt and schema, so a changed schema or prompt never reuses an answer.
Only answers that passed validation are stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from printforge.llm.base import LLMRequest, LLMResponse
from printforge.llm.config import CacheSettings
from printforge.llm.schema import schema_fingerprint
from printforge.runtime.errors import ConfigError

__all__ = ["ResponseCache", "cache_key"]

log = logging.getLogger(__name__)


def _printer_key(request: LLMRequest) -> list[float]:
    p = request.printer
    assert p is not None
    return [p.bed_x, p.bed_y, p.max_z, p.nozzle_diameter]


def cache_key(provider: str, model: str, request: LLMRequest) -> str:
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
    return "printforge:llm:" + hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self._cache: Any = None
        self.hits = 0
        self.misses = 0

    def _backend(self) -> Any:
        if self._cache is None:
            from aiocache import Cache

            if self.settings.backend == "redis":
                if not self.settings.redis_url:
                    raise ConfigError("llm.cache.redis_url is required when backend = 'redis'")
                try:
                    self._cache = Cache.from_url(self.settings.redis_url)
                except Exception as err:  # aiocache reports a missing redis client this way
                    raise ConfigError(
                        "llm.cache.backend = 'redis' needs the `redis` package and a"
                        f" redis:// URL ({type(err).__name__}: {err})"
                    ) from err
            else:
                self._cache = Cache(Cache.MEMORY)
        return self._cache

    async def get(self, key: str) -> LLMResponse | None:
        if not self.settings.enabled:
            return None
        try:
            raw = await self._backend().get(key)
        except ConfigError:
            raise
        except Exception as err:  # a cache outage must never fail a design
            log.warning("LLM cache read failed: %s", type(err).__name__)
            return None
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        return LLMResponse.model_validate_json(raw).model_copy(update={"cached": True})

    async def put(self, key: str, response: LLMResponse) -> None:
        if not self.settings.enabled:
            return
        try:
            await self._backend().set(key, response.model_dump_json(), ttl=self.settings.ttl_s)
        except ConfigError:
            raise
        except Exception as err:
            log.warning("LLM cache write failed: %s", type(err).__name__)

    async def close(self) -> None:
        if self._cache is not None:
            await self._cache.close()
            self._cache = None
