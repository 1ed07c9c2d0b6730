"""The [server] config section; its schema lives in `printforge.settings.server`."""

from printforge.settings.server import ServerSettings

__all__ = ["ServerSettings"]
