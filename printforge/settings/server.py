"""The [server] config section."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ServerSettings"]


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)
    cors_origins: list[str] = Field(
        default_factory=list, description='origins allowed to call the API from a browser; "*" all'
    )
    max_request_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="JSON bodies (/api/rpc, REST); larger ones get 413 before they are read",
    )
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="POST /api/uploads, streamed to disk"
    )
    max_json_depth: int = Field(
        32, ge=2, le=500, description="nesting of a JSON message; deeper ones are refused (-32600)"
    )
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
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (e.g. 127.0.0.1) whose X-Forwarded-For is believed",
    )
    min_free_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="below this much free space in data_dir: submits refused, not ready",
    )
    metrics_public: bool = Field(True, description="/metrics without a key, for Prometheus")
    max_heating: int = Field(2, ge=1, description="printers allowed to heat up at once")
    status_interval_s: float = Field(
        0.25, gt=0, le=10, description="printer.status pushes are coalesced per printer"
    )
    ws_queue_size: int = Field(
        2000, ge=10, description="events buffered for one slow websocket before it is closed"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an IP address or network") from None
        return value
