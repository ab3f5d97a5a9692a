"""``app.schedules``: the SDK's schedule service -- create, read, edit, pause, resume,
delete, trigger now, preview, the tick ledger, and the scheduler's pass (``process_due``).

A schedule's trigger spec is the only truth about when it fires: every edit recomputes
``next_fire_at`` from the new spec, starting now, so a changed expression (or a new time-zone
database) takes effect without rewriting stored occurrences.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from hora.errors import Conflict, InvalidPayload, InvalidTrigger, NotFound, StaleRecord
from hora.flow import FlowSpec
from hora.ids import new_id
from hora.limits import (
    MAX_ATTEMPTS,
    MAX_CATCHUP,
    MAX_MISFIRE_GRACE,
    MAX_PRIORITY,
    MAX_TIMEOUT,
    check_instant,
    check_int,
    check_seconds,
)
from hora.models import DEFAULT_QUEUE, NewJob, Page, Schedule, Tick
from hora.observability import SCHEDULE_JOBS
from hora.payloads import JobRequest, TaskDefaults, check_text, fingerprint, payload_json
from hora.retry import DEFAULT_RETRY, RetryPolicy
from hora.scheduler import (
    MISFIRE_POLICIES,
    OVERLAP_POLICIES,
    SchedulePlan,
    fire_due_schedules,
    job_for,
    plan_schedule,
)
from hora.states import MisfirePolicy, OverlapPolicy, ScheduleState
from hora.store.common import instant_cursor
from hora.triggers import Occurrence, Trigger

if TYPE_CHECKING:
    from hora.clock import Clock
    from hora.models import Job
    from hora.store import SchedulePass, Store

log = logging.getLogger("hora.scheduler")

#: Occurrences a resume records as skipped ("paused") at most; older ones are summarised.
MAX_PAUSED_TICKS = 1000
#: How often an edit is redone when a scheduler pass wrote the schedule in between.
STALE_RETRIES = 5


def _spec(trigger: Mapping[str, Any] | str, now: datetime | None = None) -> dict[str, Any]:
    """A trigger spec from a dict, or from a bare cron expression / iCalendar text; with
    ``now``, completed as it is stored (an ``every`` without ``start`` counts from now: see
    :func:`hora.triggers.spec.with_defaults`, the one default of every surface)."""
    if isinstance(trigger, str):
        text = trigger.strip()
        return {"rrule": text} if ("RRULE" in text.upper() or "DTSTART" in text.upper()) else {
            "cron": text}
    if not isinstance(trigger, Mapping):
        raise InvalidTrigger("must be a spec object or a cron/iCalendar string", field="trigger")
    if now is None:
        return dict(trigger)
    from hora.triggers.spec import with_defaults

    return with_defaults(trigger, now)


def _open_start(trigger: Mapping[str, Any] | str) -> bool:
    """An ``every`` trigger given without its start (so it counts from its creation)."""
    return isinstance(trigger, Mapping) and "every" in trigger and trigger.get("start") is None


_NUMERIC_OPTIONS = ("priority", "max_attempts", "timeout", "misfire_grace", "catchup_limit")


def _check_options(*, priority: object = None, max_attempts: object = None,
                   timeout: object = None, misfire_grace: object = None,
                   catchup_limit: object = None) -> None:
    """The numeric options of a schedule within their documented ranges (None: not given)."""
    if priority is not None:
        check_int(priority, "priority", least=-MAX_PRIORITY, most=MAX_PRIORITY)
    if max_attempts is not None:
        check_int(max_attempts, "max_attempts", least=1, most=MAX_ATTEMPTS)
    if timeout is not None:
        check_seconds(timeout, "timeout", most=MAX_TIMEOUT, zero=False)
    if misfire_grace is not None:
        check_seconds(misfire_grace, "misfire_grace", most=MAX_MISFIRE_GRACE)
    if catchup_limit is not None:
        check_int(catchup_limit, "catchup_limit", least=1, most=MAX_CATCHUP)


def _after(after: datetime | None) -> datetime | None:
    return None if after is None else check_instant(after, "after")


def _first_after(trigger: Trigger, after: datetime) -> datetime | None:
    """When the scheduler must next look at this trigger (a fire or a skip to record)."""
    for occ in trigger.occurrences(after):
        return occ.nominal if occ.skipped else min(occ.at, occ.nominal)
    return None


#: The fields of a schedule that ``ensure`` compares: its spec and options, not its state,
#: cursor or bookkeeping (a pause by hand survives a restart of the code that declares it).
SPEC_FIELDS = ("task", "payload", "trigger", "queue", "priority", "max_attempts",
               "retry_policy", "timeout", "correlation_id", "misfire_policy", "misfire_grace",
               "catchup_limit", "overlap_policy")

EnsureOutcome = Literal["created", "updated", "unchanged"]


class Ensured(NamedTuple):
    """What ``ensure`` did: the schedule as stored now, and ``created``, ``updated`` or
    ``unchanged``. A tuple, so ``schedule, outcome = app.schedules.ensure(...)`` works."""

    schedule: Schedule
    outcome: EnsureOutcome


def _spec_of(schedule: Schedule) -> str:
    """A schedule's spec and options as canonical JSON: equal iff ``ensure`` has nothing to do
    (JSON, so a tuple and a list, or 30 and 30.0, are the same value as stored)."""
    return json.dumps({k: getattr(schedule, k) for k in SPEC_FIELDS}, sort_keys=True,
                      separators=(",", ":"), default=str)


@dataclass(frozen=True)
class DeclaredSchedule:
    """A schedule declared in code (``@app.schedule``): applied with ``ensure`` at start-up."""

    name: str
    task: str
    trigger: Mapping[str, Any] | str
    payload: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeclaredReport:
    """What ``apply_declared`` did, by schedule name. ``removed``: schedules marked as declared
    in code that the code no longer declares; ``paused``: those of them it paused (with
    ``prune="pause"``; already-paused ones are not listed again)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{k} {', '.join(v)}" for k, v in (
            ("created", self.created), ("updated", self.updated),
            ("unchanged", self.unchanged), ("removed from code", self.removed),
            ("paused", self.paused)) if v]
        return "declared schedules: " + ("; ".join(parts) or "none")


class ScheduleService:
    """``app.schedules``: one tenant's schedules; see the module docstring.

    Built by ``Hora`` with what it needs and nothing more: the store (a getter: the app
    opens it on first use), the clock, the tenant, the registered tasks (their defaults),
    ``enqueue`` (a hand-triggered run is an ordinary enqueue) and ``notify`` (wake this
    process's workers when a pass fired jobs).
    """

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str,
                 tasks: Mapping[str, TaskDefaults],
                 enqueue: Callable[[Sequence[JobRequest]], list[Job]],
                 notify: Callable[[datetime], None],
                 declared: list[DeclaredSchedule] | None = None) -> None:
        self._store = store
        #: ``@app.schedule`` declarations, shared by every tenant view of the app.
        self.declared = declared if declared is not None else []
        self.clock = clock
        self.tenant_id = tenant_id
        self.tasks = tasks
        self._enqueue = enqueue
        self._notify = notify
        #: Checks a schedule's task name and payload and gives its defaults
        #: (``RegistryService.resolve_task``); ``Hora`` sets it.
        self.resolve_task: Callable[..., TaskDefaults | None] | None = None

    @property
    def store(self) -> Store:
        return self._store()

    def trigger_of(self, spec: Mapping[str, Any], schedule_id: str) -> Trigger:
        """The trigger a stored spec means for schedule ``schedule_id`` (its jitter is keyed
        by the id, so every process draws the same offsets)."""
        from hora.triggers.spec import trigger_from_spec  # holidays, dateutil: when used

        return trigger_from_spec(spec, jitter_key=schedule_id)

    def create_schedule(self, task: str | Any, payload: dict[str, Any] | None = None, *,
                        trigger: Mapping[str, Any] | str, name: str | None = None,
                        queue: str | None = None, priority: int | None = None,
                        retry: RetryPolicy | None = None, max_attempts: int | None = None,
                        timeout: float | None = None, correlation_id: str | None = None,
                        misfire: str = "skip", misfire_grace: float = 60.0,
                        catchup_limit: int = 10, overlap: str = "allow",
                        paused: bool = False, allow_unregistered: bool = False) -> Schedule:
        """Store a schedule; each occurrence of ``trigger`` becomes a job of ``task``.
        A task name no worker registered raises ``UnknownTask`` unless
        ``allow_unregistered``; a payload that does not fit its signature, InvalidPayload.

        ``misfire``: what to do with occurrences later than ``misfire_grace`` seconds (after
        downtime): ``skip`` them, ``run_once`` (coalesce into one run) or ``run_all`` (at most
        ``catchup_limit``). ``overlap``: when the previous run is unfinished, ``allow`` another,
        ``skip``, ``queue`` (at most one waiting) or ``cancel_previous``.
        """
        return self.store.insert_schedule(self._build_schedule(
            task, payload, trigger=trigger, name=name, queue=queue, priority=priority,
            retry=retry, max_attempts=max_attempts, timeout=timeout,
            correlation_id=correlation_id, misfire=misfire, misfire_grace=misfire_grace,
            catchup_limit=catchup_limit, overlap=overlap, paused=paused,
            allow_unregistered=allow_unregistered))

    def _build_schedule(self, task: str | Any, payload: dict[str, Any] | None, *,
                        trigger: Mapping[str, Any] | str, name: str | None,
                        queue: str | None, priority: int | None, retry: RetryPolicy | None,
                        max_attempts: int | None, timeout: float | None,
                        correlation_id: str | None, misfire: str, misfire_grace: float,
                        catchup_limit: int, overlap: str, paused: bool,
                        allow_unregistered: bool = False) -> Schedule:
        """The schedule ``create_schedule`` would store, validated but not written (``ensure``
        compares it with the stored one)."""
        task_name = task if isinstance(task, str) else task.name
        check_text(task=task_name, name=name, queue=queue, correlation_id=correlation_id)
        known = self.tasks.get(task_name)
        if self.resolve_task is not None and isinstance(task_name, str) and task_name:
            if not isinstance(payload or {}, dict):
                raise InvalidPayload("must be a JSON object (a dict)", field="payload")
            known = self.resolve_task(task_name, payload or {},
                                      allow_unregistered=allow_unregistered)
        now = self.clock.now()
        spec = _spec(trigger, now)
        schedule_id = new_id()
        trig = self.trigger_of(spec, schedule_id)
        if misfire not in MISFIRE_POLICIES:
            raise InvalidPayload(f"{misfire!r} is not one of {', '.join(MISFIRE_POLICIES)}",
                                 field="misfire")
        if overlap not in OVERLAP_POLICIES:
            raise InvalidPayload(f"{overlap!r} is not one of {', '.join(OVERLAP_POLICIES)}",
                                 field="overlap")
        _check_options(priority=priority, max_attempts=max_attempts, timeout=timeout,
                       misfire_grace=misfire_grace, catchup_limit=catchup_limit)
        next_fire = _first_after(trig, now)
        if next_fire is None:
            raise InvalidTrigger("never fires after now; nothing to schedule", field="trigger")
        payload = payload or {}
        payload_json(task_name, payload)  # refuse what is not JSON, naming the field
        flow = known.flow if known is not None else None
        if flow is not None:
            flow.gates(payload)  # a rate or concurrency key the payload lacks: refused now
        policy = retry or (known.retry_policy if known else DEFAULT_RETRY)
        schedule = Schedule(
            id=schedule_id, tenant_id=self.tenant_id, name=name, task=task_name,
            payload=payload, trigger=spec,
            queue=queue or (known.queue if known else DEFAULT_QUEUE),
            priority=priority if priority is not None else (known.priority if known else 0),
            max_attempts=max_attempts or policy.max_attempts,
            retry_policy=None if retry is None else retry.to_dict(),
            timeout=timeout if timeout is not None else (known.timeout if known else None),
            correlation_id=correlation_id, misfire_policy=MisfirePolicy(misfire),
            misfire_grace=float(misfire_grace), catchup_limit=catchup_limit,
            overlap_policy=OverlapPolicy(overlap),
            state=ScheduleState.PAUSED if paused else ScheduleState.ACTIVE,
            next_fire_at=next_fire, cursor=now, created_at=now, updated_at=now)
        return schedule

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self.store.get_schedule(schedule_id, tenant_id=self.tenant_id)

    def list_schedules(self, *, state: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page[Schedule]:
        if state not in (None, "active", "paused"):
            raise InvalidPayload("state must be active or paused")
        check_int(limit, "limit", least=1, most=1000)
        return self.store.list_schedules(tenant_id=self.tenant_id, state=state, limit=limit,
                                         cursor=cursor)

    def _rewrite(self, schedule_id: str,
                 change: Callable[[Schedule], tuple[Schedule, list[Occurrence]]]) -> Schedule:
        """Read, change, write with a version check; on a concurrent write (a scheduler pass
        advanced the schedule meanwhile) read again and redo the change."""
        for _ in range(STALE_RETRIES):
            old = self.get_schedule(schedule_id)
            new, skipped = change(old)
            if new is old:
                return old
            try:
                return self.store.update_schedule(new, skipped=[
                    (o.nominal, o.at, o.skipped or "paused") for o in skipped])
            except StaleRecord:
                continue
        raise StaleRecord(f"schedule {schedule_id} kept changing; try again")

    def update_schedule(self, /, schedule_id: str, **changes: Any) -> Schedule:
        """Change a schedule; its future is recomputed from the (new) trigger, from now on."""
        allowed = {"trigger", "payload", "name", "queue", "priority", "max_attempts",
                   "timeout", "correlation_id", "misfire", "misfire_grace", "catchup_limit",
                   "overlap"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidPayload(f"cannot change {', '.join(sorted(unknown))} of a schedule")
        check_text(**{k: changes[k] for k in ("name", "queue", "correlation_id")
                      if isinstance(changes.get(k), str)})
        if "payload" in changes:
            payload_json("schedule", changes["payload"])
            if self.resolve_task is not None and isinstance(changes["payload"], dict):
                # A new payload must fit the task's registered parameters, as at creation.
                task = self.get_schedule(schedule_id).task
                self.resolve_task(task, changes["payload"], allow_unregistered=True)
        _check_options(**{k: changes[k] for k in _NUMERIC_OPTIONS if k in changes})
        fields: dict[str, Any] = {}
        if "trigger" in changes:
            fields["trigger"] = _spec(changes.pop("trigger"), self.clock.now())
        if "misfire" in changes:
            m = changes.pop("misfire")
            if m not in MISFIRE_POLICIES:
                raise InvalidPayload(f"{m!r} is not one of {', '.join(MISFIRE_POLICIES)}",
                                     field="misfire")
            fields["misfire_policy"] = m
        if "overlap" in changes:
            o = changes.pop("overlap")
            if o not in OVERLAP_POLICIES:
                raise InvalidPayload(f"{o!r} is not one of {', '.join(OVERLAP_POLICIES)}",
                                     field="overlap")
            fields["overlap_policy"] = o
        fields.update(changes)

        def change(old: Schedule) -> tuple[Schedule, list[Occurrence]]:
            now = self.clock.now()
            new = replace(old, **fields, updated_at=now, error=None)
            trig = self.trigger_of(new.trigger, new.id)
            cursor = max(now, old.cursor)
            return replace(new, cursor=cursor, next_fire_at=_first_after(trig, cursor)), []

        return self._rewrite(schedule_id, change)

    def pause_schedule(self, schedule_id: str) -> Schedule:
        def change(old: Schedule) -> tuple[Schedule, list[Occurrence]]:
            if old.state == "paused":
                return old, []
            return replace(old, state=ScheduleState.PAUSED, updated_at=self.clock.now()), []

        return self._rewrite(schedule_id, change)

    def resume_schedule(self, schedule_id: str) -> Schedule:
        """Resume from now: occurrences that fell in the pause are recorded as skipped.

        A schedule the scheduler marked as unevaluable (``error``) is re-evaluated from now,
        and the mark is cleared when that succeeds (InvalidTrigger when it still fails).
        """

        def change(old: Schedule) -> tuple[Schedule, list[Occurrence]]:
            if old.state == "active" and old.error is None:
                return old, []
            now = self.clock.now()
            trig = self.trigger_of(old.trigger, old.id)
            paused: list[Occurrence] = []
            if old.state == "paused" and old.error is None:
                for occ in trig.occurrences(old.cursor):
                    if occ.nominal > now or len(paused) >= MAX_PAUSED_TICKS:
                        break
                    paused.append(occ)
            return replace(old, state=ScheduleState.ACTIVE, cursor=max(now, old.cursor),
                           updated_at=now, error=None,
                           next_fire_at=_first_after(trig, now)), paused

        return self._rewrite(schedule_id, change)

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule and its ledger; jobs it already fired are left alone."""
        self.store.delete_schedule(schedule_id, tenant_id=self.tenant_id)

    def trigger_schedule(self, schedule_id: str) -> Job:
        """Run a schedule's job now, outside its trigger (not a nominal occurrence)."""
        s = self.get_schedule(schedule_id)
        retry = None if s.retry_policy is None else RetryPolicy.from_dict(s.retry_policy)
        return self._enqueue([JobRequest(
            task=s.task, payload=s.payload, queue=s.queue, priority=s.priority,
            max_attempts=s.max_attempts, correlation_id=s.correlation_id, timeout=s.timeout,
            retry=retry, schedule_id=s.id, allow_unregistered=True)])[0]

    def schedule_ticks(self, schedule_id: str, *, outcome: str | None = None,
                       limit: int = 100, cursor: str | None = None) -> Page[Tick]:
        """The tick ledger, newest first: every nominal occurrence, fired or skipped (why)."""
        check_int(limit, "limit", least=1, most=1000)
        return self.store.list_ticks(schedule_id, tenant_id=self.tenant_id, outcome=outcome,
                                     limit=limit, cursor=instant_cursor(cursor))

    def preview_schedule(self, schedule_id: str, count: int = 10,
                         after: datetime | None = None) -> list[Occurrence]:
        s = self.get_schedule(schedule_id)
        from hora.triggers.spec import preview as preview_occurrences

        return preview_occurrences(self.trigger_of(s.trigger, s.id),
                                   _after(after) or self.clock.now(), count)

    def preview(self, trigger: Mapping[str, Any] | str, *, after: datetime | None = None,
                count: int = 10) -> list[Occurrence]:
        """The next ``count`` occurrences of an unsaved trigger, skipped ones marked why."""
        from hora.triggers.spec import preview as preview_occurrences
        from hora.triggers.spec import trigger_from_spec

        return preview_occurrences(trigger_from_spec(_spec(trigger, self.clock.now())),
                                   _after(after) or self.clock.now(), count)

    # -- schedules declared in code ----------------------------------------------------------

    def ensure(self, task: str | Any, payload: dict[str, Any] | None = None, *,
               trigger: Mapping[str, Any] | str, name: str, queue: str | None = None,
               priority: int | None = None, retry: RetryPolicy | None = None,
               max_attempts: int | None = None, timeout: float | None = None,
               correlation_id: str | None = None, misfire: str = "skip",
               misfire_grace: float = 60.0, catchup_limit: int = 10, overlap: str = "allow",
               paused: bool = False, allow_unregistered: bool = False) -> Ensured:
        """Upsert the schedule named ``name``: what start-up code calls, any number of times.

        Absent: created (``paused`` chooses its first state). Present with the same spec and
        options (``SPEC_FIELDS``): ``unchanged``, nothing written. Present but different:
        ``updated`` through the versioned edit, its future recomputed from now as an edit
        does; its state (paused or active) is left as it is. Several processes ensuring the
        same name at once end with one schedule: the store's unique (tenant, name) refuses
        the second insert and the loser reads the winner's row again.
        """
        if not isinstance(name, str) or not name:
            raise InvalidPayload("ensure needs the schedule's name", field="name")
        options: dict[str, Any] = dict(
            trigger=trigger, name=name, queue=queue, priority=priority, retry=retry,
            max_attempts=max_attempts, timeout=timeout, correlation_id=correlation_id,
            misfire=misfire, misfire_grace=misfire_grace, catchup_limit=catchup_limit,
            overlap=overlap, paused=paused)
        wanted = self._build_schedule(task, payload, allow_unregistered=allow_unregistered,
                                      **options)  # validates before any read
        for _ in range(STALE_RETRIES):
            try:
                old = self.store.get_schedule_by_name(name, tenant_id=self.tenant_id)
            except NotFound:
                try:
                    return Ensured(self.store.insert_schedule(wanted), "created")
                except Conflict:
                    continue  # another process created it meanwhile: compare with theirs
            try:
                return self._converge(old.id, wanted, keep_start=_open_start(trigger))
            except (NotFound, StaleRecord):
                continue  # deleted or rewritten meanwhile: look again
        raise StaleRecord(f"schedule {name!r} kept changing; try again")

    def _converge(self, schedule_id: str, wanted: Schedule, *,
                  keep_start: bool = False) -> Ensured:
        """Make schedule ``schedule_id``'s spec ``wanted``'s, unless it already is.

        ``keep_start``: the caller's ``every`` trigger gave no start, so the stored one's
        start (filled in at its creation) is kept: ensuring it again changes nothing."""
        wrote = False

        def change(old: Schedule) -> tuple[Schedule, list[Occurrence]]:
            nonlocal wanted, wrote
            if keep_start and "every" in old.trigger and old.trigger.get("start") is not None:
                wanted = replace(wanted, trigger={**wanted.trigger,
                                                  "start": old.trigger["start"]})
            if _spec_of(old) == _spec_of(wanted):
                wrote = False
                return old, []
            now = self.clock.now()
            new = replace(old, **{k: getattr(wanted, k) for k in SPEC_FIELDS},
                          updated_at=now, error=None)
            cursor = max(now, old.cursor)
            wrote = True
            return replace(new, cursor=cursor, next_fire_at=_first_after(
                self.trigger_of(new.trigger, new.id), cursor)), []

        schedule = self._rewrite(schedule_id, change)
        return Ensured(schedule, "updated" if wrote else "unchanged")

    def get_schedule_by_name(self, name: str) -> Schedule:
        return self.store.get_schedule_by_name(name, tenant_id=self.tenant_id)

    def declare(self, declared: DeclaredSchedule) -> None:
        """Record a schedule declared in code (what ``@app.schedule`` calls); applied by
        ``apply_declared`` at worker and ``hora serve --app`` start-up."""
        if any(d.name == declared.name for d in self.declared):
            raise ValueError(f"a schedule named {declared.name!r} is already declared")
        self.declared.append(declared)

    def apply_declared(self, prune: Literal["report", "pause"] = "report") -> DeclaredReport:
        """Ensure every declared schedule, and mark it as declared in code; then report the
        tenant's schedules so marked that the code no longer declares (``prune="pause"``
        also pauses them; they are never deleted: their ledger is history).

        Schedules created by hand (API, CLI, ``create_schedule``) are never marked, so never
        reported. Idempotent: a second start-up with the same code writes nothing.
        """
        if prune not in ("report", "pause"):
            raise InvalidPayload("prune must be report or pause", field="prune")
        report = DeclaredReport()
        marked = {s.id: s for s in self.store.declared_schedules(tenant_id=self.tenant_id)}
        to_mark: list[str] = []
        for d in self.declared:
            schedule, outcome = self.ensure(d.task, d.payload, trigger=d.trigger, name=d.name,
                                            **d.options)
            getattr(report, outcome).append(d.name)
            if schedule.id not in marked:
                to_mark.append(schedule.id)
        if to_mark:
            self.store.mark_schedules_declared(to_mark, tenant_id=self.tenant_id,
                                               now=self.clock.now())
        names = {d.name for d in self.declared}
        for s in marked.values():
            if s.name in names:
                continue
            report.removed.append(s.name or s.id)
            if prune == "pause" and s.state != ScheduleState.PAUSED:
                self.pause_schedule(s.id)
                report.paused.append(s.name or s.id)
        if report.removed:
            log.warning("schedules declared in code earlier but not now: %s (%s)",
                        ", ".join(report.removed),
                        "paused" if prune == "pause" else "left as they are")
        return report

    # -- the scheduler's pass ----------------------------------------------------------------

    def process_due(self, limit: int = 100) -> tuple[int, int]:
        """One scheduler pass over at most ``limit`` due schedules: each due occurrence
        becomes a job (or a skip in the tick ledger). Returns (jobs fired, schedules
        processed); the worker and the scheduler role repeat it while a batch comes back
        full. Safe to run in any number of processes at once (a fire is unique per
        ``(schedule_id, fire_at)``)."""
        now = self.clock.now()

        def plan(schedule: Schedule, active: list[tuple[str, str]]) -> SchedulePlan:
            try:
                trig = self.trigger_of(schedule.trigger, schedule.id)
                text = json.dumps(schedule.payload, separators=(",", ":"), sort_keys=True,
                                  ensure_ascii=False)
                digest = fingerprint(schedule.task, text)
                flow = self._flow_of(schedule, registered)
                gates = flow.gates(schedule.payload) if flow is not None else None

                def make_job(occ: Occurrence) -> NewJob:
                    nj = job_for(schedule, occ, text, digest)
                    if schedule.retry_policy is not None:
                        nj = replace(nj, retry_policy_json=json.dumps(schedule.retry_policy))
                    if gates is not None:
                        nj = replace(nj, flow_json=gates.json,
                                     concurrency_key=gates.concurrency_key)
                    return nj

                return plan_schedule(schedule, trig, now, active, make_job=make_job)
            except Exception as e:
                # Marked once, with the reason, and no longer due: retrying would spend the
                # same CPU on every pass. An edit or a resume clears the mark.
                reason = f"{type(e).__name__}: {e}"[:1000]
                log.warning("schedule %s cannot be evaluated, so it stops firing until it is "
                            "edited or resumed: %s", schedule.id, reason)
                return SchedulePlan(cursor=schedule.cursor, next_fire_at=None, error=reason)

        registered: dict[tuple[str, str], dict[str, Any] | None] = {}

        def on_due(tx: SchedulePass, due: list[Schedule]) -> None:
            missing = sorted({(s.tenant_id, s.task) for s in due if s.task not in self.tasks})
            if missing:
                registered.update(tx.task_flows(missing))

        fired, processed = fire_due_schedules(self.store, now, limit, plan, on_due=on_due)
        if fired:
            SCHEDULE_JOBS.inc(fired)
            self._notify(now)
        return fired, processed

    def _flow_of(self, schedule: Schedule,
                 registered: Mapping[tuple[str, str], dict[str, Any] | None],
                 ) -> FlowSpec | None:
        """The flow options (rate and concurrency limits) of a schedule's task: this
        process's definition, else the tenant's registry entry (read by the pass), so a
        fired job is gated like one enqueued by hand, whichever process fires it."""
        local = self.tasks.get(schedule.task)
        if local is not None:
            return local.flow
        return FlowSpec.from_dict(schedule.task,
                                  registered.get((schedule.tenant_id, schedule.task)))

    def next_schedule_fire(self) -> datetime | None:
        """The earliest instant any active schedule of this store needs the scheduler."""
        return self.store.next_schedule_fire()
