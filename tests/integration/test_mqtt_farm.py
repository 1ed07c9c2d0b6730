"""The farm bus end to end against a real mosquitto: node endpoints, the farm client, the
remote driver and discovery, with VirtualDriver printers behind the node."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from printforge.hardware.mqtt.client import BusClient
from printforge.hardware.mqtt.config import BusSettings
from printforge.hardware.mqtt.farm import FarmClient
from printforge.hardware.mqtt.messages import (
    ControlCommand,
    SendCommand,
    StartCommand,
    StatusMessage,
    UploadCommand,
)
from printforge.hardware.mqtt.node import BusNode, EndpointFaults
from printforge.hardware.mqtt.remote import RemoteConfig, RemotePrinterDriver
from printforge.hardware.virtual.config import VirtualConfig
from printforge.hardware.virtual.driver import VirtualDriver
from printforge.models.printer import PrinterProfile, PrinterState
from printforge.runtime import metrics
from printforge.runtime.errors import (
    BadArtifact,
    InputError,
    InvalidTransition,
    PrintCancelled,
    PrinterBusy,
    PrinterDisconnected,
    UnsafeGcode,
)
from tests.fakes.broker import Mosquitto
from tests.fakes.vmarlin import numbered_moves_gcode, write_gcode

pytestmark = pytest.mark.mqtt

PROFILE = PrinterProfile(name="generic-220")


def bus_settings(url: str, **kw: object) -> BusSettings:
    # A prefix per test: the session broker is shared and retained messages outlive tests.
    defaults: dict[str, object] = {
        "broker": url,
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}/v1",
        "node_id": "h1",
        "status_interval_s": 0.2,
        "command_retry_s": 0.5,
        "command_timeout_s": 10.0,
        "stale_after_s": 3.0,
        "offline_grace_s": 0.5,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
        "chunk_bytes": 2048,
    }
    defaults.update(kw)
    return BusSettings.model_validate(defaults)


def virtual(name: str = "p1", **kw: object) -> VirtualDriver:
    options: dict[str, object] = {"sim_speed": 5000.0}
    options.update(kw)
    return VirtualDriver(name, VirtualConfig.model_validate(options), PROFILE)


@contextlib.asynccontextmanager
async def farm_with(
    settings: BusSettings, drivers: list[VirtualDriver], tmp: Path, **node_kw: object
) -> AsyncIterator[tuple[BusNode, FarmClient, list[RemotePrinterDriver]]]:
    for d in drivers:
        await d.start()
    node = BusNode(settings, drivers, spool_dir=tmp / "spool", **node_kw)  # type: ignore[arg-type]
    farm = FarmClient(settings)
    await node.start(wait_s=5)
    await farm.start(wait_s=5)
    remotes = []
    for e in node.endpoints:
        r = RemotePrinterDriver(e.printer_id, RemoteConfig(), PROFILE, farm=farm)
        await r.start()
        remotes.append(r)
    try:
        for r in remotes:
            await asyncio.wait_for(r.connected.wait(), 5)
        yield node, farm, remotes
    finally:
        for r in remotes:
            await r.stop()
        await farm.stop()
        await node.stop()
        for d in drivers:
            await d.stop()


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - conditions span several objects
            await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_status_is_retained_with_profile_summary(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual("a"), virtual("b")], tmp_path):
        # A subscriber that arrives later still sees every printer, from retained messages.
        late = FarmClient(settings)
        await late.start(wait_s=5)
        try:
            await until(lambda: {"h1.a", "h1.b"} <= set(late.statuses))
            status = late.statuses["h1.a"]
            assert status.state is PrinterState.IDLE
            assert status.node == "h1"
            assert status.profile is not None and status.profile.bed_x == PROFILE.bed_x
            assert "hotend" in status.temperatures
        finally:
            await late.stop()


@pytest.mark.asyncio
async def test_remote_print_completes_with_progress(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(400, feed=3000))
    async with farm_with(settings, [virtual(move_time_s=0.004, sim_speed=1.0)], tmp_path) as (
        _node,
        farm,
        (remote,),
    ):
        seen = [p async for p in remote.stream(gcode, job_id="job-1")]
        assert seen, "no progress reached the orchestrator"
        assert seen[-1].lines_acked == seen[-1].lines_total == 402
        fractions = [p.fraction for p in seen]
        assert fractions == sorted(fractions)
        # The node's ETA (its file's time plan, corrected by the pace) crosses the bus whole.
        assert any(p.eta_source == "estimate" and p.planned_s and p.finish_at for p in seen), [
            (p.eta_source, p.planned_s) for p in seen
        ]
        await until(lambda: farm.statuses["h1.p1"].last_job is not None)
        last = farm.statuses["h1.p1"].last_job
        assert last is not None and (last.job_id, last.outcome) == ("job-1", "completed")
        # Nothing half-written is left behind in the spool.
        assert not [p for p in (tmp_path / "spool").iterdir() if p.suffix == ".part"]


@pytest.mark.asyncio
async def test_repeated_command_id_has_no_effect(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (node, farm, (remote,)):
        endpoint = node.endpoints[0]
        cmd = SendCommand(line="M104 S200")  # no move: a move before a home is refused
        first = await farm.request(remote.printer_id, cmd)
        again = await farm.request(remote.printer_id, cmd)
        assert first.ok and again.ok
        assert again.id == first.id and again.ts == first.ts  # the cached reply, resent
        assert endpoint.commands_handled == 1
        assert endpoint.duplicates == 1


@pytest.mark.asyncio
async def test_malformed_messages_are_counted_and_harmless(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (_node, farm, (remote,)):
        before = metrics.MQTT_MALFORMED.labels("command")._value.get()
        status_before = metrics.MQTT_MALFORMED.labels("status")._value.get()
        topics = farm.topics
        await farm.client.publish(topics.cmd(remote.printer_id), b"{not json", qos=1)
        await farm.client.publish(topics.cmd(remote.printer_id), b"\xff\xfe", qos=1)
        # A command with an id but a bad shape gets a reply saying so.
        bad = json.dumps({"id": "bad-1", "op": "start", "job_id": "x", "sha256": "nope"})
        fut = asyncio.get_running_loop().create_future()
        farm._pending["bad-1"] = fut
        await farm.client.publish(topics.cmd(remote.printer_id), bad, qos=1)
        reply = await asyncio.wait_for(fut, 5)
        assert not reply.ok and reply.error is not None and reply.error.code == "bad_command"
        # Garbage on a status topic must not crash the orchestrator side either, nor a status
        # under another printer's topic be believed.
        await farm.client.publish(topics.status("ghost"), b"[1, 2", qos=1)
        impostor = StatusMessage(id="someone-else", state=PrinterState.IDLE).model_dump_json()
        await farm.client.publish(topics.status("ghost"), impostor, qos=1)
        await until(
            lambda: metrics.MQTT_MALFORMED.labels("status")._value.get() >= status_before + 2
        )
        assert metrics.MQTT_MALFORMED.labels("command")._value.get() >= before + 3
        assert (await remote.ping()).ok
        assert "ghost" not in farm.statuses


@pytest.mark.asyncio
async def test_a_command_without_an_id_is_malformed_and_never_executed(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # Without an id a command cannot be de-duplicated: a resend would run it twice.
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (node, farm, (remote,)):
        endpoint = node.endpoints[0]
        before = metrics.MQTT_MALFORMED.labels("command")._value.get()
        anonymous = json.dumps({"op": "send", "line": "G1 X5 F3000"})
        for _ in range(2):
            await farm.client.publish(farm.topics.cmd(remote.printer_id), anonymous, qos=1)
        await until(lambda: metrics.MQTT_MALFORMED.labels("command")._value.get() >= before + 2)
        # A command that does come after them is handled: it was the only one executed.
        assert (await remote.ping()).ok
        assert endpoint.commands_handled == 1


@pytest.mark.asyncio
async def test_a_bad_command_reply_says_what_is_wrong(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (_node, farm, (remote,)):
        fut = asyncio.get_running_loop().create_future()
        farm._pending["bad-op"] = fut
        await farm.client.publish(
            farm.topics.cmd(remote.printer_id), json.dumps({"id": "bad-op", "op": "home"}), qos=1
        )
        reply = await asyncio.wait_for(fut, 5)
        assert reply.error is not None and reply.error.code == "bad_command"
        assert "home" in reply.error.message and "pause" in reply.error.message


@pytest.mark.asyncio
async def test_a_manual_line_passes_the_safety_gate(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # `send` reached the firmware unchecked: anyone allowed on the cmd topic could set 999 °C.
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (node, _farm, (remote,)):
        driver = node.endpoints[0].driver
        with pytest.raises(UnsafeGcode, match="999"):
            await remote.send("M104 S999")
        with pytest.raises(UnsafeGcode, match="home first"):
            await remote.send("G1 X10 F3000")  # nobody knows where the head is yet
        await remote.send("G28")
        with pytest.raises(UnsafeGcode, match="outside"):
            await remote.send("G1 X900 F3000")
        with pytest.raises(InputError, match="one G-code line"):
            await remote.send("G28\nM104 S999")
        await remote.send("M104 S200\n")  # within the limits, a trailing newline is fine
        await until(lambda: driver.status().temperatures["hotend"].target == 200)


@pytest.mark.asyncio
async def test_upload_with_wrong_sha256_never_prints(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (_node, farm, (remote,)):
        data = b"G28\nG1 X10\n"
        wrong = hashlib.sha256(b"something else").hexdigest()
        upload = UploadCommand(
            upload_id="u1",
            index=0,
            total=1,
            size=len(data),
            sha256=wrong,
            data=base64.b64encode(data).decode(),
        )
        reply = await farm.request(remote.printer_id, upload)
        assert not reply.ok and reply.error is not None and reply.error.code == "bad_artifact"
        start = await farm.request(remote.printer_id, StartCommand(job_id="j", sha256=wrong))
        assert not start.ok and start.error is not None and start.error.code == "invalid_input"
        assert remote.status().state is PrinterState.IDLE
        with pytest.raises(BadArtifact):
            from printforge.hardware.mqtt.remote import error_from_reply

            raise error_from_reply(reply, "upload")


@pytest.mark.asyncio
async def test_cancelling_the_stream_cancels_the_remote_print(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(2000))
    async with farm_with(settings, [virtual(move_time_s=0.01, sim_speed=1.0)], tmp_path) as (
        _node,
        farm,
        (remote,),
    ):
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in remote.stream(gcode, job_id="job-c"):
                started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 5)
        # A second job on a busy printer is refused by the node, as busy (not a failure: a job
        # refused so waits for another printer).
        with pytest.raises(PrinterBusy):
            async for _ in remote.stream(gcode, job_id="job-d"):
                pass
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: (farm.statuses["h1.p1"].last_job or object()) is not None)
        await until(
            lambda: (
                farm.statuses["h1.p1"].last_job is not None
                and farm.statuses["h1.p1"].last_job.outcome == "cancelled"
            )
        )
        await until(lambda: remote.status().state is PrinterState.IDLE)


@pytest.mark.asyncio
async def test_pause_and_resume_over_the_bus(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
    async with farm_with(settings, [virtual(move_time_s=0.005, sim_speed=1.0)], tmp_path) as (
        _node,
        farm,
        (remote,),
    ):
        paused = False
        async for progress in remote.stream(gcode, job_id="job-p"):
            if not paused and progress.lines_acked > 20:
                paused = True
                await remote.pause()
                await until(lambda: remote.status().state is PrinterState.PAUSED)
                held = remote.status().progress
                await asyncio.sleep(0.5)
                assert remote.status().progress == held  # nothing moves while paused
                await remote.resume()
        assert paused
        assert farm.statuses["h1.p1"].last_job.outcome == "completed"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_delayed_replies_are_waited_for_and_not_duplicated(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    # Replies slower than the resend interval: the command is resent, executed once.
    settings = bus_settings(mosquitto_broker.url, command_retry_s=0.2)
    faults = EndpointFaults(reply_delay_s=0.7)
    async with farm_with(settings, [virtual()], tmp_path, faults=faults) as (
        node,
        farm,
        (remote,),
    ):
        reply = await farm.request(remote.printer_id, SendCommand(line="M104 S200"))
        assert reply.ok
        assert node.endpoints[0].commands_handled == 1
        assert node.endpoints[0].duplicates >= 2


@pytest.mark.asyncio
async def test_node_dropping_off_the_bus_shows_offline_by_last_will(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    async with farm_with(settings, [virtual()], tmp_path) as (node, _farm, (remote,)):
        node.endpoints[0].client.sever(hold_off_s=1.0)
        await until(lambda: remote.status().state is PrinterState.OFFLINE)
        assert not remote.connected.is_set()
        # ...and comes back by itself, with capped backoff.
        await until(lambda: remote.status().state is PrinterState.IDLE, timeout=10)
        assert (await remote.ping()).ok


@pytest.mark.asyncio
async def test_dropping_off_mid_print_briefly_keeps_the_job(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url, offline_grace_s=5.0)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(300))
    faults = EndpointFaults(drop_at_fraction=0.3, drop_for_s=0.5)
    async with farm_with(
        settings, [virtual(move_time_s=0.005, sim_speed=1.0)], tmp_path, faults=faults
    ) as (_node, _farm, (remote,)):
        states: list[PrinterState] = []
        remote.add_listener(lambda s: states.append(s.state))
        progress = [p async for p in remote.stream(gcode, job_id="job-drop")]
        assert PrinterState.OFFLINE in states
        assert progress[-1].fraction == 1.0


@pytest.mark.asyncio
async def test_dropping_off_for_longer_than_the_grace_interrupts(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url, offline_grace_s=0.3)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(600))
    faults = EndpointFaults(drop_at_fraction=0.2, drop_for_s=3.0)
    async with farm_with(
        settings, [virtual(move_time_s=0.005, sim_speed=1.0)], tmp_path, faults=faults
    ) as (_node, _farm, (remote,)):
        with pytest.raises(PrinterDisconnected) as info:
            async for _ in remote.stream(gcode, job_id="job-gone"):
                pass
        assert info.value.last_acked_line is not None


@pytest.mark.asyncio
async def test_broker_restart_mid_print_loses_nothing(
    private_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(private_broker.url, stale_after_s=5.0, offline_grace_s=5.0)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(400))
    async with farm_with(settings, [virtual(move_time_s=0.005, sim_speed=1.0)], tmp_path) as (
        node,
        _farm,
        (remote,),
    ):
        restarted = False
        last = None
        async for progress in remote.stream(gcode, job_id="job-r"):
            last = progress
            if not restarted and progress.lines_acked > 50:
                restarted = True
                # SIGKILL: retained statuses and sessions are gone with it.
                await asyncio.to_thread(private_broker.restart, 0.3)
        assert restarted and last is not None and last.fraction == 1.0
        # Commands sent while the broker is down wait and go through afterwards, once: the
        # resends made meanwhile are recognised by their id.
        handled = node.endpoints[0].commands_handled
        await asyncio.to_thread(private_broker.kill)
        ping = asyncio.create_task(remote.ping())
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_broker.start)
        assert (await asyncio.wait_for(ping, 10)).ok
        assert node.endpoints[0].commands_handled == handled + 1


@pytest.mark.asyncio
async def test_tls_and_credentials(tmp_path: Path) -> None:
    from tests.fakes.broker import make_tls_files

    broker = Mosquitto(tmp_path / "b", tls=make_tls_files(tmp_path / "tls"), users={"farm": "s3"})
    await asyncio.to_thread(broker.start)
    try:
        settings = bus_settings(
            broker.tls_url, tls_ca=str(tmp_path / "tls" / "ca.pem"), username="farm", password="s3"
        )
        async with farm_with(settings, [virtual()], tmp_path) as (_node, farm, (remote,)):
            assert farm.client.address.tls
            assert (await remote.ping()).ok
        # A client that does not trust the CA never connects.
        untrusted = FarmClient(bus_settings(broker.tls_url))
        from printforge.runtime.errors import OperationTimeout

        with pytest.raises(OperationTimeout):
            await untrusted.start(wait_s=1.0)
        await untrusted.stop()
        # Wrong password: refused, and said so.
        from printforge.runtime.errors import AuthError

        wrong = BusClient(
            bus_settings(broker.url, username="farm", password="nope"), client_id="wrong"
        )
        with pytest.raises(AuthError):
            await wrong.start(wait_s=2.0)
        await wrong.stop()
    finally:
        await asyncio.to_thread(broker.stop)


@pytest.mark.asyncio
async def test_remote_driver_with_its_own_connection(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    drv = virtual()
    await drv.start()
    node = BusNode(settings, [drv], spool_dir=tmp_path / "spool")
    await node.start(wait_s=5)
    remote = RemotePrinterDriver("far", RemoteConfig(printer_id="h1.p1", bus=settings), PROFILE)
    try:
        await remote.start()
        await asyncio.wait_for(remote.connected.wait(), 5)
        assert remote.status().id == "far"
        await remote.send("G28")
        with pytest.raises(InvalidTransition):
            await remote.resume()  # not paused: refused with the node's reason
    finally:
        await remote.stop()
        await node.stop()
        await drv.stop()


@pytest.mark.asyncio
async def test_status_message_is_json_with_documented_keys(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    settings = bus_settings(mosquitto_broker.url)
    raw: list[bytes] = []
    spy = BusClient(
        settings,
        client_id="spy",
        on_message=lambda t, p, r: raw.append(p),
        subscriptions=[(f"{settings.topic_prefix}/printers/+/status", 1)],
    )
    async with farm_with(settings, [virtual()], tmp_path):
        await spy.start(wait_s=5)
        try:
            await until(lambda: bool(raw))
            doc = json.loads(raw[-1])
            for key in ("id", "node", "state", "temperatures", "progress", "job_id", "profile"):
                assert key in doc
            StatusMessage.model_validate(doc)
        finally:
            await spy.stop()
    cmd = ControlCommand(op="pause")
    assert json.loads(cmd.model_dump_json())["op"] == "pause"


@pytest.mark.asyncio
async def test_a_print_cancelled_at_the_printer_is_cancelled_not_failed(
    mosquitto_broker: Mosquitto,
    tmp_path: Path,
) -> None:
    """Stop pressed on the printer's own screen (Marlin's `//action:cancel` runs the driver's
    cancel): the node reports the job cancelled, and the farm's driver raises PrintCancelled."""
    settings = bus_settings(mosquitto_broker.url)
    gcode = write_gcode(tmp_path, numbered_moves_gcode(2000))
    local = virtual(move_time_s=0.01, sim_speed=1.0)
    async with farm_with(settings, [local], tmp_path) as (_node, farm, (remote,)):
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in remote.stream(gcode, job_id="job-x"):
                started.set()

        task = asyncio.create_task(consume())
        async with asyncio.timeout(10):
            await started.wait()
        await local.cancel()
        with pytest.raises(PrintCancelled):
            async with asyncio.timeout(30):
                await task
        last = farm.statuses["h1.p1"].last_job
        assert last is not None and last.outcome == "cancelled", last
