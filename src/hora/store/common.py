"""Pieces both stores share: instant encoding, JSON, turning rows into records."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from hora.errors import Conflict, InvalidPayload, TransitionConflict
from hora.ids import new_id
from hora.models import (
    WORKFLOW_FINAL,
    WORKFLOW_STATES,
    ApiKey,
    ApprovalRequest,
    Attempt,
    ErrorInfo,
    HistoryEntry,
    IdempotencyRecord,
    Job,
    JobEvent,
    LockRecord,
    NewJob,
    Page,
    Schedule,
    Signal,
    Tenant,
    Tick,
    Workflow,
)
from hora.states import JobState

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch; exact, unlike a float timestamp."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else dumps(error.to_dict())


def job_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False,
                 attempts: tuple[Attempt, ...] = (), events: tuple[JobEvent, ...] = (),
                 history: bool = False) -> Job:
    """Build a Job from a row mapping. ``ts`` converts the store's instants to datetimes;
    ``decoded`` says JSON columns already arrive as Python values (PostgreSQL jsonb)."""

    def j(v: Any) -> Any:
        return v if decoded or v is None else json.loads(v)

    def t(v: Any) -> datetime | None:
        return None if v is None else ts(v)

    if history:
        # Creation is not a transition, so it has no event row; history starts with it anyway.
        created = JobEvent(0, r["id"], ts(r["created_at"]), None, JobState.SCHEDULED, 0,
                           f"replay of {r['replay_of']}" if r["replay_of"] else "enqueued")
        events = (created, *events)
    return Job(
        id=r["id"], task=r["task"], payload=j(r["payload"]), queue=r["queue"],
        priority=r["priority"], state=JobState(r["state"]), due_at=ts(r["due_at"]),
        attempt=r["attempt"], max_attempts=r["max_attempts"],
        retry_policy=j(r["retry_policy"]), timeout=r["timeout"],
        idempotency_key=r["idempotency_key"], correlation_id=r["correlation_id"],
        tenant_id=r["tenant_id"], lease_owner=r["lease_owner"],
        lease_expires_at=t(r["lease_expires_at"]), created_at=ts(r["created_at"]),
        updated_at=ts(r["updated_at"]), started_at=t(r["started_at"]),
        finished_at=t(r["finished_at"]), result=j(r["result"]),
        last_error=ErrorInfo.from_dict(j(r["last_error"])),
        cancel_requested=bool(r["cancel_requested"]), state_reason=r["state_reason"],
        replay_of=r["replay_of"], replayed_as=r["replayed_as"],
        attempts=attempts, events=events, schedule_id=r.get("schedule_id"),
    )


def attempt_from_row(r: tuple[Any, ...], ts: Any) -> Attempt:
    job_id, number, worker_id, started, ended, outcome, etype, emsg, tb = r
    err = ErrorInfo(etype, emsg or "", tb) if etype else None
    return Attempt(job_id, number, worker_id, ts(started), None if ended is None else ts(ended),
                   outcome, err)


def event_from_row(r: tuple[Any, ...], ts: Any) -> JobEvent:
    eid, job_id, at, from_state, to_state, attempt, reason = r
    return JobEvent(eid, job_id, ts(at), JobState(from_state) if from_state else None,
                    JobState(to_state), attempt, reason)


def with_attempt_logs(attempts: tuple[Attempt, ...], rows: Iterable[tuple[Any, ...]],
                      ) -> tuple[Attempt, ...]:
    """The attempts with their log lines (rows of (attempt, logs): JSON text or decoded)."""
    from hora.wire import log_lines_from_json

    logs = {int(number): log_lines_from_json(value) for number, value in rows}
    if not logs:
        return attempts
    return tuple(replace(a, logs=logs[a.number]) if a.number in logs else a
                 for a in attempts)


def with_current_attempt(r: Mapping[str, Any], attempts: tuple[Attempt, ...], ts: Any,
                         ) -> tuple[Attempt, ...]:
    """Append the attempt in progress, which lives on the job row until it ends."""
    if r["state"] != "running":
        return attempts
    current = Attempt(r["id"], r["attempt"], r["lease_owner"], ts(r["started_at"]), None, None,
                      None)
    return (*attempts, current)


def replay_of(old: Job, now: datetime, *, flow_json: str | None = None,
              concurrency_key: str | None = None) -> NewJob:
    """The new job a replay creates: same work, fresh attempts, linked to the original.

    It carries no idempotency key: the original keeps its key, and the replay is a deliberate
    second run, not a duplicate to be folded into the first. It keeps the original's gates
    (``flow_json``, ``concurrency_key``: the row's, which a Job does not carry).
    """
    return NewJob(
        id=new_id(), task=old.task, payload_json=dumps(old.payload),
        fingerprint=f"replay:{old.id}", queue=old.queue, priority=old.priority, due_at=now,
        max_attempts=old.max_attempts,
        retry_policy_json=None if old.retry_policy is None else dumps(old.retry_policy),
        timeout=old.timeout, idempotency_key=None, correlation_id=old.correlation_id,
        tenant_id=old.tenant_id, replay_of=old.id, flow_json=flow_json,
        concurrency_key=concurrency_key,
    )


def rescue_decision(attempt: int, max_attempts: int, owner: str | None,
                    cancel_requested: bool = False) -> tuple[str, str, dict[str, str]]:
    """Where a running job whose lease expired goes: cancelled if that was asked for,
    dead on its last attempt, else back to retrying at once."""
    err = {"type": "hora.LeaseExpired",
           "message": f"worker {owner} stopped renewing its lease (crashed or hung)"}
    if cancel_requested:
        return "cancelled", "cancel requested; its worker stopped before finishing", err
    if attempt >= max_attempts:
        return "dead", f"lease expired on the last attempt ({attempt}/{max_attempts})", err
    return "retrying", "lease expired; retrying on another worker", err


def schedule_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False) -> Schedule:
    def j(v: Any) -> Any:
        return v if decoded or v is None else json.loads(v)

    return Schedule(
        id=r["id"], tenant_id=r["tenant_id"], name=r["name"], task=r["task"],
        payload=j(r["payload"]), trigger=j(r["trigger"]), queue=r["queue"],
        priority=r["priority"], max_attempts=r["max_attempts"],
        retry_policy=j(r["retry_policy"]), timeout=r["timeout"],
        correlation_id=r["correlation_id"], misfire_policy=r["misfire_policy"],
        misfire_grace=float(r["misfire_grace"]), catchup_limit=r["catchup_limit"],
        overlap_policy=r["overlap_policy"], state=r["state"],
        next_fire_at=None if r["next_fire_at"] is None else ts(r["next_fire_at"]),
        cursor=ts(r["cursor"]), created_at=ts(r["created_at"]),
        updated_at=ts(r["updated_at"]), version=r.get("version", 0),
        error=r.get("error"),
    )


def schedule_params(s: Schedule, ts: Any, *, encode_json: bool = True) -> dict[str, Any]:
    """The row of a schedule, as named parameters; ``ts`` encodes instants for the store."""

    def j(v: Any) -> Any:
        return None if v is None else (dumps(v) if encode_json else v)

    return {
        "id": s.id, "tenant_id": s.tenant_id, "name": s.name, "task": s.task,
        "payload": j(s.payload), "trigger": j(s.trigger), "queue": s.queue,
        "priority": s.priority, "max_attempts": s.max_attempts,
        "retry_policy": j(s.retry_policy), "timeout": s.timeout,
        "correlation_id": s.correlation_id, "misfire_policy": s.misfire_policy,
        "misfire_grace": s.misfire_grace, "catchup_limit": s.catchup_limit,
        "overlap_policy": s.overlap_policy, "state": s.state,
        "next_fire_at": None if s.next_fire_at is None else ts(s.next_fire_at),
        "cursor": ts(s.cursor), "now": ts(s.updated_at), "version": s.version,
        "error": s.error,
    }


def tick_from_row(r: tuple[Any, ...], ts: Any) -> Tick:
    schedule_id, nominal, fire_at, outcome, reason, job_id, recorded_at = r
    return Tick(schedule_id, ts(nominal), ts(fire_at), outcome, reason, job_id, ts(recorded_at))


def tenant_from_row(r: Mapping[str, Any], ts: Any) -> Tenant:
    rate = r["rate_limit"]
    return Tenant(
        id=r["id"], name=r["name"], webhook_secret=r["webhook_secret"],
        max_pending_jobs=r["max_pending_jobs"], max_active_schedules=r["max_active_schedules"],
        rate_limit=None if rate is None else float(rate), created_at=ts(r["created_at"]),
        updated_at=ts(r["updated_at"]),
    )


def tenant_params(t: Tenant, ts: Any) -> dict[str, Any]:
    """The row of a tenant, as named parameters; ``ts`` encodes instants for the store."""
    return {
        "id": t.id, "name": t.name, "webhook_secret": t.webhook_secret,
        "max_pending_jobs": t.max_pending_jobs, "max_active_schedules": t.max_active_schedules,
        # float(): the column is a double whatever number type arrives.
        "rate_limit": None if t.rate_limit is None else float(t.rate_limit),
        "created_at": ts(t.created_at), "updated_at": ts(t.updated_at),
    }


def api_key_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False) -> ApiKey:
    """``decoded`` says scopes arrive as a list (PostgreSQL text[]), not JSON text."""
    scopes = r["scopes"] if decoded else json.loads(r["scopes"])
    return ApiKey(
        id=r["id"], tenant_id=r["tenant_id"], name=r["name"], prefix=r["prefix"],
        key_hash=r["key_hash"], scopes=tuple(scopes), created_at=ts(r["created_at"]),
        revoked_at=None if r["revoked_at"] is None else ts(r["revoked_at"]),
        expires_at=None if r["expires_at"] is None else ts(r["expires_at"]),
    )


def api_key_params(k: ApiKey, ts: Any, *, encode_json: bool = True) -> dict[str, Any]:
    return {
        "id": k.id, "tenant_id": k.tenant_id, "name": k.name, "prefix": k.prefix,
        "key_hash": k.key_hash,
        "scopes": dumps(list(k.scopes)) if encode_json else list(k.scopes),
        "created_at": ts(k.created_at),
        "revoked_at": None if k.revoked_at is None else ts(k.revoked_at),
        "expires_at": None if k.expires_at is None else ts(k.expires_at),
    }


def idempotency_from_row(r: Mapping[str, Any], ts: Any) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=r["tenant_id"], key=r["key"], fingerprint=r["fingerprint"],
        status=r["status"], body=r["body"], created_at=ts(r["created_at"]),
    )


def _json_or_none(value: Any) -> str | None:
    """A JSON column's text: SQL NULL stands for None (both read back as None)."""
    return None if value is None else dumps(value)


def workflow_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False) -> Workflow:
    """Build a Workflow from a row mapping; ``decoded`` as for ``job_from_row``."""

    def j(v: Any) -> Any:
        return v if decoded or v is None else json.loads(v)

    def t(v: Any) -> datetime | None:
        return None if v is None else ts(v)

    return Workflow(
        tenant_id=r["tenant_id"], id=r["id"], name=r["name"], args=j(r["args"]),
        state=r["state"], result=j(r["result"]), error=ErrorInfo.from_dict(j(r["error"])),
        correlation_id=r["correlation_id"], parent_id=r["parent_id"],
        wait_kind=r["wait_kind"], wait_name=r["wait_name"], wait_until=t(r["wait_until"]),
        cancel_requested=bool(r["cancel_requested"]), cancel_reason=r["cancel_reason"],
        compensation=r["compensation"], run_owner=r["run_owner"], run_until=t(r["run_until"]),
        created_at=ts(r["created_at"]), updated_at=ts(r["updated_at"]),
        finished_at=t(r["finished_at"]), version=r["version"],
    )


def workflow_params(w: Workflow, ts: Any) -> dict[str, Any]:
    """The row of a workflow, as named parameters; JSON as text (PostgreSQL casts it to
    jsonb), instants encoded by ``ts``."""

    def t(v: datetime | None) -> Any:
        return None if v is None else ts(v)

    return {
        "tenant_id": w.tenant_id, "id": w.id, "name": w.name, "args": dumps(w.args),
        "state": w.state, "result": _json_or_none(w.result), "error": error_json(w.error),
        "correlation_id": w.correlation_id, "parent_id": w.parent_id,
        "wait_kind": w.wait_kind, "wait_name": w.wait_name, "wait_until": t(w.wait_until),
        "cancel_requested": bool(w.cancel_requested), "cancel_reason": w.cancel_reason,
        "compensation": w.compensation, "run_owner": w.run_owner, "run_until": t(w.run_until),
        "created_at": ts(w.created_at), "updated_at": ts(w.updated_at),
        "finished_at": t(w.finished_at), "version": w.version,
    }


def history_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False) -> HistoryEntry:
    def j(v: Any) -> Any:
        return v if decoded or v is None else json.loads(v)

    def t(v: Any) -> datetime | None:
        return None if v is None else ts(v)

    return HistoryEntry(
        tenant_id=r["tenant_id"], workflow_id=r["workflow_id"], seq=r["seq"], kind=r["kind"],
        name=r["name"], input=j(r["input"]), output=j(r["output"]),
        error=ErrorInfo.from_dict(j(r["error"])), status=r["status"], attempts=r["attempts"],
        started_at=ts(r["started_at"]), finished_at=t(r["finished_at"]),
        deadline=t(r["deadline"]),
    )


def history_params(e: HistoryEntry, ts: Any) -> dict[str, Any]:
    """One journal row, as named parameters (JSON as text, instants encoded by ``ts``)."""
    return {
        "tenant_id": e.tenant_id, "workflow_id": e.workflow_id, "seq": e.seq,
        "kind": e.kind, "name": e.name, "input": _json_or_none(e.input),
        "output": _json_or_none(e.output), "error": error_json(e.error), "status": e.status,
        "attempts": e.attempts, "started_at": ts(e.started_at),
        "finished_at": None if e.finished_at is None else ts(e.finished_at),
        "deadline": None if e.deadline is None else ts(e.deadline),
    }


def signal_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False) -> Signal:
    payload = r["payload"]
    return Signal(
        id=r["id"], tenant_id=r["tenant_id"], workflow_id=r["workflow_id"], name=r["name"],
        payload=payload if decoded or payload is None else json.loads(payload),
        actor=r["actor"], comment=r["comment"], sent_at=ts(r["sent_at"]),
        consumed_seq=r["consumed_seq"],
    )


def signal_params(s: Signal, ts: Any) -> dict[str, Any]:
    return {
        "id": s.id, "tenant_id": s.tenant_id, "workflow_id": s.workflow_id, "name": s.name,
        "payload": _json_or_none(s.payload), "actor": s.actor, "comment": s.comment,
        "sent_at": ts(s.sent_at), "consumed_seq": s.consumed_seq,
    }


def consumed_entry(entry: HistoryEntry, signal: Signal) -> HistoryEntry:
    """The journal entry of a consumed signal: done, its output the signal wrapped with who
    sent it (an approval is an audit record)."""
    return replace(entry, status="done", output={
        "payload": signal.payload, "actor": signal.actor, "comment": signal.comment,
        "signal_id": signal.id})


def approval_from_row(r: Mapping[str, Any], ts: Any, *, decoded: bool = False
                      ) -> ApprovalRequest:
    """Build an ApprovalRequest from a row mapping; ``decoded`` as for ``job_from_row``."""

    def j(v: Any) -> Any:
        return v if decoded or v is None else json.loads(v)

    def t(v: Any) -> datetime | None:
        return None if v is None else ts(v)

    approvers = j(r["approvers"])
    return ApprovalRequest(
        id=r["id"], tenant_id=r["tenant_id"], workflow_id=r["workflow_id"],
        workflow_name=r["workflow_name"], seq=r["seq"], name=r["name"],
        approvers=None if approvers is None else tuple(approvers), context=j(r["context"]),
        state=r["state"], deadline=t(r["deadline"]), created_at=ts(r["created_at"]),
        decided_by=r["decided_by"], decided_by_key=r["decided_by_key"], comment=r["comment"],
        decided_at=t(r["decided_at"]),
    )


def approval_params(a: ApprovalRequest, ts: Any) -> dict[str, Any]:
    """A new request's row, as named parameters (JSON as text, instants encoded by ``ts``)."""
    return {
        "id": a.id, "tenant_id": a.tenant_id, "workflow_id": a.workflow_id,
        "workflow_name": a.workflow_name, "seq": a.seq, "name": a.name,
        "approvers": None if a.approvers is None else dumps(list(a.approvers)),
        "context": _json_or_none(a.context),
        "deadline": None if a.deadline is None else ts(a.deadline),
        "created_at": ts(a.created_at),
    }


def approval_cursor(a: ApprovalRequest) -> str:
    """The cursor after ``a`` in a newest-first listing (read by ``parse_workflow_cursor``:
    the same instant-then-id form)."""
    return f"{to_us(a.created_at)}:{a.id}"


#: The states a workflow can still move from, in the order a conflict names them.
WORKFLOW_LIVE = tuple(s for s in WORKFLOW_STATES if s not in WORKFLOW_FINAL)


def workflow_is_final(workflow_id: str, state: str) -> TransitionConflict:
    """The conflict of a move a final workflow refuses (the message names a workflow, not a
    job, whatever TransitionConflict's own wording)."""
    err = TransitionConflict(workflow_id, WORKFLOW_LIVE, state)
    err.args = (f"workflow {workflow_id} is {state}, expected {' or '.join(WORKFLOW_LIVE)}",)
    return err


def workflow_cursor(w: Workflow) -> str:
    """The opaque cursor after ``w`` in a newest-first listing: its creation instant in
    microseconds and its id (ids may hold any character, so the instant comes first)."""
    return f"{to_us(w.created_at)}:{w.id}"


def parse_workflow_cursor(cursor: str | None) -> tuple[int, str] | tuple[None, None]:
    """(created_at in µs, id) from ``workflow_cursor``; (None, None) for no cursor."""
    if cursor is None:
        return None, None
    at, sep, wf_id = cursor.partition(":")
    try:
        if not sep:
            raise ValueError(cursor)
        return int(at), wf_id
    except ValueError:
        raise invalid_cursor(cursor) from None


# A listing's cursor is the last row's key; one that no listing could have returned is
# refused, not read as a position (a garbage id compares somewhere and would silently give
# a page of the wrong rows). Every listing refuses with the same error, naming ``cursor``.
_ID_CURSOR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TENANT_CURSOR = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def invalid_cursor(cursor: str) -> InvalidPayload:
    return InvalidPayload(f"{cursor[:80]!r} is not a next_cursor this listing returned; "
                          "pass the previous page's next_cursor, or none", field="cursor")


def id_cursor(cursor: str | None) -> str | None:
    """The cursor of a listing by id (jobs, schedules, API keys: UUIDv7 strings)."""
    if cursor is not None and not _ID_CURSOR.fullmatch(cursor):
        raise invalid_cursor(cursor)
    return cursor


def tenant_cursor(cursor: str | None) -> str | None:
    """The cursor of the tenants listing: a tenant id."""
    if cursor is not None and not _TENANT_CURSOR.fullmatch(cursor):
        raise invalid_cursor(cursor)
    return cursor


def instant_cursor(cursor: str | None) -> datetime | None:
    """The cursor of a listing by instant (the tick ledger): an aware ISO-8601 instant."""
    if cursor is None:
        return None
    try:
        at = datetime.fromisoformat(cursor)
        if at.tzinfo is None:
            raise ValueError(cursor)
        return at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid_cursor(cursor) from None


def refuse_last_operator(key: ApiKey, operator_keys: Iterable[ApiKey], now: datetime) -> None:
    """Conflict when revoking ``key`` would leave no live operator key: nobody could manage
    tenants over the API any more, and only the CLI, on the database, could recover."""
    if OPERATOR not in key.scopes or not key.live_at(now):
        return
    if not any(k.id != key.id and OPERATOR in k.scopes and k.live_at(now)
               for k in operator_keys):
        raise Conflict(f"API key {key.id} is the last operator key; create another one "
                       "(scope operator) before revoking it")


#: The scope that manages every tenant (hora.api.auth draws the whole scope model).
OPERATOR = "operator"


def keyset_page(rows: list[T], limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    """A page from ``limit + 1`` rows read: the extra row only says there is a next page."""
    items = rows[:limit]
    more = len(rows) > limit and bool(items)
    return Page(items, cursor_of(items[-1]) if more else None)


def lock_from_row(r: Mapping[str, Any], ts: Any) -> LockRecord:
    return LockRecord(tenant_id=r["tenant_id"], name=r["name"], owner=r["owner"],
                      token=int(r["token"]), acquired_at=ts(r["acquired_at"]),
                      expires_at=ts(r["expires_at"]))


def lock_params(tenant_id: str, name: str, ts: Any, **values: Any) -> dict[str, Any]:
    """A lock statement's named parameters; instants among ``values`` encoded by ``ts``."""
    return {"tenant_id": tenant_id, "name": name,
            **{k: ts(v) if isinstance(v, datetime) else v for k, v in values.items()}}
