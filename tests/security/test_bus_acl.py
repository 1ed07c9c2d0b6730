"""Issue 11: the broker's side. A real mosquitto with the password file and ACL that
`printforge farm broker-config` writes, and a real `printforge node` using its credentials.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.security.conftest import (
    PREFIX,
    BusClient,
    NodeProcess,
    command,
    free_port,
    run_cli,
    stop_process,
    wait_idle,
    wait_until,
)
from tests.security.test_node_attacks import sign

pytestmark = [pytest.mark.security, pytest.mark.mqtt]


def _env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


@dataclass
class AclFarm:
    port: int
    folder: Path
    node: NodeProcess

    def creds(self, who: str) -> tuple[str, str]:
        name = "orchestrator.env" if who == "orchestrator" else f"node-{who}.env"
        env = _env_file(self.folder / name)
        return env["PRINTFORGE_BUS__USERNAME"], env["PRINTFORGE_BUS__PASSWORD"]

    def farm_key(self) -> str:
        return _env_file(self.folder / "orchestrator.env")["PRINTFORGE_BUS__FARM_KEY"]

    def client(self, who: str | None) -> BusClient:
        if who is None:
            return BusClient(self.port)
        user, password = self.creds(who)
        return BusClient(self.port, username=user, password=password)


@pytest.fixture(scope="module")
def acl_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclFarm]:
    """mosquitto configured with broker-config's files; node hostA on it with its env file."""
    folder = tmp_path_factory.mktemp("acl-farm")
    out = folder / "broker"
    done = run_cli("farm", "broker-config", "--out", str(out), "--node", "hostA", "--node", "hostB")
    assert done.returncode == 0, done.stderr
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"user {getpass.getuser()}",  # no privilege drop: it must read files in folder
                (out / "mosquitto.conf").read_text(),
                "persistence false",
                "log_type error",
                "log_type warning",
                f"log_dest file {folder / 'mosquitto.log'}",
                f"listener {port} 127.0.0.1",
                "",
            ]
        )
    )
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    node: NodeProcess | None = None
    try:

        def listening() -> bool:
            assert broker.poll() is None, (folder / "mosquitto.log").read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return True
            return False

        wait_until(listening, 10.0, "mosquitto with the ACL")
        node = NodeProcess(
            f"mqtt://127.0.0.1:{port}",
            folder,
            node_id="hostA",
            virtual=1,
            env=_env_file(out / "node-hostA.env"),
        )
        yield AclFarm(port, out, node)
    finally:
        if node is not None:
            node.stop()
        stop_process(broker)


def _node_topic(node: str, printer: str, kind: str) -> str:
    return f"{PREFIX}/nodes/{node}/printers/{printer}/{kind}"


def test_a_node_cannot_publish_as_another_nodes_printer(acl_farm: AclFarm) -> None:
    watcher = acl_farm.client("orchestrator")  # reads everything under the prefix
    intruder = acl_farm.client("hostB")
    try:
        assert watcher.connect() == 0
        target = acl_farm.node.printer(1)  # hostA.virtual-1
        # The real node's status gets through: the ACL lets the right node speak.
        wait_idle(watcher, acl_farm.node, target, _node_topic("hostA", target, "status"))
        watcher.subscribe(f"{PREFIX}/#")
        assert intruder.connect() == 0
        forged = {
            "v": 1,
            "id": target,
            "node": "hostA",
            "state": "idle",
            "message": "forged-" + uuid.uuid4().hex,
        }
        for topic in (
            _node_topic("hostA", target, "status"),
            _node_topic("hostA", target, "events"),
            _node_topic("hostA", target, "reply"),
            _node_topic("hostA", target, "cmd"),
            f"{PREFIX}/printers/{target}/status",  # the flat layout
            f"{PREFIX}/printers/{target}/cmd",
        ):
            intruder.publish(topic, json.dumps(forged))
        # hostB's own topic is allowed; it arrives after anything the broker let through
        # before it (one publisher, one QoS: MQTT keeps the order).
        marker = _node_topic("hostB", "hostB.marker", "events")
        intruder.publish(marker, json.dumps({"marker": True}))
        watcher.wait_message(lambda t, p: t == marker, 20.0, "hostB's own event")
        leaked = [t for t, p in watcher.pending if forged["message"].encode() in p]
        assert leaked == [], f"the broker let hostB publish as hostA on {leaked}"
    finally:
        intruder.close()
        watcher.close()


def test_an_anonymous_client_cannot_command_a_printer(acl_farm: AclFarm) -> None:
    target = acl_farm.node.printer(1)
    anonymous = acl_farm.client(None)
    orchestrator = acl_farm.client("orchestrator")
    try:
        code = anonymous.connect()
        if code == 0:  # a broker letting it connect must still let it write nothing
            anonymous.publish(
                _node_topic("hostA", target, "cmd"),
                json.dumps({"id": uuid.uuid4().hex, "op": "emergency_stop", "job_id": None}),
            )
        assert code != 0, "mosquitto let an anonymous client in"
        # The orchestrator, signed, does reach the node: the refusal above is the broker's.
        assert orchestrator.connect() == 0
        orchestrator.subscribe(_node_topic("hostA", target, "reply"))
        wait_idle(orchestrator, acl_farm.node, target, _node_topic("hostA", target, "status"))
        topic = _node_topic("hostA", target, "cmd")
        ping = {"id": uuid.uuid4().hex, "op": "ping", "job_id": None}
        reply = command(
            orchestrator, target, ping, topic=topic, raw=sign(topic, ping, acl_farm.farm_key())
        )
        assert reply["ok"] is True, reply
        assert "anyone on the broker" not in acl_farm.node.output()
    finally:
        anonymous.close()
        orchestrator.close()
