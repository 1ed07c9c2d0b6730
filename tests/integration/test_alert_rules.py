"""deploy/prometheus/alerts.yml: promtool accepts the rules, its unit tests show each alert
firing when it should (and not before), and every series the alerts and the Grafana dashboard
query is one a real `printforge serve` exports on /metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.serve_process import REPO, ServeProcess, wait_for

KEY = "alerts-admin-key-0123456789"
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "tests" / "data" / "prometheus" / "alerts_test.yml"
DASHBOARD = REPO / "config" / "grafana-dashboard.json"
SERIES = re.compile(r"\b((?:printforge|process)_[a-z0-9_]+)")
# What a metric family of each type is exposed as (prometheus-client's text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: scripts/setup installs Debian's prometheus package")
    return found


def test_promtool_checks_the_rules(promtool: str) -> None:
    proc = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 9 rules found" in proc.stdout


def test_each_alert_fires_when_it_should(promtool: str) -> None:
    proc = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    defined = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    assert tested == defined


def exported(text: str) -> tuple[set[str], set[str]]:
    """(every name a family may be scraped as, the names that have a sample right now)."""
    names: set[str] = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        # A counter's TYPE line may already carry `_total` (prometheus-client >= 0.20 does).
        base = family.removesuffix("_total") if kind == "counter" else family
        names.update(base + suffix for suffix in SUFFIXES.get(kind, ("",)))
    sampled = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    return names | sampled, sampled


def test_alerts_and_dashboard_query_only_what_a_real_server_exports(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "data", KEY, sim_speed=5000.0).start()
    try:
        job_id = server.api("POST", "/api/jobs", {"request": "a 10 mm cube"})["job_id"]
        wait_for(
            lambda: server.api("GET", f"/api/jobs/{job_id}")["state"] == "completed",
            120,
            "a job to complete",
        )
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as resp:
            text = resp.read().decode()
    finally:
        server.stop()
    names, sampled = exported(text)
    rules = set(SERIES.findall(RULES.read_text()))
    dashboard = {
        name
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
        for name in SERIES.findall(target["expr"])
    }
    assert rules and dashboard
    for name in sorted(rules | dashboard):
        assert name in names, f"{name} is queried but not exported"
    # The series the alerts decide on carry samples on a live server, not only a TYPE line.
    for name in (
        "printforge_printer_state",
        "printforge_queue_depth",
        "printforge_job_transitions_total",
        "printforge_jobs_waiting_for_printer",
        "printforge_data_dir_free_bytes",
        "printforge_data_dir_size_bytes",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert name in sampled, name
    assert re.search(r'^printforge_printer_state\{printer="virtual",state="idle"\} ', text, re.M)
