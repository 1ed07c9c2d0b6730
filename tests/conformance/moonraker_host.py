"""The real Moonraker (the `moonraker` package from PyPI) started by the tests.

Moonraker pins its own dependencies exactly (pyserial==3.4, paho-mqtt==2.1.0, …), which
printforge's own cannot share, so it lives in a virtualenv of its own that scripts/setup makes
(`PRINTFORGE_MOONRAKER_VENV`, by default ~/.cache/printforge/moonraker-<version>), from
tests/conformance/moonraker-requirements.txt. Nothing is fetched at test time.

Configuration, checked against Moonraker 0.11's defaults so that it touches nothing outside its
temporary folder and loopback:
- `[server]` on 127.0.0.1 and a free port, `klippy_uds_address` in the temp folder (the fake
  Klippy listens there; without it Moonraker runs with Klippy absent);
- `[authorization] trusted_clients: 127.0.0.0/8`, as a printer on a LAN is set up;
- `[machine] provider: none` (no systemd, no D-Bus) without service or config validation;
- `[announcements] enable_moonlight: False` and an empty `misc/usb.ids` in the data path, or
  Moonraker would fetch both from the internet at start-up (announcements.py, machine.py
  `update_usb_ids`);
- `[mqtt]` on the tests' own mosquitto with the status objects the driver follows;
- `-d` a temp data path, `-c` the config there, its log to a file there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from printforge.hardware.mqtt.sim.mosquitto import free_port

__all__ = ["MOONRAKER_VERSION", "MoonrakerProcess", "moonraker_binary"]

MOONRAKER_VERSION = "0.11.0"


def moonraker_binary() -> Path:
    venv = os.environ.get("PRINTFORGE_MOONRAKER_VENV") or str(
        Path.home() / ".cache" / "printforge" / f"moonraker-{MOONRAKER_VERSION}"
    )
    return Path(venv) / "bin" / "moonraker"


class MoonrakerProcess:
    """One Moonraker with its own data path, HTTP port and MQTT instance name."""

    def __init__(self, folder: Path, broker_port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.gcodes = self.data / "gcodes"
        self.klippy_socket = folder / "klippy.sock"
        self.broker_port = broker_port
        self.port = free_port()
        self.instance = f"mr-{uuid.uuid4().hex[:8]}"
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "moonraker.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        (self.data / "config").mkdir(parents=True, exist_ok=True)
        (self.data / "misc").mkdir(parents=True, exist_ok=True)
        (self.data / "misc" / "usb.ids").write_text("")  # else fetched from the internet
        self.gcodes.mkdir(parents=True, exist_ok=True)
        conf = self.data / "config" / "moonraker.conf"
        conf.write_text(
            f"""[server]
host: 127.0.0.1
port: {self.port}
klippy_uds_address: {self.klippy_socket}

[authorization]
trusted_clients:
  127.0.0.0/8

[announcements]
enable_moonlight: False

[machine]
provider: none
validate_service: False
validate_config: False

[mqtt]
address: 127.0.0.1
port: {self.broker_port}
instance_name: {self.instance}
status_objects:
  webhooks
  print_stats
  virtual_sdcard
  extruder
  heater_bed
"""
        )
        return conf

    def start(self, timeout_s: float = 30.0) -> None:
        binary = moonraker_binary()
        conf = self._config()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "-d", self.data, "-c", conf, "-l", self.folder / "moonraker.log"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: nothing of it outlives us
            )
        try:
            self._wait_answering(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_answering(self, timeout_s: float) -> None:
        """Until Moonraker answers `server.info` over MQTT: it says online before it has
        subscribed to its request topic (components/mqtt.py `_on_connect`)."""
        answered = threading.Event()
        topics = f"{self.instance}/moonraker/api"

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with contextlib.suppress(ValueError):
                if str(json.loads(msg.payload).get("id")).startswith("fixture-"):
                    answered.set()

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fx-{uuid.uuid4().hex}")
        client.on_message = on_message
        client.connect("127.0.0.1", self.broker_port)
        client.subscribe(f"{topics}/response", qos=1)
        client.loop_start()
        try:
            deadline = time.monotonic() + timeout_s
            n = 0
            while not answered.wait(0.2):
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moonraker did not answer within {timeout_s:g}s"
                        f" (exit {self.proc.poll()}): {self.log.read_text()[-3000:]}"
                    )
                n += 1
                frame = {"jsonrpc": "2.0", "method": "server.info", "id": f"fixture-{n}"}
                client.publish(f"{topics}/request", json.dumps(frame), qos=1)
        finally:
            client.loop_stop()
            client.disconnect()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to its whole process group: bounded, always."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it started
