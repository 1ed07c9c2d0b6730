"""The [bus] config section: the MQTT broker the farm stands on."""

from __future__ import annotations

import socket
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from printforge.runtime.errors import ConfigError

__all__ = [
    "BrokerAddress",
    "BusSettings",
    "Origin",
    "origin_text",
    "parse_broker",
    "parse_origin",
]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
HTTP_PORTS = {"http": 80, "https": 443}
MIN_FARM_KEY = 32

# (scheme, host, port): what two addresses must share to be the same origin.
Origin = tuple[str, str, int]


def parse_origin(url: str) -> Origin:
    """The origin of an http(s) URL; ValueError for anything else (other schemes, credentials).

    yarl parses it, as aiohttp will when it fetches, so the origin checked here is the one
    connected to: two URL parsers that disagree are how address checks get bypassed.
    """
    from yarl import URL

    try:
        parsed = URL(url)
    except (ValueError, TypeError) as err:
        raise ValueError(f"not a URL: {err}") from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in HTTP_PORTS:
        raise ValueError(f"only http:// and https:// are fetched, not {scheme or 'no'} scheme")
    if parsed.user is not None or parsed.password is not None:
        raise ValueError("credentials do not belong in the URL")
    host = (parsed.host or "").lower().rstrip(".")
    if not host:
        raise ValueError("no host")
    return scheme, host, parsed.port or HTTP_PORTS[scheme]


def _bare_origin(url: str) -> str:
    """An origin as configured: scheme, host and port only (a path would suggest a scope that
    is not checked)."""
    from yarl import URL

    origin = parse_origin(url)
    parsed = URL(url)
    if parsed.path not in ("", "/") or parsed.query_string or parsed.fragment:
        raise ValueError("an origin is scheme://host[:port], without a path or query")
    return origin_text(origin)


def origin_text(origin: Origin) -> str:
    scheme, host, port = origin
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


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
    # Secrets live here (password, farm_key): a validation error must never echo an input.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

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
    farm_key: SecretStr | None = Field(
        None,
        description="shared secret (>= 32 characters) that signs every farm message;"
        " preferably PRINTFORGE_BUS__FARM_KEY",
    )
    signature_window_s: float = Field(
        30.0,
        ge=1.0,
        le=300.0,
        description="a signed message is accepted this long either side of the receiver's"
        " clock (clock skew between hosts); its nonce is remembered as long",
    )
    artifact_origins: list[str] = Field(
        default_factory=list,
        description="http(s) origins a node may fetch a started file from (default: none)",
    )
    announce_origin: str | None = Field(
        None,
        description="this orchestrator's own http(s) origin, sent with a start by url;"
        " a node trusts it only in a signed command",
    )
    topic_layout: Literal["flat", "node"] = Field(
        "flat",
        description="node: a node publishes under {prefix}/nodes/{node}/printers/…, which a"
        " broker ACL can confine to that node's user",
    )

    @field_validator("farm_key")
    @classmethod
    def _farm_key_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        # The message names the length only: the key itself must never reach a log or screen.
        if value is not None and len(value.get_secret_value()) < MIN_FARM_KEY:
            raise ValueError(
                f"must have at least {MIN_FARM_KEY} characters"
                f" (it has {len(value.get_secret_value())}); make one with"
                " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @field_validator("artifact_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(_bare_origin(item))
            except ValueError as err:
                raise ValueError(f"artifact_origins: {item!r}: {err}") from None
        return out

    @field_validator("announce_origin")
    @classmethod
    def _announce_is_an_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return _bare_origin(value)
        except ValueError as err:
            raise ValueError(f"announce_origin: {value!r}: {err}") from None

    def farm_key_text(self) -> str | None:
        return self.farm_key.get_secret_value() if self.farm_key else None

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
