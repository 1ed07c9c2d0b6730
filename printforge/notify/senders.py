"""Where notifications go: a signed webhook, or Apprise. Each raises our error types so the
notifier decides retries by type (runtime.retry), never by message text."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Protocol

from yarl import URL

from printforge.notify.config import EVENT_KINDS, WebhookTarget
from printforge.notify.events import NotifyEvent
from printforge.runtime.errors import (
    ConfigError,
    ConnectionLost,
    PermanentError,
    RateLimited,
    TransientError,
)

__all__ = ["SIGNATURE_HEADER", "AppriseSender", "Sender", "WebhookSender", "sign"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Printforge-Signature"
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(body: bytes, secret: str) -> str:
    """The header value: `sha256=` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def describe_url(url: str) -> str:
    """An address as logs and the API may show it: scheme and host only (a path or query
    often is the credential, as in Slack's and Discord's webhook addresses)."""
    try:
        parsed = URL(url)
    except ValueError:
        return "(unparseable address)"
    host = parsed.host or ""
    port = f":{parsed.explicit_port}" if parsed.explicit_port else ""
    return f"{parsed.scheme}://{host}{port}/…" if host else f"{parsed.scheme}://…"


class Sender(Protocol):
    name: str  # safe to log and show: never the secret part of an address

    def wants(self, event: NotifyEvent) -> bool: ...

    async def send(self, event: NotifyEvent, body: bytes) -> None: ...

    async def close(self) -> None: ...


class WebhookSender:
    """POST the event JSON, signed with the target's secret."""

    def __init__(self, target: WebhookTarget, index: int) -> None:
        self._url = target.url.get_secret_value()
        self._secret = target.secret.get_secret_value() if target.secret else None
        self._events = frozenset(target.events)
        self.name = f"webhook[{index}] {describe_url(self._url)}"
        self._session: Any = None

    def wants(self, event: NotifyEvent) -> bool:
        return event.event in self._events

    async def send(self, event: NotifyEvent, body: bytes) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json", "User-Agent": "printforge-notify"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        headers["X-Printforge-Event"] = event.event
        try:
            async with self._session.post(self._url, data=body, headers=headers) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                await resp.read()
        except (aiohttp.ClientError, OSError) as err:
            # `from None`: an aiohttp error quotes the full address, token and all.
            raise ConnectionLost(f"{self.name}: {type(err).__name__}") from None
        if 200 <= status < 300:
            return
        if status == 429:
            raise RateLimited(f"{self.name}: HTTP 429", retry_after=_seconds(retry_after))
        if status in _RETRYABLE_STATUS:
            raise TransientError(f"{self.name}: HTTP {status}")
        raise PermanentError(f"{self.name}: HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AppriseSender:
    """One Apprise URL; every event, as a title and one line of text."""

    def __init__(self, url: str, index: int) -> None:
        import apprise

        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ConfigError(
                f"notify.apprise[{index}]: Apprise does not understand this URL"
                f" ({describe_url(url)}); see https://github.com/caronc/apprise/wiki"
            )
        self.name = f"apprise[{index}] {describe_url(url)}"

    def wants(self, event: NotifyEvent) -> bool:
        return event.event in EVENT_KINDS

    async def send(self, event: NotifyEvent, body: bytes) -> None:
        ok = await self._apprise.async_notify(body=event.text(), title=event.title())
        if not ok:
            # Apprise reports only "not delivered"; a service down is the usual cause.
            raise ConnectionLost(f"{self.name}: not delivered")

    async def close(self) -> None:
        return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
