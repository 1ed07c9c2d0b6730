"""The one handler table behind both the websocket (JSON-RPC 2.0) and HTTP, and the one place
mapping printforge's error types to JSON-RPC codes and HTTP statuses.

A method is registered once with its parameter model, its role and (optionally) an HTTP route;
the websocket, `POST /api/rpc` and the REST routes all call `dispatch`/`call`, so a method cannot
behave differently depending on how it was reached.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from printforge.runtime import metrics
from printforge.runtime.errors import (
    AuthError,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    InputError,
    InvalidTransition,
    PrinterError,
    PrintforgeError,
    RateLimited,
    TransientError,
)
from printforge.server.auth import Principal, Role

__all__ = [
    "CallContext",
    "Endpoint",
    "ErrorCode",
    "Forbidden",
    "HandlerTable",
    "NoParams",
    "RpcError",
    "error_for",
    "error_reply",
    "parse_message",
]

log = logging.getLogger(__name__)


class ErrorCode(IntEnum):
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # Application codes, in the range JSON-RPC reserves for servers.
    UNAUTHORIZED = -32001
    FORBIDDEN = -32003
    NOT_FOUND = -32004
    CONFLICT = -32009
    UNAVAILABLE = -32010
    RATE_LIMITED = -32029


_HTTP_STATUS = {
    ErrorCode.PARSE_ERROR: 400,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.METHOD_NOT_FOUND: 404,
    ErrorCode.INVALID_PARAMS: 400,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.RATE_LIMITED: 429,
}


class Forbidden(AuthError):
    """Authenticated, but the key's role does not allow this method."""

    code = "forbidden"


class RpcError(Exception):
    """An error already in wire form: JSON-RPC code, message, optional data and HTTP status."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        data: dict[str, Any] | None = None,
        *,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}
        self._http_status = http_status  # e.g. 413 for a body over the limit, still -32600

    @property
    def http_status(self) -> int:
        return self._http_status or _HTTP_STATUS[self.code]

    @property
    def retry_after(self) -> float | None:
        value = self.data.get("retry_after")
        return float(value) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": int(self.code), "message": self.message}
        if self.data:
            out["data"] = self.data
        return out


def _validation_message(err: ValidationError) -> str:
    parts = []
    for item in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in item["loc"]) or "params"
        parts.append(f"{loc}: {str(item['msg']).removeprefix('Value error, ')}")
    return "invalid params: " + "; ".join(parts)


def error_for(err: BaseException) -> RpcError:
    """Translate any exception into its wire form. Unknown errors never leak their text."""
    if isinstance(err, RpcError):
        return err
    if isinstance(err, ValidationError):
        return RpcError(ErrorCode.INVALID_PARAMS, _validation_message(err))
    if isinstance(err, PrintforgeError):
        data: dict[str, Any] = {"error": err.code}
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            data["retry_after"] = retry_after
        if isinstance(err, Forbidden):
            code = ErrorCode.FORBIDDEN
        elif isinstance(err, AuthError):
            code = ErrorCode.UNAUTHORIZED
        elif isinstance(err, InputError) and err.code == "not_found":
            code = ErrorCode.NOT_FOUND
        elif isinstance(err, InputError):
            code = ErrorCode.INVALID_PARAMS
        elif isinstance(err, RateLimited | BudgetExceeded):
            code = ErrorCode.RATE_LIMITED
        elif isinstance(err, TransientError | CircuitOpen):
            # Before PrinterError: a disconnected printer is worth retrying later.
            code = ErrorCode.UNAVAILABLE
        elif isinstance(err, InvalidTransition | PrinterError):
            code = ErrorCode.CONFLICT
        elif isinstance(err, ConfigError):
            code = ErrorCode.INTERNAL_ERROR
        else:
            code = ErrorCode.CONFLICT
        return RpcError(code, err.message, data)
    if isinstance(err, TimeoutError):
        # A wait inside a handler gave up (a printer busy for longer than it allowed): worth
        # retrying, and no server fault. The operator still hears of it: it should not happen.
        log.warning("a handler timed out (traceback at DEBUG)")
        log.debug("a handler timed out", exc_info=err)
        return RpcError(
            ErrorCode.UNAVAILABLE,
            "timed out waiting for the printer or service; try again",
            {"error": "timeout"},
        )
    # One line at ERROR for the operator; the traceback at DEBUG, for whoever debugs it.
    log.error("unexpected error in a handler: %s (traceback at DEBUG)", type(err).__name__)
    log.debug("unexpected error in a handler", exc_info=err)
    return RpcError(ErrorCode.INTERNAL_ERROR, "internal error", {"error": type(err).__name__})


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class CallContext:
    """Who is calling and through what; handlers read the app state from `app`."""

    app: Any  # aiohttp.web.Application; typed loosely to keep this module free of aiohttp
    principal: Principal
    transport: str  # "ws" or "http"
    client: Any = None  # the websocket connection, for methods that change its subscription


Handler = Callable[[CallContext, Any], Awaitable[Any]]
# Whether a call without the endpoint's capability is allowed all the same (its own job).
Exemption = Callable[[CallContext, Any], Awaitable[bool]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    handler: Handler
    params: type[BaseModel] = NoParams
    role: Role = Role.VIEWER
    summary: str = ""
    http: tuple[str, str] | None = None  # (verb, path) of the REST mirror
    http_status: int = 200
    result_example: Any = None
    # Needed on top of the role (auth.CAPABILITIES; an admin has every one), unless `exempt`
    # says this call is allowed anyway; `exempt_doc` says when, for the error and the docs.
    capability: str | None = None
    exempt: Exemption | None = None
    exempt_doc: str = ""

    def needs(self) -> str:
        """Who may call it, in words (errors, OpenAPI)."""
        needs = f"the {self.role.name.lower()} role"
        if self.capability is not None:
            needs += f" and the {self.capability} capability (admin keys have it)"
            if self.exempt_doc:
                needs += f", or {self.exempt_doc}"
        return needs


@dataclass
class HandlerTable:
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    limiter: Any = None  # RateLimiter; each call costs its key one token
    # A 1 MiB frame of `[1,1,…]` is half a million invalid requests, whose error replies
    # (74 MB) held the event loop for seconds: batches longer than this are refused whole.
    max_batch: int = 100
    # JSON nested 1,000 deep (2 KB) overflowed the decoder's recursion and came out as an
    # HTTP 500 inside the websocket; no method takes anything near this deep.
    max_depth: int = 32

    def register(self, endpoint: Endpoint) -> None:
        if endpoint.method in self.endpoints:
            raise ValueError(f"method {endpoint.method} registered twice")
        self.endpoints[endpoint.method] = endpoint

    def get(self, method: str) -> Endpoint:
        try:
            return self.endpoints[method]
        except KeyError:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"unknown method {method!r}") from None

    async def call(self, ctx: CallContext, method: str, params: Any) -> Any:
        """Authorise, validate and run one method; raises RpcError on any failure."""
        endpoint = self.get(method)
        outcome = "error"
        try:
            if not ctx.principal.role.allows(endpoint.role):
                raise Forbidden(
                    f"{method} needs the {endpoint.role.name.lower()} role"
                    f" (this key is {ctx.principal.role.name.lower()})"
                )
            if self.limiter is not None:
                self.limiter.check(ctx.principal.key_id)
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise RpcError(ErrorCode.INVALID_PARAMS, "params must be an object")
            parsed = endpoint.params.model_validate(params)
            await _check_capability(ctx, endpoint, parsed)
            result = await endpoint.handler(ctx, parsed)
            outcome = "ok"
            return result
        except Exception as err:
            raise error_for(err) from err
        finally:
            metrics.RPC_CALLS.labels(method, ctx.transport, outcome).inc()

    async def dispatch(self, ctx: CallContext, raw: str | bytes) -> str | None:
        """One JSON-RPC message or batch; returns the reply text (None for notifications)."""
        try:
            message = parse_message(raw, self.max_depth)
        except RpcError as err:
            return error_reply(err)
        return await self.dispatch_message(ctx, message)

    async def dispatch_message(self, ctx: CallContext, message: Any) -> str | None:
        """One decoded JSON-RPC message or batch (see `dispatch`)."""
        if isinstance(message, list):
            if not message:
                err = RpcError(ErrorCode.INVALID_REQUEST, "empty batch")
                return _dumps({"jsonrpc": "2.0", "id": None, "error": err.to_dict()})
            if len(message) > self.max_batch:
                err = RpcError(
                    ErrorCode.INVALID_REQUEST,
                    f"a batch of {len(message)} requests; at most {self.max_batch}"
                    " (server.max_batch): split it",
                )
                return _dumps({"jsonrpc": "2.0", "id": None, "error": err.to_dict()})
            replies = [r for r in [await self._one(ctx, m) for m in message] if r is not None]
            return _dumps(replies) if replies else None
        reply = await self._one(ctx, message)
        return _dumps(reply) if reply is not None else None

    async def _one(self, ctx: CallContext, message: Any) -> dict[str, Any] | None:
        msg_id = message.get("id") if isinstance(message, dict) else None
        # JSON-RPC ids are strings, numbers or null; a request with another id is not run
        # (the caller could not match its answer, so a job.submit would be a blind one).
        bad_id = not isinstance(msg_id, str | int | float | type(None)) or isinstance(msg_id, bool)
        if bad_id:
            msg_id = None
        if (
            bad_id
            or not isinstance(message, dict)
            or message.get("jsonrpc") != "2.0"
            or not isinstance(message.get("method"), str)
        ):
            err = RpcError(
                ErrorCode.INVALID_REQUEST,
                'a request is an object with "jsonrpc": "2.0", a string "method" and an "id"'
                " (a string or a number)",
            )
            return {"jsonrpc": "2.0", "id": msg_id, "error": err.to_dict()}
        is_notification = "id" not in message
        try:
            result = await self.call(ctx, message["method"], message.get("params"))
        except RpcError as err:
            if is_notification:
                return None
            return {"jsonrpc": "2.0", "id": msg_id, "error": err.to_dict()}
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "id": msg_id, "result": result}


async def _check_capability(ctx: CallContext, endpoint: Endpoint, parsed: Any) -> None:
    cap = endpoint.capability
    if cap is None or ctx.principal.can(cap):
        return
    if endpoint.exempt is not None and await endpoint.exempt(ctx, parsed):
        return
    raise Forbidden(
        f"{endpoint.method} needs {endpoint.needs()}"
        f" (this key is {ctx.principal.role.name.lower()} without it)"
    )


def parse_message(raw: str | bytes, max_depth: int = 32) -> Any:
    """Decode one JSON message; malformed → -32700, nested deeper than `max_depth` → -32600."""
    too_deep = RpcError(
        ErrorCode.INVALID_REQUEST,
        f"JSON nested deeper than {max_depth} levels (server.max_json_depth)",
    )
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise RpcError(ErrorCode.PARSE_ERROR, f"parse error: {err}") from None
    except RecursionError:
        raise too_deep from None
    if _deeper_than(message, max_depth):
        raise too_deep
    return message


def _deeper_than(obj: Any, limit: int) -> bool:
    """Without recursion, so that checking depth cannot itself overflow the stack."""
    if not isinstance(obj, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def error_reply(err: RpcError) -> str:
    """A JSON-RPC error answer to a message that could not be read as a request."""
    return _dumps({"jsonrpc": "2.0", "id": None, "error": err.to_dict()})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)
