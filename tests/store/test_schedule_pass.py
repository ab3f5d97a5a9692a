"""The one scheduler pass (``hora.scheduler.fire_due_schedules``) over each store's
``schedule_pass`` primitives: what it writes, and that a failed pass writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hora.ids import new_id
from hora.models import Schedule
from hora.scheduler import PlannedTick, SchedulePlan, fire_due_schedules, idempotency_key
from hora.states import JobState
from hora.store import Store
from tests.store.test_conformance import T0, claim, insert, new_job

NOMINAL = T0 - timedelta(minutes=1)


def add_schedule(store: Store, next_fire_at: object = NOMINAL) -> Schedule:
    return store.insert_schedule(Schedule(
        id=new_id(), tenant_id="default", name=None, task="t", payload={}, trigger={},
        queue="default", priority=0, max_attempts=3, retry_policy=None, timeout=None,
        correlation_id=None, misfire_policy="skip",  # type: ignore[arg-type]
        misfire_grace=60.0, catchup_limit=1,
        overlap_policy="cancel_previous", state="active",  # type: ignore[arg-type]
        next_fire_at=next_fire_at, cursor=T0 - timedelta(hours=1),  # type: ignore[arg-type]
        created_at=T0, updated_at=T0))


def firing(*, cancel: tuple[str, ...] = ()) -> object:
    def plan(s: Schedule, active: list[tuple[str, str]]) -> SchedulePlan:
        job = new_job(key=idempotency_key(s.id, NOMINAL))
        return SchedulePlan(ticks=[PlannedTick(NOMINAL, NOMINAL, "fired", None, job)],
                            cancel_job_ids=list(cancel), cursor=NOMINAL,
                            next_fire_at=T0 + timedelta(hours=1))
    return plan


def test_a_pass_fires_ticks_advances_and_cancels(store: Store) -> None:
    schedule = add_schedule(store)
    add_schedule(store, next_fire_at=T0 + timedelta(hours=2))  # not due
    (waiting,) = insert(store, new_job(due=T0 + timedelta(hours=5)))
    (running,) = insert(store, new_job())
    claim(store, "w1")
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def plan(s: Schedule, active: list[tuple[str, str]]) -> SchedulePlan:
        seen.append((s.id, active))
        return firing(cancel=(running, waiting))(s, active)  # type: ignore[operator]

    assert fire_due_schedules(store, T0, 10, plan) == (1, 1)
    assert seen == [(schedule.id, [])]  # jobs of no schedule are nobody's overlap
    (tick,) = store.list_ticks(schedule.id, tenant_id="default").items
    assert (tick.nominal, tick.outcome) == (NOMINAL, "fired")
    assert store.get_job(tick.job_id or "", tenant_id="default").state is JobState.SCHEDULED
    after = store.get_schedule(schedule.id, tenant_id="default")
    assert after.cursor == NOMINAL and after.next_fire_at == T0 + timedelta(hours=1)
    assert after.version == schedule.version + 1
    assert store.get_job(waiting, tenant_id="default").state is JobState.CANCELLED
    cancelled = store.get_job(running, tenant_id="default")
    assert cancelled.state is JobState.RUNNING and cancelled.cancel_requested
    assert fire_due_schedules(store, T0, 10, plan) == (0, 0)  # nothing due any more


def test_an_occurrence_fired_before_records_the_first_job(store: Store) -> None:
    schedule = add_schedule(store)
    (first,) = insert(store, new_job(key=idempotency_key(schedule.id, NOMINAL)))
    assert fire_due_schedules(store, T0, 10, firing()) == (0, 1)  # type: ignore[arg-type]
    (tick,) = store.list_ticks(schedule.id, tenant_id="default").items
    assert tick.job_id == first


def test_a_failed_pass_writes_nothing(store: Store) -> None:
    schedule = add_schedule(store)

    def plan(s: Schedule, active: list[tuple[str, str]]) -> SchedulePlan:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fire_due_schedules(store, T0, 10, plan)
    assert store.get_schedule(schedule.id, tenant_id="default") == schedule
    assert store.list_ticks(schedule.id, tenant_id="default").items == []
    assert fire_due_schedules(store, T0, 10, firing()) == (1, 1)  # type: ignore[arg-type]
