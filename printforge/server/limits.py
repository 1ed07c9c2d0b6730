"""Per-key token buckets: a burst is allowed, a sustained flood is refused with Retry-After."""

from __future__ import annotations

from printforge.runtime.bucket import TokenBucket
from printforge.runtime.errors import RateLimited

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None, max_keys: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(10, per_minute // 6))
        self._buckets: dict[str, TokenBucket] = {}
        self._max_keys = max_keys

    def ensure(self, key: str, cost: float = 1.0) -> None:
        """Raise RateLimited if `key`'s bucket lacks `cost` tokens; take none."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._refuse_after(bucket.wait_for(cost))

    def check(self, key: str, cost: float = 1.0) -> None:
        """Take `cost` tokens from `key`'s bucket or raise RateLimited."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                # Forget full buckets first: they carry no state worth keeping.
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full}
            bucket = self._buckets[key] = TokenBucket(self.burst, self.rate)
        self._refuse_after(bucket.try_take(cost))

    def _refuse_after(self, wait_s: float) -> None:
        if wait_s > 0:
            retry_after = round(wait_s, 3)
            raise RateLimited(
                f"rate limit exceeded; retry in {retry_after:g} s", retry_after=retry_after
            )

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Give back tokens taken for an attempt that turned out legitimate."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back(cost)
