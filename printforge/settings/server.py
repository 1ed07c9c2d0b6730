"""The [server] config section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServerSettings"]


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)
    cors_origins: list[str] = Field(
        default_factory=list, description='origins allowed to call the API from a browser; "*" all'
    )
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="HTTP bodies, uploads")
    max_ws_message_bytes: int = Field(1024 * 1024, ge=1024)
    max_batch: int = Field(
        100,
        ge=1,
        le=10_000,
        description="requests in one JSON-RPC batch; a longer batch is refused whole (-32600)",
    )
    rate_limit_per_minute: int = Field(600, ge=1, description="calls per API key")
    rate_limit_burst: int | None = Field(None, ge=1, description="default: a tenth of a minute")
    auth_required: bool = True
    metrics_public: bool = Field(True, description="/metrics without a key, for Prometheus")
    max_heating: int = Field(2, ge=1, description="printers allowed to heat up at once")
    status_interval_s: float = Field(
        0.25, gt=0, le=10, description="printer.status pushes are coalesced per printer"
    )
    ws_queue_size: int = Field(
        2000, ge=10, description="events buffered for one slow websocket before it is closed"
    )
