"""Farm commands signed with the farm key, and url fetches only from trusted origins, against a
real mosquitto, real `printforge node` processes and the orchestrator's own FarmClient and
discovery (issue 11, items 4 and 6). A raw MQTT client plays whoever else is on the broker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from printforge.hardware.mqtt import node as node_module
from printforge.hardware.mqtt.client import BusClient
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.discovery import BusDiscovery
from printforge.hardware.mqtt.farm import FarmClient
from printforge.hardware.mqtt.messages import (
    ControlCommand,
    EventMessage,
    Reply,
    SendCommand,
    StartCommand,
    StatusMessage,
)
from printforge.hardware.mqtt.node import BusNode, EndpointFaults
from printforge.hardware.mqtt.remote import RemotePrinterDriver
from printforge.hardware.mqtt.signing import Signer, Verifier
from printforge.hardware.mqtt.topics import Topics
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.orchestrator.printers import PrinterManager
from printforge.runtime.errors import AuthError, OperationTimeout
from printforge.settings import load_settings
from tests.fakes.broker import Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt

REPO = Path(__file__).resolve().parents[2]
KEY = "farm-key-for-tests-" + "k" * 24
OPEN_WARNING = "anyone on the broker can drive its printers"


# processes -----------------------------------------------------------------------------------


def node_process(
    url: str, prefix: str, node_id: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "printforge", "node", "--broker", url),
            *("--topic-prefix", prefix, "--node-id", node_id),
            *("--status-interval", "0.2", "--sim-speed", "500", *extra),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_BUS__")},
            "PRINTFORGE_ENV": "development",
            **(env or {}),
        },
    )


async def ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    if not line:
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"node exited: {err}")
    return line


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then its stderr (SIGKILL if it does not leave in time)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    return err


@contextlib.asynccontextmanager
async def running_node(
    url: str, prefix: str, node_id: str, *extra: str, env: dict[str, str] | None = None
) -> AsyncIterator[subprocess.Popen[str]]:
    proc = node_process(url, prefix, node_id, *extra, env=env)
    try:
        await ready(proc)
        yield proc
    finally:
        stop(proc)


class Raw:
    """An MQTT client with no farm key: anyone else on the broker."""

    def __init__(self, url: str, prefix: str, printer_id: str) -> None:
        self.topics = Topics(prefix)
        self.printer_id = printer_id
        self.replies: dict[str, asyncio.Future[Reply]] = {}
        self.reply_payloads: dict[str, bytes] = {}
        self.events: list[EventMessage] = []
        self.event_arrived = asyncio.Event()
        self.statuses: list[bytes] = []
        self.client = BusClient(
            BusSettings(broker=url, topic_prefix=prefix, reconnect_initial_s=0.05),
            client_id=f"raw-{uuid.uuid4().hex[:8]}",
            on_message=self._on_message,
            subscriptions=[
                (self.topics.reply(printer_id), 1),
                (self.topics.events(printer_id), 1),
                (self.topics.status(printer_id), 1),
            ],
        )

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        kind = topic.rsplit("/", 1)[1]
        if kind == "reply":
            reply = Reply.model_validate_json(payload)
            self.reply_payloads[reply.id] = payload
            fut = self.replies.setdefault(reply.id, asyncio.get_running_loop().create_future())
            if not fut.done():
                fut.set_result(reply)
        elif kind == "events":
            self.events.append(EventMessage.model_validate_json(payload))
            self.event_arrived.set()
        elif kind == "status" and payload:
            self.statuses.append(payload)

    async def send(self, payload: bytes | str, cmd_id: str, timeout: float = 15.0) -> Reply:
        fut = self.replies.setdefault(cmd_id, asyncio.get_running_loop().create_future())
        await self.client.publish(self.topics.cmd(self.printer_id), payload, qos=1)
        return await asyncio.wait_for(fut, timeout)

    async def event(self, match: Callable[[EventMessage], bool], timeout: float = 15.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for e in self.events:
                    if match(e):
                        return e
                self.event_arrived.clear()
                await self.event_arrived.wait()


@contextlib.asynccontextmanager
async def raw_client(url: str, prefix: str, printer_id: str) -> AsyncIterator[Raw]:
    raw = Raw(url, prefix, printer_id)
    await raw.client.start(wait_s=10)
    try:
        yield raw
    finally:
        await raw.client.stop()


def prefix_() -> str:
    return f"a{uuid.uuid4().hex[:10]}/v1"


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - state spread over several objects
            await asyncio.sleep(0.05)


def farm_settings(url: str, prefix: str, **kw: object) -> BusSettings:
    defaults: dict[str, object] = {
        "broker": url,
        "topic_prefix": prefix,
        "command_retry_s": 0.5,
        "command_timeout_s": 15.0,
        "reconnect_initial_s": 0.05,
    }
    return BusSettings.model_validate({**defaults, **kw})


# item 4: signed commands ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_node_with_a_farm_key_refuses_unsigned_and_forged_commands(
    mosquitto_broker: Mosquitto,
) -> None:
    url, prefix = mosquitto_broker.url, prefix_()
    pid = "sec.virtual-1"
    env = {"PRINTFORGE_BUS__FARM_KEY": KEY}
    async with (
        running_node(url, prefix, "sec", "--virtual", "1", env=env),
        raw_client(url, prefix, pid) as raw,
    ):
        topic = raw.topics.cmd(pid)

        # Emergency stop included: unsigned, it is refused and nothing happens.
        unsigned = ControlCommand(id="e-unsigned", op="emergency_stop").model_dump_json()
        reply = await raw.send(unsigned, "e-unsigned")
        assert not reply.ok and reply.error is not None
        assert reply.error.code == "unauthorized" and "unsigned" in reply.error.message
        event = await raw.event(lambda e: e.data.get("command_id") == "e-unsigned")
        assert event.kind == "command.rejected" and event.data["code"] == "unauthorized"

        forged = Signer(b"another-key-" + b"x" * 30).sign(
            topic, ControlCommand(id="e-forged", op="emergency_stop").model_dump_json()
        )
        reply = await raw.send(forged, "e-forged")
        assert reply.error is not None and reply.error.code == "unauthorized"
        assert "bad signature" in reply.error.message

        # Right key, but two minutes old (a captured command played back later).
        stale_signer = Signer(KEY.encode(), clock=lambda: __import__("time").time() - 120)
        stale = stale_signer.sign(topic, SendCommand(id="s-stale", line="G28").model_dump_json())
        reply = await raw.send(stale, "s-stale")
        assert reply.error is not None and reply.error.code == "unauthorized"
        assert "behind this host's clock" in reply.error.message

        # The printer never stopped; a command signed with the farm key is obeyed.
        signer = Signer(KEY.encode())
        ping = signer.sign(topic, ControlCommand(id="p-ok", op="ping").model_dump_json())
        reply = await raw.send(ping, "p-ok")
        assert reply.ok and reply.result["state"] == "idle"

        # What the node says is signed with the same key, for its own topics.
        verifier = Verifier(KEY.encode())
        assert verifier.check(raw.topics.reply(pid), raw.reply_payloads["p-ok"]).ok
        assert raw.statuses
        assert verifier.authenticate(raw.topics.status(pid), raw.statuses[-1]).ok


@pytest.mark.asyncio
async def test_a_replayed_command_is_refused_even_once_its_id_is_forgotten(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The node keeps few command ids here, so the replay arrives after its id was forgotten:
    # only the remembered nonce can tell it from a new command.
    monkeypatch.setattr(node_module, "SEEN_COMMANDS", 4)
    url, prefix = mosquitto_broker.url, prefix_()
    settings = farm_settings(url, prefix, node_id="rp", farm_key=KEY)
    driver = VirtualDriver(
        "p1",
        VirtualConfig.model_validate({"sim_speed": 5000.0}),
        PrinterProfile(name="generic-220"),
    )
    await driver.start()
    node = BusNode(settings, [driver], spool_dir=tmp_path / "spool")
    await node.start(wait_s=10)
    endpoint = node.endpoints[0]
    try:
        async with raw_client(url, prefix, endpoint.printer_id) as raw:
            topic = raw.topics.cmd(endpoint.printer_id)
            signer = Signer(KEY.encode())
            captured = signer.sign(topic, SendCommand(id="move", line="G28").model_dump_json())
            assert (await raw.send(captured, "move")).ok
            assert endpoint.commands_handled == 1
            for i in range(6):
                cmd = ControlCommand(id=f"ping-{i}", op="ping").model_dump_json()
                assert (await raw.send(signer.sign(topic, cmd), f"ping-{i}")).ok
            handled = endpoint.commands_handled
            del raw.replies["move"]
            replayed = await raw.send(captured, "move")
            assert replayed.error is not None and replayed.error.code == "unauthorized"
            assert "replayed" in replayed.error.message
            assert endpoint.commands_handled == handled  # not executed again
    finally:
        await node.stop()
        await driver.stop()


@pytest.mark.asyncio
async def test_the_orchestrator_ignores_a_forged_printer_and_prints_on_a_signed_one(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, prefix = mosquitto_broker.url, prefix_()
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "bus": {
                "broker": url,
                "topic_prefix": prefix,
                "farm_key": KEY,
                "command_retry_s": 0.5,
                "stale_after_s": 5.0,
                "reconnect_initial_s": 0.05,
            },
        }
    )
    manager = PrinterManager(settings)
    disc = BusDiscovery(settings, manager)
    await disc.start(wait_s=10)
    farm = disc.farm
    events: list[EventMessage] = []
    farm.add_event_listener(events.append)
    env = {"PRINTFORGE_BUS__FARM_KEY": KEY}
    try:
        async with (
            running_node(url, prefix, "good", "--virtual", "1", env=env),
            raw_client(url, prefix, "ghost.p1") as ghost,
        ):
            topics = Topics(prefix)
            caplog.set_level(logging.WARNING, logger="printforge.hardware.mqtt.farm")
            # A printer nobody signed for, forty times over: never listed, warned about once.
            forged = StatusMessage(id="ghost.p1", state=PrinterState.IDLE, node="ghost")
            for _ in range(20):
                await ghost.client.publish(topics.status("ghost.p1"), forged.model_dump_json())
                other = Signer(b"z" * 40).sign(topics.status("ghost.p1"), forged.model_dump_json())
                await ghost.client.publish(topics.status("ghost.p1"), other)
            # ...nor a forged event about the real printer.
            fake_event = EventMessage(printer="good.virtual-1", kind="job.completed", job_id="fake")
            await ghost.client.publish(
                topics.events("good.virtual-1"), fake_event.model_dump_json()
            )
            await until(lambda: "good.virtual-1" in manager.names())
            await until(lambda: farm.forged >= 41)
            assert "ghost.p1" not in farm.statuses and "ghost.p1" not in manager.names()
            drops = [r for r in caplog.records if "dropped a" in r.getMessage()]
            assert len(drops) == 1, [r.getMessage() for r in drops]

            # A forged reply to a command for a printer with no node: never taken as the answer.
            ghost_topics = Topics(prefix)

            async def answer_forged() -> None:
                q: asyncio.Queue[bytes] = asyncio.Queue()
                answerer = BusClient(
                    BusSettings(broker=url, topic_prefix=prefix),
                    client_id=f"fake-{uuid.uuid4().hex[:6]}",
                    on_message=lambda t, p, r: q.put_nowait(p),
                    subscriptions=[(ghost_topics.cmd("ghost.p1"), 1)],
                )
                await answerer.start(wait_s=10)
                try:
                    while True:
                        cmd = json.loads(await q.get())
                        fake = Reply(id=cmd["id"], ok=True, result={"state": "idle"})
                        await answerer.publish(
                            ghost_topics.reply("ghost.p1"), fake.model_dump_json()
                        )
                finally:
                    await answerer.stop()

            forger = asyncio.create_task(answer_forged())
            try:
                with pytest.raises(OperationTimeout):
                    await farm.request(
                        "ghost.p1", ControlCommand(op="ping"), timeout_s=3.0, retry_s=0.5
                    )
            finally:
                forger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await forger

            # The real, signed printer prints.
            driver = manager.get("good.virtual-1")
            assert isinstance(driver, RemotePrinterDriver)
            await until(lambda: manager.available("good.virtual-1"))
            gcode = write_gcode(tmp_path, numbered_moves_gcode(100))
            progress = [p async for p in driver.stream(gcode, job_id="signed-job")]
            assert progress[-1].fraction == 1.0
            await until(lambda: any(e.kind == "job.completed" for e in events))
            assert all(e.job_id != "fake" for e in events)
    finally:
        await disc.stop()


@pytest.mark.asyncio
async def test_a_signed_farm_is_still_read_by_an_orchestrator_without_the_key(
    mosquitto_broker: Mosquitto,
) -> None:
    # Receivers ignore unknown keys: a keyless orchestrator still sees the signed printer; its
    # commands are refused at once, saying why, instead of timing out.
    url, prefix = mosquitto_broker.url, prefix_()
    farm = FarmClient(farm_settings(url, prefix))
    await farm.start(wait_s=10)
    try:
        env = {"PRINTFORGE_BUS__FARM_KEY": KEY}
        async with running_node(url, prefix, "old", "--virtual", "1", env=env):
            await until(lambda: "old.virtual-1" in farm.statuses)
            assert farm.statuses["old.virtual-1"].state is PrinterState.IDLE
            remote = RemotePrinterDriver(
                "old.virtual-1",
                RemotePrinterDriver.Config(),
                PrinterProfile(name="generic-220"),
                farm=farm,
            )
            await remote.start()
            with pytest.raises(AuthError) as err:
                await remote.ping()
            assert err.value.code == "unauthorized"
            await remote.stop()
    finally:
        await farm.stop()


@pytest.mark.asyncio
async def test_an_open_node_warns_once_and_a_keyed_node_not_at_all(
    mosquitto_broker: Mosquitto,
) -> None:
    url = mosquitto_broker.url
    open_node = node_process(url, prefix_(), "open", "--virtual", "2")
    keyed = node_process(
        url, prefix_(), "keyed", "--virtual", "2", env={"PRINTFORGE_BUS__FARM_KEY": KEY}
    )
    try:
        await ready(open_node)
        await ready(keyed)
    finally:
        open_err = stop(open_node)
        keyed_err = stop(keyed)
    assert open_err.count(OPEN_WARNING) == 1, open_err
    assert OPEN_WARNING not in keyed_err
    assert KEY not in keyed_err


# item 6: fetches only from trusted origins -----------------------------------------------------


class Listener:
    """A local HTTP server that counts every connection made to it."""

    def __init__(self, body: bytes = b"", redirect_to: str | None = None) -> None:
        self.body = body
        self.redirect_to = redirect_to
        self.connections = 0
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 5)

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            self.requests.append(head.split(b"\r\n", 1)[0].decode())
            if self.redirect_to:
                writer.write(
                    f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                )
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                    + f"Content-Length: {len(self.body)}\r\n\r\n".encode()
                    + self.body
                )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()


def fresh_gcode() -> bytes:
    """A file no spool has yet (a node keeps files by sha256, across runs in a temp folder):
    a fetch that must happen is not skipped for a copy already there."""
    return (numbered_moves_gcode(50) + f"; {uuid.uuid4().hex}\n").encode()


def start_cmd(cmd_id: str, url: str, body: bytes, origin: str | None = None) -> str:
    return StartCommand(
        id=cmd_id, job_id=cmd_id, sha256=hashlib.sha256(body).hexdigest(), url=url, origin=origin
    ).model_dump_json()


@pytest.mark.asyncio
async def test_a_node_fetches_nothing_from_an_origin_it_was_not_told_to_trust(
    mosquitto_broker: Mosquitto,
) -> None:
    url, prefix = mosquitto_broker.url, prefix_()
    body = fresh_gcode()
    async with (
        Listener(body) as listener,
        running_node(url, prefix, "nf", "--virtual", "1"),
        raw_client(url, prefix, "nf.virtual-1") as raw,
    ):
        here = listener.origin
        attempts = {
            "plain": start_cmd("u1", f"{here}/part.gcode", body),
            # Without a farm key an announced origin proves nothing: anyone can write one.
            "announced": start_cmd("u2", f"{here}/part.gcode", body, origin=here),
            "scan": start_cmd("u3", "http://127.0.0.1:22/", body),
            "file": start_cmd("u4", "file:///etc/passwd", body),
            "ftp": start_cmd("u5", f"ftp://127.0.0.1:{here.rsplit(':', 1)[1]}/part.gcode", body),
            "credentials": start_cmd("u6", f"http://user:pw@{here[7:]}/part.gcode", body),
        }
        for n, (what, payload) in enumerate(attempts.items(), start=1):
            reply = await raw.send(payload, f"u{n}")
            assert not reply.ok and reply.error is not None, what
            assert reply.error.code == "untrusted_origin", (what, reply.error)
        rejected = await raw.event(lambda e: e.job_id == "u1")
        assert rejected.kind == "command.rejected"
        assert listener.connections == 0


@pytest.mark.asyncio
async def test_a_trusted_origin_is_fetched_but_not_followed_elsewhere(
    mosquitto_broker: Mosquitto,
) -> None:
    url, prefix = mosquitto_broker.url, prefix_()
    body = fresh_gcode()
    async with (
        Listener(body) as elsewhere,
        Listener(body, redirect_to=f"{elsewhere.origin}/part.gcode") as redirector,
        Listener(body) as trusted,
    ):
        trust = ("--artifact-origin", trusted.origin, "--artifact-origin", redirector.origin)
        async with (
            running_node(url, prefix, "tf", "--virtual", "1", *trust),
            raw_client(url, prefix, "tf.virtual-1") as raw,
        ):
            reply = await raw.send(start_cmd("r1", f"{redirector.origin}/x.gcode", body), "r1")
            assert not reply.ok and redirector.connections == 1
            assert elsewhere.connections == 0  # the redirect was not followed
            reply = await raw.send(start_cmd("t1", f"{trusted.origin}/part.gcode", body), "t1")
            assert reply.ok, reply.error
            assert trusted.requests == ["GET /part.gcode HTTP/1.1"]


@pytest.mark.asyncio
async def test_the_orchestrators_own_origin_is_trusted_when_it_signs_the_start(
    mosquitto_broker: Mosquitto,
) -> None:
    url, prefix = mosquitto_broker.url, prefix_()
    body = fresh_gcode()
    env = {"PRINTFORGE_BUS__FARM_KEY": KEY}
    async with Listener(body) as server, Listener(body) as other:
        farm = FarmClient(farm_settings(url, prefix, farm_key=KEY, announce_origin=server.origin))
        await farm.start(wait_s=10)
        try:
            async with (
                running_node(url, prefix, "sf", "--virtual", "1", env=env),
                raw_client(url, prefix, "sf.virtual-1") as raw,
            ):
                await until(lambda: "sf.virtual-1" in farm.statuses)
                # Signed, but the url is not on the origin the sender announces as its own.
                signer = Signer(KEY.encode())
                topic = raw.topics.cmd("sf.virtual-1")
                wrong = start_cmd("w1", f"{other.origin}/part.gcode", body, origin=server.origin)
                reply = await raw.send(signer.sign(topic, wrong), "w1")
                assert reply.error is not None and reply.error.code == "untrusted_origin"
                assert other.connections == 0
                # The orchestrator announces its origin in the signed start: fetched.
                sha = hashlib.sha256(body).hexdigest()
                start = StartCommand(job_id="j1", sha256=sha, url=f"{server.origin}/part.gcode")
                reply = await farm.request("sf.virtual-1", start)
                assert reply.ok, reply.error
                assert server.requests == ["GET /part.gcode HTTP/1.1"]
        finally:
            await farm.stop()


@pytest.mark.asyncio
async def test_an_unsigned_copy_of_a_command_id_neither_blocks_nor_answers_the_real_one(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    url, prefix = mosquitto_broker.url, prefix_()
    settings = farm_settings(url, prefix, node_id="cp", farm_key=KEY)
    config = VirtualConfig.model_validate({"sim_speed": 5000.0})
    driver = VirtualDriver("p1", config, PrinterProfile(name="generic-220"))
    await driver.start()
    # Slow replies: a forger who sees a command has time to answer in the printer's place.
    node = BusNode(
        settings, [driver], spool_dir=tmp_path / "spool", faults=EndpointFaults(reply_delay_s=1.0)
    )
    await node.start(wait_s=10)
    farm = FarmClient(settings)
    await farm.start(wait_s=10)
    pid = node.endpoints[0].printer_id
    try:
        async with raw_client(url, prefix, pid) as raw:
            # An unsigned command under an id the orchestrator will use: refused, and the id is
            # not taken, so the real command under it still runs.
            early = await raw.send(
                SendCommand(id="same-id", line="G28").model_dump_json(), "same-id"
            )
            assert early.error is not None and early.error.code == "unauthorized"
            reply = await farm.request(pid, SendCommand(id="same-id", line="G28 X"))
            assert reply.ok, reply.error

            # An unsigned copy made on seeing the real command: its prompt `unauthorized`
            # names no nonce of ours, so the orchestrator waits for the real answer.
            copies: asyncio.Queue[bytes] = asyncio.Queue()
            spy = BusClient(
                BusSettings(broker=url, topic_prefix=prefix),
                client_id=f"spy-{uuid.uuid4().hex[:6]}",
                on_message=lambda t, p, r: copies.put_nowait(p),
                subscriptions=[(raw.topics.cmd(pid), 1)],
            )
            await spy.start(wait_s=10)
            try:
                request = asyncio.create_task(farm.request(pid, ControlCommand(op="ping")))
                seen = json.loads(await asyncio.wait_for(copies.get(), 10))
                seen.pop("sig")
                unsigned = await raw.send(json.dumps(seen), seen["id"])
                assert unsigned.error is not None and unsigned.error.code == "unauthorized"
                answer = await asyncio.wait_for(request, 15)
                assert answer.ok and answer.result["state"] == "idle"
            finally:
                await spy.stop()
    finally:
        await farm.stop()
        await node.stop()
        await driver.stop()
