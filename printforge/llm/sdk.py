"""What the official SDK providers share: error translation, the client's lifecycle, model choice.

OpenAI's and Anthropic's SDKs are generated from the same toolkit and raise the same three
kinds of error (timeout, connection, HTTP status); one mapping serves both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any, ClassVar

from printforge.llm.base import LLMRequest, ProviderUnavailable
from printforge.llm.config import ProviderSettings, redact_url
from printforge.llm.secrets import api_key_of, scrub
from printforge.runtime.errors import (
    AuthError,
    ConnectionLost,
    OperationTimeout,
    PermanentError,
    PrintforgeError,
    RateLimited,
)
from printforge.runtime.health import HealthRecord

__all__ = ["SDKProvider", "retry_after_header", "sdk_errors", "translate_status"]


def retry_after_header(headers: Any, now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms`, or `retry-after` as seconds or an HTTP date; else None."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def translate_status(status: int, message: str, headers: Any, who: str) -> PrintforgeError:
    """Map an HTTP failure to our hierarchy; the retry decision is then made by type."""
    if status == 429:
        wait = retry_after_header(headers)
        # Say the wait: a fallback reason "rate limited" alone does not tell an operator whether
        # the router waited or gave up because the wait was over llm.max_retry_after_s.
        said = f", the server asks to retry after {wait:g} s" if wait is not None else ""
        return RateLimited(f"{who}: rate limited (429){said}", retry_after=wait)
    if status in (401, 403):
        return AuthError(f"{who}: the API key was refused ({status})")
    if status == 408:
        return OperationTimeout(f"{who}: the server timed out (408)")
    if status >= 500 or status == 529:
        return ProviderUnavailable(f"{who}: server error {status}: {message}")
    return PermanentError(f"{who}: request refused ({status}): {message}", code="llm_refused")


def _server_said(err: Any) -> str:
    """The server's own error sentence, not the SDK's "Error code: 500 - {...}" dump of the body.

    OpenAI's SDK keeps the `error` object as `body`; Anthropic's keeps the whole reply.
    """
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return str(getattr(err, "message", ""))


@contextmanager
def sdk_errors(
    sdk: ModuleType, who: str, settings: ProviderSettings | None = None
) -> Iterator[None]:
    """Translate an SDK's exceptions into ours; messages are scrubbed of secrets."""
    try:
        yield
    except sdk.APITimeoutError as err:
        limit = f" of {settings.timeout_s:g} s (timeout_s)" if settings else ""
        raise OperationTimeout(f"{who}: no answer within the timeout{limit}") from err
    except sdk.APIConnectionError as err:
        # Name the address (password masked): "is Ollama running on that port?" is the question.
        where = f" at {redact_url(settings.base_url)}" if settings and settings.base_url else ""
        raise ConnectionLost(f"{who}: cannot reach the server{where}") from err
    except sdk.APIStatusError as err:
        text = scrub(_server_said(err), settings)[:200] if settings else ""
        raise translate_status(err.status_code, text, err.response.headers, who) from err


class SDKProvider:
    """Base of the providers that wrap an official SDK client (retries off: the router retries)."""

    kind: ClassVar[str]
    default_model: ClassVar[str]
    sdk: ClassVar[ModuleType]

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.settings = settings
        self._client: Any = None
        self._record = HealthRecord(name=name, component="llm")

    def _api_key(self) -> str:
        key = api_key_of(self.settings)
        if key is None:
            where = self.settings.api_key_env or "api_key"
            raise AuthError(f"{self.name}: no API key (set {where})")
        return key

    def _make_client(self) -> Any:
        raise NotImplementedError

    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def model_for(self, request: LLMRequest) -> str:
        if request.model:
            return request.model
        if request.escalate and self.settings.escalation_model:
            return self.settings.escalation_model
        return self.settings.model or self.default_model

    def health(self) -> HealthRecord:
        return self._record

    async def probe(self) -> None:
        """A free call (list models) that proves the server and the key work."""
        with sdk_errors(self.sdk, self.name, self.settings):
            await self.client().models.list()
