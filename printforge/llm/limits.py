"""Per-provider token buckets (requests and tokens per minute) and the USD spend ledger."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from printforge.runtime.errors import BudgetExceeded

__all__ = ["SpendLedger", "TokenBucket", "price_of"]

log = logging.getLogger(__name__)


class TokenBucket:
    """`rate_per_minute` units refill continuously up to one minute's worth."""

    def __init__(self, rate_per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = rate_per_minute
        self.rate_s = rate_per_minute / 60.0
        self._clock = clock
        self._level = rate_per_minute
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate_s)
        self._at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 when they are now)."""
        self._refill()
        amount = min(amount, self.capacity)
        if self._level >= amount:
            return 0.0
        return (amount - self._level) / self.rate_s

    def take(self, amount: float) -> None:
        self._refill()
        self._level -= min(amount, self.capacity)

    def give_back(self, amount: float) -> None:
        """Return an over-estimate once the real token count is known."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)

    @property
    def available(self) -> float:
        self._refill()
        return self._level


def price_of(
    prices: dict[str, dict[str, float]], model: str, tokens_in: int, tokens_out: int
) -> float | None:
    """USD for a call, from the per-million-token table; None when the model has no price."""
    row = prices.get(model)
    if row is None:
        # Providers answer with dated names (gpt-4o-mini-2024-07-18); price by the longest prefix.
        matches = [k for k in prices if model.startswith(k)]
        if not matches:
            return None
        row = prices[max(matches, key=len)]
    return (tokens_in * row.get("input", 0.0) + tokens_out * row.get("output", 0.0)) / 1e6


class SpendLedger:
    """Spend per job and per UTC day; persisted to a small JSON file when a path is given."""

    def __init__(
        self,
        per_job_usd: float,
        per_day_usd: float,
        path: Path | None = None,
        today: Callable[[], str] = lambda: datetime.now(UTC).date().isoformat(),
    ) -> None:
        self.per_job_usd = per_job_usd
        self.per_day_usd = per_day_usd
        self.path = path
        self._today = today
        self._jobs: dict[str, float] = {}
        self._days: dict[str, float] = {}
        self._by_provider: dict[str, float] = {}
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            raw = json.loads(self.path.read_text())
            self._days = {str(k): float(v) for k, v in raw.get("days", {}).items()}
            self._by_provider = {str(k): float(v) for k, v in raw.get("providers", {}).items()}
        except (OSError, ValueError, AttributeError) as err:
            log.warning("ignoring unreadable spend ledger %s: %s", self.path, err)

    def _save(self) -> None:
        if self.path is None:
            return
        today = self._today()
        days = {k: v for k, v in self._days.items() if k >= today[:8]}  # keep this month
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"days": days, "providers": self._by_provider}))
            tmp.replace(self.path)
        except OSError as err:
            log.warning("cannot save spend ledger %s: %s", self.path, err)

    def today_usd(self) -> float:
        self._load_if_day_changed()
        return self._days.get(self._today(), 0.0)

    def _load_if_day_changed(self) -> None:
        self._days.setdefault(self._today(), 0.0)

    def job_usd(self, job_id: str | None) -> float:
        return self._jobs.get(job_id or "", 0.0)

    def provider_usd(self, provider: str) -> float:
        return self._by_provider.get(provider, 0.0)

    def check(self, job_id: str | None, estimate_usd: float, who: str) -> None:
        """Raise BudgetExceeded when `estimate_usd` more would cross a budget."""
        day = self.today_usd()
        if day + estimate_usd > self.per_day_usd:
            raise BudgetExceeded(
                f"{who}: the daily LLM budget of ${self.per_day_usd:.2f} would be exceeded"
                f" (spent ${day:.4f} today, this call may cost ${estimate_usd:.4f})"
            )
        job = self.job_usd(job_id)
        if job + estimate_usd > self.per_job_usd:
            raise BudgetExceeded(
                f"{who}: the per-job LLM budget of ${self.per_job_usd:.2f} would be exceeded"
                f" (this job spent ${job:.4f}, this call may cost ${estimate_usd:.4f})"
            )

    def add(self, job_id: str | None, provider: str, usd: float) -> None:
        if usd <= 0:
            return
        today = self._today()
        self._days[today] = self._days.get(today, 0.0) + usd
        self._jobs[job_id or ""] = self._jobs.get(job_id or "", 0.0) + usd
        self._by_provider[provider] = self._by_provider.get(provider, 0.0) + usd
        self._save()
