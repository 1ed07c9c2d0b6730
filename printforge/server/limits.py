"""Per-key token buckets: a burst is allowed, a sustained flood is refused with Retry-After."""

from __future__ import annotations

import time
from dataclasses import dataclass

from printforge.runtime.errors import RateLimited

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None, max_keys: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(10, per_minute // 6))
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def ensure(self, key: str, cost: float = 1.0) -> None:
        """Raise RateLimited if `key`'s bucket lacks `cost` tokens; take none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return
        level = self._level(bucket, time.monotonic())
        if level < cost:
            self._refuse(cost - level)

    def check(self, key: str, cost: float = 1.0) -> None:
        """Take `cost` tokens from `key`'s bucket or raise RateLimited."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                # Forget full buckets first: they carry no state worth keeping.
                self._buckets = {
                    k: b for k, b in self._buckets.items() if self._level(b, now) < self.burst
                }
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = self._level(bucket, now)
        bucket.stamp = now
        if bucket.tokens < cost:
            self._refuse(cost - bucket.tokens)
        bucket.tokens -= cost

    def _refuse(self, missing: float) -> None:
        retry_after = round(missing / self.rate, 3)
        raise RateLimited(
            f"rate limit exceeded; retry in {retry_after:g} s", retry_after=retry_after
        )

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
