"""One supervised MQTT connection: reconnect with capped backoff, resubscribe, publish that waits.

aiomqtt gives a connection as a context manager; the supervisor loop here re-enters it after
every loss (the pattern aiomqtt documents for reconnection) so owners never see a dead client:
`publish()` waits for the next connection instead of failing, and subscriptions and on-connect
hooks (retained status, for example) are replayed on every new session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import BaseModel, TypeAdapter, ValidationError

from printforge.hardware.mqtt.config import BrokerAddress, BusSettings
from printforge.hardware.mqtt.signing import Signer
from printforge.runtime import metrics
from printforge.runtime.errors import AuthError, ConfigError, OperationTimeout
from printforge.runtime.health import HealthRegistry
from printforge.runtime.retry import Backoff

__all__ = ["BusClient", "MessageHandler", "decode", "note_malformed", "tls_context"]

log = logging.getLogger(__name__)


class _LostLinkIsNoError(logging.Filter):
    """paho logs a dropped socket at ERROR; the supervisor already says it at WARNING and
    reconnects, so an operator's ERROR alerts would fire on every broker restart for nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith(
            ("failed to receive on socket", "failed to send on socket")
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_paho_log = logging.getLogger("aiomqtt")
_paho_log.addFilter(_LostLinkIsNoError())

MessageHandler = Callable[[str, bytes, bool], None]
ConnectHook = Callable[[], Awaitable[None]]
M = TypeVar("M")

_malformed_seen = 0
_AUTH_RC = frozenset({4, 5, 134, 135})


def decode(shape: type[M] | TypeAdapter[M], payload: bytes, *, kind: str, topic: str) -> M | None:
    """Parse one JSON payload; a bad one is counted and logged, never raised."""
    try:
        if isinstance(shape, TypeAdapter):
            return shape.validate_json(payload)
        assert issubclass(shape, BaseModel)
        return shape.model_validate_json(payload)  # type: ignore[return-value]
    except ValidationError as err:
        note_malformed(kind, topic, err.errors(include_url=False, include_input=False)[:2])
        return None


def note_malformed(kind: str, topic: str, detail: object) -> None:
    """Count one unusable message and log it (the first 20, then every 1000th)."""
    global _malformed_seen
    metrics.MQTT_MALFORMED.labels(kind).inc()
    _malformed_seen += 1
    # The first few in full, then a sample: a broken publisher must not flood the log.
    if _malformed_seen <= 20 or _malformed_seen % 1000 == 0:
        log.warning(
            "malformed %s message on %s (%d so far): %s", kind, topic, _malformed_seen, detail
        )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails: paho drops such a socket without closing it."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (OSError, ValueError):
            self.close()
            raise


def tls_context(settings: BusSettings, address: BrokerAddress) -> ssl.SSLContext | None:
    """The TLS context for an mqtts:// broker (blocking: reads certificate files)."""
    if not address.tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=settings.tls_ca)
        if settings.tls_cert:
            ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"bus TLS files cannot be used: {err}") from err
    if settings.tls_insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.sslsocket_class = _ClosingSSLSocket
    return ctx


class BusClient:
    """A long-lived connection to one broker, owned by one component.

    Args:
        settings: the broker address, credentials and backoff limits.
        client_id: unique per connection; a second client with the same id evicts the first.
        on_message: called for every message as (topic, payload, retained); must not block.
        subscriptions: topic filters and their QoS, subscribed on every (re)connection.
        will: published by the broker if this connection dies without saying goodbye.
        signer: signs every payload this connection publishes (and its will), at the moment
            it goes out: a publish that waited out a broker outage still carries a fresh time.
    """

    def __init__(
        self,
        settings: BusSettings,
        *,
        client_id: str,
        on_message: MessageHandler | None = None,
        subscriptions: list[tuple[str, int]] | None = None,
        will: aiomqtt.Will | None = None,
        health: HealthRegistry | None = None,
        name: str = "bus",
        address: BrokerAddress | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.address = address or settings.address()
        self.client_id = client_id
        self.name = name
        self._on_message = on_message
        self._subscriptions = list(subscriptions or [])
        self._will = will
        self._health = health
        self._username = username if username is not None else settings.username
        self._password = (
            password
            if password is not None
            else (settings.password.get_secret_value() if settings.password else None)
        )
        self._tls = tls
        self._hooks: list[ConnectHook] = []
        self._client: aiomqtt.Client | None = None
        # Set when the current session ends: a publish waiting for its PUBACK on a dead
        # session would otherwise sit out aiomqtt's whole timeout.
        self._session_lost = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._hold_off_s = 0.0
        self.connected = asyncio.Event()
        self.connections = 0
        self.last_error: str | None = None
        self.auth_failed = False

    # lifecycle -------------------------------------------------------------------------------
    def on_connect(self, hook: ConnectHook) -> None:
        """Run `hook` after every (re)connection, once subscriptions are in place."""
        self._hooks.append(hook)

    async def start(self, *, wait_s: float | None = None) -> None:
        """Start the supervisor; with `wait_s`, also wait that long for the first connection."""
        if self._runner is None:
            if self._tls is None and self.address.tls:
                self._tls = await asyncio.to_thread(tls_context, self.settings, self.address)
            self._stopping = False
            self._runner = asyncio.create_task(self._supervise(), name=f"mqtt-{self.client_id}")
        if wait_s is not None:
            await self.wait_connected(wait_s)

    async def wait_connected(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        except TimeoutError:
            if self.auth_failed:
                raise AuthError(
                    f"broker {self.address.host}:{self.address.port} refused the credentials"
                ) from None
            raise OperationTimeout(
                f"no connection to broker {self.address.host}:{self.address.port}"
                f" within {timeout_s:g}s ({self.last_error or 'no answer'})"
            ) from None

    async def stop(self) -> None:
        """Disconnect cleanly (the broker does not publish the will)."""
        self._stopping = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self.connected.clear()

    def sever(self, hold_off_s: float = 0.0) -> None:
        """Cut the TCP connection without a DISCONNECT, as a crash or cable pull would.

        The broker then publishes the will. Used for fault injection by the simulators.
        """
        self._hold_off_s = hold_off_s
        client = self._client
        # aiomqtt exposes no abort; the paho socket underneath is the only way to drop the
        # link without the polite DISCONNECT that would suppress the will.
        sock = client._client.socket() if client is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # supervisor --------------------------------------------------------------------------------
    def _new_client(self) -> aiomqtt.Client:
        will = self._will
        if will is not None and self.signer is not None and will.payload:
            # Signed per session: the will is as old as the connection when the broker sends it.
            will = aiomqtt.Will(
                topic=will.topic,
                payload=self.signer.sign(will.topic, will.payload),  # type: ignore[arg-type]
                qos=will.qos,
                retain=will.retain,
            )
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=self.client_id,
            username=self._username,
            password=self._password,
            will=will,
            keepalive=self.settings.keepalive_s,
            tls_context=self._tls,
            # Our context checks the host name unless told not to; paho must not check again
            # (its fallback uses ssl.match_hostname, gone from newer Pythons).
            tls_insecure=(not self._tls.check_hostname) if self._tls else None,
            timeout=10.0,
            # Commands are small and latency-bound: no Nagle delay behind the last PUBACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            logger=_paho_log,
        )
        # Many commands in flight at once is this client's normal load, not a warning sign.
        client.pending_calls_threshold = 10_000
        return client

    async def _supervise(self) -> None:
        # Jitter: a farm of nodes losing one broker must not reconnect in lockstep.
        backoff = Backoff(
            self.settings.reconnect_initial_s, self.settings.reconnect_max_s, jitter=0.5
        )
        failures = 0
        was_up = False
        while not self._stopping:
            self._client = client = self._new_client()
            self._session_lost = asyncio.Event()
            try:
                async with client:
                    for topic_filter, qos in self._subscriptions:
                        await client.subscribe(topic_filter, qos)
                    self.connections += 1
                    self.auth_failed = False
                    self.last_error = None
                    failures = 0
                    self.connected.set()
                    if not was_up:
                        log.info("%s: connected to %s:%s", self.name, *self._hostport())
                    was_up = True
                    if self._health is not None:
                        self._health.record_success(self.name, 0.0, component="broker")
                    for hook in self._hooks:
                        await hook()
                    async for message in client.messages:
                        self._dispatch(message)
            except aiomqtt.MqttError as err:
                self._note_failure(err, was_up)
                was_up = False
            except Exception as err:
                # Whatever breaks one session (a TLS error, a hook bug), the supervisor lives on.
                log.exception("%s: session failed", self.name)
                self._note_failure(aiomqtt.MqttError(f"{type(err).__name__}: {err}"), was_up)
                was_up = False
            finally:
                self.connected.clear()
                self._session_lost.set()
            if self._stopping:
                break
            hold, self._hold_off_s = self._hold_off_s, 0.0
            failures += 1
            await asyncio.sleep(max(hold, backoff.delay(failures)))

    def _hostport(self) -> tuple[str, int]:
        return self.address.host, self.address.port

    def _note_failure(self, err: Exception, was_up: bool) -> None:
        text = str(err)
        code = getattr(err, "rc", None)
        # CONNACK 4/5 (MQTT 3.1.1) arrive from paho 2 as reason codes 134/135 (MQTT 5 numbering).
        if isinstance(err, MqttConnectError) and getattr(code, "value", code) in _AUTH_RC:
            self.auth_failed = True
        if was_up or text != self.last_error:
            # State changes only: a broker that stays down is logged once, not every retry.
            log.warning("%s: broker %s:%s lost/unreachable: %s", self.name, *self._hostport(), text)
        self.last_error = text
        if self._health is not None:
            self._health.record_failure(self.name, text, component="broker")

    def _dispatch(self, message: aiomqtt.Message) -> None:
        if self._on_message is None:
            return
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode() if payload is not None else b""
        try:
            self._on_message(message.topic.value, bytes(payload), bool(message.retain))
        except Exception:
            # One bad message must never take the connection down with it.
            log.exception("%s: handler failed for %s", self.name, message.topic.value)

    # publishing --------------------------------------------------------------------------------
    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        """Publish, waiting through outages; with `timeout_s`, OperationTimeout after that long."""
        async with asyncio.timeout(timeout_s):
            while True:
                await self.connected.wait()
                client = self._client
                if client is None:
                    continue
                if await self._publish_on(client, topic, payload, qos, retain):
                    return
                # The session died under us: the supervisor reconnects, we publish again.
                # A duplicate is harmless: commands and events carry ids.
                await asyncio.sleep(0.05)

    async def _publish_on(
        self, client: aiomqtt.Client, topic: str, payload: bytes | str, qos: int, retain: bool
    ) -> bool:
        lost = self._session_lost
        if lost.is_set():
            return False
        if self.signer is not None and payload:
            payload = self.signer.sign(topic, payload)
        if qos == 0:
            try:
                await client.publish(topic, payload, qos=0, retain=retain, timeout=10.0)
            except aiomqtt.MqttError:
                return False
            return True
        pub = asyncio.ensure_future(
            client.publish(topic, payload, qos=qos, retain=retain, timeout=10.0)
        )
        gone = asyncio.ensure_future(lost.wait())
        # Whatever the abandoned publish ends with later must not be logged as "never
        # retrieved": the session is gone and the caller already has its answer.
        pub.add_done_callback(_retrieve)
        try:
            await asyncio.wait({pub, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not pub.done():
                pub.cancel()
        # cancel() only asks: the task is not done until the loop runs it once more, so a
        # publish overtaken by the end of its session has neither a result nor an exception.
        if not pub.done() or pub.cancelled():
            return False
        return pub.exception() is None

    async def publish_if_connected(
        self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False
    ) -> bool:
        """Best effort, for messages a later one supersedes (status heartbeats)."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        return await self._publish_on(client, topic, payload, qos, retain)

    @staticmethod
    def will_of(topic: str, payload: bytes | str, *, retain: bool = True) -> aiomqtt.Will:
        return aiomqtt.Will(topic=topic, payload=payload, qos=1, retain=retain)

    def describe(self) -> dict[str, Any]:
        return {
            "broker": f"{self.address.host}:{self.address.port}",
            "tls": self.address.tls,
            "connected": self.connected.is_set(),
            "connections": self.connections,
            "last_error": self.last_error,
        }
