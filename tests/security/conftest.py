"""Real processes on loopback for the security suite (issue 11, item 8).

Everything an attack needs is started here by the tests: a mosquitto on a free port (open, or
with the password file and ACL that `printforge farm broker-config` writes), `printforge node`
and `printforge serve` as subprocesses, and an MQTT client (paho, what aiomqtt is built on) that
plays the attacker. Every wait has a deadline and every teardown kills what it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.fakes.broker import Mosquitto, free_port

REPO = Path(__file__).resolve().parents[2]
PREFIX = "printforge/v1"
# Long enough for a process to start on a 2-core machine shared by other test runs.
START_TIMEOUT_S = 60.0
REPLY_TIMEOUT_S = 20.0


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a printforge subprocess: this checkout first on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PRINTFORGE_") or k == "PRINTFORGE_MOONRAKER_VENV"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120.0, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """`printforge ARGS` to completion, bounded."""
    return subprocess.run(
        [sys.executable, "-m", "printforge", *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_process(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM, then SIGKILL: a teardown that cannot hang."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll `predicate` until it is true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- MQTT -----------------------------------------------------------------------------------


class BusClient:
    """A paho client whose every wait is bounded; messages land in a queue."""

    def __init__(self, port: int, *, username: str | None = None, password: str | None = None):
        self.port = port
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"sec-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connack: queue.Queue[int] = queue.Queue()
        self._subacks: queue.Queue[list[Any]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.pending: list[tuple[str, bytes]] = []

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connack.put(int(reason.value))

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put((msg.topic, msg.payload))

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        self._subacks.put(list(reasons))

    def connect(self, timeout: float = 10.0) -> int:
        """Connect; the CONNACK code (0 = accepted)."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        try:
            return self._connack.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no CONNACK from the broker") from None

    def subscribe(self, topic: str, timeout: float = 10.0) -> list[Any]:
        self.client.subscribe(topic, qos=1)
        try:
            return self._subacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no SUBACK for {topic}") from None

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10.0)

    def wait_message(
        self, match: Callable[[str, bytes], bool], timeout: float, what: str
    ) -> tuple[str, bytes]:
        """The first message `match` accepts; the others seen meanwhile are kept in `pending`."""
        for i, (topic, payload) in enumerate(self.pending):
            if match(topic, payload):
                del self.pending[i]
                return topic, payload
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            try:
                topic, payload = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if match(topic, payload):
                return topic, payload
            self.pending.append((topic, payload))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


def loads(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def command(
    bus: BusClient,
    printer_id: str,
    cmd: dict[str, Any],
    *,
    topic: str | None = None,
    raw: bytes | None = None,
    timeout: float = REPLY_TIMEOUT_S,
) -> dict[str, Any]:
    """Publish one command on the printer's cmd topic and return the node's reply to it.

    `bus` must already be subscribed to the printer's reply topic.
    """
    cmd.setdefault("id", uuid.uuid4().hex)
    bus.publish(topic or f"{PREFIX}/printers/{printer_id}/cmd", raw or json.dumps(cmd))
    _, payload = bus.wait_message(
        lambda t, p: t.endswith("/reply") and loads(p).get("id") == cmd["id"],
        timeout,
        f"the reply to {cmd['op']} on {printer_id}",
    )
    return loads(payload)


# --- processes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A mosquitto that lets anyone in (the farm of issue 11 before its ACL)."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto-open"))
    broker.start()
    yield broker
    broker.stop()


class NodeProcess:
    """`printforge node --virtual N` on a broker, as a subprocess."""

    def __init__(
        self,
        broker_url: str,
        folder: Path,
        *,
        node_id: str,
        virtual: int = 2,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.node_id = node_id
        self.log = folder / f"node-{node_id}.log"
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "printforge",
            "node",
            "--broker",
            broker_url,
            "--virtual",
            str(virtual),
            "--node-id",
            node_id,
            "--sim-speed",
            "50",
            "--data-dir",
            str(folder / f"data-{node_id}"),
            *extra,
        ]
        with self.log.open("w") as out:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                cmd, cwd=REPO, env=child_env(env), stdout=out, stderr=subprocess.STDOUT
            )

    def printer(self, n: int = 1) -> str:
        return f"{self.node_id}.virtual-{n}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)


def wait_idle(bus: BusClient, node: NodeProcess, printer_id: str, status_topic: str) -> None:
    """Wait until the printer's status says idle (subscribes to `status_topic`)."""
    bus.subscribe(status_topic)

    def idle(topic: str, payload: bytes) -> bool:
        if node.proc.poll() is not None:
            raise AssertionError(f"node exited:\n{node.output()}")
        return topic == status_topic and loads(payload).get("state") == "idle"

    bus.wait_message(idle, START_TIMEOUT_S, f"{printer_id} idle on the bus")


# --- the server ---------------------------------------------------------------------------


class Server:
    """`printforge serve --mock` on a free port; its log lives outside the data dir."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        admin_key: str,
        *,
        sim_speed: float = 2000.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.admin_key = admin_key
        self.port = free_port()
        self.sim_speed = sim_speed
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "printforge",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--sim-speed",
            str(self.sim_speed),
            "--mock",
        ]
        env = child_env({"PRINTFORGE_API_KEY": self.admin_key, **self.env})
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"printforge serve exited:\n{self.output()}")
            return "serving on" in self.output()

        wait_until(up, START_TIMEOUT_S, "printforge serve to listen")
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        raw: bytes | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One HTTP call; (status, JSON body or text). HTTP errors do not raise."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.decode(errors="replace")

    def rpc(self, method: str, params: dict[str, Any], *, key: str) -> tuple[int, Any]:
        return self.request(
            "POST",
            "/api/rpc",
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            key=key,
        )

    def create_key(self, name: str, role: str) -> str:
        status, body = self.request(
            "POST", "/api/auth/keys", {"name": name, "role": role}, key=self.admin_key
        )
        assert status == 201, (status, body)
        return str(body["key"])

    def wait_job(self, job_id: str, states: set[str], timeout: float = 120.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status, job = self.request("GET", f"/api/jobs/{job_id}", key=self.admin_key)
            assert status == 200, (status, job)
            return job if job["state"] in states else None

        # Two probes a second: faster polling with one key runs past the server's per-key rate
        # limit (600/min) when a job is slow on a busy machine, and the poll then sees 429.
        return wait_until(reached, timeout, f"job {job_id} in {sorted(states)}", interval=0.5)


ADMIN_KEY = "sec-admin-" + "k" * 24


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the attacks that do not change its configuration.

    Virtual printers at real speed (`--sim-speed 1`), so a printing job stays cancellable.
    """
    folder = tmp_path_factory.mktemp("serve")
    srv = Server(folder / "data", folder / "serve.log", ADMIN_KEY, sim_speed=1.0)
    try:
        yield srv.start()
    finally:
        srv.stop()


__all__ = [
    "ADMIN_KEY",
    "PREFIX",
    "REPO",
    "START_TIMEOUT_S",
    "BusClient",
    "Mosquitto",
    "NodeProcess",
    "Server",
    "command",
    "free_port",
    "loads",
    "run_cli",
    "stop_process",
    "wait_idle",
    "wait_until",
]
