"""Typed application state shared by the server's modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from printforge.server.auth import KeyStore, Principal
from printforge.server.limits import RateLimiter
from printforge.server.rpc import HandlerTable

if TYPE_CHECKING:
    from printforge.orchestrator.service import Orchestrator
    from printforge.server.broadcast import Broadcaster
    from printforge.settings import Settings

__all__ = ["PRINCIPAL_KEY", "STATE_KEY", "ServerState"]


@dataclass
class ServerState:
    settings: Settings
    orch: Orchestrator
    keys: KeyStore
    table: HandlerTable
    limiter: RateLimiter
    auth_failures: RateLimiter
    broadcaster: Broadcaster | None = None
    own_orchestrator: bool = False  # started and stopped with the app
    ready: bool = False
    # printer.gcode's gate per printer (server/console_api.py)
    consoles: dict[str, Any] = field(default_factory=dict)
    # job.layer's parsed G-code, a few files (server/layer_api.py)
    layer_cache: dict[str, Any] = field(default_factory=dict)

    @property
    def uploads_dir(self) -> Path:
        return self.settings.data_dir / "uploads"


STATE_KEY = web.AppKey("printforge_state", ServerState)
# Set on each request by the auth middleware.
PRINCIPAL_KEY = web.RequestKey("printforge_principal", Principal)
