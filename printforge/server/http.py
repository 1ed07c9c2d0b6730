"""HTTP: the auth, CORS and error middlewares, the REST mirror of the handler table, uploads,
artifact downloads and `POST /api/rpc`."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from printforge.runtime.errors import AuthError, InputError, InsufficientStorage
from printforge.runtime.paths import private_dir
from printforge.runtime.system import disk_full
from printforge.server.api import check_disk
from printforge.server.auth import Principal, Role
from printforge.server.rpc import (
    CallContext,
    Endpoint,
    ErrorCode,
    RpcError,
    error_for,
    error_reply,
    parse_message,
)
from printforge.server.state import PRINCIPAL_KEY, STATE_KEY, ServerState
from printforge.server.views import ARTIFACT_FILES, artifact_file, media_type, open_servable

__all__ = ["PUBLIC_PATHS", "add_routes", "error_response", "middlewares"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Reachable without a key: the dashboard shell (it asks for a key), probes and the API document.
PUBLIC_PATHS = frozenset(
    {"/", "/favicon.ico", "/health/live", "/health/ready", "/api/openapi.json"}
)
_ANONYMOUS = Principal(key_id="anonymous", name="auth disabled", role=Role.ADMIN)
_UPLOAD_KINDS = {".stl": "model", ".3mf": "model", ".obj": "model", ".gcode": "gcode"}


def error_response(err: RpcError) -> web.Response:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(err.retry_after)))
    if err.code is ErrorCode.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="printforge"'
    return web.json_response({"error": err.to_dict()}, status=err.http_status, headers=headers)


def _presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    # Browsers cannot set headers on a websocket or an <img>, hence the query parameter.
    return request.query.get("token") or request.headers.get("X-API-Key") or None


def _is_public(request: web.Request, state: ServerState) -> bool:
    path = request.path
    if path in PUBLIC_PATHS or path.startswith("/static/"):
        return True
    return path == "/metrics" and state.settings.server.metrics_public


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = {
            404: ErrorCode.NOT_FOUND,
            405: ErrorCode.METHOD_NOT_FOUND,
            413: ErrorCode.INVALID_REQUEST,
        }.get(exc.status, ErrorCode.INVALID_REQUEST)
        body = {"error": {"code": int(code), "message": exc.reason or exc.text or "error"}}
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        return web.json_response(body, status=exc.status, headers=headers)
    except ConnectionResetError:
        # The client left (a browser closing a tab mid-handshake, a reload): nothing is wrong
        # here and nobody is left to answer; not an ERROR with a traceback in the log.
        log.debug("client %s left during %s %s", request.remote, request.method, request.path)
        return web.Response(status=499, reason="Client Closed Request")
    except Exception as err:
        return error_response(error_for(err))


@web.middleware
async def _cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origins = request.app[STATE_KEY].settings.server.cors_origins
    origin = request.headers.get("Origin")
    allowed = origin is not None and ("*" in origins or origin in origins)
    if (
        request.method == "OPTIONS"
        and allowed
        and "Access-Control-Request-Method" in request.headers
    ):
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if allowed and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin or ""
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-API-Key"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"
    return response


def client_address(request: web.Request, trusted: list[str]) -> str:
    """The caller's address: X-Forwarded-For is believed only from `trusted` proxies.

    Behind the nginx of deploy/nginx every request comes from 127.0.0.1, so without this all
    clients would share one guess budget. Walked from the right, the first address that is
    not a trusted proxy is the client (addresses further left were written by the client).
    """
    peer = request.remote or "unknown"
    if not trusted or not _in_networks(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _in_networks(hop, trusted):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if not state.settings.server.auth_required:
        request[PRINCIPAL_KEY] = _ANONYMOUS
        return await handler(request)
    if _is_public(request, state):
        return await handler(request)
    key = _presented_key(request)
    try:
        if key is None:
            raise AuthError("an API key is required: Authorization: Bearer KEY, or ?token=KEY")
        request[PRINCIPAL_KEY] = await _authenticate(request, state, key)
    except Exception as err:
        return error_response(error_for(err))
    return await handler(request)


async def _authenticate(request: web.Request, state: ServerState, key: str) -> Principal:
    """Check `key`, paying for the attempt before it is checked.

    The token is taken before the (slow, off-loop) PBKDF2 check, not after it failed: taken
    afterwards, fifty guesses sent at once all passed the "any tokens left?" test before the
    first one failed, so concurrent guessing was not slowed at all. A success gives it back.
    """
    key_id = state.keys.guess_scope(key)
    if key_id is None:
        bucket = "ip:" + client_address(request, state.settings.server.trusted_proxies)
        # A weak bootstrap key is guessable: an address out of guesses is refused even for a
        # key verified before, so a guesser cannot tell a hit from a miss.
        state.auth_failures.ensure(bucket)
    else:
        bucket = f"key:{key_id}"
    known = state.keys.cached(key)
    if known is not None:
        return known
    state.auth_failures.check(bucket)
    principal = await state.keys.verify(key)
    state.auth_failures.refund(bucket)
    return principal


def middlewares() -> list[Any]:
    return [_cors, _errors, _auth]


# REST mirror -------------------------------------------------------------------------------------


def _rest_handler(endpoint: Endpoint) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        params: dict[str, Any] = {k: v for k, v in request.query.items() if k != "token"}
        if request.method == "POST" and request.can_read_body:
            body = parse_message(await _read_body(request), state.table.max_depth)
            if not isinstance(body, dict):
                raise RpcError(ErrorCode.INVALID_PARAMS, "the body must be a JSON object")
            params.update(body)
        params.update(request.match_info)
        ctx = CallContext(app=request.app, principal=request[PRINCIPAL_KEY], transport="http")
        result = await state.table.call(ctx, endpoint.method, params)
        return web.json_response(result, status=endpoint.http_status, dumps=_dumps)

    handle.__name__ = f"_handle_{endpoint.method.replace('.', '_')}"
    return handle


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


async def _read_body(request: web.Request) -> bytes:
    """A JSON body, refused (413, -32600) past `max_request_bytes` before more is read."""
    state = request.app[STATE_KEY]
    principal: Principal = request[PRINCIPAL_KEY]
    # A flooding key is refused before its body costs anything (the calls inside take tokens).
    state.limiter.ensure(principal.key_id)
    limit = state.settings.server.max_request_bytes
    too_big = RpcError(
        ErrorCode.INVALID_REQUEST,
        f"the body is over {limit} bytes (server.max_request_bytes); send files through"
        " POST /api/uploads",
        http_status=413,
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    try:
        # The app's client_max_size is the same limit, for bodies without a Content-Length.
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_big from None


async def _handle_rpc(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    ctx = CallContext(app=request.app, principal=request[PRINCIPAL_KEY], transport="http")
    try:
        message = parse_message(await _read_body(request), state.table.max_depth)
    except RpcError as err:
        # A message that is not a request at all: its HTTP status says so too (400, 413).
        return web.Response(
            text=error_reply(err), status=err.http_status, content_type="application/json"
        )
    reply = await state.table.dispatch_message(ctx, message)
    if reply is None:
        return web.Response(status=204)
    return web.Response(text=reply, content_type="application/json")


async def _handle_artifact(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    name = request.match_info["name"]
    if name not in ARTIFACT_FILES:
        raise InputError(
            f"unknown artifact {name!r} (one of {', '.join(ARTIFACT_FILES)})", code="not_found"
        )
    job = await state.orch.get(request.match_info["job_id"])
    missing = InputError(f"job {job.id} has no {name} (yet)", code="not_found")
    path = artifact_file(job, state.orch.job_dir(job.id).parent, name)
    if path is None:
        raise missing
    # Checked again on the open file: a symlink swapped in after the check is not followed.
    f = open_servable(path, missing)
    filename = f"{job.id}-{ARTIFACT_FILES[name]}"
    return web.Response(
        body=f,
        headers={
            "Content-Type": media_type(name),
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "no-cache",
        },
    )


def _check_upload(head: bytes, size: int, suffix: str) -> None:
    """Cheap checks that catch the wrong file before a job is queued for it."""
    if size == 0:
        raise InputError("the upload is empty")
    if suffix == ".stl":
        binary = size >= 84 and 84 + 50 * int.from_bytes(head[80:84], "little") == size
        if not binary and not head.lstrip()[:5].lower() == b"solid":
            raise InputError("not an STL file (neither binary STL nor ASCII 'solid')")
    elif suffix == ".3mf":
        if not head.startswith(b"PK\x03\x04"):
            raise InputError("not a 3MF file (3MF is a zip archive)")
    elif b"\x00" in head:
        raise InputError(f"not a text {suffix} file (it contains NUL bytes)")


async def _handle_upload(request: web.Request) -> web.StreamResponse:
    """Store a model or G-code as `<sha256>.<ext>`; the name is what job.submit takes."""
    state = request.app[STATE_KEY]
    principal: Principal = request[PRINCIPAL_KEY]
    if not principal.role.allows(Role.OPERATOR):
        raise RpcError(ErrorCode.FORBIDDEN, "uploading needs the operator role")
    state.limiter.check(principal.key_id)
    check_disk(state)
    filename = request.query.get("filename", "")
    reader: Any = request.content
    if request.content_type.startswith("multipart/"):
        multipart = await request.multipart()
        part = await multipart.next()
        while part is not None and getattr(part, "name", None) != "file":
            part = await multipart.next()
        if part is None:
            raise InputError('a multipart upload needs a part named "file"')
        filename = part.filename or filename  # type: ignore[union-attr]
        reader = part
    suffix = os.path.splitext(filename.lower())[1]
    if suffix not in _UPLOAD_KINDS:
        raise InputError(
            f"cannot tell the file type of {filename!r}: give ?filename=NAME.stl|.3mf|.obj|.gcode"
        )
    folder = private_dir(state.uploads_dir)
    tmp = folder / f".upload-{secrets.token_hex(8)}"
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            while True:
                chunk = await (
                    reader.read_chunk() if hasattr(reader, "read_chunk") else reader.readany()
                )
                if not chunk:
                    break
                size += len(chunk)
                if size > state.settings.server.max_upload_bytes:
                    raise web.HTTPRequestEntityTooLarge(
                        max_size=state.settings.server.max_upload_bytes, actual_size=size
                    )
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                digest.update(chunk)
                f.write(chunk)
        _check_upload(head, size, suffix)
        name = f"{digest.hexdigest()}{suffix}"
        os.replace(tmp, folder / name)
    except OSError as err:
        if disk_full(err):
            raise InsufficientStorage(
                "no space left on the disk of the data directory for this upload"
            ) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    body = {
        "upload": name,
        "kind": _UPLOAD_KINDS[suffix],
        "sha256": digest.hexdigest(),
        "bytes": size,
        "filename": filename,
    }
    return web.json_response(body, status=201)


def add_routes(app: web.Application, state: ServerState) -> None:
    for endpoint in state.table.endpoints.values():
        if endpoint.http is not None:
            verb, path = endpoint.http
            app.router.add_route(verb, path, _rest_handler(endpoint))
    app.router.add_post("/api/rpc", _handle_rpc)
    app.router.add_post("/api/uploads", _handle_upload)
    app.router.add_get("/api/jobs/{job_id}/artifacts/{name}", _handle_artifact)
    from printforge.server.vision_api import register_vision_routes

    register_vision_routes(app)
