"""The clock seam, time-sortable ids and the transition table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hora.clock import FakeClock, SystemClock, utc
from hora.ids import new_id
from hora.models import Schedule, Workflow
from hora.states import (
    CLAIMABLE_STATES,
    MOVES,
    JobState,
    MisfirePolicy,
    OverlapPolicy,
    ScheduleState,
    WorkflowState,
    allowed_targets,
)
from hora.store import Outcome

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_fake_clock_wakes_sleepers_in_due_order() -> None:
    clock = FakeClock(T0)
    woke: list[tuple[str, datetime]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async def main() -> None:
        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in
                 [("c", 30), ("a", 10), ("b", 20)]]
        await asyncio.sleep(0)
        for _ in range(3):
            nxt = clock.next_deadline()
            assert nxt is not None
            clock.set(nxt)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert [n for n, _ in woke] == ["a", "b", "c"]
    assert [t for _, t in woke] == [T0 + timedelta(seconds=s) for s in (10, 20, 30)]


def test_fake_clock_advance_wakes_everything_due_and_nothing_else() -> None:
    clock = FakeClock(T0)

    async def main() -> tuple[bool, bool]:
        short = asyncio.create_task(clock.sleep(5))
        long = asyncio.create_task(clock.sleep(500))
        await asyncio.sleep(0)
        clock.advance(timedelta(seconds=60))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        done = short.done(), long.done()
        long.cancel()
        return done

    assert asyncio.run(main()) == (True, False)
    assert clock.now() == T0 + timedelta(seconds=60)


def test_fake_clock_refuses_to_go_backwards_and_naive_times() -> None:
    clock = FakeClock(T0)
    with pytest.raises(ValueError):
        clock.set(T0 - timedelta(seconds=1))
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2030, 1, 1))


def test_system_clock_sleep_until_never_returns_early() -> None:
    clock = SystemClock()

    async def main() -> timedelta:
        target = clock.now() + timedelta(milliseconds=30)
        await clock.sleep_until(target)
        return clock.now() - target

    assert asyncio.run(main()) >= timedelta(0)


def test_ids_sort_by_creation_and_are_unique() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "7" for i in ids[:10])  # UUID version 7


def test_transition_table() -> None:
    assert allowed_targets(JobState.SCHEDULED) == {JobState.RUNNING, JobState.CANCELLED}
    assert allowed_targets(JobState.RUNNING) == {
        JobState.SUCCEEDED, JobState.RETRYING, JobState.DEAD, JobState.SCHEDULED,
        JobState.CANCELLED}
    assert allowed_targets(JobState.DEAD) == {JobState.REPLAYED, JobState.DISCARDED}
    for final in (JobState.SUCCEEDED, JobState.CANCELLED, JobState.DISCARDED,
                  JobState.REPLAYED):
        assert final.is_final and allowed_targets(final) == frozenset()
    assert MOVES["start"].sources == CLAIMABLE_STATES


def test_forked_processes_do_not_repeat_ids() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids and leave without running pytest's teardown
        os.write(write, ",".join(new_id() for _ in range(200)).encode())
        os._exit(0)
    os.close(write)
    mine = {new_id() for _ in range(200)}
    with os.fdopen(read) as f:
        theirs = set(f.read().split(","))
    os.waitpid(pid, 0)
    assert len(theirs) == 200 and not (mine & theirs)


def test_outcomes_are_moves_out_of_running() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    for name in ("succeed", "retry", "bury", "cancel", "release"):
        o = Outcome.of(MOVES[name], job_id="j", attempt=1, owner="w", outcome="x",
                       started_at=t0)
        assert o.state is MOVES[name].target and o.move is MOVES[name]
    for name in ("start", "replay", "discard"):  # not from running: no worker outcome
        with pytest.raises(ValueError, match="does not start from running"):
            Outcome.of(MOVES[name], job_id="j", attempt=1, owner="w", outcome="x",
                       started_at=t0)
    # The stored string form still builds one, and a state no move reaches is refused.
    assert Outcome("j", 1, "w", "succeeded", "succeeded", t0).state is JobState.SUCCEEDED  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a move out of running"):
        Outcome("j", 1, "w", JobState.REPLAYED, "x", t0)


def test_schedule_and_workflow_states_are_enums_that_compare_as_strings() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    s = Schedule(id="s", tenant_id="t", name=None, task="x", payload={}, trigger={},
                 queue="q", priority=0, max_attempts=1, retry_policy=None, timeout=None,
                 correlation_id=None, misfire_policy="run_once",  # type: ignore[arg-type]
                 misfire_grace=1.0, catchup_limit=1,
                 overlap_policy="skip", state="paused",  # type: ignore[arg-type]
                 next_fire_at=None, cursor=t0, created_at=t0, updated_at=t0)
    assert s.misfire_policy is MisfirePolicy.RUN_ONCE and s.misfire_policy == "run_once"
    assert s.overlap_policy is OverlapPolicy.SKIP and s.state is ScheduleState.PAUSED
    with pytest.raises(ValueError):
        Schedule(**{**{f: getattr(s, f) for f in Schedule.__dataclass_fields__},
                    "overlap_policy": "sometimes"})
    w = Workflow(tenant_id="t", id="w", name="n", args={},
                 state="cancelled",  # type: ignore[arg-type]
                 result=None, error=None, correlation_id=None, parent_id=None,
                 wait_kind=None, wait_name=None, wait_until=None, cancel_requested=False,
                 cancel_reason=None, compensation=None, run_owner=None, run_until=None,
                 created_at=t0, updated_at=t0, finished_at=t0)
    assert w.state is WorkflowState.CANCELLED and w.is_final
    assert [s.value for s in WorkflowState if s.is_final] == ["completed", "failed",
                                                             "cancelled"]
