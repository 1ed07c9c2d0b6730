"""`printforge farm broker-config` against a real mosquitto running with what it wrote: a node
cannot speak for another node's printers, nobody without credentials can command one, and a
farm logged in with the generated credentials still prints (issue 11, item 5)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from printforge.cli.farm import write_password_file
from printforge.hardware.mqtt.client import BusClient
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.discovery import BusDiscovery
from printforge.hardware.mqtt.farm import FarmClient
from printforge.hardware.mqtt.messages import Reply, SendCommand, StatusMessage
from printforge.hardware.mqtt.remote import RemotePrinterDriver
from printforge.hardware.mqtt.topics import Topics
from printforge.models.printer import PrinterState
from printforge.orchestrator.printers import PrinterManager
from printforge.runtime.errors import AuthError
from printforge.settings import load_settings
from tests.fakes.broker import ConfiguredMosquitto, Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt

REPO = Path(__file__).resolve().parents[2]
PREFIX = "farmacl/v1"


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def generate(out: Path, broker_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "printforge", "farm", "broker-config", "--out", str(out)),
            *("--node", "hostA", "--node", "hostB", "--orchestrator", "orch"),
            *("--topic-prefix", PREFIX, "--broker", broker_url),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def farm_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Mosquitto]]:
    """Credentials and ACL written by the command, and a broker that uses them."""
    folder = tmp_path_factory.mktemp("acl")
    out = folder / "farm"
    broker = ConfiguredMosquitto(folder / "broker", out / "mosquitto.conf")
    done = generate(out, broker.url)
    assert done.returncode == 0, done.stderr
    broker.start()
    yield out, broker
    broker.stop()


def bus(url: str, env: dict[str, str] | None = None, **kw: object) -> BusSettings:
    values: dict[str, object] = {"broker": url, "topic_prefix": PREFIX, "reconnect_initial_s": 0.05}
    for key, value in (env or {}).items():
        values[key.removeprefix("PRINTFORGE_BUS__").lower()] = value
    values["broker"] = url  # the env file names the same broker; the test's is authoritative
    return BusSettings.model_validate({**values, **kw})


@contextlib.asynccontextmanager
async def listening(
    settings: BusSettings, filters: list[str], username: str | None = None
) -> AsyncIterator[tuple[BusClient, list[tuple[str, bytes]], asyncio.Event]]:
    got: list[tuple[str, bytes]] = []
    arrived = asyncio.Event()

    def on_message(topic: str, payload: bytes, retained: bool) -> None:
        got.append((topic, payload))
        arrived.set()

    client = BusClient(
        settings,
        client_id=f"t-{uuid.uuid4().hex[:8]}",
        on_message=on_message,
        subscriptions=[(f, 1) for f in filters],
    )
    await client.start(wait_s=10)
    try:
        yield client, got, arrived
    finally:
        await client.stop()


async def until(predicate: Callable[[], bool], arrived: asyncio.Event, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            arrived.clear()
            await arrived.wait()


def test_the_files_are_private_and_no_password_is_stored_in_the_clear(
    farm_files: tuple[Path, Mosquitto],
) -> None:
    out, _ = farm_files
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["acl", "mosquitto.conf", "node-hostA.env", "node-hostB.env", "orchestrator.env", "passwd"]
    )
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    passwd = (out / "passwd").read_text()
    for env in ("orchestrator.env", "node-hostA.env", "node-hostB.env"):
        values = read_env(out / env)
        assert values["PRINTFORGE_BUS__PASSWORD"] not in passwd
        assert len(values["PRINTFORGE_BUS__FARM_KEY"]) >= 32
    assert [line.split(":", 1)[0] for line in passwd.splitlines()] == ["orch", "hostA", "hostB"]
    assert all(":$7$" in line for line in passwd.splitlines())
    # Run again: nothing is replaced without --force (the passwords in use would be lost).
    again = generate(out, "mqtt://127.0.0.1:1")
    assert again.returncode != 0 and "--force" in again.stderr
    assert (out / "passwd").read_text() == passwd


@pytest.mark.asyncio
async def test_nobody_gets_in_without_the_generated_credentials(
    farm_files: tuple[Path, Mosquitto],
) -> None:
    _, broker = farm_files
    anonymous = BusClient(bus(broker.url), client_id="anon-1")
    wrong = BusClient(bus(broker.url, username="hostA", password="not-the-password"), client_id="w")
    try:
        for client in (anonymous, wrong):
            await client.start()
            with pytest.raises(AuthError):
                await client.wait_connected(5)
    finally:
        await anonymous.stop()
        await wrong.stop()


@pytest.mark.asyncio
async def test_a_node_cannot_publish_as_another_nodes_printer(
    farm_files: tuple[Path, Mosquitto],
) -> None:
    out, broker = farm_files
    orch_env = read_env(out / "orchestrator.env")
    a_env = read_env(out / "node-hostA.env")
    topics = Topics(PREFIX)
    fake = StatusMessage(id="hostB.p1", state=PrinterState.IDLE, node="hostB").model_dump_json()
    farm = FarmClient(bus(broker.url, orch_env, farm_key=None))
    await farm.start(wait_s=10)
    try:
        async with (
            listening(bus(broker.url, orch_env), [f"{PREFIX}/#"]) as (_, seen, arrived),
            listening(bus(broker.url, a_env), [f"{PREFIX}/#"]) as (a, a_seen, a_arrived),
        ):
            forbidden = [
                topics.status("hostB.p1", node="hostB"),  # hostB's own scope
                topics.status("hostB.p1"),  # the flat layout: nobody's scope
                topics.events("hostB.p1", node="hostB"),
                topics.reply("hostB.p1", node="hostB"),
                topics.cmd("hostA.p1", node="hostA"),  # a node never commands, not even itself
                topics.cmd("hostB.p1", node="hostB"),
            ]
            for topic in forbidden:
                await a.publish(topic, fake, qos=1)
            # Allowed by the broker (hostA's scope) but not a printer of hostA's: dropped.
            await a.publish(topics.status("hostB.p1", node="hostA"), fake, qos=1)
            own = StatusMessage(id="hostA.p1", state=PrinterState.IDLE, node="hostA")
            sentinel = topics.status("hostA.p1", node="hostA")
            await a.publish(sentinel, own.model_dump_json(), qos=1)
            await until(lambda: any(t == sentinel for t, _ in seen), arrived)
            got = [t for t, _ in seen]
            assert not set(forbidden) & set(got), got
            # Same publisher, in order: once hostA.p1 is listed, the misfiled one was handled.
            await until_status(farm, "hostA.p1")
            assert "hostB.p1" not in farm.statuses
            # hostA reads no other node's commands either (nor any status or event).
            orch = BusClient(bus(broker.url, orch_env), client_id=f"o-{uuid.uuid4().hex[:6]}")
            await orch.start(wait_s=10)
            try:
                cmd = SendCommand(line="G28").model_dump_json()
                await orch.publish(topics.cmd("hostB.p1", node="hostB"), cmd, qos=1)
                mine = topics.cmd("hostA.p1", node="hostA")
                await orch.publish(mine, cmd, qos=1)
                await until(lambda: any(t == mine for t, _ in a_seen), a_arrived)
            finally:
                await orch.stop()
            assert [t for t, _ in a_seen] == [mine]
    finally:
        await farm.stop()


@pytest.mark.asyncio
async def test_an_anonymous_client_cannot_command_a_printer_even_where_it_may_connect(
    tmp_path: Path,
) -> None:
    # allow_anonymous true: only the ACL stands between an anonymous client and the printer.
    out = tmp_path / "farm"
    broker = ConfiguredMosquitto(tmp_path / "b", out / "mosquitto.conf", allow_anonymous=True)
    assert generate(out, broker.url).returncode == 0
    broker.start()
    node_env = read_env(out / "node-hostA.env")
    del node_env["PRINTFORGE_BUS__FARM_KEY"]  # the broker alone must refuse, without signing
    orch_env = read_env(out / "orchestrator.env")
    del orch_env["PRINTFORGE_BUS__FARM_KEY"]
    proc = start_node(broker.url, node_env)
    farm = FarmClient(bus(broker.url, orch_env, command_retry_s=0.5))
    try:
        await ready(proc)
        await farm.start(wait_s=10)
        pid = "hostA.virtual-1"
        await until_status(farm, pid)
        topics = Topics(PREFIX)
        async with (
            listening(bus(broker.url, orch_env), [topics.reply(pid, node="hostA")]) as (
                _,
                replies,
                arrived,
            ),
            listening(bus(broker.url), [f"{PREFIX}/#"]) as (anon, anon_seen, _a),
        ):
            for topic in (topics.cmd(pid, node="hostA"), topics.cmd(pid)):
                anon_cmd = SendCommand(id=f"anon-{len(topic)}", line="M104 S200")
                await anon.publish(topic, anon_cmd.model_dump_json(), qos=1)
            # Then the orchestrator's own, through the same queue on the node: once its reply
            # is here, a reply to the anonymous commands would have come before it.
            reply = await farm.request(pid, SendCommand(id="orch-1", line="G90"))
            assert reply.ok
            await until(lambda: any(b'"orch-1"' in p for _, p in replies), arrived)
            ids = [Reply.model_validate_json(p).id for _, p in replies]
            assert not any(i.startswith("anon-") for i in ids), ids
            assert anon_seen == []  # and it read nothing of the farm
    finally:
        await farm.stop()
        stop(proc)
        broker.stop()


@pytest.mark.asyncio
async def test_a_farm_with_the_generated_credentials_prints(
    farm_files: tuple[Path, Mosquitto],
    tmp_path: Path,
) -> None:
    out, broker = farm_files
    node_env = read_env(out / "node-hostA.env")
    orch_env = read_env(out / "orchestrator.env")
    proc = start_node(broker.url, node_env)
    overrides: dict[str, Any] = {
        k.removeprefix("PRINTFORGE_BUS__").lower(): v for k, v in orch_env.items()
    }
    overrides["broker"] = broker.url
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "bus": {**overrides, "command_retry_s": 0.5, "reconnect_initial_s": 0.05},
        }
    )
    manager = PrinterManager(settings)
    disc = BusDiscovery(settings, manager)
    try:
        await ready(proc)
        await disc.start(wait_s=10)
        pid = "hostA.virtual-1"
        async with asyncio.timeout(30):
            while pid not in manager.names() or not manager.available(pid):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        driver = manager.get("hostA.virtual-1")
        assert isinstance(driver, RemotePrinterDriver)
        gcode = write_gcode(tmp_path, numbered_moves_gcode(100))
        progress = [p async for p in driver.stream(gcode, job_id="acl-job")]
        assert progress[-1].fraction == 1.0
    finally:
        await disc.stop()
        stop(proc)


@pytest.mark.asyncio
async def test_the_builtin_password_hashes_are_what_mosquitto_reads(tmp_path: Path) -> None:
    # mosquitto_passwd is installed here; the fallback writer must produce the same format.
    write_password_file(tmp_path / "passwd", {"u1": "s3cret-Pass:word"}, use_tool=False)
    assert stat.S_IMODE((tmp_path / "passwd").stat().st_mode) == 0o600
    snippet = tmp_path / "snippet.conf"
    snippet.write_text(f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n")
    broker = ConfiguredMosquitto(tmp_path / "b", snippet)
    broker.start()
    good = BusClient(bus(broker.url, username="u1", password="s3cret-Pass:word"), client_id="g")
    bad = BusClient(bus(broker.url, username="u1", password="s3cret-Pass:wore"), client_id="b")
    try:
        await good.start(wait_s=10)
        await bad.start()
        with pytest.raises(AuthError):
            await bad.wait_connected(5)
    finally:
        await good.stop()
        await bad.stop()
        broker.stop()


# helpers -----------------------------------------------------------------------------------


def start_node(url: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "printforge", "node", "--broker", url),
            *("--topic-prefix", PREFIX, "--virtual", "1", "--sim-speed", "500"),
            *("--status-interval", "0.2"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_BUS__")},
            "PRINTFORGE_ENV": "development",
            **env,
        },
    )


async def ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    if not line:
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"node exited: {err}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)


async def until_status(farm: FarmClient, printer_id: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while printer_id not in farm.statuses:  # noqa: ASYNC110 - filled by the MQTT callback
            await asyncio.sleep(0.05)
