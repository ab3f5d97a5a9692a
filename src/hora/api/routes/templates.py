"""Notification templates: put a version (PUT), list, read, delete, and preview one rendered
for a recipient and data.

Every operation is the caller's tenant's: another tenant's template is a 404. Writing needs
``write`` (templates are content a product team edits, like the jobs it enqueues); reading
and previewing need ``read``. A template that does not parse is a 422 naming
``template.subject``/``template.text``/``template.html`` and the line; a preview whose data
lacks a variable the template uses is a 422 naming it (``data.<variable>``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hora.api.deps import Cursor, IdemKey, Reader, Writer, _ctx, _reply
from hora.api.schemas import _In
from hora.errors import NotFound
from hora.notify.templates import (
    MAX_INT,
    MAX_PAGE,
    preview_recipient,
    rendered_dict,
    template_dict,
)

router = APIRouter(prefix="/v1")
TAGS: list[str | Any] = ["templates"]

TemplateName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/]+$",
                                   description="The template's name.")]
TemplateChannel = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[^/]+$",
                                      description="email, webhook, inapp, log, or * for "
                                                  "every channel without its own.")]


class TemplateIn(_In):
    subject: str = Field("", description="Jinja2 (sandboxed); rendered on one line.")
    text: str = Field("", description="The plain-text body, Jinja2 (sandboxed).")
    html: str | None = Field(None, description="The HTML body (autoescaped); null: none.")


class TemplateOut(BaseModel):
    name: str
    channel: str
    version: int
    subject: str
    text: str
    html: str | None
    created_at: str


class TemplateVersion(BaseModel):
    name: str
    channel: str
    version: int = Field(description="The version this put created (1, 2, ...).")


class TemplateList(BaseModel):
    items: list[TemplateOut] = Field(description="The latest version of each template.")
    next_cursor: str | None


class PreviewIn(_In):
    recipient: dict[str, Any] = Field(default_factory=dict, description=(
        "id, timezone, locale, addresses, data: what the template sees as recipient."))
    data: dict[str, Any] = Field(default_factory=dict, description="The notification's data.")
    version: int | None = Field(None, ge=1, le=MAX_INT, description="A version; null: the latest.")


class RenderedOut(BaseModel):
    subject: str
    text: str
    html: str | None
    template: TemplateVersion


@router.put("/templates/{name}/{channel}", status_code=201, response_model=TemplateVersion,
            tags=TAGS, summary="Store a new version of a template for a channel")
def put_template(name: TemplateName, channel: TemplateChannel, body: TemplateIn,
                 request: Request, caller: Writer, idem: IdemKey) -> JSONResponse:
    version = _ctx(request).view(caller.tenant_id).templates.put(
        name, channel=channel, subject=body.subject, text=body.text, html=body.html)
    return _reply(request, {"name": name, "channel": channel, "version": version}, 201)


@router.get("/templates", response_model=TemplateList, tags=TAGS,
            summary="The tenant's templates, the latest version of each, by name and channel")
def list_templates(request: Request, caller: Reader, cursor: Cursor = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> JSONResponse:
    page = _ctx(request).view(caller.tenant_id).templates.list(cursor=cursor, limit=limit)
    return JSONResponse({"items": [template_dict(t) for t in page.items],
                         "next_cursor": page.next_cursor})


@router.get("/templates/{name}/{channel}", response_model=TemplateOut, tags=TAGS,
            summary="One template of exactly this channel: the latest or ?version=")
def get_template(name: TemplateName, channel: TemplateChannel, request: Request,
                 caller: Reader,
                 version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None) -> JSONResponse:
    t = _ctx(request).view(caller.tenant_id).templates.get(name, channel, version)
    return JSONResponse(template_dict(t))


@router.delete("/templates/{name}", status_code=204, tags=TAGS,
               summary="Delete every version of a template (of ?channel=, else of all "
                       "channels); 404 when there was none")
def delete_template(name: TemplateName, request: Request, caller: Writer,
                    channel: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    if not _ctx(request).view(caller.tenant_id).templates.delete(name, channel):
        raise NotFound(f"no template {name!r}" + (f" for channel {channel!r}" if channel
                                                 else ""))
    return Response(status_code=204)


@router.post("/templates/{name}/{channel}/preview", response_model=RenderedOut, tags=TAGS,
             summary="Render a template for a recipient and data, as a send would (a "
                     "channel without its own template uses the * one)")
def preview_template(name: TemplateName, channel: TemplateChannel, body: PreviewIn,
                     request: Request, caller: Reader, idem: IdemKey) -> JSONResponse:
    templates = _ctx(request).view(caller.tenant_id).templates
    recipient = preview_recipient(body.recipient, caller.tenant_id)
    used, rendered = templates.preview(name, channel, recipient=recipient, data=body.data,
                                       version=body.version)
    return _reply(request, {**rendered_dict(rendered), "template": {
        "name": used.name, "channel": used.channel, "version": used.version}})
