"""Every Prometheus series printforge exports, in one place, with low-cardinality labels."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

__all__ = [
    "AGENT_ATTEMPTS",
    "AGENT_CALLS",
    "AGENT_LATENCY",
    "BREAKER_STATE",
    "DATA_DIR_FREE",
    "DATA_DIR_SIZE",
    "JOBS_BY_STATE",
    "JOBS_WAITING_FOR_PRINTER",
    "JOB_TRANSITIONS",
    "LLM_CALLS",
    "LLM_COST",
    "LLM_LATENCY",
    "LLM_TOKENS",
    "MQTT_MALFORMED",
    "MQTT_UNAUTHENTICATED",
    "PRINTER_PROGRESS",
    "PRINTER_RESENDS",
    "PRINTER_STATE",
    "PRINTER_TEMPERATURE",
    "QUEUE_DEPTH",
    "REGISTRY",
    "RPC_CALLS",
    "STAGE_DURATION",
    "WEBSOCKET_CLIENTS",
    "WEBSOCKET_EVENTS",
    "WEBSOCKET_EVENT_LAG",
    "observe_data_dir",
    "observe_printer_states",
    "render",
]

# Our own registry: several orchestrators in one process (tests) must not collide with the
# global default, and /metrics shows only printforge's series plus what we add on purpose.
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)

AGENT_CALLS = Counter(
    "printforge_agent_calls",
    "Agent calls by outcome (success, failure, timeout, refused, circuit_open, cancelled)",
    ["agent", "outcome"],
    registry=REGISTRY,
)
AGENT_ATTEMPTS = Counter(
    "printforge_agent_attempts", "Attempts made, retries included", ["agent"], registry=REGISTRY
)
AGENT_LATENCY = Histogram(
    "printforge_agent_latency_seconds",
    "Latency of one agent attempt",
    ["agent"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "printforge_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open",
    ["name"],
    registry=REGISTRY,
)
STAGE_DURATION = Histogram(
    "printforge_stage_duration_seconds",
    "Wall time of a pipeline stage, retries included",
    ["stage", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
JOB_TRANSITIONS = Counter(
    "printforge_job_transitions",
    "Job state transitions, by new state",
    ["state"],
    registry=REGISTRY,
)
JOBS_BY_STATE = Gauge(
    "printforge_jobs", "Jobs in the store, by state", ["state"], registry=REGISTRY
)
QUEUE_DEPTH = Gauge("printforge_queue_depth", "Jobs waiting for a printer", registry=REGISTRY)
LLM_CALLS = Counter(
    "printforge_llm_calls",
    "LLM provider calls by outcome",
    ["provider", "model", "outcome"],
    registry=REGISTRY,
)
LLM_LATENCY = Histogram(
    "printforge_llm_latency_seconds",
    "LLM call latency",
    ["provider", "model"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "printforge_llm_tokens",
    "LLM tokens, by direction (input, output)",
    ["provider", "model", "direction"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "printforge_llm_cost_usd", "LLM spend in USD", ["provider", "model"], registry=REGISTRY
)
PRINTER_TEMPERATURE = Gauge(
    "printforge_printer_temperature_celsius",
    "Printer heater temperatures",
    ["printer", "heater", "kind"],
    registry=REGISTRY,
)
PRINTER_PROGRESS = Gauge(
    "printforge_printer_progress_ratio",
    "Progress of the current print",
    ["printer"],
    registry=REGISTRY,
)
PRINTER_RESENDS = Counter(
    "printforge_printer_resends",
    "Lines the printer asked to be sent again",
    ["printer"],
    registry=REGISTRY,
)
WEBSOCKET_CLIENTS = Gauge(
    "printforge_websocket_clients", "Connected websocket clients", registry=REGISTRY
)
MQTT_MALFORMED = Counter(
    "printforge_mqtt_malformed_messages",
    "MQTT messages that could not be parsed, by topic kind",
    ["kind"],
    registry=REGISTRY,
)
MQTT_UNAUTHENTICATED = Counter(
    "printforge_mqtt_unauthenticated_messages",
    "Farm messages dropped or refused for a missing, bad, stale or replayed signature, by topic"
    " kind",
    ["kind"],
    registry=REGISTRY,
)

# Server series (appended by the server).
RPC_CALLS = Counter(
    "printforge_rpc_calls",
    "API method calls by method, transport (ws, http) and outcome (ok, error)",
    ["method", "transport", "outcome"],
    registry=REGISTRY,
)
WEBSOCKET_EVENTS = Counter(
    "printforge_websocket_events",
    "Notifications queued to websocket clients, by kind",
    ["kind"],
    registry=REGISTRY,
)
WEBSOCKET_EVENT_LAG = Histogram(
    "printforge_websocket_event_lag_seconds",
    "From a job event's creation to its fan-out to websocket clients",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)


# Host series (set when /metrics is scraped). The process's CPU seconds, resident and virtual
# memory, open file descriptors and start time come from prometheus-client's process collector
# (process_cpu_seconds_total, process_resident_memory_bytes, ...), which reads /proc: on Linux
# only, where printforge's hosts run.
ProcessCollector(registry=REGISTRY)
DATA_DIR_FREE = Gauge(
    "printforge_data_dir_free_bytes",
    "Bytes free (to this user) on the filesystem holding the data directory",
    registry=REGISTRY,
)
DATA_DIR_SIZE = Gauge(
    "printforge_data_dir_size_bytes",
    "Size in bytes of the filesystem holding the data directory",
    registry=REGISTRY,
)
PRINTER_STATE = Gauge(
    "printforge_printer_state",
    "1 for the state each printer is in (offline, connecting, idle, heating, printing, paused,"
    " finished, cancelling, faulted), 0 for the others",
    ["printer", "state"],
    registry=REGISTRY,
)
JOBS_WAITING_FOR_PRINTER = Gauge(
    "printforge_jobs_waiting_for_printer",
    "Jobs with their G-code ready, waiting for a free printer of their profile and material",
    registry=REGISTRY,
)


def observe_data_dir(data_dir: Path) -> None:
    from printforge.runtime.system import data_dir_usage

    usage = data_dir_usage(data_dir)
    DATA_DIR_FREE.set(usage["free_bytes"])
    DATA_DIR_SIZE.set(usage["total_bytes"])


def observe_printer_states(states: Iterable[tuple[str, str]], all_states: Iterable[str]) -> None:
    """Every printer's state as a one-hot gauge; printers that are gone disappear."""
    PRINTER_STATE.clear()
    names = list(all_states)
    for printer, current in states:
        for state in names:
            PRINTER_STATE.labels(printer, state).set(1 if state == current else 0)


def render() -> bytes:
    """The exposition text for /metrics."""
    return generate_latest(REGISTRY)
