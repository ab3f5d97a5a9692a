"""Durable workflows: functions whose steps, timers and signals survive any crash.

    @app.workflow
    async def invoice(ctx: WorkflowContext, invoice_id: str) -> str:
        charge = await ctx.step(charge_card, invoice_id)       # journaled; retried by policy
        ctx.on_rollback(refund, invoice_id)                     # compensation, run in reverse
        decision = await ctx.wait_for_approval(timeout=timedelta(days=3))  # a request
        await ctx.sleep(timedelta(hours=24))                    # durable timer: no worker held
        await ctx.step(send_receipt, invoice_id)
        return "done"

How it works (the DBOS/Temporal "replay" model, in-process, on hora's own job core): a
workflow runs inside a job of the internal task ``hora.workflow``. Every call it makes
through ``ctx`` gets a position ``seq`` and leaves a journal row (``HistoryEntry``) with its
outcome. A run after a crash, a timer or a signal re-executes the function from the top;
each call whose row exists returns the recorded outcome instead of running again, so the
function fast-forwards to where it stopped and carries on. Waiting (a timer, a signal, an
approval request, a child) ends the run: the workflow's row says what it waits for, and a
job scheduled for the deadline (or enqueued by the signal or the decision) starts the next
run — a workflow sleeping for 30 days costs one row and one scheduled job, no worker.

The function must be deterministic given its journal: the same calls in the same order.
Anything that varies between runs (time, randomness, ids, I/O) goes through ``ctx`` or a
step. A call that does not match the journal at its position raises ``NondeterminismError``
naming both, and the workflow fails; hora never guesses.

Steps run at least once and, once journaled, never again: a crash after a step's side
effect but before its row is written runs it again. ``current_step().idempotency_key`` is
stable across those runs; use it to make side effects exactly-once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hora.clock import Clock
from hora.context import current_job
from hora.errors import (
    ChildFailed,
    Conflict,
    InvalidPayload,
    NondeterminismError,
    NotAllowed,
    NotFound,
    Retry,
    StaleRecord,
    StepFailed,
    TransitionConflict,
    WorkflowCancelled,
)
from hora.ids import new_id
from hora.limits import (
    MAX_DELAY,
    MAX_PAYLOAD_BYTES,
    MAX_RESULT_BYTES,
    TooLarge,
    check_instant,
    check_json_shape,
    check_json_size,
    check_seconds,
)
from hora.models import (
    APPROVAL_STATES,
    ApprovalRequest,
    ErrorInfo,
    HistoryEntry,
    Job,
    NewJob,
    Page,
    Signal,
    Workflow,
)
from hora.observability import WORKFLOW_RUNS, WORKFLOW_STEPS, tracer
from hora.retry import RetryPolicy

if TYPE_CHECKING:
    from hora.app import Hora, JobRequest, Task
    from hora.store import Store

T = TypeVar("T")

#: Runs of workflow ``name`` are jobs of task ``hora.workflow:<name>``: only workers whose
#: app registers that workflow claim them (others leave them waiting, visible).
RUNNER_TASK = "hora.workflow"


def runner_task(name: str) -> str:
    return f"{RUNNER_TASK}:{name}"
#: How long a run holds a workflow; a crashed run's job comes back under the same owner.
RUN_LEASE = timedelta(minutes=10)
#: A run that finds the workflow held by another run tries again after this.
BUSY_RETRY = 1.0
DEFAULT_STEP_RETRY = RetryPolicy(max_attempts=3, base=1.0, max_delay=300.0)
APPROVAL = "approval"
#: What a wait_for_approval may show its deciders, serialised (it is stored with the request).
MAX_APPROVAL_CONTEXT = 64 * 1024
#: How many actors an approval request may name as its deciders.
MAX_APPROVERS = 100


# -- errors -----------------------------------------------------------------------------------


class _Suspend(BaseException):
    """Ends a run: the workflow waits (``kind``: sleep, signal, child) until ``until``."""

    def __init__(self, kind: str, name: str | None, until: datetime | None,
                 seq: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.name = name
        self.until = until
        self.seq = seq


# -- records handed to workflow code ----------------------------------------------------------


class Record(dict[str, Any]):
    """A JSON object a step returned, readable as ``r.ok`` as well as ``r["ok"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Record({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


@dataclass(frozen=True)
class Approval:
    """The decision on a ``wait_for_approval``'s request (``app.approve``/``reject``, the
    CLI, or the HTTP API): who decided (over HTTP, the API key's name), why, and which
    request it was."""

    approved: bool
    actor: str | None
    comment: str | None
    approval_id: str | None = None


@dataclass(frozen=True)
class StepContext:
    """What a running step can know: ``hora.workflows.current_step()``."""

    workflow_id: str
    tenant_id: str
    seq: int
    name: str
    attempt: int
    correlation_id: str | None

    @property
    def idempotency_key(self) -> str:
        """Stable across every attempt and replay of this step: key side effects with it."""
        return f"{self.tenant_id}:{self.workflow_id}:{self.seq}"


_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("hora_step",
                                                                           default=None)


def current_step() -> StepContext:
    ctx = _step.get()
    if ctx is None:
        raise RuntimeError("hora.workflows.current_step() called outside a workflow step")
    return ctx


# -- definitions ------------------------------------------------------------------------------


@dataclass
class WorkflowDef:
    """A registered workflow function. ``start`` is sugar for ``app.start_workflow``."""

    app: Hora
    fn: Callable[..., Awaitable[Any]]
    name: str
    step_retry: RetryPolicy

    def start(self, *, workflow_id: str | None = None, correlation_id: str | None = None,
              **args: Any) -> Workflow:
        return self.app.start_workflow(self.name, args, workflow_id=workflow_id,
                                       correlation_id=correlation_id)


def _wait_seconds(value: timedelta | float, field: str) -> float:
    """A durable wait in seconds: a negative one is over at once (as ``asyncio.sleep``'s
    is); one past MAX_DELAY (or NaN) fails the workflow with a message naming ``field``,
    not an OverflowError from the deadline's arithmetic."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return 0.0
    return check_seconds(value, field, most=MAX_DELAY)


def _step_name(fn: Any) -> str:
    name = getattr(fn, "name", None)  # a hora Task
    if isinstance(name, str):
        return name
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


def _fn_of(fn: Callable[..., Any]) -> Callable[..., Any]:
    inner = getattr(fn, "fn", None)  # a hora Task wraps its function
    if callable(inner) and hasattr(fn, "name"):
        return cast(Callable[..., Any], inner)
    return fn


def _json(value: Any, what: str, *, limit: int = MAX_PAYLOAD_BYTES) -> Any:
    """A JSON round trip: what the journal will hand back on replay, handed back now.
    Refused (TooLarge) over ``limit`` bytes or MAX_JSON_DEPTH levels."""
    check_json_shape(value, what, max_bytes=limit)
    try:
        text = check_json_size(json.dumps(value, allow_nan=False), what, max_bytes=limit)
        return json.loads(text)
    except TooLarge:
        raise
    except (TypeError, ValueError) as e:
        raise InvalidPayload(f"{what} must be JSON-serialisable (it is journaled): {e}"
                             ) from None


def _error_info(err: BaseException) -> ErrorInfo:
    t = type(err)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return ErrorInfo(name, str(err)[:2000], None)


# -- the context a workflow function receives -------------------------------------------------


class WorkflowContext:
    """The workflow's handle on the outside world; every method is journaled."""

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def workflow_id(self) -> str:
        return self._run.wf.id

    @property
    def correlation_id(self) -> str | None:
        return self._run.wf.correlation_id

    def step(self, fn: Callable[..., Any], /, *args: Any, retry: RetryPolicy | None = None,
             timeout: float | timedelta | None = None, name: str | None = None,
             **kwargs: Any) -> Awaitable[Any]:
        """Run ``fn(*args, **kwargs)`` once (sync or async), journal its JSON result, retry
        it by ``retry`` (default: the workflow's step policy) with durable backoff."""
        seq = self._run.next_seq()
        return self._run.step(seq, name or _step_name(fn), _fn_of(fn), args, kwargs,
                              retry, timeout, kind="step")

    async def sleep(self, duration: timedelta | float) -> None:
        """A durable timer: the run ends, a job scheduled for the deadline resumes it."""
        seconds = _wait_seconds(duration, "sleep")
        seq = self._run.next_seq()
        await self._run.timer(seq, "sleep", lambda now: now + timedelta(seconds=seconds))

    async def sleep_until(self, instant: datetime) -> None:
        at = check_instant(instant, "sleep_until")
        seq = self._run.next_seq()
        await self._run.timer(seq, "sleep_until", lambda now: at)

    async def wait_for_signal(self, name: str, *,
                              timeout: timedelta | float | None = None,  # noqa: ASYNC109
                              ) -> Any:
        """The payload of the next signal ``name`` (signals sent earlier wait, in order), or
        None when ``timeout`` passes first."""
        seconds = None if timeout is None else _wait_seconds(timeout, "wait_for_signal timeout")
        seq = self._run.next_seq()
        got = await self._run.wait_signal(seq, name, seconds)
        return None if got is None else _wrap(got.get("payload"))

    async def wait_for_approval(self, name: str = APPROVAL, *,
                                timeout: timedelta | float | None = None,  # noqa: ASYNC109
                                context: Any = None,
                                approvers: Sequence[str] | None = None,
                                ) -> Approval | None:
        """Ask a person: this creates an approval request (its own id, listed in the
        approvals inbox with ``context``, any JSON value the deciders need to see) and waits
        for its decision, or returns None once ``timeout`` passes (the request expires).

        A decision names the request, so deciding twice is one decision and never answers a
        later ``wait_for_approval``. ``approvers``: the actors that may decide (over HTTP,
        the names of API keys with the approve scope); default: anyone with that scope.
        The request is made once, at this call's journal position: a replay finds it.
        """
        seconds = (None if timeout is None
                   else _wait_seconds(timeout, "wait_for_approval timeout"))
        if not name or len(name) > 200:
            raise InvalidPayload("approval name must be 1-200 characters")
        shown = _json(context, "approval context")
        if len(json.dumps(shown)) > MAX_APPROVAL_CONTEXT:
            raise InvalidPayload(f"approval context must be at most {MAX_APPROVAL_CONTEXT} "
                                 "bytes of JSON")
        who = None if approvers is None else _approvers(approvers)
        seq = self._run.next_seq()
        got = await self._run.wait_approval(seq, name, seconds, shown, who)
        if got is None:
            return None
        return Approval(approved=bool(got.get("approved")), actor=got.get("actor"),
                        comment=got.get("comment"), approval_id=got.get("approval_id"))

    def on_rollback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Register a compensation: if the workflow later fails or is cancelled, the
        registered compensations run in reverse order, each durably and with retries."""
        seq = self._run.next_seq()
        self._run.rollback(seq, _step_name(fn), _fn_of(fn), args, kwargs)

    def child(self, workflow: str | WorkflowDef, /, *, workflow_id: str | None = None,
              **args: Any) -> Awaitable[Any]:
        """Start a child workflow (idempotently) and wait for its result; raises
        ``ChildFailed`` if it fails or is cancelled."""
        seq = self._run.next_seq()
        name = workflow if isinstance(workflow, str) else workflow.name
        return self._run.child(seq, name, workflow_id, args)

    async def gather(self, *calls: Awaitable[Any]) -> list[Any]:
        """Run steps (or children) concurrently and return their results in order. Their
        positions were fixed when the calls were made, so replay is deterministic."""
        return await self._run.gather(calls)

    def now(self) -> datetime:
        """The time, recorded on the first run and replayed after."""
        seq = self._run.next_seq()
        return datetime.fromisoformat(self._run.value(
            seq, "now", lambda: self._run.clock.now().isoformat()))

    def random(self) -> float:
        seq = self._run.next_seq()
        return float(self._run.value(seq, "random", _random.random))

    def uuid4(self) -> str:
        seq = self._run.next_seq()
        return str(self._run.value(seq, "uuid", lambda: str(_uuid.uuid4())))


# -- one run ----------------------------------------------------------------------------------


@dataclass
class _Rollback:
    seq: int
    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class _Run:
    """One execution of a workflow function against its journal."""

    app: Hora
    wf: Workflow
    definition: WorkflowDef
    owner: str
    journal: dict[int, HistoryEntry]
    seq: int = 0
    pending: list[HistoryEntry] = field(default_factory=list)
    rollbacks: list[_Rollback] = field(default_factory=list)
    jobs: list[NewJob] = field(default_factory=list)
    #: Serialises lease renewals with the run's end: a renewal must never re-take the lease
    #: after finish_run released it.
    lease_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    finishing: bool = False

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @property
    def store(self) -> Store:
        return self.app.store

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # journal plumbing

    def _entry(self, seq: int, kind: str, name: str) -> HistoryEntry | None:
        entry = self.journal.get(seq)
        if entry is None:
            if self.wf.cancel_requested:
                raise WorkflowCancelled(self.wf.cancel_reason or "cancelled on request")
            return None
        if entry.kind != kind or entry.name != name:
            raise NondeterminismError(
                f"workflow {self.wf.name} ({self.wf.id}): call #{seq} is {kind} {name!r} "
                f"but the journal has {entry.kind} {entry.name!r} there; the code changed "
                "under a running workflow (start a new one, or version the workflow name)")
        return entry

    def _interrupt(self) -> None:
        """A wait about to begin (or go on) gives way to a cancellation."""
        if self.wf.cancel_requested:
            raise WorkflowCancelled(self.wf.cancel_reason or "cancelled on request")

    def _new(self, seq: int, kind: str, name: str, *, status: str, input: Any = None,
             output: Any = None, error: ErrorInfo | None = None, attempts: int = 0,
             deadline: datetime | None = None,
             started_at: datetime | None = None) -> HistoryEntry:
        now = self.clock.now()
        return HistoryEntry(
            tenant_id=self.wf.tenant_id, workflow_id=self.wf.id, seq=seq, kind=kind, name=name,
            input=input, output=output, error=error, status=status, attempts=attempts,
            started_at=started_at or now, finished_at=now if status != "pending" else None,
            deadline=deadline)

    async def _record(self, *entries: HistoryEntry) -> None:
        batch = [*self.pending, *entries]
        self.pending.clear()
        if batch:
            await asyncio.to_thread(self.store.record_history, batch, owner=self.owner)
        for e in entries:
            self.journal[e.seq] = e

    def _defer(self, entry: HistoryEntry) -> None:
        """Journal with the next write (values nobody outside has seen yet)."""
        self.pending.append(entry)
        self.journal[entry.seq] = entry

    def value(self, seq: int, kind: str, make: Callable[[], Any]) -> Any:
        entry = self._entry(seq, kind, kind)
        if entry is not None:
            return entry.output
        out = make()
        self._defer(self._new(seq, kind, kind, status="done", output=out))
        return out

    def rollback(self, seq: int, name: str, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        entry = self._entry(seq, "rollback", name)
        if entry is None:
            payload = _json({"args": list(args), "kwargs": kwargs}, f"rollback {name} arguments")
            self._defer(self._new(seq, "rollback", name, status="done", input=payload))
        self.rollbacks.append(_Rollback(seq, name, fn, args, kwargs))

    # steps

    async def step(self, seq: int, name: str, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any], retry: RetryPolicy | None,
                   timeout: float | timedelta | None,  # noqa: ASYNC109 - a step's own limit
                   *, kind: str) -> Any:
        entry = self._entry(seq, kind, name) if kind == "step" else self.journal.get(seq)
        attempts = 0
        if entry is not None:
            if entry.status == "done":
                return _wrap(entry.output)
            if entry.status == "failed":
                raise StepFailed(name, entry.error or ErrorInfo("Error", "failed"))
            attempts = entry.attempts
            if entry.deadline is not None and entry.deadline > self.clock.now():
                if kind == "step":
                    self._interrupt()
                raise _Suspend("sleep", f"retry {name}", entry.deadline, seq)
        if self.pending:
            await self._record()  # what the step may depend on is journaled before it runs
        policy = retry or self.definition.step_retry
        attempt = attempts + 1
        started = self.clock.now()
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        sctx = StepContext(self.wf.id, self.wf.tenant_id, seq, name, attempt,
                           self.wf.correlation_id)
        token = _step.set(sctx)
        try:
            with tracer.start_as_current_span(f"hora.step {name}", attributes={
                    "hora.workflow_id": self.wf.id, "hora.seq": seq, "hora.attempt": attempt}):
                if inspect.iscoroutinefunction(fn):
                    result = await asyncio.wait_for(fn(*args, **kwargs), seconds)
                else:
                    call = functools.partial(fn, *args, **kwargs)
                    result = await asyncio.wait_for(asyncio.to_thread(call), seconds)
            output = _json(result, f"the result of step {name}", limit=MAX_RESULT_BYTES)
        except (WorkflowCancelled, _Suspend, NondeterminismError):
            raise
        except Exception as err:
            if isinstance(err, TimeoutError):
                err = TimeoutError(f"step {name} timed out after {seconds}s")
            info = _error_info(err)
            if not isinstance(err, TooLarge) and (policy.should_retry(attempt, err)
                                                  or isinstance(err, Retry)):
                wait = (err.delay if isinstance(err, Retry) and err.delay is not None
                        else policy.delay(attempt))
                due = self.clock.now() + timedelta(seconds=min(wait, MAX_DELAY))
                await self._record(self._new(seq, kind, name, status="pending", error=info,
                                             attempts=attempt, deadline=due,
                                             started_at=started))
                WORKFLOW_STEPS.labels(self.wf.name, "pending").inc()
                raise _Suspend("sleep", f"retry {name}", due, seq) from None
            await self._record(self._new(seq, kind, name, status="failed", error=info,
                                         attempts=attempt, started_at=started))
            WORKFLOW_STEPS.labels(self.wf.name, "failed").inc()
            raise StepFailed(name, info) from None
        finally:
            _step.reset(token)
        await self._record(self._new(seq, kind, name, status="done", output=output,
                                     attempts=attempt, started_at=started))
        WORKFLOW_STEPS.labels(self.wf.name, "done").inc()
        return _wrap(output)

    # timers and waits

    async def timer(self, seq: int, name: str, deadline_of: Callable[[datetime], datetime],
                    ) -> None:
        entry = self._entry(seq, "sleep", name)
        now = self.clock.now()
        if entry is not None and entry.status == "done":
            return
        deadline = entry.deadline if entry is not None and entry.deadline else deadline_of(now)
        if deadline <= now:
            await self._record(self._new(seq, "sleep", name, status="done", deadline=deadline,
                                         started_at=entry.started_at if entry else None))
            return
        self._interrupt()
        if entry is None:
            await self._record(self._new(seq, "sleep", name, status="pending",
                                         deadline=deadline))
        raise _Suspend("sleep", name, deadline, seq)

    async def _wait_at(self, seq: int, kind: str, name: str,
                       timeout: float | None,  # noqa: ASYNC109 - a durable deadline
                       ) -> tuple[HistoryEntry | None, datetime | None, datetime]:
        """Where a wait stands: its journal entry (None when it begins now), its deadline
        (the entry's, or now + ``timeout``) and now. An unfinished wait first journals what
        it may depend on."""
        entry = self._entry(seq, kind, name)
        now = self.clock.now()
        if entry is not None and entry.status == "done":
            return entry, entry.deadline, now
        if entry is not None:
            deadline = entry.deadline
        else:
            deadline = None if timeout is None else now + timedelta(seconds=timeout)
        if self.pending:
            await self._record()
        return entry, deadline, now

    async def wait_signal(self, seq: int, name: str,
                          timeout: float | None,  # noqa: ASYNC109 - a durable deadline
                          ) -> dict[str, Any] | None:
        entry, deadline, now = await self._wait_at(seq, "signal", name, timeout)
        if entry is not None and entry.status == "done":
            return _waited(entry)
        taking = self._new(seq, "signal", name, status="done", deadline=deadline,
                           started_at=entry.started_at if entry else None)
        signal = await asyncio.to_thread(self.store.consume_signal, taking, owner=self.owner)
        if signal is not None:
            got = {"payload": signal.payload, "actor": signal.actor, "comment": signal.comment,
                   "signal_id": signal.id}
            self.journal[seq] = replace(taking, output=got)
            return got
        if deadline is not None and deadline <= now:
            await self._record(replace(taking, output={"timed_out": True}))
            return None
        self._interrupt()
        if entry is None:
            await self._record(self._new(seq, "signal", name, status="pending",
                                         deadline=deadline))
        raise _Suspend("signal", name, deadline, seq)

    async def wait_approval(self, seq: int, name: str,
                            timeout: float | None,  # noqa: ASYNC109 - a durable deadline
                            context: Any, approvers: tuple[str, ...] | None,
                            ) -> dict[str, Any] | None:
        """The request at this position (made now, or found), then its outcome: the
        decision, None once expired, or an end of the run while it is pending."""
        legacy = self.journal.get(seq)
        if legacy is not None and legacy.kind == "signal" and legacy.name == name:
            # Journaled before approvals were requests: replayed (or awaited) as the signal
            # {"approved": bool} it was, so a workflow running across the upgrade goes on.
            got = await self.wait_signal(seq, name, timeout)
            if got is None:
                return None
            payload = got.get("payload") or {}
            return {"approved": bool(payload.get("approved")), "actor": got.get("actor"),
                    "comment": got.get("comment")}
        entry, deadline, now = await self._wait_at(seq, "approval", name, timeout)
        if entry is not None and entry.status == "done":
            return _waited(entry)
        proposal = ApprovalRequest(
            id=new_id(), tenant_id=self.wf.tenant_id, workflow_id=self.wf.id,
            workflow_name=self.wf.name, seq=seq, name=name, approvers=approvers,
            context=context, state="pending", deadline=deadline, created_at=now)
        waiting = entry or self._new(seq, "approval", name, status="pending",
                                     input={"approval_id": proposal.id}, deadline=deadline)
        request = await asyncio.to_thread(self.store.open_approval, proposal, waiting,
                                          owner=self.owner)
        self.journal[seq] = waiting
        tenant = self.wf.tenant_id
        if request.is_pending and request.deadline is not None and request.deadline <= now:
            request = await asyncio.to_thread(self.store.close_approval, request.id,
                                              tenant_id=tenant, state="expired", now=now)
        if request.is_pending and self.wf.cancel_requested:
            request = await asyncio.to_thread(self.store.close_approval, request.id,
                                              tenant_id=tenant, state="cancelled", now=now)
        if request.state in ("approved", "rejected"):
            out = {"approval_id": request.id, "approved": request.state == "approved",
                   "actor": request.decided_by, "comment": request.comment}
            await self._record(replace(waiting, status="done", output=out,
                                       finished_at=now))
            return out
        if request.state == "expired":
            await self._record(replace(waiting, status="done", finished_at=now,
                                       output={"approval_id": request.id, "timed_out": True}))
            return None
        if request.state == "cancelled":
            raise WorkflowCancelled(self.wf.cancel_reason or "cancelled on request")
        raise _Suspend("approval", name, request.deadline, seq)

    async def child(self, seq: int, name: str, workflow_id: str | None,
                    args: dict[str, Any]) -> Any:
        child_id = workflow_id or f"{self.wf.id}.{seq}"
        entry = self._entry(seq, "child", name)
        if entry is None:
            if self.pending:
                await self._record()
            await asyncio.to_thread(self.app.start_workflow, name, args, workflow_id=child_id,
                                    correlation_id=self.wf.correlation_id,
                                    parent_id=self.wf.id)
            entry = self._new(seq, "child", name, status="pending",
                              input={"workflow_id": child_id, "args": _json(args, "args")})
            await self._record(entry)
        elif entry.status == "done":
            return self._child_outcome(child_id, entry.output or {})
        found = await asyncio.to_thread(self.store.get_workflow, child_id,
                                        tenant_id=self.wf.tenant_id)
        if not found.is_final:
            self._interrupt()
            raise _Suspend("child", child_id, None, seq)
        out = {"state": found.state, "result": found.result,
               "error": None if found.error is None else found.error.to_dict()}
        await self._record(replace(entry, status="done", output=out,
                                   finished_at=self.clock.now()))
        return self._child_outcome(child_id, out)

    @staticmethod
    def _child_outcome(child_id: str, out: Mapping[str, Any]) -> Any:
        if out.get("state") == "completed":
            return _wrap(out.get("result"))
        raise ChildFailed(child_id, str(out.get("state")), ErrorInfo.from_dict(out.get("error")))

    async def gather(self, calls: Sequence[Awaitable[Any]]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in calls]
        try:
            # Each branch goes on until it finishes or waits (a timer, a retry, a child, an
            # approval request): one branch's wait must not cut another short (its request
            # unmade, its step run again next time). A real error stops the others at once.
            running = set(tasks)
            while running and not any(_failed(t) for t in tasks):
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            pending = [t for t in tasks if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        errors: list[BaseException] = [
            e for t in tasks if not t.cancelled() and (e := t.exception()) is not None]
        suspends = [e for e in errors if isinstance(e, _Suspend)]
        others = [e for e in errors if not isinstance(e, _Suspend)]
        if others:
            raise others[0]
        if suspends or any(t.cancelled() for t in tasks):
            # Some calls wait: end the run; the next one replays the finished ones.
            dated = [s for s in suspends if s.until is not None]
            first: _Suspend
            if dated:
                first = min(dated, key=lambda s: s.until or datetime.max)
            else:
                first = suspends[0] if suspends else _Suspend("child", None, None, 0)
            raise first
        return [t.result() for t in tasks]

    # the whole run

    async def execute(self) -> dict[str, Any]:
        wf = self.wf
        ctx = WorkflowContext(self)
        try:
            # A compensating workflow re-runs too: replay brings it back to its failure (or
            # cancellation), which rebuilds the rollbacks to run, and the journal skips the
            # compensations already done.
            result = await self.definition.fn(ctx, **wf.args)
            output = _json(result, f"the result of workflow {wf.name}",
                           limit=MAX_RESULT_BYTES)
            extra = sorted(s for s, e in self.journal.items()
                           if s > self.seq and e.kind not in ("compensate",))
            if extra:
                raise NondeterminismError(
                    f"workflow {wf.name} ({wf.id}) returned after call #{self.seq} but the "
                    f"journal has calls up to #{extra[-1]}; the code changed under it")
        except _Suspend as s:
            return await self._suspend(s)
        except NondeterminismError as e:
            return await self._end("failed", error=_error_info(e))
        except WorkflowCancelled as c:
            return await self._fail_and_compensate(c)
        except Exception as e:
            return await self._fail_and_compensate(e)
        return await self._end("completed", result=output)

    async def _fail_and_compensate(self, err: BaseException) -> dict[str, Any]:
        """Run the registered compensations in reverse, each a journaled step."""
        cancelled = isinstance(err, WorkflowCancelled)
        if isinstance(err, WorkflowCancelled):
            info = ErrorInfo("hora.WorkflowCancelled", err.reason, None)
        else:
            info = _error_info(err)
        if self.wf.state != "compensating" and self.rollbacks:
            # Say so durably before the first compensation runs.
            self.wf = replace(self.wf, state="compensating", compensation="running",
                              error=info)
        compensation = None
        if self.rollbacks:
            compensation = "completed"
            seq = self.seq
            for rb in reversed(self.rollbacks):
                seq += 1
                try:
                    await self.step(seq, rb.name, rb.fn, rb.args, rb.kwargs,
                                    self.definition.step_retry, None, kind="compensate")
                except StepFailed:
                    compensation = "failed"
                except _Suspend as s:
                    return await self._suspend(s, state="compensating")
        state = "cancelled" if cancelled else "failed"
        return await self._end(state, error=info, compensation=compensation)

    async def _suspend(self, s: _Suspend, state: str | None = None) -> dict[str, Any]:
        wake: list[NewJob] = []
        if s.until is not None:
            wake.append(self.app._workflow_job(self.wf, at=s.until,
                                               key=f"wake:{s.seq}:{s.until.isoformat()}"))
        new_state = state or ("sleeping" if s.kind == "sleep" else "waiting")
        wf = replace(self.wf, state=new_state, wait_kind=s.kind, wait_name=s.name,
                     wait_until=s.until, updated_at=self.clock.now())
        await self._finish(wf, wake)
        return {"workflow_id": wf.id, "state": new_state, "waits_for": s.kind,
                "until": None if s.until is None else s.until.isoformat()}

    async def _end(self, state: str, *, result: Any = None, error: ErrorInfo | None = None,
                   compensation: str | None = None) -> dict[str, Any]:
        now = self.clock.now()
        wf = replace(self.wf, state=state, result=result, error=error,
                     compensation=compensation, wait_kind=None, wait_name=None,
                     wait_until=None, finished_at=now, updated_at=now)
        jobs: list[NewJob] = []
        if wf.parent_id is not None:
            parent = await asyncio.to_thread(self.store.get_workflow, wf.parent_id,
                                             tenant_id=wf.tenant_id)
            jobs.append(self.app._workflow_job(parent, key=f"child:{wf.id}"))
        await self._finish(wf, jobs)
        return {"workflow_id": wf.id, "state": state}

    async def keep_lease(self) -> None:
        """Renew the run lease while the run lasts, so a long step is not taken over."""
        every = RUN_LEASE / 3
        # Due a third of the way into the lease held now, whenever this task gets to run.
        renew_at = (self.wf.run_until or self.clock.now() + RUN_LEASE) - RUN_LEASE + every
        while True:
            await self.clock.sleep_until(renew_at)
            async with self.lease_lock:
                if self.finishing:
                    return
                now = self.clock.now()
                renewed = await asyncio.to_thread(
                    self.store.acquire_workflow, self.wf.id, tenant_id=self.wf.tenant_id,
                    owner=self.owner, now=now, until=now + RUN_LEASE)
            if renewed is None:
                return  # taken over: our next journal write will find out (StaleRecord)
            renew_at = now + every

    async def _finish(self, wf: Workflow, jobs: list[NewJob]) -> None:
        if self.pending:
            await self._record()
        async with self.lease_lock:
            self.finishing = True
        stored = await asyncio.to_thread(self.store.finish_run, wf, owner=self.owner,
                                         jobs=jobs)
        self.wf = stored
        WORKFLOW_RUNS.labels(stored.name, stored.state).inc()
        if jobs:
            self.app._notify_workers(min(j.due_at for j in jobs))


# -- the SDK face ------------------------------------------------------------------------------


class WorkflowMixin:
    """Workflow methods of ``Hora``: define, start, signal, approve, cancel, inspect."""

    if TYPE_CHECKING:
        tasks: dict[str, Task[Any, Any]]
        clock: Clock
        tenant_id: str
        workflows: dict[str, WorkflowDef]

        @property
        def store(self) -> Store: ...
        def _prepare(self, r: JobRequest, now: datetime) -> NewJob: ...
        def _notify_workers(self, earliest_due: datetime) -> None: ...
        def for_tenant(self, tenant_id: str) -> Hora: ...

    def workflow(self, fn: Callable[..., Awaitable[Any]] | None = None, /, *,
                 name: str | None = None, step_retry: RetryPolicy | None = None) -> Any:
        """Register a workflow: ``@app.workflow`` or ``@app.workflow(name=..., step_retry=...)``.

        The function is ``async def f(ctx, **args)``. Its name (default ``module.qualname``)
        is stored with every run, so renaming strands running workflows unless ``name=``
        pins it. A schedule can start it: ``create_schedule("workflow:<name>", args, ...)``.
        """

        def register(f: Callable[..., Awaitable[Any]]) -> WorkflowDef:
            if not inspect.iscoroutinefunction(f):
                raise TypeError(f"workflow {f.__qualname__} must be an async function")
            wf_name = name or f"{f.__module__}.{f.__qualname__}"
            if wf_name in self.workflows:
                raise ValueError(f"a workflow named {wf_name!r} is already registered")
            definition = WorkflowDef(cast("Hora", self), f, wf_name,
                                     step_retry or DEFAULT_STEP_RETRY)
            self.workflows[wf_name] = definition
            self._install_runner(definition)
            self._install_starter(definition)
            return definition

        return register(fn) if fn is not None else register

    def _install_runner(self, definition: WorkflowDef) -> None:
        app = self

        async def run(workflow_id: str) -> dict[str, Any]:
            job = current_job()
            view = app.for_tenant(job.tenant_id)
            # The attempt is part of the owner: a run frozen past its lease (a paused VM)
            # must not write over the journal its job's next attempt has moved on with.
            return await view._run_workflow(workflow_id,
                                            owner=f"job:{job.job_id}:{job.attempt}")

        cast(Any, self).task(run, name=runner_task(definition.name),
                             retry=RetryPolicy(max_attempts=100, base=1.0, max_delay=60.0))

    def _install_starter(self, definition: WorkflowDef) -> None:
        """A task ``workflow:<name>`` that starts the workflow, so schedules can target it.
        Each job starts one workflow, its id derived from the job's (a retried job never
        starts two)."""
        app = self

        def start(**args: Any) -> dict[str, Any]:
            job = current_job()
            view = app.for_tenant(job.tenant_id)
            wf = view.start_workflow(definition.name, args, workflow_id=f"job-{job.job_id}",
                                     correlation_id=job.correlation_id)
            return {"workflow_id": wf.id}

        cast(Any, self).task(start, name=f"workflow:{definition.name}")

    # -- starting -------------------------------------------------------------------------------

    def _workflow_job_for(self, name: str, workflow_id: str, correlation_id: str | None, *,
                          key: str, at: datetime | None = None) -> NewJob:
        from hora.app import JobRequest

        return self._prepare(JobRequest(
            task=runner_task(name), payload={"workflow_id": workflow_id}, at=at,
            idempotency_key=f"wf:{workflow_id}:{key}"[:255], correlation_id=correlation_id),
            self.clock.now())

    def _workflow_job(self, wf: Workflow, *, key: str, at: datetime | None = None) -> NewJob:
        return self._workflow_job_for(wf.name, wf.id, wf.correlation_id, key=key, at=at)

    def start_workflow(self, workflow: str | WorkflowDef, args: Mapping[str, Any] | None = None,
                       *, workflow_id: str | None = None, correlation_id: str | None = None,
                       parent_id: str | None = None) -> Workflow:
        """Start a workflow; with ``workflow_id`` starting is idempotent (the same id, name
        and args return the workflow already there, whatever its state; the same id with
        another name or other args raises ``Conflict``). The correlation id (default: the
        workflow id) goes on every job, child and signal it creates."""
        name = workflow if isinstance(workflow, str) else workflow.name
        args = dict(args or {})
        _json(args, "args")
        if workflow_id is not None and not (1 <= len(workflow_id) <= 200):
            raise InvalidPayload("workflow_id must be 1-200 characters")
        from hora.app import check_text

        check_text(workflow_id=workflow_id, name=name, correlation_id=correlation_id)
        now = self.clock.now()
        wf_id = workflow_id or new_id()
        wf = Workflow(
            tenant_id=self.tenant_id, id=wf_id, name=name, args=args, state="running",
            result=None, error=None, correlation_id=correlation_id or wf_id,
            parent_id=parent_id, wait_kind=None, wait_name=None, wait_until=None,
            cancel_requested=False, cancel_reason=None, compensation=None, run_owner=None,
            run_until=None, created_at=now, updated_at=now, finished_at=None)
        stored, created = self.store.start_workflow(wf, self._workflow_job(wf, key="start"))
        if created:
            self._notify_workers(now)
        elif stored.name != name or stored.args != args:
            raise Conflict(f"workflow {wf_id} exists already as {stored.name} with other "
                           "arguments; a workflow id names one workflow: use a new id")
        return stored

    async def _run_workflow(self, workflow_id: str, *, owner: str) -> dict[str, Any]:
        now = self.clock.now()
        wf = await asyncio.to_thread(self.store.acquire_workflow, workflow_id,
                                     tenant_id=self.tenant_id, owner=owner, now=now,
                                     until=now + RUN_LEASE)
        if wf is None:
            current = await asyncio.to_thread(self.store.get_workflow, workflow_id,
                                              tenant_id=self.tenant_id)
            if current.is_final:
                return {"workflow_id": workflow_id, "state": current.state, "ran": False}
            if _earlier_attempt(current.run_owner, owner):
                # Our job's previous attempt was declared lost by the job core (its lease
                # expired): take over its run lease now instead of waiting it out.
                wf = await asyncio.to_thread(
                    self.store.acquire_workflow, workflow_id, tenant_id=self.tenant_id,
                    owner=owner, now=now, until=now + RUN_LEASE, replaces=current.run_owner)
        if wf is None:
            raise Retry(BUSY_RETRY, f"workflow {workflow_id} is being run by {current.run_owner}")
        definition = self.workflows.get(wf.name)
        if definition is None:
            raise NotFound(f"no workflow named {wf.name!r} is registered in this process")
        history = await asyncio.to_thread(self.store.load_history, workflow_id,
                                          tenant_id=self.tenant_id)
        run = _Run(cast("Hora", self), wf, definition, owner, {e.seq: e for e in history})
        renewing = asyncio.create_task(run.keep_lease(), name=f"hora-lease-{workflow_id}")
        try:
            with tracer.start_as_current_span(f"hora.workflow {wf.name}", attributes={
                    "hora.workflow_id": wf.id, "hora.correlation_id": wf.correlation_id or "",
                    "hora.journal_entries": len(history)}):
                return await run.execute()
        except StaleRecord:
            # Another run took the workflow over (ours outlived its lease): it carries on.
            return {"workflow_id": workflow_id, "state": "superseded"}
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    # -- control and visibility ---------------------------------------------------------------

    def get_workflow(self, workflow_id: str) -> Workflow:
        return self.store.get_workflow(workflow_id, tenant_id=self.tenant_id)

    def list_workflows(self, *, state: str | Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        _check_limit(limit)
        states = None if state is None else ([state] if isinstance(state, str) else list(state))
        from hora.models import WORKFLOW_STATES

        for s in states or ():
            if s not in WORKFLOW_STATES:
                raise InvalidPayload(f"state {s!r} is not one of {', '.join(WORKFLOW_STATES)}")
        return self.store.list_workflows(tenant_id=self.tenant_id, states=states, name=name,
                                         correlation_id=correlation_id, limit=limit,
                                         cursor=cursor)

    def approvals(self, *, state: str | Sequence[str] | None = "pending",
                  workflow_id: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[ApprovalRequest]:
        """The inbox: approval requests, newest first, by default the pending ones (each
        with its workflow, name, context, creation and deadline). ``state=None`` lists all,
        decided ones too (the audit trail)."""
        _check_limit(limit)
        states = None if state is None else ([state] if isinstance(state, str) else list(state))
        for s in states or ():
            if s not in APPROVAL_STATES:
                raise InvalidPayload(f"state {s!r} is not one of {', '.join(APPROVAL_STATES)}")
        return self.store.list_approvals(tenant_id=self.tenant_id, states=states,
                                         workflow_id=workflow_id, limit=limit, cursor=cursor)

    def get_approval(self, approval_id: str) -> ApprovalRequest:
        return self.store.get_approval(approval_id, tenant_id=self.tenant_id)

    def workflow_history(self, workflow_id: str) -> list[HistoryEntry]:
        self.get_workflow(workflow_id)  # NotFound for another tenant's
        return self.store.load_history(workflow_id, tenant_id=self.tenant_id)

    def workflow_signals(self, workflow_id: str) -> list[Signal]:
        """Every signal sent to the workflow, consumed or not: with approvals' actors and
        comments, the workflow's audit trail."""
        self.get_workflow(workflow_id)
        return self.store.list_signals(workflow_id, tenant_id=self.tenant_id)

    def signal_workflow(self, workflow_id: str, name: str, payload: Any = None, *,
                        actor: str | None = None, comment: str | None = None) -> Signal:
        """Send a signal; it waits, in order, until the workflow asks for it. Sending to a
        finished workflow raises TransitionConflict."""
        if not name or len(name) > 200:
            raise InvalidPayload("signal name must be 1-200 characters")
        if actor is not None and len(actor) > 200:
            raise InvalidPayload("actor must be at most 200 characters")
        if comment is not None and len(comment) > 2000:
            raise InvalidPayload("comment must be at most 2000 characters")
        from hora.app import check_text

        check_text(name=name, actor=actor, comment=comment)
        wf = self.get_workflow(workflow_id)
        signal = Signal(id=new_id(), tenant_id=self.tenant_id, workflow_id=workflow_id,
                        name=name, payload=_json(payload, "signal payload"), actor=actor,
                        comment=comment, sent_at=self.clock.now())
        stored = self.store.send_signal(signal, self._workflow_job(wf, key=f"signal:{signal.id}"))
        self._notify_workers(self.clock.now())
        return stored

    def approve(self, request: str, *, actor: str, comment: str | None = None,
                name: str | None = None) -> ApprovalRequest:
        """Approve an approval request. ``request`` is its id; a workflow id also works
        (its single pending request, of ``name`` if given; see ``decide_approval``)."""
        approval_id, workflow_id = self._approval_or_workflow(request)
        return self.decide_approval(approval_id, True, workflow_id=workflow_id, actor=actor,
                                    comment=comment, name=name)

    def reject(self, request: str, *, actor: str, comment: str | None = None,
               name: str | None = None) -> ApprovalRequest:
        """Reject an approval request (by id, or a workflow id as for ``approve``)."""
        approval_id, workflow_id = self._approval_or_workflow(request)
        return self.decide_approval(approval_id, False, workflow_id=workflow_id, actor=actor,
                                    comment=comment, name=name)

    def _approval_or_workflow(self, request: str) -> tuple[str | None, str | None]:
        """(approval id, None) when ``request`` names an approval request, else (None,
        workflow id) when it names a workflow; NotFound when it names neither."""
        try:
            return self.get_approval(request).id, None
        except NotFound:
            pass
        try:
            return None, self.get_workflow(request).id
        except NotFound:
            raise NotFound(f"approval request or workflow {request} not found") from None

    def decide_approval(self, approval_id: str | None, approved: bool, *, actor: str,
                        comment: str | None = None, name: str | None = None,
                        workflow_id: str | None = None, actor_key: str | None = None,
                        ) -> ApprovalRequest:
        """Decide an approval request, once: the same decision again returns the request as
        decided (by whoever decided first), another decision raises TransitionConflict, and
        so does deciding a request that expired or was cancelled. NotAllowed when the
        request names its approvers and ``actor`` is not one of them.

        Name the request by ``approval_id``, or by ``workflow_id`` (for scripts written
        before requests had ids): then the decision goes to the workflow's single pending
        request (of ``name``, if given); with ``name`` and none pending, a repeat of the
        decision its latest request of that name got is that decision. Only a request id
        is safe against a repeated click once the workflow has moved on to another
        request: deciding by workflow decides whatever is pending now.
        """
        from hora.app import check_text

        if not actor or len(actor) > 200:
            raise InvalidPayload("actor must be 1-200 characters")
        if comment is not None and len(comment) > 2000:
            raise InvalidPayload("comment must be at most 2000 characters")
        check_text(actor=actor, comment=comment, name=name)
        wanted = "approved" if approved else "rejected"
        if approval_id is not None:
            found = self.get_approval(approval_id)
        elif workflow_id is not None:
            found = self._pending_approval_of(workflow_id, name, wanted)
        else:
            raise InvalidPayload("name the approval request (its id) or its workflow")
        if found.approvers is not None and actor not in found.approvers:
            raise NotAllowed(f"approval request {found.id} may be decided by "
                             f"{', '.join(found.approvers)} only, not by {actor!r}")
        if found.is_pending:
            wf = self.get_workflow(found.workflow_id)
            found = self.store.decide_approval(
                found.id, tenant_id=self.tenant_id, state=wanted, actor=actor,
                actor_key=actor_key, comment=comment, now=self.clock.now(),
                resume=self._workflow_job(wf, key=f"approval:{found.id}"))
            if found.state == wanted:
                self._notify_workers(self.clock.now())
        if found.state != wanted:
            raise _approval_conflict(found, wanted)
        return found

    def _pending_approval_of(self, workflow_id: str, name: str | None,
                             wanted: str) -> ApprovalRequest:
        """The request a decision by workflow means (see decide_approval)."""
        wf = self.get_workflow(workflow_id)  # NotFound for another tenant's
        pending = self.store.list_approvals(tenant_id=self.tenant_id, states=["pending"],
                                            workflow_id=workflow_id, name=name, limit=2).items
        if len(pending) == 1:
            return pending[0]
        of = f" named {name!r}" if name else ""
        if pending:
            ids = ", ".join(a.id for a in pending)
            raise Conflict(f"workflow {workflow_id} has several pending approval requests{of} "
                           f"({ids}, ...): decide one by its id")
        if name is not None:
            latest = self.store.list_approvals(tenant_id=self.tenant_id,
                                               workflow_id=workflow_id, name=name,
                                               limit=1).items
            if latest and latest[0].state == wanted:
                return latest[0]
            if latest and not wf.is_final:
                raise _approval_conflict(latest[0], wanted)
        if wf.is_final:
            from hora.store.common import workflow_is_final

            raise workflow_is_final(wf.id, wf.state)
        raise Conflict(f"workflow {workflow_id} has no pending approval request{of}")

    def cancel_workflow(self, workflow_id: str, reason: str = "cancelled on request"
                        ) -> Workflow:
        """Cancel: waits are interrupted, registered compensations run, the workflow ends
        ``cancelled`` (with ``compensation`` completed or failed)."""
        from hora.app import check_text

        if len(reason) > 500:
            raise InvalidPayload("reason must be at most 500 characters")
        check_text(reason=reason)
        wf = self.get_workflow(workflow_id)
        stored = self.store.request_workflow_cancel(
            workflow_id, tenant_id=self.tenant_id, reason=reason, now=self.clock.now(),
            resume=self._workflow_job(wf, key=f"cancel:{new_id()}"))
        self._notify_workers(self.clock.now())
        return stored


def _failed(task: asyncio.Future[Any]) -> bool:
    """Whether a gathered call ended in an error (not in a wait, which ends the run later)."""
    if not task.done() or task.cancelled():
        return False
    error = task.exception()
    return error is not None and not isinstance(error, _Suspend)


def _waited(entry: HistoryEntry) -> dict[str, Any] | None:
    """What a finished wait handed its workflow: the journaled outcome, None on timeout."""
    out = entry.output or {}
    return None if out.get("timed_out") else dict(out)


def _earlier_attempt(holder: str | None, owner: str) -> bool:
    """Whether ``holder`` is an earlier attempt of the job that ``owner`` is an attempt of."""
    if holder is None:
        return False
    h_job, _, h_attempt = holder.rpartition(":")
    o_job, _, o_attempt = owner.rpartition(":")
    return (h_job == o_job and h_attempt.isdigit() and o_attempt.isdigit()
            and int(h_attempt) < int(o_attempt))


def _approvers(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise InvalidPayload("approvers must be a list of names, not one string")
    who = tuple(dict.fromkeys(names))
    if not 1 <= len(who) <= MAX_APPROVERS:
        raise InvalidPayload(f"approvers must name 1-{MAX_APPROVERS} actors (or be None)")
    for n in who:
        if not isinstance(n, str) or not 1 <= len(n) <= 200:
            raise InvalidPayload("each of approvers must be a name of 1-200 characters")
    return who


def _approval_conflict(found: ApprovalRequest, wanted: str) -> TransitionConflict:
    """The conflict of a decision its request refuses (it was decided otherwise, expired or
    was cancelled); the message names the request, like a workflow's conflicts."""
    err = TransitionConflict(found.id, "pending", found.state)
    by = f" by {found.decided_by}" if found.decided_by else ""
    err.args = (f"approval {found.id} is {found.state}, expected pending "
                f"(it was {found.state}{by}; it cannot be {wanted} now)",)
    return err


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidPayload("limit must be between 1 and 1000")


def workflow_jobs(app: Hora, workflow_id: str) -> list[Job]:
    """The jobs that ran (or will run) a workflow, for tests and tools."""
    wf = app.get_workflow(workflow_id)
    return [j for j in app.list_jobs(task=runner_task(wf.name), limit=1000).items
            if j.payload.get("workflow_id") == workflow_id]


__all__ = ["APPROVAL", "Approval", "ChildFailed", "NondeterminismError", "Record",
           "StepContext", "StepFailed", "WorkflowCancelled", "WorkflowContext", "WorkflowDef",
           "WorkflowMixin", "current_step", "workflow_jobs"]

