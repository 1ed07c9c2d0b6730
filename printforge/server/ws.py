"""The websocket endpoint: JSON-RPC calls in; notifications go out through the Broadcaster
(server/broadcast.py), which the server state owns."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from aiohttp import WSMsgType, web

from printforge.runtime import metrics
from printforge.server.auth import Principal
from printforge.server.broadcast import Broadcaster, WsClient
from printforge.server.rpc import CallContext, ErrorCode, RpcError, error_for, error_reply
from printforge.server.state import PRINCIPAL_KEY, STATE_KEY

__all__ = ["Broadcaster", "WsClient", "handle_ws"]

log = logging.getLogger(__name__)


async def handle_ws(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    principal: Principal = request[PRINCIPAL_KEY]
    cfg = state.settings.server
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=cfg.max_ws_message_bytes)
    await ws.prepare(request)
    broadcaster = state.broadcaster
    assert broadcaster is not None
    client = WsClient(ws, principal, cfg.ws_queue_size)
    broadcaster.clients.add(client)
    metrics.WEBSOCKET_CLIENTS.inc()
    writer = asyncio.create_task(client.write_loop(), name="ws-writer")
    ctx = CallContext(app=request.app, principal=principal, transport="ws", client=client)
    started = time.monotonic()
    try:
        async for msg in ws:
            if client.revoked:
                err = RpcError(ErrorCode.UNAUTHORIZED, "this API key was revoked")
                reply = json.dumps({"jsonrpc": "2.0", "id": None, "error": err.to_dict()})
            elif msg.type is WSMsgType.TEXT:
                try:
                    reply = await state.table.dispatch(ctx, msg.data)
                except Exception as err:
                    # Never an HTTP 500 written into an open websocket: one error answer, and
                    # the socket stays usable.
                    reply = error_reply(error_for(err))
            elif msg.type is WSMsgType.BINARY:
                err = RpcError(ErrorCode.INVALID_REQUEST, "send JSON-RPC as text frames")
                reply = json.dumps({"jsonrpc": "2.0", "id": None, "error": err.to_dict()})
            else:
                break
            if reply is not None:
                client.offer(reply)
    finally:
        broadcaster.clients.discard(client)
        metrics.WEBSOCKET_CLIENTS.dec()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        log.debug("websocket %s closed after %.1f s", principal.name, time.monotonic() - started)
    return ws
