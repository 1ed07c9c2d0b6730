"""`notify.failed` and `notify.resend`: the dead-letter list of notifications (issue 15)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from printforge.runtime.errors import InputError
from printforge.server.auth import Role
from printforge.server.rpc import CallContext, Endpoint, HandlerTable, NoParams
from printforge.server.state import STATE_KEY

__all__ = ["register_notify"]


class DeadLetterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, description="an id from notify.failed")


def _notifier(ctx: CallContext) -> Any:
    return ctx.app[STATE_KEY].orch.notifier


async def _handle_failed(ctx: CallContext, p: NoParams) -> dict[str, Any]:
    notifier = _notifier(ctx)
    if notifier is None:
        return {"enabled": False, "failed": []}
    return {"enabled": True, "failed": notifier.failed(), "delivered": notifier.delivered}


async def _handle_resend(ctx: CallContext, p: DeadLetterParams) -> dict[str, Any]:
    notifier = _notifier(ctx)
    if notifier is None:
        raise InputError("no notifications are configured ([notify] webhooks or apprise)")
    result: dict[str, Any] = await notifier.resend(p.id)
    return result


def register_notify(t: HandlerTable) -> None:
    t.register(
        Endpoint(
            "notify.failed",
            _handle_failed,
            role=Role.OPERATOR,
            summary="Notifications that could not be delivered after every retry",
            http=("GET", "/api/notify/failed"),
        )
    )
    t.register(
        Endpoint(
            "notify.resend",
            _handle_resend,
            DeadLetterParams,
            Role.OPERATOR,
            "Send a failed notification again (removed from the list once delivered)",
            ("POST", "/api/notify/failed/{id}/resend"),
        )
    )
