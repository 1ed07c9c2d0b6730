"""The USD spend ledger shared by processes: `printforge serve` and a `printforge design` beside it
charge one file. Real processes charge at the same time; the file must hold every charge and the
daily budget must stop them at the right total. A corrupt ledger must never read as zero spend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from printforge.llm.base import LLMMessage, LLMRequest, LLMResponse
from printforge.llm.config import LLMSettings, ProviderSettings
from printforge.llm.limits import SpendLedger
from printforge.llm.router import LLMRouter
from printforge.runtime.errors import BudgetExceeded
from printforge.runtime.health import HealthRecord

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-03-04"

# Each child waits for "go" on stdin so both charge at once, then charges until told to stop or
# refused, and prints how many charges went through.
CHILD = """
import json, sys
from pathlib import Path
from printforge.llm.limits import SpendLedger
from printforge.runtime.errors import BudgetExceeded

path, count, usd, per_day, mode, day = sys.argv[1:7]
ledger = SpendLedger(1e9, float(per_day), Path(path), today=lambda: day)
print("ready", flush=True)
sys.stdin.readline()
done = 0
for i in range(int(count)):
    try:
        if mode == "add":
            ledger.add(f"job{i}", "openai", float(usd))
        else:
            held = ledger.reserve(f"job{i}", float(usd), "openai")
            ledger.settle(held, "openai", float(usd))
    except BudgetExceeded:
        break
    done += 1
print(json.dumps({"done": done}), flush=True)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def run_together(path: Path, *, count: int, usd: float, per_day: float, mode: str) -> list[int]:
    """Two processes charging the same ledger at the same moment; charges done by each."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(count), str(usd), str(per_day), mode, DAY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_env(),
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=100)
            assert p.returncode == 0, err
            results.append(int(json.loads(out.strip().splitlines()[-1])["done"]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def on_disk(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_concurrent_charges_all_land(tmp_path: Path) -> None:
    path = tmp_path / "llm-spend.json"
    # 0.25 is exact in binary, so the sum is exact and any lost update shows.
    done = run_together(path, count=200, usd=0.25, per_day=1e9, mode="add")
    assert done == [200, 200]
    data = on_disk(path)
    assert data["days"][DAY] == 400 * 0.25
    assert data["providers"]["openai"] == 400 * 0.25
    assert not list(tmp_path.glob("*.tmp"))  # every temp file was moved into place


def test_the_daily_budget_stops_two_processes_at_the_right_total(tmp_path: Path) -> None:
    path = tmp_path / "llm-spend.json"
    done = run_together(path, count=1000, usd=0.25, per_day=30.0, mode="reserve")
    # Exactly the charges that fit: 30 / 0.25 = 120 between the two, not 120 each.
    assert sum(done) == 120
    assert on_disk(path)["days"][DAY] == 30.0
    with pytest.raises(BudgetExceeded, match="daily LLM budget"):
        SpendLedger(1e9, 30.0, path, today=lambda: DAY).reserve("j", 0.25, "openai")


def test_check_reads_what_another_process_spent(tmp_path: Path) -> None:
    path = tmp_path / "llm-spend.json"
    serve = SpendLedger(1e9, 1.0, path, today=lambda: DAY)
    design = SpendLedger(1e9, 1.0, path, today=lambda: DAY)
    serve.check("j", 0.5, "openai")  # serve loaded the empty file first
    design.add("j2", "openai", 0.75)
    with pytest.raises(BudgetExceeded, match=r"spent \$0\.75 today"):
        serve.check("j", 0.5, "openai")
    assert serve.today_usd() == 0.75


def test_a_reservation_counts_until_settled(tmp_path: Path) -> None:
    path = tmp_path / "llm-spend.json"
    ledger = SpendLedger(1.0, 10.0, path, today=lambda: DAY)
    held = ledger.reserve("j", 0.40, "openai")  # worst case, before the call
    other = SpendLedger(1.0, 10.0, path, today=lambda: DAY)
    assert other.today_usd() == pytest.approx(0.40)  # another process sees it at once
    ledger.settle(held, "openai", 0.05)  # the real cost, after the call
    assert other.today_usd() == pytest.approx(0.05) and ledger.job_usd("j") == pytest.approx(0.05)
    assert other.provider_usd("openai") == pytest.approx(0.05)
    released = ledger.reserve("j", 0.40, "openai")
    ledger.settle(released, "openai", 0.0)  # the call failed: nothing is charged
    assert other.today_usd() == pytest.approx(0.05)
    # A process that dies holding a reservation leaves it counted: errs towards spent.
    ledger.reserve("j", 0.40, "openai")
    assert SpendLedger(1.0, 10.0, path, today=lambda: DAY).today_usd() == pytest.approx(0.45)


@pytest.mark.parametrize(
    "garbage",
    [
        '{"days": {"2026-03-04": 9.5',
        "[1, 2]",
        '{"days": {"2026-03-04": "lots"}}',
        "",
        '{"days": {"2026-03-04": -3}}',
    ],
)
def test_a_corrupt_ledger_refuses_paid_calls_and_is_kept(tmp_path: Path, garbage: str) -> None:
    path = tmp_path / "llm-spend.json"
    path.write_text(garbage)
    ledger = SpendLedger(1.0, 10.0, path, today=lambda: DAY)
    assert ledger.problem is not None and str(path) in ledger.problem
    with pytest.raises(BudgetExceeded, match="paid LLM calls are refused until it is fixed"):
        ledger.reserve("j", 0.01, "openai")
    with pytest.raises(BudgetExceeded, match=r"llm-spend\.json"):
        ledger.check("j", 0.01, "openai")
    ledger.reserve("j", 0.0, "local")  # free providers still run
    ledger.add("j", "openai", 0.5)  # cannot be recorded, and must not replace the file
    assert path.read_text() == garbage
    assert (tmp_path / "llm-spend.json.corrupt").read_text() == garbage
    # Fixed by hand (here: removed), the next call works again without a restart.
    path.unlink()
    ledger.reserve("j", 0.01, "openai")
    assert ledger.problem is None and ledger.today_usd() == pytest.approx(0.01)


class Paid:
    """A priced provider that counts calls: the ledger decisions are the subject here."""

    def __init__(self) -> None:
        self.name = "a"
        self.kind = "openai"
        self.settings = ProviderSettings(kind="openai", model="a-small")
        self.calls = 0

    def model_for(self, request: LLMRequest) -> str:
        return "a-small"

    def health(self) -> HealthRecord:
        return HealthRecord(name=self.name, component="llm")

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        return LLMResponse(
            provider="a", model="a-small", text="{}", data={"x": 1}, tokens_in=1000, tokens_out=500
        )


def _ask() -> LLMRequest:
    return LLMRequest(
        system="s",
        messages=[LLMMessage(role="user", content="a cube")],
        json_schema={"type": "object"},
        text="a cube",
        max_tokens=1000,
    )


@pytest.mark.asyncio
async def test_the_router_falls_over_to_free_providers_on_a_corrupt_ledger(
    tmp_path: Path,
) -> None:
    (tmp_path / "llm-spend.json").write_text("{not json")
    paid = Paid()
    settings = LLMSettings(
        providers=["a", "offline"],
        prices={"a-small": {"input": 1.0, "output": 2.0}},
        cache={"enabled": False},  # type: ignore[arg-type]
    )
    router = LLMRouter(settings, data_dir=tmp_path, providers={"a": paid})
    try:
        r = await router.complete(_ask().model_copy(update={"text": "a 20 mm cube"}))
    finally:
        await router.close()
    assert paid.calls == 0 and r.provider == "offline"
    assert "spend ledger" in r.fallbacks[0] and "refused" in r.fallbacks[0]


@pytest.mark.asyncio
async def test_the_router_settles_to_the_real_cost(tmp_path: Path) -> None:
    paid = Paid()
    settings = LLMSettings(
        providers=["a"],
        prices={"a-small": {"input": 1.0, "output": 2.0}},
        cache={"enabled": False},  # type: ignore[arg-type]
    )
    router = LLMRouter(settings, data_dir=tmp_path, providers={"a": paid})
    try:
        r = await router.complete(_ask())
    finally:
        await router.close()
    real = (1000 * 1.0 + 500 * 2.0) / 1e6
    assert r.cost_usd == pytest.approx(real)
    other = SpendLedger(1.0, 10.0, tmp_path / "llm-spend.json")
    assert other.today_usd() == pytest.approx(real)  # the worst-case reservation was replaced
    assert other.provider_usd("a") == pytest.approx(real)


def test_providers_reports_a_corrupt_ledger(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "llm-spend.json").write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(data), "providers", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    problem = json.loads(done.stdout)["spend_ledger_error"]
    assert "llm-spend.json" in problem and "paid LLM calls are refused" in problem
    table = subprocess.run(
        [sys.executable, "-m", "printforge", "--data-dir", str(data), "providers"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=100,
        check=False,
    )
    assert "spend ledger: the LLM spend ledger" in table.stdout
    assert (data / "llm-spend.json").read_text() == "{not json"
