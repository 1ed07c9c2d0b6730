"""`[notify]`: where farm events go. Pure configuration, no I/O (read by printforge.settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from printforge.runtime.policy import CallPolicy, PolicyOverride

__all__ = ["EVENT_KINDS", "EventKind", "NotifySettings", "WebhookTarget"]

EventKind = Literal[
    "job.completed",
    "job.failed",
    "job.needs_input",
    "printer.fault",
    "printer.bed_clear_needed",
    "spool.low",
    # issue 17: the camera or the printer's telemetry saw a print fail (it was paused)
    "print.failure_detected",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]

# A notification is worth a few tries over a few minutes, not the agents' 5-minute timeout.
_DEFAULT_RETRY = CallPolicy(
    timeout_s=10.0, max_attempts=5, backoff_initial_s=1.0, backoff_max_s=60.0
)


def _http_url(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if not text.startswith(("http://", "https://")):
        # The value itself is not echoed: a webhook address often carries a token.
        raise ValueError("must be an http:// or https:// address")
    return value


class WebhookTarget(BaseModel):
    """One `[[notify.webhooks]]` entry (or an inline table in `webhooks = [...]`)."""

    model_config = ConfigDict(extra="forbid")

    # SecretStr: webhook addresses (Slack, Discord, n8n ...) are often the credential.
    url: SecretStr
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key: X-Printforge-Signature: sha256=<hex of the body>"
    )
    events: list[EventKind] = Field(
        default_factory=lambda: list(EVENT_KINDS), description="which events; default all"
    )

    _check_url = field_validator("url")(_http_url)


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookTarget] = Field(default_factory=list)
    apprise: list[SecretStr] = Field(
        default_factory=list,
        description="Apprise URLs (ntfy://, discord://, mailto://, json:// ...); every event",
    )
    retry: PolicyOverride = Field(
        default_factory=PolicyOverride,
        description="timeout_s, max_attempts and backoff of each delivery",
    )
    dead_letter_max: int = Field(
        500, ge=1, le=100_000, description="failed deliveries kept for `notify.failed`"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks or self.apprise)

    def policy(self) -> CallPolicy:
        return self.retry.apply(_DEFAULT_RETRY)
