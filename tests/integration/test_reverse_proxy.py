"""deploy/nginx/printforge.conf, run by a real nginx with TLS in front of a real
`printforge serve --mock`: REST, an upload larger than nginx's default body limit, a job
followed over the websocket to completion, /metrics, and the redirect from plain HTTP.

Only the addresses, ports and certificate paths of the shipped file are changed for the test
(each replacement must match exactly once, so the file cannot drift away from what is tested).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.broker import make_tls_files
from tests.fakes.serve_process import REPO, ServeProcess, free_port

KEY = "proxy-admin-key-0123456789"
SNIPPET = REPO / "deploy" / "nginx" / "printforge.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is no longer in {SNIPPET.name}"
    return text.replace(old, new)


class Nginx:
    def __init__(self, folder: Path, upstream_port: int) -> None:
        self.folder = folder
        self.https_port = free_port()
        self.http_port = free_port()
        tls = make_tls_files(folder / "tls")
        self.ca = tls.ca
        conf = SNIPPET.read_text()
        conf = replace_once(conf, "server 127.0.0.1:8470;", f"server 127.0.0.1:{upstream_port};")
        conf = replace_once(conf, "listen 443 ssl;", f"listen 127.0.0.1:{self.https_port} ssl;")
        conf = replace_once(conf, "listen [::]:443 ssl;", "")
        conf = replace_once(conf, "listen 80;", f"listen 127.0.0.1:{self.http_port};")
        conf = replace_once(conf, "listen [::]:80;", "")
        conf = replace_once(conf, "/etc/ssl/printforge/fullchain.pem", str(tls.cert))
        conf = replace_once(conf, "/etc/ssl/printforge/privkey.pem", str(tls.key))
        (folder / "printforge.conf").write_text(conf)
        temp = folder / "temp"
        temp.mkdir()
        # The test's own nginx.conf around the shipped server blocks: everything in the folder.
        # As root, nginx's workers would switch to `nobody`, who cannot enter pytest's folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log {folder}/access.log;\n"
            f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n  include {folder}/printforge.conf;\n}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"), *extra]

    def start(self) -> None:
        check = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
        with (self.folder / "stderr.log").open("wb") as stderr:
            self.proc = subprocess.Popen(self.command(), stderr=stderr)
        for _ in range(300):  # up to 30 s
            if self.proc.poll() is not None:
                stderr_text = (self.folder / "stderr.log").read_text()
                raise RuntimeError(f"nginx exited: {stderr_text}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.1),
            ):
                return
            # Not listening yet: wait a tenth of a second for it, or for it to exit.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.1)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[ServeProcess, Nginx]]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: scripts/setup installs Debian's nginx package")
    server = ServeProcess(tmp_path / "data", KEY, sim_speed=5000.0).start()
    proxy = Nginx(tmp_path / "nginx", server.port)
    try:
        proxy.start()
        yield server, proxy
    finally:
        proxy.stop()
        server.stop()


def tls_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def drive(proxy: Nginx) -> None:
    base = f"https://127.0.0.1:{proxy.https_port}"
    auth = {"Authorization": f"Bearer {KEY}"}
    connector = aiohttp.TCPConnector(ssl=tls_context(proxy.ca))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"{base}/health/ready") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ready"
        async with http.get(f"{base}/api/auth/whoami", headers=auth) as resp:
            assert (await resp.json())["role"] == "admin"
        async with http.get(f"{base}/api/auth/whoami") as resp:
            assert resp.status == 401  # the key is checked behind the proxy as before

        # 2 MiB of G-code: over nginx's default 1 MiB body limit, under the snippet's 64 MiB.
        line = b"G1 X10 Y10 E0.5 F1200 ; padding to make a large upload\n"
        body = line * (2 * 2**20 // len(line) + 1)
        async with http.post(
            f"{base}/api/uploads?filename=big.gcode", data=io.BytesIO(body), headers=auth
        ) as resp:
            upload = await resp.json()
            assert resp.status in (200, 201), upload
            assert upload["bytes"] == len(body)

        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200 and "printforge_queue_depth" in await resp.text()

        # The websocket through the proxy: submit, then follow the job's events to the end.
        async with http.ws_connect(f"wss://127.0.0.1:{proxy.https_port}/ws", headers=auth) as ws:
            await ws.send_json(
                {"jsonrpc": "2.0", "id": 1, "method": "job.submit",
                 "params": {"request": "a 10 mm cube"}}
            )  # fmt: skip
            job_id = None
            states: list[str] = []
            async with asyncio.timeout(180):
                while "completed" not in states:
                    msg = await ws.receive_json()
                    if msg.get("id") == 1:
                        assert "result" in msg, msg
                        job_id = msg["result"]["job_id"]
                    elif msg.get("method") == "job.event" and job_id is not None:
                        params = msg["params"]
                        if params["job_id"] == job_id and params["kind"] == "state":
                            states.append(params["state"])
                            assert params["state"] not in ("failed", "cancelled"), params
            assert "printing" in states
        async with http.get(f"{base}/api/jobs/{job_id}", headers=auth) as resp:
            assert (await resp.json())["state"] == "completed"
        async with http.get(f"{base}/api/jobs/{job_id}/artifacts/gcode", headers=auth) as resp:
            assert resp.status == 200 and len(await resp.read()) > 1000


@pytest.mark.asyncio
async def test_rest_upload_and_websocket_through_nginx_with_tls(
    proxied: tuple[ServeProcess, Nginx],
) -> None:
    _server, proxy = proxied
    await drive(proxy)
    # Plain HTTP is sent to HTTPS.
    conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=10)
    conn.request("GET", "/api/jobs", headers={"Host": "farm.example.com"})
    resp = conn.getresponse()
    assert resp.status == 301
    assert resp.getheader("Location") == "https://farm.example.com/api/jobs"
    conn.close()
    # Every request above went through nginx (not around it).
    assert "/ws" in (proxy.folder / "access.log").read_text()
