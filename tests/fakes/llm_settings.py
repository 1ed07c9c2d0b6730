"""Settings whose LLM providers are the fake server's (tests/fakes/llm_server.py), and an
agent context to run the research agent with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from printforge.agents.base import AgentContext
from printforge.models.request import PrintRequest
from printforge.settings import Settings, load_settings
from tests.fakes.llm_server import FakeLLM

__all__ = ["SECRET", "context", "settings_for"]

SECRET = "sk-test-DO-NOT-LEAK-4242"


def settings_for(fake: FakeLLM, tmp: Path, order: list[str], **llm: Any) -> Settings:
    providers = {
        "openai": {
            "kind": "openai",
            "model": "gpt-4o-mini",
            "escalation_model": "gpt-4o",
            "base_url": fake.openai_base_url,
            "api_key": SECRET,
            "timeout_s": 2.0,
        },
        "anthropic": {
            "kind": "anthropic",
            "model": "claude-haiku-4-5",
            "escalation_model": "claude-sonnet-4-6",
            "base_url": fake.anthropic_base_url,
            "api_key": SECRET,
            "timeout_s": 2.0,
        },
        "local": {"kind": "openai_compatible", "base_url": fake.local_base_url, "model": "llama"},
        "dead": {"kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 1},
    }
    for name, extra in llm.pop("provider", {}).items():
        providers[name].update(extra)
    overrides = {
        "data_dir": str(tmp),
        "llm": {
            "providers": order,
            "provider": providers,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            **llm,
        },
    }
    return load_settings(overrides=overrides)


def context(settings: Settings, tmp: Path, text: str) -> AgentContext:
    return AgentContext(
        job_id="job1",
        job_dir=tmp,
        request=PrintRequest(text=text),
        printer="virtual",
        profile=settings.printer_profile("virtual"),
        material=settings.material("PLA"),
    )
