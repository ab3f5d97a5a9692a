"""The Python client of the HTTP API: ``hora.Client`` (sync) and ``hora.AsyncClient``.

    from hora import Client

    with Client("https://hora.example.com", api_key="hora_...") as hora:
        job = hora.enqueue("reports.build", {"month": "2026-01"}, delay=300)
        hora.get_job(job.id).state

The methods mirror the in-process SDK (``hora.Hora``): they return the same records
(``Job``, ``Schedule``, ``Tick``, ``Workflow``, ``HistoryEntry``, ``Signal``, ``Page``) and
raise the same ``HoraError`` tree, mapped from the server's RFC 9457 problem documents
(``NotFound``, ``InvalidTrigger``, ``IdempotencyConflict``...), rebuilt with their typed
fields from the document's extension members. Errors only the network can produce live in
``hora.errors`` too and are importable from here: ``AuthError``, ``RateLimited``,
``ServerError`` (503 ``store-unavailable``: ``ServiceUnavailable``, also a
``StoreUnavailable``) and ``ConnectionFailed``. Every exception raised for an answer
carries ``.status`` and the problem document as ``.problem``.

Retries: every POST carries a fresh ``Idempotency-Key``, so the server runs it at most once
and answers a retry with the first response. A request is retried (up to ``retries`` times,
with jittered exponential backoff of at most 5 s a wait) on a connection that could not be
made, a 429 (after its ``Retry-After``, capped at 5 s), and, when the request is safe to
repeat (GET, DELETE, a keyed POST), on a 503 or a connection lost mid-request.

The two clients share everything but the I/O: a method builds a ``_Call`` (the request and
how to read its answer) with pure functions, and each client only sends it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx

from hora.errors import (
    EXCEPTION_MEMBER,
    PROBLEM_CLASSES,
    ApiError,
    AuthError,
    Conflict,
    ConnectionFailed,
    HoraError,
    InvalidPayload,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)
from hora.http_target import parse_retry_after
from hora.models import (
    ApprovalRequest,
    HistoryEntry,
    Job,
    Page,
    Schedule,
    Signal,
    Tick,
    Workflow,
)
from hora.retry import RetryPolicy
from hora.schedules import _spec
from hora.states import JobState
from hora.wire import (
    approval_from_dict,
    history_from_dict,
    job_from_dict,
    schedule_from_dict,
    signal_from_dict,
    tick_from_dict,
    workflow_from_dict,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthError",
    "Client",
    "ConnectionFailed",
    "JobOptions",
    "QuotaExceeded",
    "RateLimited",
    "ScheduleChanges",
    "ScheduleOptions",
    "ServerError",
    "ServiceUnavailable",
    "TenantChanges",
]

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
PROBLEM_PREFIX = "urn:hora:problem:"
#: The longest the client waits between two tries of one request, whatever the server says.
MAX_WAIT = 5.0
#: The first backoff; it doubles with each retry (with jitter) up to ``MAX_WAIT``.
BASE_WAIT = 0.5

Json = dict[str, Any]
Trigger = Mapping[str, Any] | str
Seconds = float | timedelta


# -- options ----------------------------------------------------------------------------------


class JobOptions(TypedDict, total=False):
    """Options of ``enqueue`` and ``enqueue_http``, as ``Hora.enqueue`` takes them."""

    at: datetime | None
    delay: Seconds | None
    queue: str | None
    priority: int | None
    idempotency_key: str | None
    correlation_id: str | None
    retry: RetryPolicy | None
    timeout: Seconds | None
    max_attempts: int | None


class ScheduleOptions(TypedDict, total=False):
    """Options of ``create_schedule`` and ``create_http_schedule``, as
    ``Hora.create_schedule`` takes them."""

    name: str | None
    queue: str | None
    priority: int | None
    retry: RetryPolicy | None
    max_attempts: int | None
    timeout: Seconds | None
    correlation_id: str | None
    misfire: Literal["skip", "run_once", "run_all"]
    misfire_grace: Seconds
    catchup_limit: int
    overlap: Literal["allow", "skip", "queue", "cancel_previous"]
    paused: bool


class ScheduleChanges(TypedDict, total=False):
    """What ``update_schedule`` can change; ``target`` only on an HTTP schedule (a dict of
    url, method, headers, body, timeout), ``payload`` only on a task's."""

    trigger: Trigger
    payload: dict[str, Any]
    target: Mapping[str, Any]
    name: str | None
    queue: str
    priority: int
    max_attempts: int
    timeout: Seconds
    correlation_id: str | None
    misfire: Literal["skip", "run_once", "run_all"]
    misfire_grace: Seconds
    catchup_limit: int
    overlap: Literal["allow", "skip", "queue", "cancel_previous"]


class TenantChanges(TypedDict, total=False):
    """What ``update_tenant`` can change; ``None`` lifts a quota or the rate limit."""

    name: str
    max_pending_jobs: int | None
    max_active_schedules: int | None
    rate_limit: float | None


# -- a request and how to read its answer (no I/O) --------------------------------------------


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    decode: Callable[[Any], T]
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    has_body: bool = False
    #: Sent with every try, so the server runs the request at most once.
    idempotency_key: str | None = None
    #: May be sent again after it possibly reached the server (GET, DELETE, keyed POST).
    safe: bool = True
    #: Statuses other than 2xx that are answers, not errors (readyz's 503).
    answers: frozenset[int] = frozenset()


def _get(path: str, decode: Callable[[Any], T], **params: Any) -> _Call[T]:
    return _Call("GET", path, decode, params=_query(params))


def _post(path: str, decode: Callable[[Any], T], body: Any = None, *,
          has_body: bool = True) -> _Call[T]:
    return _Call("POST", path, decode, body=body, has_body=has_body,
                 idempotency_key=str(uuid.uuid4()))


def _query(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v is None:
                continue
            out.append((name, _iso(v) if isinstance(v, datetime) else str(v)))
    return tuple(out)


def _seg(value: str) -> str:
    """An id as one path segment: refused when empty, escaped otherwise."""
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"an id must be a non-empty string, not {value!r}")
    return quote(value, safe="")


def _name(value: str, what: str) -> str:
    """A workflow id or signal name as one path segment. The server decodes ``%2F`` before
    routing, so one with a ``/`` (or a dot segment) cannot be addressed: refused here, by
    name, rather than answered 404 by a route that does not exist."""
    if isinstance(value, str) and ("/" in value or value in (".", "..")):
        raise InvalidPayload(f"{what} {value!r} cannot be addressed over HTTP: it contains "
                             "'/' or is a dot segment")
    return _seg(value)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _options(options: Mapping[str, Any]) -> Json:
    """SDK-style keyword options as the API's JSON fields (``None`` means: not given)."""
    body: Json = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, timedelta):
            value = value.total_seconds()
        elif isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, RetryPolicy):
            value = value.to_dict()
        body[name] = value
    return body


def _target(url: str, method: str, headers: Mapping[str, str] | None, body: Any,
            request_timeout: Seconds) -> Json:
    return {"url": url, "method": method.upper(), "headers": dict(headers or {}), "body": body,
            "timeout": _seconds(request_timeout)}


def _ids(ids: str | Sequence[str]) -> list[str]:
    return [ids] if isinstance(ids, str) else list(ids)


def _state_values(state: JobState | str | Sequence[JobState | str] | None) -> list[str]:
    if state is None:
        return []
    raw = [state] if isinstance(state, str) else list(state)
    return [str(s) for s in raw]


class _Requests:
    """Every operation as a ``_Call``: what both clients send, built once."""

    # jobs

    @staticmethod
    def enqueue(task: str, payload: Mapping[str, Any] | None, options: JobOptions) -> _Call[Job]:
        body = {"task": task, "payload": dict(payload or {}), **_options(options)}
        return _post("/v1/jobs", job_from_dict, body)

    @staticmethod
    def enqueue_http(url: str, method: str, headers: Mapping[str, str] | None, body: Any,
                     request_timeout: Seconds, options: JobOptions) -> _Call[Job]:
        doc = {"target": _target(url, method, headers, body, request_timeout),
               **_options(options)}
        return _post("/v1/jobs", job_from_dict, doc)

    @staticmethod
    def get_job(job_id: str) -> _Call[Job]:
        return _get(f"/v1/jobs/{_seg(job_id)}", job_from_dict)

    @staticmethod
    def list_jobs(state: JobState | str | Sequence[JobState | str] | None, task: str | None,
                  queue: str | None, correlation_id: str | None, limit: int,
                  cursor: str | None) -> _Call[Page[Job]]:
        return _get("/v1/jobs", _job_page, state=_state_values(state), task=task, queue=queue,
                    correlation_id=correlation_id, limit=limit, cursor=cursor)

    @staticmethod
    def cancel_job(job_id: str, reason: str) -> _Call[Job]:
        return _post(f"/v1/jobs/{_seg(job_id)}/cancel", job_from_dict, {"reason": reason})

    @staticmethod
    def dead_jobs(task: str | None, queue: str | None, limit: int,
                  cursor: str | None) -> _Call[Page[Job]]:
        return _get("/v1/dlq", _job_page, task=task, queue=queue, limit=limit, cursor=cursor)

    @staticmethod
    def replay(ids: str | Sequence[str]) -> _Call[list[Job]] | None:
        if isinstance(ids, str):
            return _post(f"/v1/dlq/{_seg(ids)}/replay", _job_in_list, has_body=False)
        many = _ids(ids)
        return _post("/v1/dlq/replay", _job_items, {"ids": many}) if many else None

    @staticmethod
    def discard(ids: str | Sequence[str]) -> _Call[list[str]] | None:
        if isinstance(ids, str):
            return _post(f"/v1/dlq/{_seg(ids)}/discard", _discarded, has_body=False)
        many = _ids(ids)
        return _post("/v1/dlq/discard", _discarded, {"ids": many}) if many else None

    # schedules

    @staticmethod
    def create_schedule(task: str, payload: Mapping[str, Any] | None, trigger: Trigger,
                        options: ScheduleOptions) -> _Call[Schedule]:
        body = {"task": task, "payload": dict(payload or {}), "trigger": _spec(trigger),
                **_options(options)}
        return _post("/v1/schedules", schedule_from_dict, body)

    @staticmethod
    def create_http_schedule(url: str, trigger: Trigger, method: str,
                             headers: Mapping[str, str] | None, body: Any,
                             request_timeout: Seconds,
                             options: ScheduleOptions) -> _Call[Schedule]:
        doc = {"target": _target(url, method, headers, body, request_timeout),
               "trigger": _spec(trigger), **_options(options)}
        return _post("/v1/schedules", schedule_from_dict, doc)

    @staticmethod
    def get_schedule(schedule_id: str) -> _Call[Schedule]:
        return _get(f"/v1/schedules/{_seg(schedule_id)}", schedule_from_dict)

    @staticmethod
    def list_schedules(state: str | None, limit: int,
                       cursor: str | None) -> _Call[Page[Schedule]]:
        return _get("/v1/schedules", _schedule_page, state=state, limit=limit, cursor=cursor)

    @staticmethod
    def update_schedule(schedule_id: str, changes: ScheduleChanges) -> _Call[Schedule]:
        body: Json = {}
        for name, value in changes.items():
            if name == "trigger":
                value = _spec(value)  # type: ignore[arg-type]
            elif name == "target" and isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, timedelta):
                value = value.total_seconds()
            body[name] = value  # None kept: it clears name and correlation_id
        return _Call("PATCH", f"/v1/schedules/{_seg(schedule_id)}", schedule_from_dict, body=body,
                     has_body=True, safe=False)

    @staticmethod
    def pause_schedule(schedule_id: str) -> _Call[Schedule]:
        return _post(f"/v1/schedules/{_seg(schedule_id)}/pause", schedule_from_dict, has_body=False)

    @staticmethod
    def resume_schedule(schedule_id: str) -> _Call[Schedule]:
        return _post(f"/v1/schedules/{_seg(schedule_id)}/resume", schedule_from_dict,
                     has_body=False)

    @staticmethod
    def trigger_schedule(schedule_id: str) -> _Call[Job]:
        return _post(f"/v1/schedules/{_seg(schedule_id)}/trigger", job_from_dict, has_body=False)

    @staticmethod
    def delete_schedule(schedule_id: str) -> _Call[None]:
        return _Call("DELETE", f"/v1/schedules/{_seg(schedule_id)}", _nothing)

    @staticmethod
    def schedule_ticks(schedule_id: str, outcome: str | None, limit: int,
                       cursor: str | None) -> _Call[Page[Tick]]:
        def decode(d: Any) -> Page[Tick]:
            return Page([tick_from_dict(schedule_id, t) for t in d["items"]], d.get("next_cursor"))

        return _get(f"/v1/schedules/{_seg(schedule_id)}/ticks", decode, outcome=outcome,
                    limit=limit, cursor=cursor)

    @staticmethod
    def preview_schedule(schedule_id: str, count: int,
                         after: datetime | None) -> _Call[list[Json]]:
        return _get(f"/v1/schedules/{_seg(schedule_id)}/occurrences", _occurrences,
                    count=count, after=after)

    @staticmethod
    def preview(trigger: Trigger, after: datetime | None, count: int) -> _Call[list[Json]]:
        body: Json = {"trigger": trigger if isinstance(trigger, str) else dict(trigger),
                      "count": count}
        if after is not None:
            body["after"] = _iso(after)
        # A pure computation: safe to repeat, so no key is needed (the route takes none).
        return _Call("POST", "/v1/triggers/preview", _occurrences, body=body, has_body=True)

    # workflows

    @staticmethod
    def start_workflow(name: str, args: Mapping[str, Any] | None, workflow_id: str | None,
                       correlation_id: str | None) -> _Call[Workflow]:
        body = {"workflow": name, "args": dict(args or {}), **_options(
            {"workflow_id": workflow_id, "correlation_id": correlation_id})}
        return _post("/v1/workflows", workflow_from_dict, body)

    @staticmethod
    def get_workflow(workflow_id: str) -> _Call[Workflow]:
        return _get(f"/v1/workflows/{_name(workflow_id, 'workflow id')}", workflow_from_dict)

    @staticmethod
    def workflow_history(workflow_id: str) -> _Call[list[HistoryEntry]]:
        return _get(f"/v1/workflows/{_name(workflow_id, 'workflow id')}", _workflow_history)

    @staticmethod
    def workflow_signals(workflow_id: str) -> _Call[list[Signal]]:
        return _get(f"/v1/workflows/{_name(workflow_id, 'workflow id')}", _workflow_signals)

    @staticmethod
    def list_workflows(state: str | Sequence[str] | None, name: str | None,
                       correlation_id: str | None, limit: int,
                       cursor: str | None) -> _Call[Page[Workflow]]:
        states = [] if state is None else [state] if isinstance(state, str) else list(state)
        return _get("/v1/workflows", _workflow_page, state=states, name=name,
                    correlation_id=correlation_id, limit=limit, cursor=cursor)

    @staticmethod
    def approvals(state: str | Sequence[str] | None, workflow_id: str | None, limit: int,
                  cursor: str | None) -> _Call[Page[ApprovalRequest]]:
        states = [] if state is None else [state] if isinstance(state, str) else list(state)
        return _get("/v1/approvals", _approval_page, state=states, workflow_id=workflow_id,
                    limit=limit, cursor=cursor)

    @staticmethod
    def get_approval(approval_id: str) -> _Call[ApprovalRequest]:
        return _get(f"/v1/approvals/{_name(approval_id, 'approval id')}", approval_from_dict)

    @staticmethod
    def signal_workflow(workflow_id: str, name: str, payload: Any, actor: str | None,
                        comment: str | None) -> _Call[Signal]:
        body = {"payload": payload, **_options({"actor": actor, "comment": comment})}
        path = (f"/v1/workflows/{_name(workflow_id, 'workflow id')}/signals/"
                f"{_name(name, 'signal name')}")
        return _post(path, signal_from_dict, body)

    @staticmethod
    def decide(approval_id: str, decision: Literal["approve", "reject"],
               comment: str | None) -> _Call[ApprovalRequest]:
        return _post(f"/v1/approvals/{_name(approval_id, 'approval id')}/{decision}",
                     approval_from_dict, _options({"comment": comment}))

    @staticmethod
    def decide_workflow(workflow_id: str, decision: Literal["approve", "reject"],
                        comment: str | None, name: str | None) -> _Call[ApprovalRequest]:
        return _post(f"/v1/workflows/{_name(workflow_id, 'workflow id')}/{decision}",
                     approval_from_dict, _options({"comment": comment, "name": name}))

    @staticmethod
    def cancel_workflow(workflow_id: str, reason: str) -> _Call[Workflow]:
        return _post(f"/v1/workflows/{_name(workflow_id, 'workflow id')}/cancel",
                     workflow_from_dict, {"reason": reason})

    # admin

    @staticmethod
    def create_tenant(tenant_id: str, name: str | None, max_pending_jobs: int | None,
                      max_active_schedules: int | None,
                      rate_limit: float | None) -> _Call[Json]:
        body = {"id": tenant_id, **_options({
            "name": name, "max_pending_jobs": max_pending_jobs,
            "max_active_schedules": max_active_schedules, "rate_limit": rate_limit})}
        return _post("/v1/tenants", _dict, body)

    @staticmethod
    def list_tenants(limit: int, cursor: str | None) -> _Call[Page[Json]]:
        return _get("/v1/tenants", _dict_page, limit=limit, cursor=cursor)

    @staticmethod
    def get_tenant(tenant_id: str) -> _Call[Json]:
        return _get(f"/v1/tenants/{_seg(tenant_id)}", _dict)

    @staticmethod
    def update_tenant(tenant_id: str, changes: TenantChanges) -> _Call[Json]:
        return _Call("PATCH", f"/v1/tenants/{_seg(tenant_id)}", _dict, body=dict(changes),
                     has_body=True, safe=False)

    @staticmethod
    def rotate_webhook_secret(tenant_id: str) -> _Call[Json]:
        return _post(f"/v1/tenants/{_seg(tenant_id)}/rotate-webhook-secret", _dict,
                     has_body=False)

    @staticmethod
    def create_key(tenant_id: str | None, scopes: Sequence[str], name: str | None,
                   expires_at: datetime | None) -> _Call[Json]:
        body: Json = {"scopes": list(scopes), **_options({
            "tenant_id": tenant_id, "name": name,
            "expires_at": None if expires_at is None else _iso(expires_at)})}
        return _post("/v1/keys", _dict, body)

    @staticmethod
    def list_keys(tenant_id: str | None, limit: int, cursor: str | None) -> _Call[Page[Json]]:
        return _get("/v1/keys", _dict_page, tenant_id=tenant_id, limit=limit, cursor=cursor)

    @staticmethod
    def revoke_key(key_id: str) -> _Call[Json]:
        return _Call("DELETE", f"/v1/keys/{_seg(key_id)}", _dict)

    # operations

    @staticmethod
    def healthz() -> _Call[Json]:
        return _get("/healthz", _dict)

    @staticmethod
    def readyz() -> _Call[Json]:
        return _Call("GET", "/readyz", _dict, answers=frozenset({503}))


# -- pages and lists of records (the records themselves: hora.wire) ---------------------


def _approval_page(d: Any) -> Page[ApprovalRequest]:
    return Page([approval_from_dict(a) for a in d["items"]], d.get("next_cursor"))


def _workflow_history(d: Any) -> list[HistoryEntry]:
    return [history_from_dict(d["tenant_id"], d["id"], h) for h in d["history"]]


def _workflow_signals(d: Any) -> list[Signal]:
    return [signal_from_dict(x) for x in d["signals"]]


def _workflow_page(d: Any) -> Page[Workflow]:
    return Page([workflow_from_dict(w) for w in d["items"]], d.get("next_cursor"))


def _job_page(d: Any) -> Page[Job]:
    return Page([job_from_dict(j) for j in d["items"]], d.get("next_cursor"))


def _schedule_page(d: Any) -> Page[Schedule]:
    return Page([schedule_from_dict(s) for s in d["items"]], d.get("next_cursor"))


def _job_in_list(d: Any) -> list[Job]:
    return [job_from_dict(d)]


def _job_items(d: Any) -> list[Job]:
    return [job_from_dict(j) for j in d["items"]]


def _discarded(d: Any) -> list[str]:
    return [str(i) for i in d["discarded"]]


def _occurrences(d: Any) -> list[Json]:
    return [dict(o) for o in d["occurrences"]]


def _dict(d: Any) -> Json:
    if not isinstance(d, dict):
        raise TypeError(f"expected a JSON object, got {type(d).__name__}")
    return d


def _dict_page(d: Any) -> Page[Json]:
    return Page([_dict(i) for i in d["items"]], d.get("next_cursor"))


def _nothing(d: Any) -> None:
    return None


# -- answers to results or errors -------------------------------------------------------------


def _result(call: _Call[T], response: httpx.Response) -> T:
    """The call's result from a final answer, or the error it stands for."""
    if not (response.is_success or response.status_code in call.answers):
        raise _error(response)
    if response.status_code == 204 or not response.content:
        data: Any = None
    else:
        try:
            data = response.json()
        except ValueError:
            raise ServerError(f"{call.method} {call.path}: the answer is not JSON: "
                              f"{response.text[:200]!r}", status=response.status_code
                              ) from None
    try:
        return call.decode(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ServerError(f"{call.method} {call.path}: unexpected answer ({e!r}): "
                          f"{response.text[:200]!r}", status=response.status_code) from e


def _problem(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = response.text.strip()[:500] or response.reason_phrase
    return {"type": "about:blank", "status": response.status_code, "detail": text}


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))


def _error(response: httpx.Response) -> HoraError:
    """The HoraError a problem answer stands for: the SDK's own class, rebuilt from the
    extension members the server wrote (``exception``, ``field``, ``job_id``...), or one of
    the ``ApiError`` family for what only the API answers."""
    status = response.status_code
    problem = _problem(response)
    slug = str(problem.get("type", "")).removeprefix(PROBLEM_PREFIX)
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    if status == 503 and slug == "store-unavailable":
        advised = _retry_after(response)
        return ServiceUnavailable(detail, status=status, problem=problem,
                                  retry_after=advised if advised is not None else
                                  _number(problem.get("retry_after")))
    kind = PROBLEM_CLASSES.get(str(problem.get(EXCEPTION_MEMBER)))
    if kind is not None and 400 <= status < 500:
        return _with_answer(kind.from_problem(detail, problem), status, problem)
    if status in (401, 403):
        auth = QuotaExceeded if slug == "quota-exceeded" else AuthError
        return auth(detail, status=status, problem=problem)
    if status == 429:
        return RateLimited(detail, status=status, problem=problem,
                           retry_after=_retry_after(response))
    if status >= 500:
        return ServerError(detail, status=status, problem=problem)
    # A problem without the SDK's members (the API's own checks, a proxy): by its type.
    err: HoraError
    if status == 404:
        err = NotFound(detail)
    elif status == 409:
        err = Conflict(detail)
    elif status in (400, 413, 415, 422):
        err = InvalidPayload(detail)
    else:
        return ApiError(f"HTTP {status}: {detail}", status=status, problem=problem)
    return _with_answer(err, status, problem)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _with_answer(err: HoraError, status: int, problem: Json) -> HoraError:
    """An SDK error with the answer it came from, as ``.status`` and ``.problem``."""
    err.status = status  # type: ignore[attr-defined]
    err.problem = problem  # type: ignore[attr-defined]
    return err


# -- when to try again ------------------------------------------------------------------------

#: Failures that happen before a request leaves: repeating it cannot run it twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Failures after which the request may or may not have run.
_LOST = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def _backoff(attempt: int) -> float:
    """Equal jitter: between half and all of ``BASE_WAIT * 2**attempt``, at most MAX_WAIT."""
    cap = min(MAX_WAIT, BASE_WAIT * 2.0 ** attempt)
    return cap / 2 + random.uniform(0.0, cap / 2)


def _wait_after_error(call: _Call[Any], error: httpx.TransportError, attempt: int,
                      retries: int) -> float | None:
    """Seconds to wait before trying again after ``error``; None: give up."""
    if attempt >= retries:
        return None
    if isinstance(error, _NOT_SENT) or (call.safe and isinstance(error, _LOST)):
        return _backoff(attempt)
    return None


def _wait_after_answer(call: _Call[Any], response: httpx.Response, attempt: int,
                       retries: int) -> float | None:
    """Seconds to wait before trying again after ``response``; None: it is final."""
    if attempt >= retries or response.status_code in call.answers:
        return None
    status = response.status_code
    again = status == 429 or (call.safe and status == 503) or (
        status == 409 and call.idempotency_key is not None
        and _problem(response).get("type") == PROBLEM_PREFIX + "idempotency-key-in-flight")
    if not again:
        return None
    advised = _retry_after(response)
    return min(MAX_WAIT, advised) if advised is not None else _backoff(attempt)


def _connection_failed(base_url: str, call: _Call[Any],
                       error: httpx.TransportError) -> ConnectionFailed:
    what = type(error).__name__
    return ConnectionFailed(f"{call.method} {base_url}{call.path}: {what}: {error}".rstrip(": "),
                            status=None, problem=None)


# -- the clients ------------------------------------------------------------------------------


def _headers(api_key: str | None) -> dict[str, str]:
    from hora import __version__  # here: hora imports this module while it initialises

    headers = {"User-Agent": f"hora-python/{__version__}",
               "Accept": "application/json, application/problem+json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _settings(base_url: str | None, api_key: str | None, retries: int) -> tuple[str, str | None]:
    if retries < 0:
        raise ValueError("retries must be >= 0")
    url = (base_url or os.environ.get("HORA_URL") or DEFAULT_URL).rstrip("/")
    key = api_key if api_key is not None else os.environ.get("HORA_API_KEY") or None
    return url, key


def _request(http: httpx.Client | httpx.AsyncClient, call: _Call[Any]) -> httpx.Request:
    headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
    if call.has_body:
        try:
            return http.build_request(call.method, call.path, params=call.params,
                                      json=call.body, headers=headers)
        except (TypeError, ValueError, RecursionError) as e:  # NaN, inf, a set, a bomb
            raise InvalidPayload(f"body: cannot be sent as JSON: {e}") from None
    return http.build_request(call.method, call.path, params=call.params, headers=headers)


class Client:
    """The HTTP API from synchronous code; see the module docstring.

    ``base_url`` defaults to ``HORA_URL`` (else http://127.0.0.1:8000), ``api_key`` to
    ``HORA_API_KEY``. ``transport`` is an ``httpx.BaseTransport`` (tests, proxies);
    ``sleep`` is how the client waits between retries.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 retries: int = 2, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url, api_key = _settings(base_url, api_key, retries)
        self.retries = retries
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key),
                                  timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"<hora.Client {self.base_url}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.send(_request(self._http, call))
            except httpx.TransportError as e:
                wait = _wait_after_error(call, e, attempt, self.retries)
                if wait is None:
                    raise _connection_failed(self.base_url, call, e) from e
            else:
                wait = _wait_after_answer(call, response, attempt, self.retries)
                if wait is None:
                    return _result(call, response)
            self._sleep(wait)
            attempt += 1

    # -- jobs ---------------------------------------------------------------------------------

    def enqueue(self, task: str, payload: Mapping[str, Any] | None = None,
                **options: Unpack[JobOptions]) -> Job:
        """Enqueue a job of ``task`` (a name workers know) with ``payload`` as its keyword
        arguments; options as ``Hora.enqueue`` (``at``, ``delay``, ``queue``, ``priority``,
        ``idempotency_key``, ``correlation_id``, ``retry``, ``timeout``, ``max_attempts``)."""
        return self._send(_Requests.enqueue(task, payload, options))

    def enqueue_http(self, url: str, *, method: str = "POST",
                     headers: Mapping[str, str] | None = None, body: Any = None,
                     request_timeout: Seconds = 30.0, **options: Unpack[JobOptions]) -> Job:
        """Enqueue one HTTP call (signed per Standard Webhooks) instead of a Python task."""
        return self._send(_Requests.enqueue_http(url, method, headers, body, request_timeout,
                                                 options))

    def get_job(self, job_id: str) -> Job:
        """A job with its attempts and state history."""
        return self._send(_Requests.get_job(job_id))

    def list_jobs(self, *, state: JobState | str | Sequence[JobState | str] | None = None,
                  task: str | None = None, queue: str | None = None,
                  correlation_id: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[Job]:
        """Newest first; pass ``next_cursor`` back for the next page."""
        return self._send(_Requests.list_jobs(state, task, queue, correlation_id, limit,
                                              cursor))

    def cancel_job(self, job_id: str, reason: str = "cancelled on request") -> Job:
        """Cancel a waiting job, or ask a running one to stop."""
        return self._send(_Requests.cancel_job(job_id, reason))

    def dead_jobs(self, *, task: str | None = None, queue: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[Job]:
        """The dead-letter queue, newest first."""
        return self._send(_Requests.dead_jobs(task, queue, limit, cursor))

    def replay(self, ids: str | Sequence[str]) -> list[Job]:
        """Replay dead jobs as new, linked jobs. One id (a ``str``) must be dead
        (``NotFound`` otherwise); with a list, all or none are replayed."""
        call = _Requests.replay(ids)
        return [] if call is None else self._send(call)

    def discard(self, ids: str | Sequence[str]) -> list[str]:
        """Take dead jobs out of the dead-letter queue for good; returns their ids."""
        call = _Requests.discard(ids)
        return [] if call is None else self._send(call)

    # -- schedules ----------------------------------------------------------------------------

    def create_schedule(self, task: str, payload: Mapping[str, Any] | None = None, *,
                        trigger: Trigger, **options: Unpack[ScheduleOptions]) -> Schedule:
        """A schedule whose every occurrence of ``trigger`` (a spec, or a cron/iCalendar
        string) enqueues ``task``; options as ``Hora.create_schedule``."""
        return self._send(_Requests.create_schedule(task, payload, trigger, options))

    def create_http_schedule(self, url: str, *, trigger: Trigger, method: str = "POST",
                             headers: Mapping[str, str] | None = None, body: Any = None,
                             request_timeout: Seconds = 30.0,
                             **options: Unpack[ScheduleOptions]) -> Schedule:
        """A schedule that makes an HTTP call at every occurrence of ``trigger``."""
        return self._send(_Requests.create_http_schedule(url, trigger, method, headers, body,
                                                         request_timeout, options))

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._send(_Requests.get_schedule(schedule_id))

    def list_schedules(self, *, state: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page[Schedule]:
        return self._send(_Requests.list_schedules(state, limit, cursor))

    def update_schedule(self, schedule_id: str, **changes: Unpack[ScheduleChanges]) -> Schedule:
        """Change the given fields; the schedule's future is recomputed from now."""
        return self._send(_Requests.update_schedule(schedule_id, changes))

    def pause_schedule(self, schedule_id: str) -> Schedule:
        return self._send(_Requests.pause_schedule(schedule_id))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        """Resume from now; occurrences in the pause are recorded as skipped ticks."""
        return self._send(_Requests.resume_schedule(schedule_id))

    def trigger_schedule(self, schedule_id: str) -> Job:
        """Run the schedule's job now, outside its trigger."""
        return self._send(_Requests.trigger_schedule(schedule_id))

    def delete_schedule(self, schedule_id: str) -> None:
        self._send(_Requests.delete_schedule(schedule_id))

    def schedule_ticks(self, schedule_id: str, *, outcome: str | None = None,
                       limit: int = 100, cursor: str | None = None) -> Page[Tick]:
        """The tick ledger, newest first: every occurrence, fired or skipped and why."""
        return self._send(_Requests.schedule_ticks(schedule_id, outcome, limit, cursor))

    def preview_schedule(self, schedule_id: str, count: int = 10,
                         after: datetime | None = None) -> list[Json]:
        """The schedule's next ``count`` occurrences (at, local, nominal, skipped, notes)."""
        return self._send(_Requests.preview_schedule(schedule_id, count, after))

    def preview(self, trigger: Trigger, *, after: datetime | None = None,
                count: int = 10) -> list[Json]:
        """The next ``count`` occurrences of an unsaved trigger."""
        return self._send(_Requests.preview(trigger, after, count))

    # -- workflows ----------------------------------------------------------------------------

    def start_workflow(self, name: str, args: Mapping[str, Any] | None = None, *,
                       workflow_id: str | None = None,
                       correlation_id: str | None = None) -> Workflow:
        """Start the workflow registered as ``name`` with ``args`` (its keyword arguments).
        With ``workflow_id`` starting is idempotent: the same id returns the workflow already
        there, whatever its state. A name the server does not know waits for a worker that
        does."""
        return self._send(_Requests.start_workflow(name, args, workflow_id, correlation_id))

    def get_workflow(self, workflow_id: str) -> Workflow:
        return self._send(_Requests.get_workflow(workflow_id))

    def workflow_history(self, workflow_id: str) -> list[HistoryEntry]:
        """The journal: every step, timer, signal, child and compensation, in order."""
        return self._send(_Requests.workflow_history(workflow_id))

    def workflow_signals(self, workflow_id: str) -> list[Signal]:
        """Every signal sent to the workflow, consumed or not, in the order sent."""
        return self._send(_Requests.workflow_signals(workflow_id))

    def list_workflows(self, *, state: str | Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        """Newest first; pass ``next_cursor`` back for the next page."""
        return self._send(_Requests.list_workflows(state, name, correlation_id, limit, cursor))

    def approvals(self, *, state: str | Sequence[str] | None = None,
                  workflow_id: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[ApprovalRequest]:
        """The inbox: approval requests (pending unless ``state``), newest first."""
        return self._send(_Requests.approvals(state, workflow_id, limit, cursor))

    def get_approval(self, approval_id: str) -> ApprovalRequest:
        return self._send(_Requests.get_approval(approval_id))

    def signal_workflow(self, workflow_id: str, name: str, payload: Any = None, *,
                        actor: str | None = None, comment: str | None = None) -> Signal:
        """Send signal ``name``; ``TransitionConflict`` when the workflow has finished."""
        return self._send(_Requests.signal_workflow(workflow_id, name, payload, actor,
                                                    comment))

    def approve(self, request: str, *, comment: str | None = None,
                name: str | None = None) -> ApprovalRequest:
        """Approve an approval request, as this client's API key (the server records the
        key's name as the actor). Approving again is the same decision; a reject after it is
        ``TransitionConflict``. ``request`` is the request's id, or a workflow id (then its
        single pending request, of ``name`` if given; tried when no request has that id)."""
        return self._decide(request, "approve", comment, name)

    def reject(self, request: str, *, comment: str | None = None,
               name: str | None = None) -> ApprovalRequest:
        """Reject an approval request (by id, or a workflow id as for ``approve``)."""
        return self._decide(request, "reject", comment, name)

    def _decide(self, request: str, decision: Literal["approve", "reject"],
                comment: str | None, name: str | None) -> ApprovalRequest:
        if name is None:
            try:
                return self._send(_Requests.decide(request, decision, comment))
            except NotFound:
                pass  # not a request's id: a workflow's, perhaps
        return self._send(_Requests.decide_workflow(request, decision, comment, name))

    def cancel_workflow(self, workflow_id: str, reason: str = "cancelled on request"
                        ) -> Workflow:
        """Ask the workflow to stop: its wait ends, its compensations run, it ends
        ``cancelled``. Until a worker gets to it, it shows ``cancel_requested``."""
        return self._send(_Requests.cancel_workflow(workflow_id, reason))

    # -- admin (a key with the admin scope) ---------------------------------------------------

    def create_tenant(self, tenant_id: str, *, name: str | None = None,
                      max_pending_jobs: int | None = None,
                      max_active_schedules: int | None = None,
                      rate_limit: float | None = None) -> Json:
        """A new tenant, with its ``webhook_secret`` (in this answer only)."""
        return self._send(_Requests.create_tenant(tenant_id, name, max_pending_jobs,
                                                  max_active_schedules, rate_limit))

    def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Json]:
        return self._send(_Requests.list_tenants(limit, cursor))

    def get_tenant(self, tenant_id: str) -> Json:
        return self._send(_Requests.get_tenant(tenant_id))

    def update_tenant(self, tenant_id: str, **changes: Unpack[TenantChanges]) -> Json:
        return self._send(_Requests.update_tenant(tenant_id, changes))

    def rotate_webhook_secret(self, tenant_id: str) -> Json:
        """A new webhook secret for the tenant, in ``["webhook_secret"]`` of this answer only."""
        return self._send(_Requests.rotate_webhook_secret(tenant_id))

    def create_key(self, tenant_id: str | None = None, *,
                   scopes: Sequence[str] = ("read", "write"), name: str | None = None,
                   expires_at: datetime | None = None) -> Json:
        """A new API key (default: of the caller's tenant); its secret is in ``["key"]`` of
        this answer only."""
        return self._send(_Requests.create_key(tenant_id, scopes, name, expires_at))

    def list_keys(self, tenant_id: str | None = None, *, limit: int = 50,
                  cursor: str | None = None) -> Page[Json]:
        return self._send(_Requests.list_keys(tenant_id, limit, cursor))

    def revoke_key(self, key_id: str) -> Json:
        return self._send(_Requests.revoke_key(key_id))

    # -- operations ---------------------------------------------------------------------------

    def healthz(self) -> Json:
        return self._send(_Requests.healthz())

    def readyz(self) -> Json:
        """``{"status": "ok"}``, or ``"unavailable"`` with a ``detail`` (a 503, not raised)."""
        return self._send(_Requests.readyz())


class AsyncClient:
    """``Client`` for asyncio: the same methods, as coroutines; ``close`` is awaited."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
                 retries: int = 2,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.base_url, api_key = _settings(base_url, api_key, retries)
        self.retries = retries
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key),
                                       timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"<hora.AsyncClient {self.base_url}>"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def _send(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.send(_request(self._http, call))
            except httpx.TransportError as e:
                wait = _wait_after_error(call, e, attempt, self.retries)
                if wait is None:
                    raise _connection_failed(self.base_url, call, e) from e
            else:
                wait = _wait_after_answer(call, response, attempt, self.retries)
                if wait is None:
                    return _result(call, response)
            await self._sleep(wait)
            attempt += 1

    # -- jobs ---------------------------------------------------------------------------------

    async def enqueue(self, task: str, payload: Mapping[str, Any] | None = None,
                      **options: Unpack[JobOptions]) -> Job:
        return await self._send(_Requests.enqueue(task, payload, options))

    async def enqueue_http(self, url: str, *, method: str = "POST",
                           headers: Mapping[str, str] | None = None, body: Any = None,
                           request_timeout: Seconds = 30.0,
                           **options: Unpack[JobOptions]) -> Job:
        return await self._send(_Requests.enqueue_http(url, method, headers, body,
                                                       request_timeout, options))

    async def get_job(self, job_id: str) -> Job:
        return await self._send(_Requests.get_job(job_id))

    async def list_jobs(self, *, state: JobState | str | Sequence[JobState | str] | None = None,
                        task: str | None = None, queue: str | None = None,
                        correlation_id: str | None = None, limit: int = 50,
                        cursor: str | None = None) -> Page[Job]:
        return await self._send(_Requests.list_jobs(state, task, queue, correlation_id, limit,
                                                    cursor))

    async def cancel_job(self, job_id: str, reason: str = "cancelled on request") -> Job:
        return await self._send(_Requests.cancel_job(job_id, reason))

    async def dead_jobs(self, *, task: str | None = None, queue: str | None = None,
                        limit: int = 50, cursor: str | None = None) -> Page[Job]:
        return await self._send(_Requests.dead_jobs(task, queue, limit, cursor))

    async def replay(self, ids: str | Sequence[str]) -> list[Job]:
        call = _Requests.replay(ids)
        return [] if call is None else await self._send(call)

    async def discard(self, ids: str | Sequence[str]) -> list[str]:
        call = _Requests.discard(ids)
        return [] if call is None else await self._send(call)

    # -- schedules ----------------------------------------------------------------------------

    async def create_schedule(self, task: str, payload: Mapping[str, Any] | None = None, *,
                              trigger: Trigger,
                              **options: Unpack[ScheduleOptions]) -> Schedule:
        return await self._send(_Requests.create_schedule(task, payload, trigger, options))

    async def create_http_schedule(self, url: str, *, trigger: Trigger, method: str = "POST",
                                   headers: Mapping[str, str] | None = None, body: Any = None,
                                   request_timeout: Seconds = 30.0,
                                   **options: Unpack[ScheduleOptions]) -> Schedule:
        return await self._send(_Requests.create_http_schedule(
            url, trigger, method, headers, body, request_timeout, options))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._send(_Requests.get_schedule(schedule_id))

    async def list_schedules(self, *, state: str | None = None, limit: int = 50,
                             cursor: str | None = None) -> Page[Schedule]:
        return await self._send(_Requests.list_schedules(state, limit, cursor))

    async def update_schedule(self, schedule_id: str,
                              **changes: Unpack[ScheduleChanges]) -> Schedule:
        return await self._send(_Requests.update_schedule(schedule_id, changes))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._send(_Requests.pause_schedule(schedule_id))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self._send(_Requests.resume_schedule(schedule_id))

    async def trigger_schedule(self, schedule_id: str) -> Job:
        return await self._send(_Requests.trigger_schedule(schedule_id))

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._send(_Requests.delete_schedule(schedule_id))

    async def schedule_ticks(self, schedule_id: str, *, outcome: str | None = None,
                             limit: int = 100, cursor: str | None = None) -> Page[Tick]:
        return await self._send(_Requests.schedule_ticks(schedule_id, outcome, limit, cursor))

    async def preview_schedule(self, schedule_id: str, count: int = 10,
                               after: datetime | None = None) -> list[Json]:
        return await self._send(_Requests.preview_schedule(schedule_id, count, after))

    async def preview(self, trigger: Trigger, *, after: datetime | None = None,
                      count: int = 10) -> list[Json]:
        return await self._send(_Requests.preview(trigger, after, count))

    # -- workflows ----------------------------------------------------------------------------

    async def start_workflow(self, name: str, args: Mapping[str, Any] | None = None, *,
                             workflow_id: str | None = None,
                             correlation_id: str | None = None) -> Workflow:
        return await self._send(_Requests.start_workflow(name, args, workflow_id,
                                                         correlation_id))

    async def get_workflow(self, workflow_id: str) -> Workflow:
        return await self._send(_Requests.get_workflow(workflow_id))

    async def workflow_history(self, workflow_id: str) -> list[HistoryEntry]:
        return await self._send(_Requests.workflow_history(workflow_id))

    async def workflow_signals(self, workflow_id: str) -> list[Signal]:
        return await self._send(_Requests.workflow_signals(workflow_id))

    async def list_workflows(self, *, state: str | Sequence[str] | None = None,
                             name: str | None = None, correlation_id: str | None = None,
                             limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        return await self._send(_Requests.list_workflows(state, name, correlation_id, limit,
                                                         cursor))

    async def approvals(self, *, state: str | Sequence[str] | None = None,
                        workflow_id: str | None = None, limit: int = 50,
                        cursor: str | None = None) -> Page[ApprovalRequest]:
        return await self._send(_Requests.approvals(state, workflow_id, limit, cursor))

    async def get_approval(self, approval_id: str) -> ApprovalRequest:
        return await self._send(_Requests.get_approval(approval_id))

    async def signal_workflow(self, workflow_id: str, name: str, payload: Any = None, *,
                              actor: str | None = None, comment: str | None = None) -> Signal:
        return await self._send(_Requests.signal_workflow(workflow_id, name, payload, actor,
                                                          comment))

    async def approve(self, request: str, *, comment: str | None = None,
                      name: str | None = None) -> ApprovalRequest:
        return await self._decide(request, "approve", comment, name)

    async def reject(self, request: str, *, comment: str | None = None,
                     name: str | None = None) -> ApprovalRequest:
        return await self._decide(request, "reject", comment, name)

    async def _decide(self, request: str, decision: Literal["approve", "reject"],
                      comment: str | None, name: str | None) -> ApprovalRequest:
        if name is None:
            try:
                return await self._send(_Requests.decide(request, decision, comment))
            except NotFound:
                pass  # not a request's id: a workflow's, perhaps
        return await self._send(_Requests.decide_workflow(request, decision, comment, name))

    async def cancel_workflow(self, workflow_id: str, reason: str = "cancelled on request"
                              ) -> Workflow:
        return await self._send(_Requests.cancel_workflow(workflow_id, reason))

    # -- admin --------------------------------------------------------------------------------

    async def create_tenant(self, tenant_id: str, *, name: str | None = None,
                            max_pending_jobs: int | None = None,
                            max_active_schedules: int | None = None,
                            rate_limit: float | None = None) -> Json:
        return await self._send(_Requests.create_tenant(tenant_id, name, max_pending_jobs,
                                                        max_active_schedules, rate_limit))

    async def list_tenants(self, *, limit: int = 50, cursor: str | None = None) -> Page[Json]:
        return await self._send(_Requests.list_tenants(limit, cursor))

    async def get_tenant(self, tenant_id: str) -> Json:
        return await self._send(_Requests.get_tenant(tenant_id))

    async def update_tenant(self, tenant_id: str, **changes: Unpack[TenantChanges]) -> Json:
        return await self._send(_Requests.update_tenant(tenant_id, changes))

    async def rotate_webhook_secret(self, tenant_id: str) -> Json:
        return await self._send(_Requests.rotate_webhook_secret(tenant_id))

    async def create_key(self, tenant_id: str | None = None, *,
                         scopes: Sequence[str] = ("read", "write"), name: str | None = None,
                         expires_at: datetime | None = None) -> Json:
        return await self._send(_Requests.create_key(tenant_id, scopes, name, expires_at))

    async def list_keys(self, tenant_id: str | None = None, *, limit: int = 50,
                        cursor: str | None = None) -> Page[Json]:
        return await self._send(_Requests.list_keys(tenant_id, limit, cursor))

    async def revoke_key(self, key_id: str) -> Json:
        return await self._send(_Requests.revoke_key(key_id))

    # -- operations ---------------------------------------------------------------------------

    async def healthz(self) -> Json:
        return await self._send(_Requests.healthz())

    async def readyz(self) -> Json:
        return await self._send(_Requests.readyz())
