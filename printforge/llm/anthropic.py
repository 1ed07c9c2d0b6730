"""Anthropic through the official SDK: one tool whose input schema is the spec, and a forced call.

A forced tool call is the structured output every current Claude model supports; the tool's
`input` is the answer object. SDK retries are off: the router is the one retry loop.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

import anthropic

from printforge.llm.base import LLMRequest, LLMResponse
from printforge.llm.schema import parse_answer
from printforge.llm.sdk import SDKProvider, sdk_errors

__all__ = ["AnthropicProvider"]


class AnthropicProvider(SDKProvider):
    kind = "anthropic"
    default_model = "claude-haiku-4-5"
    sdk: ClassVar[Any] = anthropic

    def _make_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self._api_key(),
            base_url=self.settings.base_url,
            timeout=self.settings.timeout_s,
            max_retries=0,
        )

    async def complete(self, request: LLMRequest) -> LLMResponse:
        model = self.model_for(request)
        tool: dict[str, Any] = {
            "name": request.schema_name,
            "description": "Record the design specification for the requested part.",
            "input_schema": request.json_schema,
        }
        started = time.perf_counter()
        with sdk_errors(anthropic, self.name, self.settings):
            message = await self.client().messages.create(
                model=model,
                max_tokens=request.max_tokens,
                system=request.system,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                tools=[tool],
                tool_choice={"type": "tool", "name": request.schema_name},
            )
        truncated = message.stop_reason == "max_tokens"
        data: dict[str, Any] | None = None
        error: str | None = None
        text = ""
        for block in message.content:
            if block.type == "tool_use" and block.name == request.schema_name:
                raw = block.input
                text = json.dumps(raw)
                if isinstance(raw, dict) and not truncated:
                    data = raw
                else:
                    data, error = parse_answer(text, truncated=truncated)
                break
            if block.type == "text":
                text += block.text
        else:
            data, error = parse_answer(text, truncated=truncated)
            if data is None and not truncated:
                error = "the model answered in prose instead of calling the tool"
        return LLMResponse(
            provider=self.name,
            model=message.model or model,
            text=text,
            data=data,
            parse_error=error,
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
            latency_s=time.perf_counter() - started,
        )
