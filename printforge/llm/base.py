"""The provider contract, the request/response types every provider speaks, and the registry."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, SkipValidation

from printforge.llm.config import ProviderSettings
from printforge.models.printer import PrinterProfile
from printforge.runtime.errors import ConfigError, TransientError
from printforge.runtime.health import HealthRecord

__all__ = [
    "PROVIDERS",
    "LLMMessage",
    "LLMProvider",
    "LLMRequest",
    "LLMResponse",
    "ProviderUnavailable",
    "load_provider",
]


class ProviderUnavailable(TransientError):
    """The provider's server failed (5xx, overloaded, connection refused)."""

    code = "provider_unavailable"


class LLMMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class LLMRequest(BaseModel):
    """One structured-output call: a conversation and the JSON schema the answer must follow."""

    system: str
    messages: list[LLMMessage]
    schema_name: str = "design_spec"
    # Not copied on validation: the same (large) schema object comes with every call and the
    # router fingerprints it once by identity.
    json_schema: SkipValidation[dict[str, Any]]
    # The person's own words: the offline provider parses these instead of the prompt.
    text: str
    model: str | None = Field(None, description="explicit model; wins over provider defaults")
    model_provider: str | None = Field(
        None, description="the provider `model` is meant for; others use their own models"
    )
    escalate: bool = Field(False, description="use the provider's larger model if it has one")
    max_tokens: int = Field(2048, ge=16)
    temperature: float = Field(0.0, ge=0, le=2)
    job_id: str | None = None
    printer: PrinterProfile | None = Field(
        None,
        description="the target printer: the offline provider refuses what it cannot print"
        " (larger than its bed, finer than its nozzle), saying what it understood",
    )


class LLMResponse(BaseModel):
    provider: str
    model: str
    text: str
    data: dict[str, Any] | None = None
    parse_error: str | None = Field(None, description="why `text` is not a JSON object")
    problems: list[str] = Field(default_factory=list, description="validation failures")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False
    fallbacks: list[str] = Field(
        default_factory=list, description="why earlier providers in the order did not answer"
    )

    @property
    def ok(self) -> bool:
        return self.data is not None and self.parse_error is None and not self.problems


@runtime_checkable
class LLMProvider(Protocol):
    """One configured provider. `complete` raises errors from runtime.errors, translated."""

    name: str
    kind: str
    settings: ProviderSettings

    def model_for(self, request: LLMRequest) -> str: ...

    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    async def probe(self) -> None:
        """A cheap call that raises when the provider cannot be used."""

    def health(self) -> HealthRecord: ...

    async def close(self) -> None: ...


# Lazy: a provider's SDK is imported only when a provider of that kind is built.
PROVIDERS: dict[str, str] = {
    "openai": "printforge.llm.openai:OpenAIProvider",
    "anthropic": "printforge.llm.anthropic:AnthropicProvider",
    "openai_compatible": "printforge.llm.local:LocalProvider",
    "offline": "printforge.llm.offline.provider:OfflineProvider",
}


def _target(kind: str) -> str:
    if kind in PROVIDERS:
        return PROVIDERS[kind]
    for ep in entry_points(group="printforge.providers"):
        if ep.name == kind:
            return str(ep.value)
    raise ConfigError(f"unknown LLM provider kind {kind!r} (known: {', '.join(PROVIDERS)})")


def load_provider(name: str, settings: ProviderSettings) -> LLMProvider:
    """Build the provider configured as `[llm.provider.NAME]`."""
    module_name, _, attr = _target(settings.kind).partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    provider: LLMProvider = cls(name, settings)
    return provider
