"""BusClient against a real mosquitto: a QoS 1 publish caught by the loss of its session."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from pathlib import Path

import pytest

from printforge.hardware.mqtt.client import BusClient
from printforge.hardware.mqtt.config import BusSettings
from tests.fakes.broker import Mosquitto

pytestmark = [pytest.mark.mqtt, pytest.mark.asyncio]


def _settings(url: str) -> BusSettings:
    return BusSettings(broker=url, reconnect_initial_s=0.05, reconnect_max_s=0.5)


async def test_publish_in_flight_when_the_broker_dies_reports_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A stopped broker never sends the PUBACK, so the publish is certainly in flight when the
    # broker is then killed; the session ends before aiomqtt gives up on the publish. That
    # used to raise InvalidStateError out of publish_if_connected and killed the node's status
    # heartbeat (and, through publish(), its event and command loops) at a broker restart.
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    client = BusClient(_settings(broker.url), client_id=f"t-{uuid.uuid4().hex[:8]}")
    try:
        await client.start(wait_s=10)
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            pending = asyncio.create_task(
                client.publish_if_connected("t/x", b"payload", qos=1, retain=True)
            )
            for _ in range(5):  # let the task hand the message to the socket
                await asyncio.sleep(0)
            assert not pending.done()
        finally:
            broker.kill()  # SIGKILL reaches a stopped process too
        async with asyncio.timeout(30):
            assert await pending is False
        # A lost broker is a warning the supervisor handles, not an error for the operator.
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # And the client still works once a broker is back on the same port.
        broker.start()
        async with asyncio.timeout(30):
            await client.publish("t/y", b"after", qos=1)
    finally:
        await client.stop()
        broker.stop()
