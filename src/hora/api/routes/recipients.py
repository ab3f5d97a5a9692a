"""Notification recipients: upsert (one, or up to 10,000 at once), list, read, delete,
preferences and unsubscribe links -- and the public unsubscribe page.

Every ``/v1/recipients`` operation is the caller's tenant's: reading needs ``read``, the
rest ``write``. ``/v1/unsubscribe/{token}`` needs no API key: the person who got the e-mail
has none. The token alone names the recipient (it is random, 256 bits, and stored as its
sha256), so the page says nothing of the tenant or the address. Its answers are small HTML
pages, errors included, and it accepts the HTML form's (and RFC 8058 one-click's)
``application/x-www-form-urlencoded`` body, which the request guard lets through for these
paths only. It is left out of the OpenAPI document, like ``/metrics``: it is a page for
people, not an API operation.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from hora.api.deps import Cursor, IdemKey, Limit, Reader, Writer, _ctx, _reply
from hora.api.schemas import (
    PreferencesIn,
    RecipientIn,
    RecipientList,
    RecipientOut,
    RecipientsBulkIn,
    RecipientsBulkOut,
    UnsubscribeLinkIn,
    UnsubscribeLinkOut,
)
from hora.errors import InvalidNotification, InvalidPayload, NotFound
from hora.notify.model import NAME_RE
from hora.notify.recipients import recipient_dict, recipient_from_dict

router = APIRouter(prefix="/v1")

RecipientId = Annotated[str, Path(min_length=1, max_length=200, pattern=NAME_RE.pattern,
                                  description="The recipient's id (yours: a user id).")]


def _doc(body: RecipientIn) -> dict[str, Any]:
    """The body as the recipient document ``hora.notify.recipients`` checks (what the client
    left out takes its default there, not here)."""
    return body.model_dump(exclude_unset=True)


@router.put("/recipients/{recipient_id}", response_model=RecipientOut, tags=["recipients"],
            summary="Create a recipient or replace it whole (its unsubscribe link stays)")
def upsert_recipient(recipient_id: RecipientId, body: RecipientIn, request: Request,
                     caller: Writer) -> JSONResponse:
    view = _ctx(request).view(caller.tenant_id)
    r = recipient_from_dict(_doc(body), caller.tenant_id, recipient_id=recipient_id)
    view.recipients.upsert_many([r])
    return JSONResponse(recipient_dict(view.recipients.get(recipient_id)))


@router.post("/recipients/bulk", response_model=RecipientsBulkOut, tags=["recipients"],
             summary="Create or replace up to 10,000 recipients in one transaction (all, or "
                     "none on any bad one)")
def upsert_recipients(body: RecipientsBulkIn, request: Request, caller: Writer,
                      idem: IdemKey) -> JSONResponse:
    n = _ctx(request).view(caller.tenant_id).recipients.upsert_many(
        [_doc(r) for r in body.recipients])
    return _reply(request, {"upserted": n})


@router.get("/recipients", response_model=RecipientList, tags=["recipients"],
            summary="The tenant's recipients by id, a page at a time")
def list_recipients(request: Request, caller: Reader, limit: Limit = 100,
                    cursor: Cursor = None) -> JSONResponse:
    if cursor is not None and not NAME_RE.match(cursor):
        raise InvalidPayload("not a next_cursor of this listing", field="cursor")
    found = _ctx(request).view(caller.tenant_id).recipients.list(after=cursor, limit=limit + 1)
    more = len(found) > limit
    items = found[:limit]
    return JSONResponse({"items": [recipient_dict(r) for r in items],
                         "next_cursor": items[-1].id if more else None})


@router.get("/recipients/{recipient_id}", response_model=RecipientOut, tags=["recipients"],
            summary="One recipient")
def get_recipient(recipient_id: RecipientId, request: Request, caller: Reader) -> JSONResponse:
    return JSONResponse(recipient_dict(_ctx(request).view(caller.tenant_id)
                                       .recipients.get(recipient_id)))


@router.delete("/recipients/{recipient_id}", status_code=204, tags=["recipients"],
               summary="Remove a recipient (404 when there is none)")
def delete_recipient(recipient_id: RecipientId, request: Request, caller: Writer) -> Response:
    if not _ctx(request).view(caller.tenant_id).recipients.delete(recipient_id):
        raise NotFound(f"no recipient {recipient_id!r}")
    return Response(status_code=204)


@router.put("/recipients/{recipient_id}/preferences", response_model=RecipientOut,
            tags=["recipients"], summary="Replace what the recipient agreed to receive")
def set_preferences(recipient_id: RecipientId, body: PreferencesIn, request: Request,
                    caller: Writer) -> JSONResponse:
    r = _ctx(request).view(caller.tenant_id).recipients.set_preferences(
        recipient_id, body.model_dump())
    return JSONResponse(recipient_dict(r))


@router.post("/recipients/{recipient_id}/unsubscribe-link", response_model=UnsubscribeLinkOut,
             tags=["recipients"],
             summary="A new unsubscribe link that works without an API key (the previous "
                     "one stops working)")
def unsubscribe_link(recipient_id: RecipientId, request: Request, caller: Writer,
                     idem: IdemKey, body: UnsubscribeLinkIn | None = None) -> JSONResponse:
    base = (body.base_url if body is not None else None) or str(request.base_url)
    url = _ctx(request).view(caller.tenant_id).recipients.unsubscribe_url(recipient_id, base)
    # the link is a secret shown once: a replay of the request shows null, never a copy
    return _reply(request, {"recipient_id": recipient_id, "url": url}, withhold="url")


# -- the public unsubscribe page --------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}button{{font-size:1rem;padding:.5rem 1rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    # No caching and no referrer: the URL holds the token.
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _unknown() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is unknown or was replaced by a "
                 "newer one. Use the link in the most recent message.</p>", 404)


def _category(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not NAME_RE.match(value):
        raise InvalidNotification("not a category name", field="category")
    return value


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(token: str, request: Request, category: str | None = None) -> HTMLResponse:
    """The page the link opens: nothing changes until its button is pressed (mail scanners
    follow links; only the POST unsubscribes)."""
    try:
        cat = _category(category)
    except InvalidNotification:
        return _page("Link not valid", "<p>This link names no valid category.</p>", 422)
    if _ctx(request).app.recipients.by_token(token) is None:
        return _unknown()
    what = (f"messages about <strong>{escape(cat)}</strong>" if cat
            else "e-mail messages")
    hidden = (f'<input type="hidden" name="category" value="{escape(cat, quote=True)}">'
              if cat else "")
    return _page("Unsubscribe", f"<p>Stop receiving {what}?</p>"
                 f'<form method="post">{hidden}<button type="submit">Unsubscribe</button>'
                 "</form>")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe(token: str, request: Request,
                      category: str | None = None) -> HTMLResponse:
    """Opt out: of ``category`` (from the query or the form) on every channel, else of the
    e-mail channel. Also what a mail client's one-click unsubscribe (RFC 8058) posts."""
    raw = await request.body()  # bounded by the request guard
    try:
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
        cat = _category(category or next(iter(form.get("category", ())), None))
    except (InvalidNotification, ValueError):  # ValueError: more fields than a form has
        return _page("Link not valid", "<p>This link names no valid category.</p>", 422)
    ctx = _ctx(request)
    try:
        await run_in_threadpool(ctx.app.recipients.unsubscribe, token, cat)
    except NotFound:
        return _unknown()
    what = f"messages about <strong>{escape(cat)}</strong>" if cat else "e-mail messages"
    return _page("You are unsubscribed", f"<p>You will no longer receive {what}.</p>")

