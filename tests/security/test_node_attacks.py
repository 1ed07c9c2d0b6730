"""Issue 11: attacks on `printforge node` over an open mosquitto, as `mosquitto_pub` would.

The attacker is any client of the broker. Without a farm key the node still gates every file
and line itself; with one it refuses every unsigned command.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.security.conftest import (
    PREFIX,
    BusClient,
    Mosquitto,
    NodeProcess,
    command,
    loads,
    wait_idle,
)

pytestmark = [pytest.mark.security, pytest.mark.mqtt]

FARM_KEY = "sec-farm-key-" + "f" * 32

SAFE_HEAD = "G28\nG90\nM83\nM104 S200\nM140 S60\nM109 S200\nM190 S60\nG1 X10 Y10 Z0.3 F3000\n"


@pytest.fixture(scope="module")
def open_node(
    open_broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    """A node without a farm key: only its own gate stands between the bus and the printer."""
    node = NodeProcess(
        open_broker.url, tmp_path_factory.mktemp("node-open"), node_id="secopen", virtual=3
    )
    yield node
    node.stop()


@pytest.fixture
def attacker(open_broker: Mosquitto, open_node: NodeProcess) -> Iterator[BusClient]:
    """An anonymous client of the open broker, subscribed to every printer's replies."""
    bus = BusClient(open_broker.port)
    assert bus.connect() == 0
    bus.subscribe(f"{PREFIX}/printers/+/reply")
    yield bus
    bus.close()


def _ready(bus: BusClient, node: NodeProcess, n: int) -> str:
    """Printer n of the node, idle (each test waits only for its own printer)."""
    pid = node.printer(n)
    wait_idle(bus, node, pid, f"{PREFIX}/printers/{pid}/status")
    return pid


def _upload(bus: BusClient, printer_id: str, text: str) -> str:
    data = text.encode()
    sha = hashlib.sha256(data).hexdigest()
    reply = command(
        bus,
        printer_id,
        {
            "op": "upload",
            "upload_id": uuid.uuid4().hex[:12],
            "index": 0,
            "total": 1,
            "size": len(data),
            "sha256": sha,
            "data": base64.b64encode(data).decode(),
        },
    )
    assert reply["ok"] is True, reply  # storing a file is harmless; starting it is the attack
    return sha


@pytest.mark.parametrize(
    "unsafe",
    ["M104 S400", "M140 S200", "M500", "G1 X9999 Y10"],
    ids=["hotend-400", "bed-200", "M500-eeprom", "X9999"],
)
def test_node_refuses_to_start_an_uploaded_unsafe_file(
    attacker: BusClient, open_node: NodeProcess, unsafe: str
) -> None:
    pid = _ready(attacker, open_node, 1)
    text = SAFE_HEAD + "G1 X20 Y20 E1 F1500\n" + unsafe + "\nG1 X30 Y30 E1\nM104 S0\nM140 S0\n"
    sha = _upload(attacker, pid, text)
    reply = command(attacker, pid, {"op": "start", "job_id": uuid.uuid4().hex[:12], "sha256": sha})
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "unsafe_gcode", reply


def _send(bus: BusClient, printer_id: str, line: str) -> dict:
    return command(bus, printer_id, {"op": "send", "line": line})


def test_send_g91_relative_moves_cannot_walk_off_the_bed(
    attacker: BusClient, open_node: NodeProcess
) -> None:
    pid = _ready(attacker, open_node, 2)
    # Moves before homing are refused outright, so home first: the range check is the target.
    assert _send(attacker, pid, "G28")["ok"] is True
    assert _send(attacker, pid, "G90")["ok"] is True
    assert _send(attacker, pid, "G91")["ok"] is True
    replies = [_send(attacker, pid, "G1 X150 F3000") for _ in range(3)]
    assert replies[0]["ok"] is True, replies[0]  # 150 mm: inside a 220 mm bed
    for reply in replies[1:]:  # 300 mm and beyond
        assert reply["ok"] is False, reply
        assert reply["error"]["code"] == "unsafe_gcode", reply


def test_send_g92_offset_cannot_hide_a_move_off_the_bed(
    attacker: BusClient, open_node: NodeProcess
) -> None:
    pid = _ready(attacker, open_node, 3)
    assert _send(attacker, pid, "G28")["ok"] is True
    assert _send(attacker, pid, "G90")["ok"] is True
    _send(attacker, pid, "G92 X-500")  # allowed or not, the next move must not reach 700 mm
    reply = _send(attacker, pid, "G1 X200 F3000")
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "unsafe_gcode", reply


class _Listener:
    """A TCP listener that only counts connections: the address a port scanner would probe."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_start_by_url_to_an_untrusted_origin_makes_no_request(
    attacker: BusClient, open_node: NodeProcess
) -> None:
    listener = _Listener()
    try:
        pid = _ready(attacker, open_node, 1)
        for url, origin in (
            (f"http://127.0.0.1:{listener.port}/admin", None),
            # an announced origin proves nothing without a farm key
            (f"http://127.0.0.1:{listener.port}/x.gcode", f"http://127.0.0.1:{listener.port}"),
        ):
            reply = command(
                attacker,
                pid,
                {
                    "op": "start",
                    "job_id": uuid.uuid4().hex[:12],
                    "sha256": "0" * 64,
                    "url": url,
                    "origin": origin,
                },
            )
            assert reply["ok"] is False, reply
            assert reply["error"]["code"] == "untrusted_origin", reply
        # The refusal comes before any connection: nothing reached the listener.
        assert listener.connections == 0
    finally:
        listener.close()


# --- with a farm key ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_node(
    open_broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    node = NodeProcess(
        open_broker.url,
        tmp_path_factory.mktemp("node-keyed"),
        node_id="seckeyed",
        virtual=1,
        env={"PRINTFORGE_BUS__FARM_KEY": FARM_KEY},
    )
    yield node
    node.stop()


def sign(topic: str, message: dict, key: str = FARM_KEY) -> bytes:
    """A signed payload exactly as docs/farm.md "Signed messages" writes it."""
    body = json.dumps(message, separators=(",", ":"))
    ts = str(int(time.time() * 1000))
    nonce = secrets.token_hex(16)
    topic_bytes = topic.encode()
    signed = (
        f"printforge-bus-sig/1\n{len(topic_bytes)}:{topic}\n{ts}\n{nonce}\n".encode()
        + body.encode()
    )
    mac = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    sig = json.dumps({"v": 1, "ts": int(ts), "nonce": nonce, "mac": mac}, separators=(",", ":"))
    return (body[:-1] + ',"sig":' + sig + "}").encode()


UNSIGNED = [
    {"op": "emergency_stop", "job_id": None},
    {"op": "cancel", "job_id": None},
    {"op": "clear_bed", "job_id": None},
    {"op": "send", "line": "M104 S200"},
    {"op": "send", "line": "G28"},
    {"op": "send", "line": "G1 X10 F3000"},
]


def test_unsigned_commands_are_refused_when_a_farm_key_is_set(
    open_broker: Mosquitto, keyed_node: NodeProcess
) -> None:
    pid = keyed_node.printer(1)
    bus = BusClient(open_broker.port)
    try:
        assert bus.connect() == 0
        bus.subscribe(f"{PREFIX}/printers/{pid}/reply")
        bus.subscribe(f"{PREFIX}/printers/{pid}/events")
        wait_idle(bus, keyed_node, pid, f"{PREFIX}/printers/{pid}/status")
        for cmd in UNSIGNED:
            cmd = {"id": uuid.uuid4().hex, **cmd}
            reply = command(bus, pid, cmd)
            assert reply["ok"] is False, (cmd, reply)
            assert reply["error"]["code"] == "unauthorized", (cmd, reply)
            bus.wait_message(
                lambda t, p, cid=cmd["id"]: (
                    t.endswith("/events")
                    and loads(p).get("kind") == "command.rejected"
                    and (loads(p).get("data") or {}).get("command_id") == cid
                ),
                20.0,
                f"command.rejected for {cmd['op']}",
            )
        # A signed command is obeyed: the refusals above are the signature's doing.
        topic = f"{PREFIX}/printers/{pid}/cmd"
        ping = {"id": uuid.uuid4().hex, "op": "ping", "job_id": None}
        reply = command(bus, pid, ping, raw=sign(topic, ping))
        assert reply["ok"] is True, reply
        # A wrong key's signature is no signature.
        stop = {"id": uuid.uuid4().hex, "op": "emergency_stop", "job_id": None}
        reply = command(bus, pid, stop, raw=sign(topic, stop, key="x" * 40))
        assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", reply
    finally:
        bus.close()
