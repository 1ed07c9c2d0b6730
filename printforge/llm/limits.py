"""Per-provider token buckets (requests and tokens per minute) and the USD spend ledger."""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printforge.runtime.bucket import TokenBucket as _Bucket
from printforge.runtime.errors import BudgetExceeded

__all__ = ["Reservation", "SpendLedger", "TokenBucket", "price_of", "usd"]

log = logging.getLogger(__name__)


class TokenBucket(_Bucket):
    """`rate_per_minute` units refill continuously up to one minute's worth; a request for more
    than a minute's worth counts as one minute's worth (it could never be granted otherwise)."""

    def __init__(self, rate_per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate_per_minute, rate_per_minute / 60.0, clock)

    def wait_for(self, amount: float) -> float:
        return super().wait_for(min(amount, self.capacity))

    def take(self, amount: float) -> None:
        super().take(min(amount, self.capacity))


def usd(amount: float) -> str:
    """Dollars for a message: cents from $1 up, else up to four places (a $0.001 budget must not
    read as "$0.00", nor a $0.0147 call as "$0.01")."""
    if abs(amount) >= 1:
        return f"${amount:.2f}"
    text = f"{amount:.4f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.partition(".")[2])))


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


class _Unreadable(Exception):
    """The ledger file exists but is not a ledger."""


def _amounts(raw: Any, what: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise _Unreadable(f"{what} is not a table")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Unreadable(f"{what}[{key!r}] is not a number")
        if not math.isfinite(value) or value < 0:
            raise _Unreadable(f"{what}[{key!r}] = {value} is not a spend")
        out[str(key)] = float(value)
    return out


@dataclass(frozen=True)
class Reservation:
    """A call's worst-case cost, counted as spent until `SpendLedger.settle` gets the real one."""

    job_id: str
    day: str
    usd: float


class SpendLedger:
    """Spend per job and per UTC day, shared by every process that uses one data_dir.

    The file holds spend per day (this month) and per provider. Each change is a read-modify-write
    under an exclusive `flock` on a sidecar `.lock` file, written to a temp file and moved into
    place with `os.replace`, so `printforge serve` and a `printforge design` beside it add up
    instead of overwriting each other, and a reader never sees half a file. A call reserves its
    worst-case cost before it starts (`reserve`: check and add in one locked step, so two
    processes cannot both pass the check on the last dollar) and `settle`s to the real cost after.
    A reservation whose process dies stays counted: the ledger errs towards spent, never towards
    free. Per-job spend stays in memory: a job runs in one process.

    A ledger file that cannot be read is never treated as zero spend: it is copied to
    `<file>.corrupt`, left in place, and every paid call is refused (`BudgetExceeded`, so the
    router falls over to free providers) until someone fixes or removes it.
    """

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
        self.problem: str | None = None
        self._refresh()

    # -- the file -------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path | None:
        return self.path.with_name(self.path.name + ".lock") if self.path is not None else None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across processes (and threads: each holder opens its own descriptor)."""
        if self.lock_path is None:
            yield
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        # The lock file is never removed: deleting it would let two holders lock two inodes.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _read(self) -> None:
        """Load the file into memory; sets `problem` instead of trusting a bad file."""
        if self.path is None:
            return
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            self._days, self._by_provider = {}, {}
            self._set_problem(None)
            return
        except OSError as err:
            self._set_problem(f"cannot be read ({err.strerror or type(err).__name__})")
            return
        try:
            try:
                raw = json.loads(text)
            except ValueError as err:
                raise _Unreadable(f"is not JSON ({err})") from err
            if not isinstance(raw, dict):
                raise _Unreadable("is not a JSON object")
            days = _amounts(raw.get("days", {}), "days")
            providers = _amounts(raw.get("providers", {}), "providers")
        except _Unreadable as err:
            self._set_problem(str(err), keep_copy=True)
            return
        self._days, self._by_provider = days, providers
        self._set_problem(None)

    def _set_problem(self, problem: str | None, keep_copy: bool = False) -> None:
        if problem is None:
            if self.problem is not None:
                log.warning("LLM spend ledger %s is readable again", self.path)
            self.problem = None
            return
        message = (
            f"the LLM spend ledger {self.path} {problem}; paid LLM calls are refused until it is"
            " fixed or removed (free providers still run)"
        )
        if keep_copy and self.path is not None:
            copy = self.path.with_name(self.path.name + ".corrupt")
            message += f"; a copy is kept as {copy.name}"
            if self.problem is None:
                try:
                    shutil.copyfile(self.path, copy)
                except OSError as err:
                    log.warning("cannot copy the bad spend ledger to %s: %s", copy, err)
        if message != self.problem:
            log.error("%s", message)
        self.problem = message

    def _write(self) -> None:
        if self.path is None or self.problem is not None:
            return  # never overwrite a ledger we could not read
        today = self._today()
        days = {k: v for k, v in self._days.items() if k >= today[:8]}  # keep this month
        body = json.dumps({"days": days, "providers": self._by_provider}, sort_keys=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            log.warning("cannot save spend ledger %s: %s", self.path, err)

    def _refresh(self) -> None:
        # No lock for a read: os.replace means a reader sees the old file or the new one.
        self._read()

    # -- reading ----------------------------------------------------------------------------------
    def today_usd(self) -> float:
        self._refresh()
        return self._days.get(self._today(), 0.0)

    def job_usd(self, job_id: str | None) -> float:
        return self._jobs.get(job_id or "", 0.0)

    def provider_usd(self, provider: str) -> float:
        return self._by_provider.get(provider, 0.0)

    # -- budgets ----------------------------------------------------------------------------------
    def _refuse(self, job_id: str | None, estimate_usd: float, who: str) -> None:
        if estimate_usd <= 0:
            return  # free calls run whatever the ledger says
        if self.problem is not None:
            raise BudgetExceeded(f"{who}: {self.problem}")
        day = self._days.get(self._today(), 0.0)
        if day + estimate_usd > self.per_day_usd:
            raise BudgetExceeded(
                f"{who}: the daily LLM budget of {usd(self.per_day_usd)} would be exceeded"
                f" (spent {usd(day)} today, this call may cost {usd(estimate_usd)});"
                " raise llm.budget_per_day_usd, wait for the next UTC day, or add offline to"
                " the provider order"
            )
        job = self.job_usd(job_id)
        if job + estimate_usd > self.per_job_usd:
            raise BudgetExceeded(
                f"{who}: the per-job LLM budget of {usd(self.per_job_usd)} would be exceeded"
                f" (this job spent {usd(job)}, this call may cost {usd(estimate_usd)});"
                " raise llm.budget_per_job_usd or add offline to the provider order"
            )

    def check(self, job_id: str | None, estimate_usd: float, who: str) -> None:
        """Raise BudgetExceeded when `estimate_usd` more would cross a budget (reads the file)."""
        if estimate_usd > 0:
            self._refresh()
        self._refuse(job_id, estimate_usd, who)

    def reserve(self, job_id: str | None, estimate_usd: float, who: str) -> Reservation:
        """Check, and count `estimate_usd` as spent, in one locked step; `settle` it after."""
        job, day = job_id or "", self._today()
        if estimate_usd <= 0:
            return Reservation(job, day, 0.0)
        with self._locked():
            self._read()
            self._refuse(job_id, estimate_usd, who)
            self._days[day] = self._days.get(day, 0.0) + estimate_usd
            self._write()
        self._jobs[job] = self._jobs.get(job, 0.0) + estimate_usd
        return Reservation(job, day, estimate_usd)

    def settle(self, reservation: Reservation, provider: str, usd: float) -> None:
        """Replace a reservation by the real cost (0 when the call failed)."""
        usd = max(usd, 0.0)
        if reservation.usd <= 0 and usd <= 0:
            return
        today = self._today()
        with self._locked():
            self._read()
            if self.problem is not None:
                # Nothing can be recorded; paid calls are refused anyway until it is fixed.
                log.error("LLM spend of $%.6f by %s not recorded: %s", usd, provider, self.problem)
            else:
                if reservation.day in self._days:
                    left = self._days[reservation.day] - reservation.usd
                    self._days[reservation.day] = max(left, 0.0)
                self._days[today] = self._days.get(today, 0.0) + usd
                if usd > 0:
                    self._by_provider[provider] = self._by_provider.get(provider, 0.0) + usd
                self._write()
        job = reservation.job_id
        self._jobs[job] = max(self._jobs.get(job, 0.0) - reservation.usd, 0.0) + usd

    def add(self, job_id: str | None, provider: str, usd: float) -> None:
        """Record `usd` spent without a prior reservation."""
        if usd <= 0:
            return
        self.settle(Reservation(job_id or "", self._today(), 0.0), provider, usd)
