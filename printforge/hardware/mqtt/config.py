"""The [bus] config section: the MQTT broker the farm stands on."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from printforge.runtime.errors import ConfigError

__all__ = ["BrokerAddress", "BusSettings", "parse_broker"]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerAddress(BaseModel):
    """Where a broker listens; `tls` follows from the `mqtts://` scheme."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    tls: bool = False


def parse_broker(url: str) -> BrokerAddress:
    """`mqtt://HOST:PORT` or `mqtts://HOST:PORT` -> BrokerAddress; ConfigError otherwise."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if "@" in parts.netloc:
        # Never used for the login, and a password there ends up in logs and on screen.
        shown = f"{parts.scheme}://…@{parts.netloc.rsplit('@', 1)[1]}"
        raise ConfigError(
            f"bus.broker {shown}: credentials do not belong in the URL; set [bus] username and"
            " PRINTFORGE_BUS__PASSWORD (printforge node: --username and --password-env)"
        )
    if parts.scheme not in DEFAULT_PORTS:
        raise ConfigError(f"bus.broker {url!r}: the scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ConfigError(f"bus.broker {url!r}: no host (expected mqtt://HOST:PORT)")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as err:
        raise ConfigError(f"bus.broker {url!r}: {err}") from None
    return BrokerAddress(host=parts.hostname, port=port, tls=parts.scheme == "mqtts")


class BusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: str | None = Field(None, description="mqtt://HOST:PORT or mqtts://HOST:PORT")
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: str | None = Field(None, description="CA bundle that signed the broker certificate")
    tls_cert: str | None = Field(None, description="client certificate, for brokers that ask")
    tls_key: str | None = None
    tls_insecure: bool = Field(False, description="skip certificate and host name checks")
    topic_prefix: str = "printforge/v1"
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5)
    reconnect_max_s: float = Field(30.0, gt=0)
    reconnect_initial_s: float = Field(0.5, gt=0)
    node_id: str | None = Field(None, description="this host's name on the bus; default hostname")
    status_interval_s: float = Field(
        1.0, gt=0, description="a node republishes each printer's status at least this often"
    )
    stale_after_s: float = Field(
        15.0, gt=0, description="a printer silent this long counts as offline"
    )
    command_timeout_s: float = Field(30.0, gt=0, description="give up on a command after this")
    command_retry_s: float = Field(
        3.0, gt=0, description="resend a command (same id) when no reply came within this"
    )
    disconnect_grace_s: float = Field(
        60.0, ge=0, description="how long a remote print survives our own broker outage"
    )
    offline_grace_s: float = Field(
        20.0, ge=0, description="a remote print survives its node being off the bus this long"
    )
    chunk_bytes: int = Field(96 * 1024, ge=1024, le=4 * 1024 * 1024)
    spool_dir: str | None = Field(None, description="where a node keeps uploaded G-code")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_has_no_wildcards(cls, value: str) -> str:
        if any(c in value for c in "+#") or value.startswith("/") or value.endswith("/"):
            raise ValueError("topic_prefix must not hold + or # nor start or end with /")
        return value

    def address(self) -> BrokerAddress:
        if not self.broker:
            raise ConfigError("no broker configured: set bus.broker or pass --broker")
        return parse_broker(self.broker)

    def resolved_node_id(self) -> str:
        return self.node_id or socket.gethostname().split(".")[0] or "node"
