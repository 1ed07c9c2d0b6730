"""OpenAI through the official SDK: chat completions with a strict JSON-schema response format.

The SDK's own retries are off (max_retries=0): the router is the one retry loop.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import openai

from printforge.llm.base import LLMRequest, LLMResponse, ProviderUnavailable
from printforge.llm.schema import parse_answer
from printforge.llm.sdk import SDKProvider, retry_after_header, sdk_errors, translate_status

# retry_after_header and translate_status stay importable from here for older callers.
__all__ = ["OpenAIProvider", "retry_after_header", "translate_status"]


class OpenAIProvider(SDKProvider):
    kind = "openai"
    default_model = "gpt-4o-mini"
    sdk: ClassVar[Any] = openai

    def _make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key(),
            base_url=self.settings.base_url,
            timeout=self.settings.timeout_s,
            max_retries=0,
        )

    # -- call --------------------------------------------------------------------------------
    def _sampling(self, request: LLMRequest, model: str) -> dict[str, Any]:
        """Length and temperature arguments as this API takes them."""
        # OpenAI's reasoning models (o1, o3, gpt-5...) refuse max_tokens and a temperature;
        # max_completion_tokens works for every current chat model.
        if model.startswith(("o1", "o3", "o4", "gpt-5")):
            return {"max_completion_tokens": request.max_tokens}
        return {"max_completion_tokens": request.max_tokens, "temperature": request.temperature}

    def _system(self, request: LLMRequest) -> str:
        return request.system

    def _response_format(self, request: LLMRequest) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": request.json_schema,
                "strict": True,
            },
        }

    async def complete(self, request: LLMRequest) -> LLMResponse:
        model = self.model_for(request)
        messages: list[dict[str, str]] = [{"role": "system", "content": self._system(request)}]
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        started = time.perf_counter()
        with sdk_errors(openai, self.name, self.settings):
            completion = await self.client().chat.completions.create(
                model=model,
                messages=messages,
                response_format=self._response_format(request),
                **self._sampling(request, model),
            )
        choice = completion.choices[0] if completion.choices else None
        if choice is None:
            raise ProviderUnavailable(f"{self.name}: the answer had no choices")
        text = choice.message.content or ""
        refusal = getattr(choice.message, "refusal", None)
        data, error = parse_answer(text, truncated=choice.finish_reason == "length")
        if refusal and data is None:
            error = f"the model refused: {refusal}"
        usage = completion.usage
        return LLMResponse(
            provider=self.name,
            model=completion.model or model,
            text=text,
            data=data,
            parse_error=error,
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            latency_s=time.perf_counter() - started,
        )
