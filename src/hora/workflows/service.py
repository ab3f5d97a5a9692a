"""``app.workflows``: the SDK's workflow service -- define, start, signal, approve,
cancel, inspect -- and ``WorkflowDef``, a registered workflow function.

A workflow runs inside jobs of the internal task ``hora.workflow:<name>`` that ``workflow``
registers; each such job acquires the workflow and replays it (``hora.workflows.engine``).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from hora.clock import Clock
from hora.context import current_job
from hora.errors import (
    Conflict,
    InvalidPayload,
    NotAllowed,
    NotFound,
    Retry,
    StaleRecord,
    TransitionConflict,
    WaitTimeout,
    WorkflowFailed,
)
from hora.ids import new_id
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
from hora.observability import tracer
from hora.payloads import JobRequest, TaskDefaults, check_text, new_job
from hora.retry import RetryPolicy
from hora.states import WORKFLOW_FINAL_STATES, WorkflowState
from hora.waiting import (
    ResultWaiters,
    check_timeout,
    workflow_done,
    workflow_key,
)
from hora.workflows.context import _json
from hora.workflows.engine import RUN_LEASE, _Run

if TYPE_CHECKING:
    from hora.registry import RegistryService
    from hora.store import Store

#: Runs of workflow ``name`` are jobs of task ``hora.workflow:<name>``: only workers whose
#: app registers that workflow claim them (others leave them waiting, visible).
RUNNER_TASK = "hora.workflow"


def runner_task(name: str) -> str:
    return f"{RUNNER_TASK}:{name}"


#: A run that finds the workflow held by another run tries again after this.
BUSY_RETRY = 1.0
DEFAULT_STEP_RETRY = RetryPolicy(max_attempts=3, base=1.0, max_delay=300.0)


@dataclass
class WorkflowDef:
    """A registered workflow function. ``start`` is sugar for ``app.start_workflow``;
    ``app`` is the workflow service that registered it (``app.workflows``)."""

    app: WorkflowService
    fn: Callable[..., Awaitable[Any]]
    name: str
    step_retry: RetryPolicy

    def start(self, *, workflow_id: str | None = None, correlation_id: str | None = None,
              **args: Any) -> Workflow:
        return self.app.start_workflow(self.name, args, workflow_id=workflow_id,
                                       correlation_id=correlation_id)



class TaskRegistrar(Protocol):
    """Registers a handler under a name (``Hora.task``): how a workflow installs the tasks
    that run and start it."""

    def __call__(self, fn: Callable[..., Any], /, *, name: str,
                 retry: RetryPolicy | None = None) -> object: ...


class WorkflowService:
    """``app.workflows``: one tenant's workflows -- define, start, signal, approve, cancel,
    inspect -- and the run of one workflow job (``run_workflow``).

    Built by ``Hora`` with the store (a getter: the app opens it on first use), the clock,
    the tenant, the registered tasks (their defaults), ``register_task`` (a workflow is run
    by tasks it registers), ``notify`` (wake this process's workers) and the registry of
    definitions, shared by every tenant's view of the app.
    """

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str,
                 tasks: Mapping[str, TaskDefaults], register_task: TaskRegistrar,
                 notify: Callable[[datetime], None],
                 definitions: dict[str, WorkflowDef],
                 results: ResultWaiters | None = None) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id
        self.tasks = tasks
        self._register_task = register_task
        self.notify_workers = notify
        #: The registered workflow functions, by name (every tenant's view shares it).
        self.definitions = definitions
        #: This process's waiters for results (``hora.waiting``), shared with the app.
        self.results = results if results is not None else ResultWaiters(store)
        #: Checks a start's name and args (``hora.registry``); ``Hora`` sets it.
        self.registry: RegistryService | None = None

    @property
    def store(self) -> Store:
        return self._store()

    def for_tenant(self, tenant_id: str) -> WorkflowService:
        """The same service acting for another tenant (what a workflow job runs as)."""
        view = copy.copy(self)
        view.tenant_id = tenant_id
        return view

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
            if wf_name in self.definitions:
                raise ValueError(f"a workflow named {wf_name!r} is already registered")
            definition = WorkflowDef(self, f, wf_name, step_retry or DEFAULT_STEP_RETRY)
            self.definitions[wf_name] = definition
            self._install_runner(definition)
            self._install_starter(definition)
            return definition

        return register(fn) if fn is not None else register

    def _install_runner(self, definition: WorkflowDef) -> None:
        service = self

        async def run(workflow_id: str) -> dict[str, Any]:
            job = current_job()
            view = service.for_tenant(job.tenant_id)
            # The attempt is part of the owner: a run frozen past its lease (a paused VM)
            # must not write over the journal its job's next attempt has moved on with.
            ran = await view.run_workflow(workflow_id,
                                          owner=f"job:{job.job_id}:{job.attempt}")
            if ran.get("state") in WORKFLOW_FINAL_STATES:
                service.results.announce(workflow_key(workflow_id))
            return ran

        self._register_task(run, name=runner_task(definition.name),
                            retry=RetryPolicy(max_attempts=100, base=1.0, max_delay=60.0))

    def _install_starter(self, definition: WorkflowDef) -> None:
        """A task ``workflow:<name>`` that starts the workflow, so schedules can target it.
        Each job starts one workflow, its id derived from the job's (a retried job never
        starts two)."""
        service = self

        def start(**args: Any) -> dict[str, Any]:
            job = current_job()
            view = service.for_tenant(job.tenant_id)
            wf = view.start_workflow(definition.name, args, workflow_id=f"job-{job.job_id}",
                                     correlation_id=job.correlation_id)
            return {"workflow_id": wf.id}

        self._register_task(start, name=f"workflow:{definition.name}")

    # -- starting -------------------------------------------------------------------------------

    def workflow_job(self, wf: Workflow, *, key: str, at: datetime | None = None) -> NewJob:
        """The job that runs ``wf`` next (now, or ``at``), unique per ``key``: what starting,
        a signal, a decision, a cancel, a timer and a child's end each enqueue."""
        task = runner_task(wf.name)
        return new_job(JobRequest(
            task=task, payload={"workflow_id": wf.id}, at=at,
            idempotency_key=f"wf:{wf.id}:{key}"[:255], correlation_id=wf.correlation_id),
            self.clock.now(), tenant_id=self.tenant_id, task=self.tasks.get(task))

    def start_workflow(self, workflow: str | WorkflowDef, args: Mapping[str, Any] | None = None,
                       *, workflow_id: str | None = None, correlation_id: str | None = None,
                       parent_id: str | None = None,
                       allow_unregistered: bool = False) -> Workflow:
        """Start a workflow; with ``workflow_id`` starting is idempotent (the same id, name
        and args return the workflow already there, whatever its state; the same id with
        another name or other args raises ``Conflict``). The correlation id (default: the
        workflow id) goes on every job, child and signal it creates.

        A name neither defined here nor registered by a worker raises ``UnknownTask`` (with
        suggestions) unless ``allow_unregistered``; args that do not match the workflow's
        signature raise ``InvalidPayload`` (``hora.registry``)."""
        name = workflow if isinstance(workflow, str) else workflow.name
        args = dict(args or {})
        _json(args, "args")
        if self.registry is not None and isinstance(name, str) and name:
            self.registry.for_tenant(self.tenant_id).resolve_workflow(
                name, args, allow_unregistered=allow_unregistered)
        if workflow_id is not None and not (1 <= len(workflow_id) <= 200):
            raise InvalidPayload("workflow_id must be 1-200 characters")
        check_text(workflow_id=workflow_id, name=name, correlation_id=correlation_id)
        now = self.clock.now()
        wf_id = workflow_id or new_id()
        wf = Workflow(
            tenant_id=self.tenant_id, id=wf_id, name=name, args=args, state=WorkflowState.RUNNING,
            result=None, error=None, correlation_id=correlation_id or wf_id,
            parent_id=parent_id, wait_kind=None, wait_name=None, wait_until=None,
            cancel_requested=False, cancel_reason=None, compensation=None, run_owner=None,
            run_until=None, created_at=now, updated_at=now, finished_at=None)
        stored, created = self.store.start_workflow(wf, self.workflow_job(wf, key="start"))
        if created:
            self.notify_workers(now)
        elif stored.name != name or stored.args != args:
            raise Conflict(f"workflow {wf_id} exists already as {stored.name} with other "
                           "arguments; a workflow id names one workflow: use a new id")
        return stored

    async def run_workflow(self, workflow_id: str, *, owner: str) -> dict[str, Any]:
        """One run of a workflow job: acquire the workflow (or take it over from an earlier
        attempt of the same job), replay its journal, carry on until it ends or waits."""
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
        definition = self.definitions.get(wf.name)
        if definition is None:
            raise NotFound(f"no workflow named {wf.name!r} is registered in this process")
        history = await asyncio.to_thread(self.store.load_history, workflow_id,
                                          tenant_id=self.tenant_id)
        run = _Run(self, wf, definition, owner, {e.seq: e for e in history})
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

    # -- waiting for the end ------------------------------------------------------------------

    def wait(self, workflow_id: str, timeout: float | timedelta | None = None) -> Workflow:
        """Block until the workflow ends (completed, failed or cancelled) and return it;
        ``WaitTimeout`` when ``timeout`` seconds (real, monotonic time) pass first, None
        waits without bound. Woken as ``Hora.wait_for_job`` is (``hora.waiting``)."""
        seconds = check_timeout(timeout)
        wf, done = self.poll(workflow_id, seconds)
        if not done:
            raise WaitTimeout("workflow", workflow_id, str(wf.state), seconds or 0.0)
        return wf

    def result(self, workflow_id: str, timeout: float | timedelta | None = None) -> Any:
        """Temporal's ``handle.result()``: wait for the end and return the workflow's
        result; ``WorkflowFailed`` if it failed or was cancelled, ``WaitTimeout`` if it
        had not ended within ``timeout`` seconds."""
        return _result_of(self.wait(workflow_id, timeout))

    def poll(self, workflow_id: str, wait: float | timedelta | None = 0.0,
             ) -> tuple[Workflow, bool]:
        """The workflow once it ends or after ``wait`` seconds, and whether it has ended
        (what ``GET /v1/workflows/{id}?wait=`` answers)."""
        return self.results.wait(workflow_key(workflow_id),
                                 lambda: self.get_workflow(workflow_id), workflow_done,
                                 check_timeout(wait))

    async def await_poll(self, workflow_id: str, wait: float | timedelta | None = 0.0,
                         ) -> tuple[Workflow, bool]:
        """``poll`` for async callers: sleeps on an event, holding no thread."""
        return await self.results.await_(
            workflow_key(workflow_id),
            lambda: asyncio.to_thread(self.get_workflow, workflow_id), workflow_done,
            check_timeout(wait))

    async def await_workflow(self, workflow_id: str,
                             timeout: float | timedelta | None = None) -> Workflow:  # noqa: ASYNC109 (the sync method's signature)
        seconds = check_timeout(timeout)
        wf, done = await self.await_poll(workflow_id, seconds)
        if not done:
            raise WaitTimeout("workflow", workflow_id, str(wf.state), seconds or 0.0)
        return wf

    async def await_result(self, workflow_id: str,
                           timeout: float | timedelta | None = None) -> Any:  # noqa: ASYNC109 (the sync method's signature)
        return _result_of(await self.await_workflow(workflow_id, timeout))

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
        check_text(name=name, actor=actor, comment=comment)
        wf = self.get_workflow(workflow_id)
        signal = Signal(id=new_id(), tenant_id=self.tenant_id, workflow_id=workflow_id,
                        name=name, payload=_json(payload, "signal payload"), actor=actor,
                        comment=comment, sent_at=self.clock.now())
        stored = self.store.send_signal(signal, self.workflow_job(wf, key=f"signal:{signal.id}"))
        self.notify_workers(self.clock.now())
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
                resume=self.workflow_job(wf, key=f"approval:{found.id}"))
            if found.state == wanted:
                self.notify_workers(self.clock.now())
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
        if len(reason) > 500:
            raise InvalidPayload("reason must be at most 500 characters")
        check_text(reason=reason)
        wf = self.get_workflow(workflow_id)
        stored = self.store.request_workflow_cancel(
            workflow_id, tenant_id=self.tenant_id, reason=reason, now=self.clock.now(),
            resume=self.workflow_job(wf, key=f"cancel:{new_id()}"))
        self.notify_workers(self.clock.now())
        return stored

    def terminate_workflow(self, workflow_id: str, reason: str = "terminated on request"
                           ) -> Workflow:
        """End a workflow now, whoever runs it and whether or not any worker knows its
        name: it ends ``cancelled`` with error ``Terminated`` (no compensation runs), its
        pending approval requests and waiting runs (timers, wake-ups) are cancelled, and a
        parent waiting on it is resumed. TransitionConflict when it has ended already."""
        if len(reason) > 500:
            raise InvalidPayload("reason must be at most 500 characters")
        check_text(reason=reason)
        wf = self.get_workflow(workflow_id)
        now = self.clock.now()
        jobs: list[NewJob] = []
        if wf.parent_id is not None:
            try:
                parent = self.get_workflow(wf.parent_id)
            except NotFound:
                parent = None
            if parent is not None and not parent.is_final:
                jobs.append(self.workflow_job(parent, key=f"child:{wf.id}"))
        stored = self.store.terminate_workflow(
            workflow_id, tenant_id=self.tenant_id, reason=f"terminated: {reason}",
            error=ErrorInfo(type="Terminated", message=reason),
            now=now, jobs=jobs)
        if jobs:
            self.notify_workers(now)
        return stored



def _result_of(wf: Workflow) -> Any:
    if wf.state == WorkflowState.COMPLETED:
        return wf.result
    err = wf.error
    raise WorkflowFailed(wf.id, str(wf.state), None if err is None else err.type,
                         None if err is None else err.message)


def _earlier_attempt(holder: str | None, owner: str) -> bool:
    """Whether ``holder`` is an earlier attempt of the job that ``owner`` is an attempt of."""
    if holder is None:
        return False
    h_job, _, h_attempt = holder.rpartition(":")
    o_job, _, o_attempt = owner.rpartition(":")
    return (h_job == o_job and h_attempt.isdigit() and o_attempt.isdigit()
            and int(h_attempt) < int(o_attempt))



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


class _JobsAndWorkflows(Protocol):
    def get_workflow(self, workflow_id: str) -> Workflow: ...
    def list_jobs(self, *, task: str | None = None, limit: int = 50) -> Page[Job]: ...


def workflow_jobs(app: _JobsAndWorkflows, workflow_id: str) -> list[Job]:
    """The jobs that ran (or will run) a workflow, for tests and tools."""
    wf = app.get_workflow(workflow_id)
    return [j for j in app.list_jobs(task=runner_task(wf.name), limit=1000).items
            if j.payload.get("workflow_id") == workflow_id]
