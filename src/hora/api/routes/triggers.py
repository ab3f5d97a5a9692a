"""Triggers: preview the occurrences of a trigger that is not saved.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hora.api.deps import (
    Reader,
    _ctx,
)
from hora.api.schemas import (
    PreviewIn,
    PreviewOut,
)
from hora.schedules import _spec
from hora.triggers.spec import preview_to_json, trigger_from_spec

router = APIRouter(prefix="/v1")


@router.post("/triggers/preview", response_model=PreviewOut, tags=["triggers"],
             summary="Preview a trigger without saving it")
def preview_trigger(body: PreviewIn, request: Request, caller: Reader) -> JSONResponse:
    clock = _ctx(request).app.clock
    trigger = trigger_from_spec(_spec(body.trigger, clock.now()))
    return JSONResponse(preview_to_json(trigger, body.after or clock.now(), body.count))


