"""Every operation of the HTTP API as a ``_Call``: the request and how to read its answer.

Pure functions, no I/O: both clients send the same ``_Call`` objects, so an operation's
path, body and decoding are written once, here. The records themselves are read by
``hora.wire``; this module only adds the pages and lists around them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

from hora.errors import (
    InvalidPayload,
)
from hora.models import (
    ApprovalRequest,
    HistoryEntry,
    Job,
    Page,
    QueueInfo,
    QueueState,
    RateLimitInfo,
    RegisteredTask,
    Schedule,
    Signal,
    Tick,
    WorkerInfo,
    Workflow,
)
from hora.retry import RetryPolicy
from hora.schedules import Ensured, _spec
from hora.states import JobState
from hora.waiting import check_timeout
from hora.wire import (
    approval_from_dict,
    history_from_dict,
    job_from_dict,
    queue_from_dict,
    queue_state_from_dict,
    rate_limit_from_dict,
    registered_task_from_dict,
    schedule_from_dict,
    signal_from_dict,
    tick_from_dict,
    worker_from_dict,
    workflow_from_dict,
)

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
    allow_unregistered: bool


class EnsureOptions(TypedDict, total=False):
    """Options of ``ensure_schedule``: ``ScheduleOptions`` but the name (the path's)."""

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
    allow_unregistered: bool


class ScheduleOptions(EnsureOptions, total=False):
    """Options of ``create_schedule`` and ``create_http_schedule``, as
    ``Hora.create_schedule`` takes them: the ensure options and a name."""

    name: str | None


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
    #: A long-poll's ``wait`` (seconds): the read timeout must outlast it.
    wait: float | None = None


#: The longest ``wait`` one long-poll request asks for (the API accepts up to 60 s).
LONG_POLL = 55.0


def _wait_param(wait: float) -> str:
    return f"{wait:.3f}"


class WaitClock:
    """A client-side wait's deadline, on the monotonic clock: how long the next long-poll
    may ask for (at most ``LONG_POLL``), and whether the wait is over."""

    def __init__(self, timeout: float | timedelta | None) -> None:
        seconds = check_timeout(timeout)
        self.timeout = seconds
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def next_wait(self) -> float:
        if self._deadline is None:
            return LONG_POLL
        return max(0.0, min(LONG_POLL, self._deadline - time.monotonic()))

    @property
    def over(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline


def _get(path: str, decode: Callable[[Any], T], **params: Any) -> _Call[T]:
    return _Call("GET", path, decode, params=_query(params))


def _post(path: str, decode: Callable[[Any], T], body: Any = None, *,
          has_body: bool = True) -> _Call[T]:
    return _Call("POST", path, decode, body=body, has_body=has_body,
                 idempotency_key=str(uuid.uuid4()))


def _put(path: str, decode: Callable[[Any], T], body: Any) -> _Call[T]:
    return _Call("PUT", path, decode, body=body, has_body=True,
                 idempotency_key=str(uuid.uuid4()))


def _ensured(d: Mapping[str, Any]) -> Ensured:
    return Ensured(schedule_from_dict(d), d["outcome"])


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
    def poll_job(job_id: str, wait: float) -> _Call[Job]:
        """``GET /v1/jobs/{id}?wait=``: the job once it has ended, or after ``wait`` s."""
        return _Call("GET", f"/v1/jobs/{_seg(job_id)}", job_from_dict,
                     params=_query({"wait": _wait_param(wait)}), wait=wait)

    @staticmethod
    def list_jobs(state: JobState | str | Sequence[JobState | str] | None, task: str | None,
                  queue: str | None, correlation_id: str | None, limit: int,
                  cursor: str | None, include_internal: bool = False) -> _Call[Page[Job]]:
        return _get("/v1/jobs", _job_page, state=_state_values(state), task=task, queue=queue,
                    correlation_id=correlation_id, limit=limit, cursor=cursor,
                    include_internal="true" if include_internal else None)

    @staticmethod
    def cancel_job(job_id: str, reason: str) -> _Call[Job]:
        return _post(f"/v1/jobs/{_seg(job_id)}/cancel", job_from_dict, {"reason": reason})

    @staticmethod
    def reschedule_job(job_id: str, at: datetime | None,
                       delay: Seconds | None) -> _Call[Job]:
        return _post(f"/v1/jobs/{_seg(job_id)}/reschedule", job_from_dict,
                     _options({"at": at, "delay": delay}))

    @staticmethod
    def run_job_now(job_id: str) -> _Call[Job]:
        return _post(f"/v1/jobs/{_seg(job_id)}/run-now", job_from_dict, has_body=False)

    @staticmethod
    def cancel_jobs(selection: Mapping[str, Any]) -> _Call[int]:
        return _post("/v1/jobs/cancel", _cancelled, _options(selection))

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
    def ensure_schedule(task: str, payload: Mapping[str, Any] | None, name: str,
                        trigger: Trigger, options: EnsureOptions) -> _Call[Ensured]:
        body = {"task": task, "payload": dict(payload or {}), "trigger": _spec(trigger),
                **_options(options)}
        return _put(f"/v1/schedules/by-name/{_seg(name)}", _ensured, body)

    @staticmethod
    def get_schedule_by_name(name: str) -> _Call[Schedule]:
        return _get(f"/v1/schedules/by-name/{_seg(name)}", schedule_from_dict)

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
                       correlation_id: str | None,
                       allow_unregistered: bool = False) -> _Call[Workflow]:
        body = {"workflow": name, "args": dict(args or {}), **_options(
            {"workflow_id": workflow_id, "correlation_id": correlation_id})}
        if allow_unregistered:
            body["allow_unregistered"] = True
        return _post("/v1/workflows", workflow_from_dict, body)

    @staticmethod
    def get_workflow(workflow_id: str) -> _Call[Workflow]:
        return _get(f"/v1/workflows/{_name(workflow_id, 'workflow id')}", workflow_from_dict)

    @staticmethod
    def poll_workflow(workflow_id: str, wait: float) -> _Call[Workflow]:
        """``GET /v1/workflows/{id}?wait=``: the workflow once it has ended, or after
        ``wait`` s."""
        return _Call("GET", f"/v1/workflows/{_name(workflow_id, 'workflow id')}",
                     workflow_from_dict, params=_query({"wait": _wait_param(wait)}), wait=wait)

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

    @staticmethod
    def terminate_workflow(workflow_id: str, reason: str) -> _Call[Workflow]:
        return _post(f"/v1/workflows/{_name(workflow_id, 'workflow id')}/terminate",
                     workflow_from_dict, {"reason": reason})

    # tasks

    @staticmethod
    def registered_tasks(kind: str | None) -> _Call[list[RegisteredTask]]:
        return _get("/v1/tasks", _registered_tasks, kind=kind)

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

    # workers and queues

    @staticmethod
    def workers(all: bool) -> _Call[list[WorkerInfo]]:
        return _get("/v1/workers", _workers, all="true" if all else None)

    @staticmethod
    def queues() -> _Call[list[QueueInfo]]:
        return _get("/v1/queues", _queues)

    @staticmethod
    def pause_queue(name: str, reason: str | None) -> _Call[QueueState]:
        path = f"/v1/queues/{_name(name, 'queue')}/pause"
        if reason is None:
            return _post(path, queue_state_from_dict, has_body=False)
        return _post(path, queue_state_from_dict, {"reason": reason})

    @staticmethod
    def resume_queue(name: str) -> _Call[QueueState]:
        return _post(f"/v1/queues/{_name(name, 'queue')}/resume", queue_state_from_dict,
                     has_body=False)

    # rate limits set at run time

    @staticmethod
    def list_rate_limits() -> _Call[list[RateLimitInfo]]:
        return _get("/v1/rate-limits", _rate_limits)

    @staticmethod
    def get_rate_limit(name: str) -> _Call[RateLimitInfo]:
        return _get(f"/v1/rate-limits/{_name(name, 'rate limit')}", rate_limit_from_dict)

    @staticmethod
    def set_rate_limit(name: str, rate: str, burst: int) -> _Call[RateLimitInfo]:
        return _put(f"/v1/rate-limits/{_name(name, 'rate limit')}", rate_limit_from_dict,
                    {"rate": rate, "burst": burst})

    @staticmethod
    def delete_rate_limit(name: str) -> _Call[None]:
        return _Call("DELETE", f"/v1/rate-limits/{_name(name, 'rate limit')}", _nothing)

    # operations

    @staticmethod
    def healthz() -> _Call[Json]:
        return _get("/healthz", _dict)

    @staticmethod
    def readyz() -> _Call[Json]:
        return _Call("GET", "/readyz", _dict, answers=frozenset({503}))


# -- pages and lists of records (the records themselves: hora.wire) ---------------------


def _workers(d: Any) -> list[WorkerInfo]:
    return [worker_from_dict(w) for w in d["items"]]


def _queues(d: Any) -> list[QueueInfo]:
    return [queue_from_dict(q) for q in d["items"]]


def _rate_limits(d: Any) -> list[RateLimitInfo]:
    return [rate_limit_from_dict(r) for r in d["items"]]


def _approval_page(d: Any) -> Page[ApprovalRequest]:
    return Page([approval_from_dict(a) for a in d["items"]], d.get("next_cursor"))


def _workflow_history(d: Any) -> list[HistoryEntry]:
    return [history_from_dict(d["tenant_id"], d["id"], h) for h in d["history"]]


def _registered_tasks(d: Any) -> list[RegisteredTask]:
    return [registered_task_from_dict(t) for t in d["items"]]


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


def _cancelled(d: Any) -> int:
    return int(d["cancelled"])


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
