"""A logging filter that takes credentials out of every log line, whoever wrote it.

Our own code never logs a key, but libraries do at DEBUG/INFO: httpx and the LLM SDKs print
request URLs (a `base_url` may carry `user:password@`), aiomqtt and redis print broker URLs.
The filter rewrites the finished message, so it covers messages built with %-args too.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install", "redact"]

# scheme://user:secret@host  ->  scheme://user:***@host
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@")
# Authorization: Bearer abc / "authorization": "Bearer abc" / X-API-Key: abc / api_key=abc
_HEADER_TOKEN = re.compile(
    r"(?i)((?:authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic)\s+)"
    r"|(?:(?:x-api-key|api[_-]?key|access[_-]?code|farm[_-]?key|token|password)['\"]?\s*[:=]\s*['\"]?))"
    r"([^\s'\",;&]{4,})"
)


def redact(text: str) -> str:
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return _HEADER_TOKEN.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: leave it to logging's own error path
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Tracebacks (--debug) quote exception messages, which may carry a URL.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
