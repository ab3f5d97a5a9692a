"""A recipient's in-app inbox: the feed newest first with its unread count, and marking
items read, unread, archived or unarchived (the bell in a product's header).

The caller's tenant's recipients only: another tenant's recipient has an empty inbox here.
Reading needs ``read``; marking needs ``write`` (a product's backend marks on its user's
behalf).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hora.api.deps import Cursor, IdemKey, Reader, Writer, _ctx, _reply
from hora.api.schemas import _In
from hora.notify.inbox import MAX_MARK, MAX_PAGE, inbox_item_dict

router = APIRouter(prefix="/v1")
TAGS: list[str | Any] = ["inbox"]

RecipientId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$",
                                  description="The recipient's id.")]


class InboxItemOut(BaseModel):
    id: str = Field(description="The item's id: its delivery's.")
    notification_id: str
    category: str
    subject: str
    text: str
    data: dict[str, Any]
    created_at: str
    read: bool
    read_at: str | None
    archived: bool
    archived_at: str | None


class InboxOut(BaseModel):
    items: list[InboxItemOut]
    next_cursor: str | None
    unread_count: int = Field(description="Unread items of the feed (not archived).")
    total: int = Field(description="Items of the feed (not archived).")


class MarkIn(_In):
    ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=MAX_MARK, description="The items' ids.")
    action: Literal["read", "unread", "archived", "unarchived"] = "read"


class MarkOut(BaseModel):
    changed: int = Field(description="Items that changed (already so, unknown: not counted).")
    unread_count: int
    total: int


@router.get("/recipients/{recipient_id}/inbox", response_model=InboxOut, tags=TAGS,
            summary="A recipient's inbox, newest first, with the unread count")
def list_inbox(recipient_id: RecipientId, request: Request, caller: Reader,
               status: Literal["all", "unread", "read", "archived"] = "all",
               cursor: Cursor = None,
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> JSONResponse:
    inbox = _ctx(request).view(caller.tenant_id).inbox
    page = inbox.list(recipient_id, status=status, cursor=cursor, limit=limit)
    counts = inbox.counts(recipient_id)
    return JSONResponse({"items": [inbox_item_dict(i) for i in page.items],
                         "next_cursor": page.next_cursor, "unread_count": counts["unread"],
                         "total": counts["total"]})


@router.post("/recipients/{recipient_id}/inbox/mark", response_model=MarkOut, tags=TAGS,
             summary="Mark items read, unread, archived or unarchived")
def mark_inbox(recipient_id: RecipientId, body: MarkIn, request: Request, caller: Writer,
               idem: IdemKey) -> JSONResponse:
    inbox = _ctx(request).view(caller.tenant_id).inbox
    changed = inbox.mark(recipient_id, body.ids, body.action)
    counts = inbox.counts(recipient_id)
    return _reply(request, {"changed": changed, "unread_count": counts["unread"],
                            "total": counts["total"]})
