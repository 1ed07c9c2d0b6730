"""Farm bus shapes: topics, broker URLs, status/command/reply JSON, the G-code spool."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from printforge.hardware.mqtt.config import BusSettings, parse_broker
from printforge.hardware.mqtt.messages import (
    COMMAND,
    ControlCommand,
    LastJob,
    ProfileSummary,
    Reply,
    StartCommand,
    StatusMessage,
    UploadCommand,
)
from printforge.hardware.mqtt.remote import error_from_reply
from printforge.hardware.mqtt.spool import Spool
from printforge.hardware.mqtt.topics import Topics, valid_printer_id
from printforge.models.printer import PrinterProfile, PrinterState, PrinterStatus
from printforge.runtime.errors import (
    BadArtifact,
    ConfigError,
    InputError,
    InvalidTransition,
    PrinterBusy,
    PrinterError,
    PrinterFault,
)


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker:1884", "broker", 1884, False),
        ("mqtts://10.0.0.2", "10.0.0.2", 8883, True),
        ("mqtt://h", "h", 1883, False),
        ("h:2000", "h", 2000, False),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool) -> None:
    addr = parse_broker(url)
    assert (addr.host, addr.port, addr.tls) == (host, port, tls)


@pytest.mark.parametrize("url", ["http://h:1", "mqtt://", "mqtt://h:99999"])
def test_bad_broker_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_broker(url)


@pytest.mark.parametrize(
    "url", ["mqtt://farm:s3cret@h:1884", "mqtts://farm:s3cret@h", "mqtt://farm:s3cret@h:99999"]
)
def test_credentials_in_a_broker_url_are_refused_without_showing_them(url: str) -> None:
    # They were silently ignored (no login happened) and echoed on the node's ready line.
    with pytest.raises(ConfigError, match="username") as caught:
        parse_broker(url)
    assert "s3cret" not in str(caught.value)


def test_no_broker_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--broker"):
        BusSettings().address()


@pytest.mark.parametrize("prefix", ["a/+/b", "#", "/a", "a/"])
def test_prefix_without_wildcards(prefix: str) -> None:
    with pytest.raises(ValidationError):
        BusSettings(topic_prefix=prefix)


def test_topics_round_trip() -> None:
    t = Topics("pf/v1")
    assert t.status("h.p") == "pf/v1/printers/h.p/status"
    assert t.all("reply") == "pf/v1/printers/+/reply"
    for kind in ("status", "events", "cmd", "reply"):
        assert t.parse(getattr(t, kind)("h.p")) == ("h.p", kind)
    assert t.parse("pf/v1/printers/h.p/other") is None
    assert t.parse("pf/v1/printers/a/b/status") is None
    assert t.parse("other/printers/x/status") is None
    assert not valid_printer_id("a/b") and not valid_printer_id("") and valid_printer_id("a.b")


def test_status_message_from_printer_status() -> None:
    profile = PrinterProfile(name="mk", bed_x=250, bed_y=210)
    status = PrinterStatus(id="p", driver="virtual", state=PrinterState.PRINTING, job_id="j")
    msg = StatusMessage.of(status, printer_id="h.p", node="h", profile=profile, seq=3, boot="b")
    doc = json.loads(msg.model_dump_json())
    assert doc["id"] == "h.p" and doc["state"] == "printing" and doc["job_id"] == "j"
    assert doc["profile"]["bed_x"] == 250 and "start_gcode" not in doc["profile"]
    back = StatusMessage.model_validate_json(msg.model_dump_json()).to_status()
    assert back.id == "h.p" and back.driver == "bus" and back.profile == "mk"
    assert ProfileSummary.of(profile).to_profile().bed_y == 210
    # Receivers ignore keys a newer node adds.
    doc["future_key"] = 1
    assert StatusMessage.model_validate(doc).seq == 3


def test_commands_discriminate_by_op() -> None:
    sha = "a" * 64
    assert isinstance(COMMAND.validate_json(json.dumps({"op": "pause", "id": "1"})), ControlCommand)
    start = COMMAND.validate_json(
        json.dumps({"op": "start", "id": "2", "job_id": "j", "sha256": sha})
    )
    assert isinstance(start, StartCommand)
    for bad in (
        {"op": "explode", "id": "3"},
        {"op": "start", "id": "4", "job_id": "j", "sha256": "short"},
        {"op": "pause", "id": ""},
        {
            "op": "upload",
            "id": "5",
            "upload_id": "u",
            "index": -1,
            "total": 1,
            "size": 1,
            "sha256": sha,
            "data": "",
        },
    ):
        with pytest.raises(ValidationError):
            COMMAND.validate_python(bad)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("printer_fault", PrinterFault),
        ("bad_artifact", BadArtifact),
        ("invalid_input", InputError),
        ("invalid_transition", InvalidTransition),
        ("something_new", PrinterError),
    ],
)
def test_reply_errors_map_to_types(code: str, cls: type[Exception]) -> None:
    reply = Reply.model_validate({"id": "x", "ok": False, "error": {"code": code, "message": "m"}})
    assert type(error_from_reply(reply, "what")) is cls


def test_a_busy_refusal_is_printer_busy_and_an_old_nodes_stays_invalid_transition() -> None:
    busy = {"code": "invalid_transition", "message": "p is printing job j", "busy": True}
    reply = Reply.model_validate({"id": "x", "ok": False, "error": busy})
    err = error_from_reply(reply, "start")
    assert type(err) is PrinterBusy
    assert err.code == "invalid_transition"  # the code clients know is kept
    # A node from before the flag: the same refusal, as it always was.
    old = Reply.model_validate({"id": "x", "ok": False, "error": {**busy, "busy": False}})
    assert type(error_from_reply(old, "start")) is InvalidTransition


def test_last_job_outcomes_are_closed() -> None:
    with pytest.raises(ValidationError):
        LastJob(job_id="j", outcome="exploded")  # type: ignore[arg-type]


def _chunks(data: bytes, size: int, upload_id: str = "u") -> list[UploadCommand]:
    sha = hashlib.sha256(data).hexdigest()
    parts = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [
        UploadCommand(
            upload_id=upload_id,
            index=i,
            total=len(parts),
            size=len(data),
            sha256=sha,
            data=base64.b64encode(p).decode(),
        )
        for i, p in enumerate(parts)
    ]


@pytest.mark.asyncio
async def test_spool_assembles_in_order_and_checks_sha(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    data = b"G1 X1\n" * 1000
    chunks = _chunks(data, 1000)
    assert (await spool.add_chunk(chunks[0]))["complete"] is False
    assert (await spool.add_chunk(chunks[0]))["complete"] is False  # a resend is harmless
    with pytest.raises(InputError, match="expected chunk 1"):
        await spool.add_chunk(chunks[2])
    for c in chunks[1:]:
        result = await spool.add_chunk(c)
    assert result["complete"] is True
    assert spool.path_of(chunks[0].sha256).read_bytes() == data
    assert not [n for n in await asyncio.to_thread(os.listdir, tmp_path) if n.endswith(".part")]


@pytest.mark.asyncio
async def test_spool_rejects_a_corrupted_upload(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    chunks = _chunks(b"G28\n" * 100, 64, upload_id="bad")
    chunks[-1] = chunks[-1].model_copy(update={"data": base64.b64encode(b"M112\n").decode()})
    with pytest.raises(BadArtifact):
        for c in chunks:
            await spool.add_chunk(c)
    assert not spool.has(chunks[0].sha256)
    assert not await asyncio.to_thread(os.listdir, tmp_path)
    with pytest.raises(InputError, match="before chunk 0"):
        await spool.add_chunk(chunks[1])
    with pytest.raises(InputError, match="base64"):
        await spool.add_chunk(chunks[0].model_copy(update={"data": "!!"}))


@pytest.mark.asyncio
async def test_spool_keeps_files_in_use_and_the_newest_few(tmp_path: Path) -> None:
    spool = Spool(tmp_path, keep_files=1)
    a, b = _chunks(b"G1 X1\n", 64, "a")[0], _chunks(b"G1 X2\n", 64, "b")[0]
    await spool.add_chunk(a)
    spool.acquire(a.sha256)
    await spool.add_chunk(b)
    spool.acquire(b.sha256)
    await spool.release(b.sha256)
    assert spool.has(a.sha256) and spool.has(b.sha256)  # a is still printing
    await spool.release(a.sha256)
    assert spool.has(a.sha256) != spool.has(b.sha256)  # only the newest one stays
