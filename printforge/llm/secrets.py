"""Where a provider's key comes from, and scrubbing it out of any text we pass on."""

from __future__ import annotations

import os

from printforge.llm.config import ProviderSettings

__all__ = ["api_key_of", "scrub"]


def api_key_of(settings: ProviderSettings) -> str | None:
    """The key from config, else from the named environment variable; never logged."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    if settings.api_key_env:
        return os.environ.get(settings.api_key_env) or None
    return None


def scrub(text: str, settings: ProviderSettings) -> str:
    """`text` with the provider's key replaced, for error messages built from server replies."""
    key = api_key_of(settings)
    if key and len(key) >= 4:
        text = text.replace(key, "***")
    return text
