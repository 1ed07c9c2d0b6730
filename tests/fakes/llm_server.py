"""A local server speaking OpenAI's /v1/chat/completions and Anthropic's /v1/messages wire formats.

The real SDKs are pointed at it (`openai_base_url`, `anthropic_base_url`). Behaviour is scripted
per API: a default `Step` for every call, and a queue of one-off steps consumed first. A step can
answer with an object (as JSON text or a tool call), raw text, an HTTP error with headers
(429 + Retry-After), a delay longer than the client's timeout, or a truncated answer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

__all__ = ["FakeLLM", "Received", "Step", "strict_schema_problems"]

Api = Literal["openai", "anthropic", "local"]


# Keywords outside OpenAI's strict structured-output subset: the real API answers 400
# "Invalid schema for response_format ..." to a schema using one of them.
_NOT_STRICT = {
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentRequired",
    "dependentSchemas",
    "minLength",
    "maxLength",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
}


def strict_schema_problems(schema: Any) -> list[str]:
    """What OpenAI's strict mode would refuse in `schema` (empty when it is acceptable).

    The rules the API enforces: the root is an object; every object sets
    `additionalProperties: false` and lists every property in `required`; no `$ref` with
    sibling keywords; only the supported keywords.
    """
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object":
        problems.append("the root schema must be an object")

    def walk(node: Any, where: str, names: bool = False) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}/{i}")
            return
        if not isinstance(node, dict):
            return
        if names:  # a map of property or definition names: every value is a schema
            for key, value in node.items():
                walk(value, f"{where}/{key}")
            return
        if "$ref" in node and len(node) > 1:
            problems.append(f"{where}: $ref cannot have keywords {sorted(set(node) - {'$ref'})}")
        for key in sorted(_NOT_STRICT & set(node)):
            problems.append(f"{where}: {key!r} is not permitted")
        if node.get("type") == "object":
            if node.get("additionalProperties") is not False:
                problems.append(f"{where}: additionalProperties must be false")
            missing = set(node.get("properties", {})) - set(node.get("required", []))
            if missing:
                problems.append(f"{where}: required must list every property ({sorted(missing)})")
        for key, value in node.items():
            walk(value, f"{where}/{key}", names=key in ("properties", "$defs"))

    walk(schema, "#")
    return problems


@dataclass
class Step:
    answer: dict[str, Any] | None = None
    raw_text: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    truncate: bool = False
    prose: bool = False  # Anthropic: answer with text instead of the forced tool call
    # An error message that quotes the key it was sent, as some proxies and local servers do.
    echo_key: bool = False


@dataclass
class Received:
    api: Api
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeLLM:
    """`async with FakeLLM(default=Step(answer={...})) as fake:` then point SDKs at it."""

    def __init__(
        self,
        default: Step | None = None,
        *,
        openai: Step | None = None,
        anthropic: Step | None = None,
        local: Step | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.default = default or Step(answer={"ok": True})
        self.per_api: dict[Api, Step | None] = {
            "openai": openai,
            "anthropic": anthropic,
            "local": local,
        }
        self.queues: dict[Api, deque[Step]] = {api: deque() for api in self.per_api}
        self.received: list[Received] = []
        self.host = host
        self.port = 0
        self._runner: web.AppRunner | None = None

    # -- scripting ---------------------------------------------------------------------------
    def queue(self, api: Api, *steps: Step) -> None:
        self.queues[api].extend(steps)

    def set(self, api: Api, step: Step | None) -> None:
        self.per_api[api] = step

    def calls(self, api: Api) -> int:
        return sum(1 for r in self.received if r.api == api)

    def _next(self, api: Api) -> Step:
        if self.queues[api]:
            return self.queues[api].popleft()
        return self.per_api[api] or self.default

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def local_base_url(self) -> str:
        """The same OpenAI wire format under another prefix, scripted separately as "local"."""
        return f"{self.url}/local/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    async def start(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/local/v1/chat/completions", self._local)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/local/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = s.getsockname()[1]
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLLM:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers ----------------------------------------------------------------------------
    async def _prelude(self, api: Api, request: web.Request) -> tuple[Step, dict[str, Any]]:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(api, request.path, body, headers))
        step = self._next(api)
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        return step, body

    @staticmethod
    def _error(api: Api, step: Step, headers: dict[str, str]) -> web.Response:
        said = f"fake error {step.status}"
        if step.echo_key:
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            said += f": Incorrect API key provided: {key}"
        if api != "anthropic":
            payload: dict[str, Any] = {"error": {"message": said, "type": "fake", "code": None}}
        else:
            payload = {"type": "error", "error": {"type": "fake", "message": said}}
        return web.json_response(payload, status=step.status, headers=step.headers)

    @staticmethod
    def _text(step: Step) -> str:
        text = step.raw_text if step.raw_text is not None else json.dumps(step.answer or {})
        return text[: max(1, len(text) // 2)] if step.truncate else text

    async def _openai(self, request: web.Request) -> web.Response:
        return await self._chat("openai", request)

    async def _local(self, request: web.Request) -> web.Response:
        return await self._chat("local", request)

    async def _chat(self, api: Api, request: web.Request) -> web.Response:
        step, body = await self._prelude(api, request)
        if step.status != 200:
            return self._error(api, step, self.received[-1].headers)
        spec = (body.get("response_format") or {}).get("json_schema") or {}
        if api == "openai" and spec.get("strict"):
            # As OpenAI does: a strict schema outside the supported subset is refused whole.
            problems = strict_schema_problems(spec.get("schema"))
            if problems:
                message = f"Invalid schema for response_format {spec.get('name')!r}: {problems[0]}"
                payload = {
                    "error": {
                        "message": message,
                        "type": "invalid_request_error",
                        "param": "response_format",
                        "code": None,
                    }
                }
                return web.json_response(payload, status=400)
        text = self._text(step)
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": "length" if step.truncate else "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": len(json.dumps(body)) // 4,
                    "completion_tokens": max(1, len(text) // 4),
                    "total_tokens": len(json.dumps(body)) // 4 + max(1, len(text) // 4),
                },
            },
            headers=step.headers,
        )

    async def _anthropic(self, request: web.Request) -> web.Response:
        step, body = await self._prelude("anthropic", request)
        if step.status != 200:
            return self._error("anthropic", step, self.received[-1].headers)
        for i, tool in enumerate(body.get("tools") or []):
            if (tool.get("input_schema") or {}).get("type") != "object":
                # Anthropic requires each tool's input_schema to be a JSON-schema object.
                message = f"tools.{i}.custom.input_schema.type: Input should be 'object'"
                payload = {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": message},
                }
                return web.json_response(payload, status=400)
        tool = (body.get("tool_choice") or {}).get("name", "answer")
        if step.prose or step.raw_text is not None:
            content: list[dict[str, Any]] = [{"type": "text", "text": self._text(step)}]
        else:
            # A tool call cut off by max_tokens arrives with whatever input parsed: here none.
            answer = {} if step.truncate else (step.answer or {})
            content = [{"type": "tool_use", "id": "toolu_fake", "name": tool, "input": answer}]
        out_tokens = max(1, len(json.dumps(content)) // 4)
        return web.json_response(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "fake"),
                "content": content,
                "stop_reason": "max_tokens" if step.truncate else "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": len(json.dumps(body)) // 4, "output_tokens": out_tokens},
            },
            headers=step.headers,
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})
