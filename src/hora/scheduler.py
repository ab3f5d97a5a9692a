"""Turn due schedules into jobs, idempotently.

``plan_schedule`` is pure: given a schedule, its trigger, ``now`` and the schedule's jobs
still waiting or running, it decides for every nominal occurrence since the schedule's
cursor whether it fires (a job whose idempotency key is ``schedule:<id>:<nominal>``) or is
skipped and why — DST, calendar, misfire (too late, after downtime), overlap (the previous
run is still going).

``fire_due_schedules`` is the one pass, on both stores: inside one store transaction
(``Store.schedule_pass``) it locks the due schedules, plans each and writes the plans (jobs,
ticks, cursors, overlap cancels) through the store's SQL primitives. So any number of
scheduler processes, on SQLite or PostgreSQL, never fire an occurrence twice and never skip
one: the idempotency key makes a double fire a no-op and the tick ledger's primary key
``(schedule_id, nominal)`` records each occurrence once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hora.errors import StoreUnavailable
from hora.ids import new_id
from hora.models import NewJob, Schedule, Tick
from hora.states import JobState, MisfirePolicy, OverlapPolicy
from hora.store import JobCancel, ScheduleAdvance
from hora.triggers import Occurrence, Trigger

if TYPE_CHECKING:
    from hora.app import Hora
    from hora.retention import Retention
    from hora.store import SchedulePass, ScheduleStore

log = logging.getLogger("hora.scheduler")

MISFIRE_POLICIES = tuple(MisfirePolicy)
OVERLAP_POLICIES = tuple(OverlapPolicy)
#: How many occurrences one pass looks at per schedule (a long downtime is caught up over
#: several passes, each bounded).
MAX_OCCURRENCES_PER_PASS = 1000


@dataclass(frozen=True, slots=True)
class PlannedTick:
    nominal: datetime
    fire_at: datetime
    outcome: str  # fired | skipped
    reason: str | None
    job: NewJob | None = None


@dataclass(slots=True)
class SchedulePlan:
    ticks: list[PlannedTick] = field(default_factory=list)
    cancel_job_ids: list[str] = field(default_factory=list)
    cursor: datetime | None = None
    next_fire_at: datetime | None = None
    #: Set when the trigger cannot be evaluated: recorded on the schedule, which stops firing.
    error: str | None = None


def idempotency_key(schedule_id: str, nominal: datetime) -> str:
    return f"schedule:{schedule_id}:{nominal.isoformat()}"


def job_for(schedule: Schedule, occ: Occurrence, payload_json: str, fingerprint: str,
            ) -> NewJob:
    return NewJob(
        id=new_id(), task=schedule.task, payload_json=payload_json,
        fingerprint=fingerprint, queue=schedule.queue, priority=schedule.priority,
        due_at=occ.at, max_attempts=schedule.max_attempts,
        retry_policy_json=None, timeout=schedule.timeout,
        idempotency_key=idempotency_key(schedule.id, occ.nominal),
        correlation_id=schedule.correlation_id, tenant_id=schedule.tenant_id,
        schedule_id=schedule.id,
    )


def plan_schedule(schedule: Schedule, trigger: Trigger, now: datetime,
                  active_jobs: Sequence[tuple[str, str]], *, make_job: Any) -> SchedulePlan:
    """Decide what happens to every occurrence due by ``now``.

    ``active_jobs`` are the schedule's jobs not yet finished, as (id, state). ``make_job``
    builds the NewJob for an occurrence (the caller owns payload encoding).
    """
    plan = SchedulePlan(cursor=schedule.cursor)
    due: list[Occurrence] = []
    grace = timedelta(seconds=schedule.misfire_grace)
    seen = 0
    for occ in trigger.occurrences(schedule.cursor):
        seen += 1
        if occ.skipped is None and occ.at > now:
            plan.next_fire_at = occ.at
            break
        if occ.skipped is not None and occ.nominal > now:
            # A skipped occurrence in the future: record it when its time comes.
            plan.next_fire_at = occ.nominal
            break
        if seen > MAX_OCCURRENCES_PER_PASS:
            plan.next_fire_at = now  # more to catch up: come back at once
            break
        plan.cursor = occ.nominal
        if occ.skipped is not None:
            plan.ticks.append(PlannedTick(occ.nominal, occ.at, "skipped", occ.skipped))
            continue
        due.append(occ)
    else:
        plan.next_fire_at = None  # the trigger is exhausted

    # Misfires: occurrences later than the grace period.
    on_time = [o for o in due if now - o.at <= grace]
    late = [o for o in due if now - o.at > grace]
    fire: list[Occurrence] = list(on_time)
    if late:
        if schedule.misfire_policy == MisfirePolicy.RUN_ALL:
            keep = late[-schedule.catchup_limit:]
            for o in late[: len(late) - len(keep)]:
                plan.ticks.append(PlannedTick(
                    o.nominal, o.at, "skipped",
                    f"misfire: beyond the catch-up limit of {schedule.catchup_limit}"))
            fire = keep + fire
        elif schedule.misfire_policy == MisfirePolicy.RUN_ONCE and not on_time:
            newest = late[-1]
            for o in late[:-1]:
                plan.ticks.append(PlannedTick(
                    o.nominal, o.at, "skipped",
                    f"misfire: coalesced into the run for {newest.nominal.isoformat()}"))
            fire = [newest]
        else:
            for o in late:
                plan.ticks.append(PlannedTick(
                    o.nominal, o.at, "skipped",
                    f"misfire: {(now - o.at).total_seconds():.0f}s late, beyond the "
                    f"{schedule.misfire_grace:.0f}s grace period"))

    # Overlap with the schedule's previous runs.
    running = [jid for jid, st in active_jobs if st == JobState.RUNNING]
    waiting = [jid for jid, st in active_jobs if st != JobState.RUNNING]
    fire.sort(key=lambda o: o.nominal)
    policy = schedule.overlap_policy
    if policy == OverlapPolicy.CANCEL_PREVIOUS and len(fire) > 1:
        # Firing several and cancelling all but the last would be theatre: only the newest runs.
        for o in fire[:-1]:
            plan.ticks.append(PlannedTick(
                o.nominal, o.at, "skipped",
                f"overlap: superseded by the run for {fire[-1].nominal.isoformat()}"))
        fire = fire[-1:]
    for occ in fire:
        busy = bool(running or waiting)
        if busy and policy == OverlapPolicy.SKIP:
            plan.ticks.append(PlannedTick(occ.nominal, occ.at, "skipped",
                                          "overlap: the previous run has not finished"))
            continue
        if policy == OverlapPolicy.QUEUE and waiting:
            plan.ticks.append(PlannedTick(occ.nominal, occ.at, "skipped",
                                          "overlap: a run is already waiting"))
            continue
        if busy and policy == OverlapPolicy.CANCEL_PREVIOUS:
            plan.cancel_job_ids.extend(running + waiting)  # jobs already stored, never new ones
            running, waiting = [], []
        job = make_job(occ)
        plan.ticks.append(PlannedTick(occ.nominal, occ.at, "fired",
                                      "; ".join(occ.notes) or None, job))
        waiting.append(job.id)
    plan.ticks.sort(key=lambda t: t.nominal)
    return plan


#: Decides, inside the transaction that locked a due schedule, what to do with it (given its
#: unfinished jobs as (id, state)): the caller's wrapper around ``plan_schedule``.
PlanFn = Callable[[Schedule, list[tuple[str, str]]], SchedulePlan]


def fire_due_schedules(store: ScheduleStore, now: datetime, limit: int, plan: PlanFn, *,
                       on_due: Callable[[SchedulePass, list[Schedule]], None] | None = None,
                       ) -> tuple[int, int]:
    """One scheduler pass over up to ``limit`` due schedules, in one store transaction;
    returns (jobs fired, schedules processed). A caller loops while processed == limit.

    Jobs are written first, then ticks (naming the job each fired, or the one an earlier fire
    of the same occurrence stored), then the schedules' cursors, and the overlap cancels
    last, in job id order: a cancel names only jobs that existed before the pass, never one a
    plan fires, so no later plan sees the difference, and locking them in one order keeps
    the pass clear of deadlocks with a worker's batched finish.
    """
    with store.schedule_pass(now) as tx:
        due = tx.due(limit)
        if not due:
            return 0, 0
        if on_due is not None:  # what the plans need to read, in this transaction
            on_due(tx, due)
        active = tx.active_jobs([s.id for s in due])
        plans = [(s, plan(s, active.get(s.id, []))) for s in due]
        jobs = [t.job for _, p in plans for t in p.ticks if t.job is not None]
        stored = tx.insert_jobs(jobs) if jobs else {}
        tx.record_ticks([
            Tick(s.id, t.nominal, t.fire_at, t.outcome, t.reason,
                 None if t.job is None else stored[t.job.id], now)
            for s, p in plans for t in p.ticks])
        tx.advance([ScheduleAdvance(s.id, p.cursor or s.cursor, p.next_fire_at, p.error)
                    for s, p in plans])
        planned = {j.id for j in jobs}
        cancels: dict[str, JobCancel] = {}
        for s, p in plans:
            reason = f"cancelled by schedule {s.id}: overlap policy cancel_previous"
            for job_id in p.cancel_job_ids:
                if job_id not in planned:
                    cancels.setdefault(job_id, JobCancel(job_id, s.tenant_id, reason))
        if cancels:
            tx.cancel_jobs([cancels[job_id] for job_id in sorted(cancels)])
    return sum(1 for j in jobs if stored[j.id] == j.id), len(due)


class Scheduler:
    """The loop that fires due schedules. Run one per process (``hora scheduler`` or inside
    ``hora serve``); any number may share a database."""

    def __init__(self, app: Hora, *, interval: float = 1.0, batch_size: int = 100,
                 retention: Retention | None = None) -> None:
        self.app = app
        self.interval = interval
        self.batch_size = batch_size
        #: Prunes old finished records every ``retention.interval``, in a loop of its own
        #: beside this one (None: never).
        self.retention = retention
        self.fired = 0
        self._stopping = False

    def tick(self) -> int:
        """One pass: process every due schedule once (sync). Returns jobs fired."""
        total = 0
        while True:
            fired, processed = self.app.schedules.process_due(self.batch_size)
            total += fired
            if processed < self.batch_size:
                break
        self.fired += total
        return total

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pruner = None if self.retention is None else asyncio.create_task(
            self.retention.run(), name="hora-retention")
        try:
            await self._loop(loop)
        finally:
            if pruner is not None and self.retention is not None:
                self.retention.stop()
                pruner.cancel()
                await asyncio.gather(pruner, return_exceptions=True)

    async def _loop(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stopping:
            try:
                await loop.run_in_executor(None, functools.partial(self.tick))
            except StoreUnavailable as e:  # the store reports the outage, once
                log.debug("scheduler pass failed; trying again: %s", e)
            except Exception:
                log.exception("scheduler pass failed; trying again")
            await self.app.clock.sleep(self.interval)

    def stop(self) -> None:
        self._stopping = True
