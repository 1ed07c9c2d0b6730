"""OpenAI-compatible local servers (Ollama, llama.cpp server, vLLM) by base_url.

They speak the same chat-completions wire format; differences handled here: no key needed, and
not every server enforces `strict` schemas, so the answer is validated by the caller anyway.
"""

from __future__ import annotations

import json
from typing import Any

from printforge.llm.base import LLMRequest
from printforge.llm.config import ProviderSettings
from printforge.llm.openai import OpenAIProvider
from printforge.runtime.errors import AuthError, ConfigError

__all__ = ["LocalProvider"]


class LocalProvider(OpenAIProvider):
    kind = "openai_compatible"
    default_model = "llama3.1"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        if not settings.base_url:
            raise ConfigError(f"llm.provider.{name}: an openai_compatible provider needs base_url")
        super().__init__(name, settings)

    def _sampling(self, request: LLMRequest, model: str) -> dict[str, Any]:
        # Local servers (Ollama, llama.cpp, vLLM) all know the classic max_tokens.
        return {"max_tokens": request.max_tokens, "temperature": request.temperature}

    def _system(self, request: LLMRequest) -> str:
        # Many local servers accept but do not enforce response_format: say the schema in words.
        return (
            request.system
            + "\n\nThe answer must follow this JSON schema:\n"
            + json.dumps(request.json_schema)
        )

    def _api_key(self) -> str:
        # Local servers ignore the key, but the SDK insists on one being set.
        try:
            return super()._api_key()
        except AuthError:
            return "local"
