"""`printforge run --server URL`: submit to a running `printforge serve` and follow the job live.

The job is sent with the server's own `job.submit` over its JSON-RPC websocket, its `job.event`
notifications drive the same display as local mode, and the summary is built from `job.get`.
The websocket can drop (server restart, network); the job lives on the server, so the client
reconnects with capped backoff and re-reads the job rather than giving up at once.

The API key comes from an environment variable and goes only into the Authorization header;
it is never printed, logged or put in a URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import ValidationError
from yarl import URL

from printforge.runtime.errors import (
    AuthError,
    ConnectionLost,
    InputError,
    PrintforgeError,
    RateLimited,
    TransientError,
)

if TYPE_CHECKING:
    from printforge.cli.progress import StageProgress

__all__ = [
    "RemoteConnection",
    "run_remote",
    "summary_from_view",
]

_TERMINAL = frozenset({"completed", "failed", "cancelled"})
# Where following a job stops: its end, or a question it waits on (answered with job.answer).
_STOPS = _TERMINAL | {"needs_input"}
_SUMMARY_ARTIFACTS = ("spec", "stl", "gcode", "preview", "layers")
_CALL_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 15.0
# With no event for this long, re-read the job: it catches a missed event, and tells a print
# interrupted for good (no more events) from one the server puts back in the queue at once.
# The wait doubles while nothing happens, because a job queued behind a busy farm is silent
# for long, and many watchers sharing one key must stay well inside its rate limit.
_IDLE_FIRST_S = 5.0
_IDLE_CAP_S = 60.0
_BACKOFF_FIRST_S = 0.5
_BACKOFF_CAP_S = 5.0


def _rpc_error(error: dict[str, Any], key_env: str) -> PrintforgeError:
    """The server's JSON-RPC error as the CLI's error type; the message is the server's own."""
    code = error.get("code")
    message = str(error.get("message") or "the server refused the call")
    if code == -32001:
        return AuthError(f"the server refused the API key from ${key_env}: {message}")
    if code == -32003:
        return AuthError(message)
    if code == -32029:
        retry = (error.get("data") or {}).get("retry_after")
        return RateLimited(
            f"the server is rate limiting this key: {message}",
            retry_after=float(retry) if isinstance(retry, int | float) else None,
        )
    if code == -32010:
        return ConnectionLost(f"the server cannot do that now: {message}")
    if code in (-32600, -32601, -32602, -32004):
        return InputError(message)
    return PrintforgeError(f"the server answered with an error: {message}")


class RemoteConnection:
    """One JSON-RPC websocket to the server, used by one coroutine at a time.

    Calls and event reads are sequential, so notifications that arrive while waiting for a
    reply are buffered rather than handled by a reader task.
    """

    def __init__(self, base: URL, key: str | None, key_env: str) -> None:
        self.base = base
        self.key_env = key_env
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._events: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)

    @property
    def ws_url(self) -> URL:
        scheme = {"http": "ws", "https": "wss"}[self.base.scheme]
        return self.base.with_scheme(scheme).with_path("/ws")

    async def connect(self) -> None:
        await self._drop_socket()
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                # The heartbeat notices a server that vanished without closing the socket.
                self._ws = await self._session.ws_connect(
                    self.ws_url, headers=self._headers, heartbeat=20.0
                )
        except aiohttp.WSServerHandshakeError as err:
            # `from None`: the handshake error carries the request, headers included.
            raise self._handshake_error(err.status) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise ConnectionLost(
                f"cannot reach the printforge server at {self.base}: {_why(err)}"
            ) from err
        self._events.clear()

    def _handshake_error(self, status: int) -> PrintforgeError:
        if status in (401, 403):
            if not self._headers:
                return AuthError(
                    f"the server at {self.base} needs an API key (HTTP {status}): set"
                    f" ${self.key_env}, or name another variable with --api-key-env"
                )
            return AuthError(
                f"the server at {self.base} refused the API key from ${self.key_env}"
                f" (HTTP {status})"
            )
        if status == 404:
            return InputError(f"{self.base} has no /ws endpoint: is it a printforge server?")
        return ConnectionLost(f"the server at {self.base} refused the websocket (HTTP {status})")

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """One JSON-RPC request; its reply's result, or the server's error raised as ours."""
        ws = self._require()
        msg_id = next(self._ids)
        request = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
        try:
            await ws.send_str(json.dumps(request))
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                while True:
                    data = await self._receive(ws)
                    if "method" in data:
                        self._events.append(data)
                    elif data.get("id") == msg_id:
                        break
        except TimeoutError:
            await self._drop_socket()
            raise ConnectionLost(
                f"no answer from {self.base} to {method} within {_CALL_TIMEOUT_S:.0f} s"
            ) from None
        except (aiohttp.ClientError, ConnectionError) as err:
            await self._drop_socket()
            raise ConnectionLost(f"lost the connection to {self.base}: {_why(err)}") from err
        if "error" in data:
            raise _rpc_error(data["error"] or {}, self.key_env)
        return data.get("result")

    async def next_notification(self, timeout: float) -> dict[str, Any] | None:
        """The next notification, or None when none arrives within `timeout` seconds."""
        if self._events:
            return self._events.popleft()
        ws = self._require()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self._receive(ws)
                    if "method" in data:
                        return data
        except TimeoutError:
            return None
        except (aiohttp.ClientError, ConnectionError) as err:
            await self._drop_socket()
            raise ConnectionLost(f"lost the connection to {self.base}: {_why(err)}") from err

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        msg = await ws.receive()
        if msg.type is aiohttp.WSMsgType.TEXT:
            try:
                data = json.loads(msg.data)
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        await self._drop_socket()
        code = ws.close_code
        raise ConnectionLost(
            f"the server at {self.base} closed the connection"
            + (f" (code {code})" if code is not None else "")
        )

    def _require(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None or self._ws.closed:
            raise ConnectionLost(f"not connected to {self.base}")
        return self._ws

    async def download(self, path: str, dest: Path) -> None:
        """GET one of the server's artifact addresses into `dest`."""
        assert self._session is not None
        async with (
            asyncio.timeout(120),
            self._session.get(self.base.join(URL(path)), headers=self._headers) as resp,
        ):
            if resp.status != 200:
                raise ConnectionLost(f"{path}: the server answered HTTP {resp.status}")
            data = await resp.read()
        await asyncio.to_thread(dest.write_bytes, data)

    async def _drop_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close()

    async def close(self) -> None:
        await self._drop_socket()
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _why(err: BaseException) -> str:
    if isinstance(err, aiohttp.ClientConnectorError):
        os_error = err.os_error
        # asyncio's own text ("Connect call failed (...)") says less than the errno does;
        # resolver errors have negative numbers and their own text.
        if os_error.errno and os_error.errno > 0:
            return os.strerror(os_error.errno).lower()
        return (os_error.strerror or str(os_error)).lower()
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__


def server_url(value: str) -> URL:
    """The server's origin from --server / $PRINTFORGE_SERVER_URL.

    Only the origin is kept: the server's links are absolute paths, and a dashboard address
    pasted with `?token=KEY` must not carry the key into messages.
    """
    try:
        url = URL(value if "://" in value else f"http://{value}")
        ok = url.scheme in {"http", "https", "ws", "wss"} and bool(url.host)
    except ValueError:
        ok = False
    if not ok:
        shown = value.split("?", 1)[0]
        raise InputError(f"--server {shown!r} is not an address like http://127.0.0.1:8470")
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return url.with_scheme(scheme).origin()


def submit_params(args: argparse.Namespace) -> dict[str, Any]:
    """The `job.submit` params for the run flags; a flag the method has no field for is refused
    rather than silently dropped."""
    if args.sim_speed is not None:
        raise InputError(
            "--sim-speed cannot be sent to a server (its virtual printers' speed is the"
            " server's own setting)"
        )
    params: dict[str, Any] = {"request": args.request}
    if args.printer is not None:
        params["printer"] = args.printer
    if args.material is not None:
        params["material"] = args.material
    if args.provider is not None:
        params["providers"] = [name.strip() for name in args.provider.split(",") if name.strip()]
    if args.llm_model is not None:
        params["model"] = args.llm_model
    if args.tags:
        params["tags"] = args.tags
    if args.nozzle is not None:
        params["nozzle_diameter"] = args.nozzle
    if args.not_before is not None:
        params["not_before"] = args.not_before
    overrides = {
        "engine": args.engine,
        "layer_height": args.layer_height,
        "infill_percent": args.infill,
        "perimeters": args.perimeters,
    }
    slice_params = {k: v for k, v in overrides.items() if v is not None}
    if slice_params:
        params["slice"] = slice_params
    if args.no_print:
        params["print"] = False
    return params


def summary_from_view(view: dict[str, Any], base: URL) -> dict[str, Any]:
    """The local `--json` shape (`run.job_summary`) from the server's job view.

    The server never reveals its own paths, so artifacts are the addresses that serve them.
    """
    links = view.get("artifacts") or {}
    return {
        "job_id": view["job_id"],
        "state": view["state"],
        "request": view["request"],
        "printer": view.get("printer"),
        "stages": [
            {"name": s["name"], "state": s["state"], "duration_s": s["duration_s"]}
            for s in view["stages"]
        ],
        "artifacts": {
            name: str(base.join(URL(links[name]))) if name in links else None
            for name in _SUMMARY_ARTIFACTS
        },
        # A job waiting for an answer ends the command as a failure with the question, as in
        # local mode (the job itself waits on the server for job.answer).
        "error": view.get("error")
        or (
            {"code": "needs_input", "message": view.get("question") or ""}
            if view["state"] == "needs_input"
            else None
        ),
        "last_acked_line": view.get("last_acked_line"),
        "requirements": view.get("requirements", []),
        "question": view.get("question"),
    }


class RemoteRun:
    """Submit one request and follow it to its end, across reconnects."""

    def __init__(
        self, conn: RemoteConnection, display: StageProgress | None, reconnect_timeout: float
    ) -> None:
        self.conn = conn
        self.display = display
        self.reconnect_timeout = reconnect_timeout
        self.job_id: str | None = None

    async def submit(self, params: dict[str, Any]) -> str:
        await self.conn.connect()
        # "own" before submitting: the server marks the job ours as it answers, so its first
        # events are not missed and other jobs' events never reach us.
        await self.conn.call("events.subscribe", {"jobs": "own", "printers": False})
        result = await self.conn.call("job.submit", params)
        self.job_id = str(result["job_id"])
        return self.job_id

    async def answer(self, job_id: str, text: str) -> None:
        """Answer the question job `job_id` waits on (job.answer), to follow it from there."""
        await self.conn.connect()
        # Subscribed before answering, so the first events of the new run are not missed.
        await self.conn.call("events.subscribe", {"jobs": [job_id], "printers": False})
        await self.conn.call("job.answer", {"job_id": job_id, "text": text})
        self.job_id = job_id

    async def follow(self) -> dict[str, Any]:
        """Until the job ends; returns its final `job.get` view."""
        from printforge.models.event import JobEvent

        assert self.job_id is not None
        idle = _IDLE_FIRST_S
        while True:
            try:
                note = await self.conn.next_notification(idle)
                if note is None:
                    view = await self._get()
                    self._sync(view)
                    # Quiet for a while and still interrupted: no one will requeue it.
                    if view["state"] in _STOPS or view["state"] == "interrupted":
                        return view
                    idle = min(idle * 2, _IDLE_CAP_S)
                    continue
                if note.get("method") != "job.event":
                    continue
                try:
                    event = JobEvent.model_validate(note.get("params") or {})
                except ValidationError:
                    continue  # a newer server's event kind: the final job.get still tells all
                if event.job_id != self.job_id:
                    continue
                idle = _IDLE_FIRST_S
                if self.display is not None:
                    self.display.apply(event)
                elif event.data.get("bed_clear") and event.message:
                    self._say(f"printforge: {event.message}")
                if event.kind == "state" and event.state.value in _STOPS:
                    return await self._get()
            except RateLimited as err:
                # Only the watching is limited; the job goes on. Ask again when allowed.
                await asyncio.sleep(err.retry_after or idle)
            except ConnectionLost as err:
                idle = _IDLE_FIRST_S
                view = await self._reconnect(err)
                self._sync(view)
                if view["state"] in _STOPS:
                    return view

    async def _get(self) -> dict[str, Any]:
        view: dict[str, Any] = await self.conn.call("job.get", {"job_id": self.job_id})
        return view

    def _sync(self, view: dict[str, Any]) -> None:
        if self.display is not None:
            self.display.sync({s["name"]: s["state"] for s in view["stages"]})

    async def _reconnect(self, cause: TransientError) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        self._say(f"printforge: {cause.message}; reconnecting (job {self.job_id})")
        delay = _BACKOFF_FIRST_S
        while True:
            try:
                # One attempt may not outlast the deadline, whatever the server does.
                async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                    await self.conn.connect()
                    # Subscribe before reading the job, so no event between the two is lost.
                    subscription = {"jobs": [self.job_id], "printers": False}
                    await self.conn.call("events.subscribe", subscription)
                    view = await self._get()
            except (ConnectionLost, RateLimited) as err:
                cause = err
            except TimeoutError:
                cause = ConnectionLost("no answer in time")
            else:
                self._say(f"printforge: reconnected to {self.conn.base}")
                return view
            if loop.time() + delay > deadline:
                raise ConnectionLost(
                    f"lost the connection to {self.conn.base} and could not reconnect within"
                    f" {self.reconnect_timeout:g} s ({cause.message}); job {self.job_id} may"
                    f" still be running there: GET {self._job_url()}"
                )
            # Jitter, not cryptography: spreads the reconnects of many clients after a restart.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, _BACKOFF_CAP_S)

    def _job_url(self) -> URL:
        return self.conn.base.join(URL(f"/api/jobs/{self.job_id}"))

    def _say(self, text: str) -> None:
        if self.display is not None:
            self.display.note(text)
        else:
            print(text, file=sys.stderr)

    def interrupted_hint(self) -> str:
        job_url = self._job_url()
        return (
            f"printforge: stopped watching; job {self.job_id} keeps running on {self.conn.base}\n"
            f"  follow it: {self.conn.base.join(URL('/'))} (dashboard) or GET {job_url}\n"
            f"  cancel it: POST {job_url}/cancel"
            f" (with the header Authorization: Bearer ${self.conn.key_env})"
        )


async def run_remote(
    args: argparse.Namespace, server: str, answer: tuple[str, str] | None = None
) -> int:
    """`printforge run --server`: exit 0 only when the job completed, as in local mode. With
    `answer` (job id, text), `printforge answer --server`: the job's question is answered and
    the job followed from there."""
    from printforge.cli.progress import StageProgress, render_summary
    from printforge.server.views import ARTIFACT_FILES

    base = server_url(server)
    params = submit_params(args) if answer is None else {}
    key_env = args.api_key_env
    conn = RemoteConnection(base, os.environ.get(key_env) or None, key_env)
    display: StageProgress | None = None if args.json else StageProgress()
    remote = RemoteRun(conn, display, args.reconnect_timeout)
    try:
        if answer is None:
            await remote.submit(params)
        else:
            await remote.answer(*answer)
        try:
            if display is not None:
                with display:
                    view = await remote.follow()
                    display.mark_skipped({s["name"]: s["state"] for s in view["stages"]})
            else:
                view = await remote.follow()
        except asyncio.CancelledError:
            # Ctrl-C: the job is the server's; stop watching, leave it running, say how to
            # find it again.
            print(remote.interrupted_hint(), file=sys.stderr)
            raise
        links: dict[str, str] = view.get("artifacts") or {}
        if args.out:
            out = Path(args.out)
            await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
            for name, path in links.items():
                await conn.download(path, out / ARTIFACT_FILES[name])
    finally:
        await conn.close()
    if args.json:
        json.dump(summary_from_view(view, base), sys.stdout)
        sys.stdout.write("\n")
    else:
        if args.out:
            folder = Path(args.out)
            files = str(folder)
            names = ("preview.png", "layers.png")
            pictures = [str(folder / n) for n in names if (folder / n).is_file()]
        else:
            # The server keeps the files; say where each one is served (--out downloads them).
            names = ",".join(links)
            folder = base.join(URL(f"/api/jobs/{view['job_id']}/artifacts/"))
            files = f"{folder}{{{names}}}"
            pictures = [str(base.join(URL(links[n]))) for n in ("preview", "layers") if n in links]
        render_summary(view, files, pictures)
    return 0 if view["state"] == "completed" else 1
