"""Notifications: send one (``POST /v1/notifications``), read one with its deliveries, list
a recipient's, a correlation id's or a category's (docs/notifications.md).

Sending needs ``write``; reading ``read``. Everything is the caller's tenant's: another
tenant's notification is a 404, as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from hora.api.deps import Cursor, IdemKey, Limit, Reader, Writer, _ctx, _reply
from hora.api.schemas import _In
from hora.notify.model import Notification

router = APIRouter(prefix="/v1")

Name = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$")]


class NotificationIn(_In):
    recipient: str = Field(min_length=1, max_length=200, description="The recipient's id.")
    category: str = Field(min_length=1, max_length=200,
                          description="What it is about: preferences and caps are per category.")
    template: str = Field(min_length=1, max_length=200, description="The template's name.")
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="What the template sees as data.")
    at: str | None = Field(None, max_length=64, description=(
        "'now' (default), 'local:09:00' (the next 09:00 in the recipient's zone), or an "
        "ISO 8601 instant with a zone; moved out of the recipient's quiet hours."))
    channels: list[str] = Field(default_factory=lambda: ["email"], min_length=1, max_length=4,
                                description="email, webhook, inapp, log.")
    dedup_key: str | None = Field(None, min_length=1, max_length=200, description=(
        "The same key for the same recipient within the category's window is one "
        "notification (the same content: 200 with the first; another content: 409)."))
    correlation_id: str | None = Field(None, min_length=1, max_length=200)


def notification_dict(n: Notification) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {"id": n.id, "recipient": n.recipient_id, "category": n.category,
            "template": n.template, "data": dict(n.data), "correlation_id": n.correlation_id,
            "dedup_key": n.dedup_key, "requested_at": n.requested_at,
            "deliver_at": iso(n.deliver_at), "note": n.note, "created_at": iso(n.created_at),
            "deliveries": [{"channel": d.channel, "state": d.state.value, "reason": d.reason,
                            "address": d.address, "job_id": d.job_id,
                            "provider_id": d.provider_id, "updated_at": iso(d.updated_at)}
                           for d in n.deliveries]}


@router.post("/notifications", status_code=201, tags=["notifications"],
             summary="Send a notification: one delivery job per channel, at the recipient's "
                     "local time (200 when its dedup key found an earlier one)")
def send_notification(body: NotificationIn, request: Request, caller: Writer,
                      idem: IdemKey) -> JSONResponse:
    n = _ctx(request).view(caller.tenant_id).notify(
        body.recipient, category=body.category, template=body.template, data=body.data,
        at=body.at, channels=body.channels, dedup_key=body.dedup_key,
        correlation_id=body.correlation_id)
    return _reply(request, notification_dict(n), 201 if n.created else 200)


@router.get("/notifications", tags=["notifications"],
            summary="Notifications, newest first, by recipient, correlation id or category")
def list_notifications(request: Request, caller: Reader, limit: Limit = 50,
                       cursor: Cursor = None,
                       recipient: Annotated[str | None, Query(max_length=200)] = None,
                       correlation_id: Annotated[str | None, Query(max_length=200)] = None,
                       category: Annotated[str | None, Query(max_length=200)] = None,
                       ) -> JSONResponse:
    items = _ctx(request).view(caller.tenant_id).notifications.list(
        recipient=recipient, correlation_id=correlation_id, category=category,
        after=cursor, limit=limit)
    return JSONResponse({"items": [notification_dict(n) for n in items],
                         "next_cursor": items[-1].id if len(items) == limit else None})


@router.get("/notifications/{notification_id}", tags=["notifications"],
            summary="One notification and the state of each of its deliveries")
def get_notification(notification_id: Name, request: Request, caller: Reader) -> JSONResponse:
    n = _ctx(request).view(caller.tenant_id).notifications.get(notification_id)
    return JSONResponse(notification_dict(n))
