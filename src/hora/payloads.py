"""What a job request is and how it becomes a row: the leaf the SDK's services share.

``Hora`` and its services (``hora.schedules``, ``hora.workflows``, ``hora.locks``) all
check names and payloads the same way and build jobs the same way; they import that from
here, and this module imports none of them (only errors, limits, models, retry, ids), so
the services depend downward on it and never back on ``hora.app``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from hora.errors import InvalidPayload
from hora.flow import FlowSpec
from hora.ids import new_id
from hora.limits import (
    MAX_ATTEMPTS,
    MAX_DELAY,
    MAX_PAYLOAD_BYTES,
    MAX_PRIORITY,
    MAX_TIMEOUT,
    check_instant,
    check_int,
    check_json_shape,
    check_json_size,
    check_seconds,
)
from hora.models import DEFAULT_QUEUE, NewJob
from hora.retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["ENQUEUE_OPTIONS", "RESERVED_TASK_PREFIX", "JobRequest", "TaskDefaults",
           "check_public_task", "check_text", "fingerprint", "new_job", "payload_json"]

#: Keyword arguments of ``Task.enqueue`` that are options, not payload fields.
ENQUEUE_OPTIONS = frozenset({
    "at", "delay", "queue", "priority", "idempotency_key", "correlation_id", "retry",
    "timeout", "max_attempts", "allow_unregistered",
})

#: hora's own tasks (``hora.http``, ``hora.workflow:<name>``) are named under this prefix.
#: The SDK enqueues them itself; the HTTP API and the CLI refuse them by name, so a tenant
#: cannot run a workflow's code outside its workflow, nor an HTTP call without its checks.
RESERVED_TASK_PREFIX = "hora."


@dataclass(frozen=True)
class JobRequest:
    """One job to enqueue, for ``enqueue_many``; build it with ``Task.request(...)``."""

    task: str
    payload: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    delay: timedelta | float | None = None
    queue: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    retry: RetryPolicy | None = None
    timeout: float | timedelta | None = None
    max_attempts: int | None = None
    schedule_id: str | None = None  # set when a schedule fires or is triggered by hand
    #: Enqueue a task name the registry does not know (``hora.registry``), on purpose.
    allow_unregistered: bool = False


class TaskDefaults(Protocol):
    """What a registered task lends the jobs and schedules made for it: the options a
    request leaves out (``hora.app.Task`` is one)."""

    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def retry_policy(self) -> RetryPolicy: ...
    @property
    def flow(self) -> FlowSpec | None: ...


#: What neither store can keep in text: NUL, and halves of UTF-16 surrogate pairs.
_UNSTORABLE = ("contains a NUL character (\\u0000) or an unpaired surrogate, which cannot "
               "be stored; remove it or encode the value (e.g. base64)")
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def check_text(**fields: str | None) -> None:
    """Refuse NUL and unpaired surrogates in names and keys (PostgreSQL cannot store them,
    and SQLite must refuse what PostgreSQL refuses: one behaviour on both stores)."""
    for name, value in fields.items():
        if value is not None and _BAD_TEXT.search(value):
            raise InvalidPayload(_UNSTORABLE, field=name)


def check_public_task(task: str) -> None:
    """Refuse a task name reserved for hora's own tasks (for the API and the CLI)."""
    if task.startswith(RESERVED_TASK_PREFIX):
        hint = "; to call a URL, give a target" if task == "hora.http" else ""
        raise InvalidPayload(f"{task[:200]!r} is reserved: names starting with "
                             f"{RESERVED_TASK_PREFIX!r} are hora's own tasks{hint}",
                             field="task")


def payload_json(task: str, payload: dict[str, Any]) -> str:
    """The payload as canonical JSON text, if it is JSON of at most MAX_PAYLOAD_BYTES."""
    check_json_shape(payload, "payload", max_bytes=MAX_PAYLOAD_BYTES)
    try:
        # Sorted keys: the stored text is canonical, so it doubles as the fingerprint input.
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          sort_keys=True)
    except UnicodeEncodeError:
        raise InvalidPayload(f"{_UNSTORABLE} (task {task})", field="payload") from None
    except (TypeError, ValueError) as e:
        for key, value in payload.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as inner:
                raise InvalidPayload(
                    f"field {key!r} is not JSON-serialisable ({inner}) (task {task}); pass "
                    "str/int/float/bool/None, lists and dicts of them", field="payload",
                ) from None
        raise InvalidPayload(f"not JSON-serialisable (task {task}): {e}",
                             field="payload") from None
    if _NUL_ESCAPE.search(text) or _SURROGATE.search(text):
        raise InvalidPayload(f"{_UNSTORABLE} (task {task})", field="payload")
    return check_json_size(text, "payload", max_bytes=MAX_PAYLOAD_BYTES)


def fingerprint(task: str, payload_json: str) -> str:
    """What makes two enqueues "the same request" for idempotency: task and payload."""
    return hashlib.sha256(f"{task}\n{payload_json}".encode()).hexdigest()


def new_job(r: JobRequest, now: datetime, *, tenant_id: str,
            task: TaskDefaults | None) -> NewJob:
    """The row a request becomes, every option checked; ``task`` (the registered handler,
    when this process knows it) fills in the options the request leaves out."""
    if not r.task or len(r.task) > 200:
        raise InvalidPayload("task name must be 1-200 characters")
    if not isinstance(r.payload, dict):
        raise InvalidPayload(f"for task {r.task} must be a JSON object (a dict), "
                             f"not {type(r.payload).__name__}", field="payload")
    text = payload_json(r.task, r.payload)
    if r.at is not None and r.delay is not None:
        raise InvalidPayload("give either at= or delay=, not both")
    if r.at is not None:
        due = check_instant(r.at, "at")
    elif r.delay is not None:
        due = now + timedelta(seconds=check_seconds(r.delay, "delay", most=MAX_DELAY))
    else:
        due = now
    retry = r.retry
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidPayload("retry= must be a hora.RetryPolicy")
    policy = retry or (task.retry_policy if task else DEFAULT_RETRY)
    max_attempts = r.max_attempts if r.max_attempts is not None else policy.max_attempts
    check_int(max_attempts, "max_attempts", least=1, most=MAX_ATTEMPTS)
    timeout = None if r.timeout is None else check_seconds(r.timeout, "timeout",
                                                           most=MAX_TIMEOUT, zero=False)
    key = r.idempotency_key
    if key is not None and not (1 <= len(key) <= 255):
        raise InvalidPayload("idempotency_key must be 1-255 characters")
    check_text(task=r.task, queue=r.queue, idempotency_key=key,
               correlation_id=r.correlation_id)
    queue = r.queue or (task.queue if task else DEFAULT_QUEUE)
    priority = r.priority if r.priority is not None else (task.priority if task else 0)
    check_int(priority, "priority", least=-MAX_PRIORITY, most=MAX_PRIORITY)
    flow = task.flow if task is not None else None
    gates = flow.gates(r.payload) if flow is not None else None
    return NewJob(
        id=new_id(), task=r.task, payload_json=text, fingerprint=fingerprint(r.task, text),
        queue=queue, priority=priority, due_at=due, max_attempts=max_attempts,
        retry_policy_json=None if retry is None else retry.to_json(), timeout=timeout,
        idempotency_key=key, correlation_id=r.correlation_id, tenant_id=tenant_id,
        schedule_id=r.schedule_id,
        flow_json=None if gates is None else gates.json,
        concurrency_key=None if gates is None else gates.concurrency_key,
    )
