"""The run/replay engine: one execution of a workflow function against its journal.

``_Run`` answers each ``WorkflowContext`` call from the journal (a replay) or does the work
and journals it; a wait ends the run with ``_Suspend`` and leaves a job scheduled for its
deadline (or a signal, a decision, a child's end enqueues one). The service
(``hora.workflows.service``) acquires the workflow and hands a run its definition.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hora.clock import Clock
from hora.errors import (
    ChildFailed,
    NondeterminismError,
    Retry,
    StepFailed,
    WorkflowCancelled,
)
from hora.ids import new_id
from hora.limits import (
    MAX_DELAY,
    MAX_RESULT_BYTES,
    TooLarge,
)
from hora.models import (
    ApprovalRequest,
    ErrorInfo,
    HistoryEntry,
    NewJob,
    Workflow,
)
from hora.observability import WORKFLOW_RUNS, WORKFLOW_STEPS, tracer
from hora.retry import RetryPolicy
from hora.states import WorkflowState
from hora.workflows.context import (
    StepContext,
    WorkflowContext,
    _error_info,
    _json,
    _step,
    _wrap,
)

if TYPE_CHECKING:
    from hora.store import Store
    from hora.workflows.service import WorkflowDef, WorkflowService

#: How long a run holds a workflow; a crashed run's job comes back under the same owner.
RUN_LEASE = timedelta(minutes=10)


class _Suspend(BaseException):
    """Ends a run: the workflow waits (``kind``: sleep, signal, child) until ``until``."""

    def __init__(self, kind: str, name: str | None, until: datetime | None,
                 seq: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.name = name
        self.until = until
        self.seq = seq



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

    service: WorkflowService
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
        return self.service.clock

    @property
    def store(self) -> Store:
        return self.service.store

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
            await asyncio.to_thread(self.service.start_workflow, name, args, workflow_id=child_id,
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
            return await self._end(WorkflowState.FAILED, error=_error_info(e))
        except WorkflowCancelled as c:
            return await self._fail_and_compensate(c)
        except Exception as e:
            return await self._fail_and_compensate(e)
        return await self._end(WorkflowState.COMPLETED, result=output)

    async def _fail_and_compensate(self, err: BaseException) -> dict[str, Any]:
        """Run the registered compensations in reverse, each a journaled step."""
        cancelled = isinstance(err, WorkflowCancelled)
        if isinstance(err, WorkflowCancelled):
            info = ErrorInfo("hora.WorkflowCancelled", err.reason, None)
        else:
            info = _error_info(err)
        if self.wf.state != "compensating" and self.rollbacks:
            # Say so durably before the first compensation runs.
            self.wf = replace(self.wf, state=WorkflowState.COMPENSATING, compensation="running",
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
                    return await self._suspend(s, state=WorkflowState.COMPENSATING)
        state = WorkflowState.CANCELLED if cancelled else WorkflowState.FAILED
        return await self._end(state, error=info, compensation=compensation)

    async def _suspend(self, s: _Suspend, state: WorkflowState | None = None) -> dict[str, Any]:
        wake: list[NewJob] = []
        if s.until is not None:
            wake.append(self.service.workflow_job(self.wf, at=s.until,
                                               key=f"wake:{s.seq}:{s.until.isoformat()}"))
        new_state = state or (WorkflowState.SLEEPING if s.kind == "sleep"
                              else WorkflowState.WAITING)
        wf = replace(self.wf, state=new_state, wait_kind=s.kind, wait_name=s.name,
                     wait_until=s.until, updated_at=self.clock.now())
        await self._finish(wf, wake)
        return {"workflow_id": wf.id, "state": new_state, "waits_for": s.kind,
                "until": None if s.until is None else s.until.isoformat()}

    async def _end(self, state: WorkflowState, *, result: Any = None,
                   error: ErrorInfo | None = None,
                   compensation: str | None = None) -> dict[str, Any]:
        now = self.clock.now()
        wf = replace(self.wf, state=state, result=result, error=error,
                     compensation=compensation, wait_kind=None, wait_name=None,
                     wait_until=None, finished_at=now, updated_at=now)
        jobs: list[NewJob] = []
        if wf.parent_id is not None:
            parent = await asyncio.to_thread(self.store.get_workflow, wf.parent_id,
                                             tenant_id=wf.tenant_id)
            jobs.append(self.service.workflow_job(parent, key=f"child:{wf.id}"))
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
            self.service.notify_workers(min(j.due_at for j in jobs))



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

