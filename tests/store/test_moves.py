"""The transition table in ``hora.states`` is the truth, and each store's SQL agrees with it.

For every move and every job state, a job is put in that state through the store's API and the
move is applied through the store's API: the store must accept exactly the moves ``MOVES``
allows from that state and refuse the rest, writing nothing when it refuses. Control moves
(cancel, replay, discard) refuse with ``TransitionConflict``; the worker's batched moves (start
by a claim, succeed, retry, bury, release, cancel by a finish) refuse by leaving the job out of
what they report applied, as their contract says (a lost lease is routine, not an error).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from hora.errors import TransitionConflict
from hora.models import ErrorInfo, Job, JobFilter
from hora.states import MOVES, PENDING_STATES, JobState, Move
from hora.store import Outcome, Store
from tests.store.test_conformance import T0, claim, insert, new_job

LATER = T0 + timedelta(days=1)  # every job is due by then, every lease long expired
ERR = ErrorInfo("ValueError", "bad", None)


def _running(store: Store) -> tuple[str, int]:
    (job_id,) = insert(store, new_job())
    (started,), _ = claim(store, "w1")
    return job_id, started.attempt


def _finished(store: Store, state: str) -> str:
    job_id, attempt = _running(store)
    due = T0 + timedelta(minutes=1) if state == "retrying" else None
    applied = store.finish_jobs([Outcome(job_id, attempt, "w1", JobState(state), "failed", T0,
                                         error=ERR, due_at=due)], T0)
    assert applied == [job_id]
    return job_id


def put_in(store: Store, state: JobState) -> str:
    """A job in ``state``, reached only through the store's API."""
    if state is JobState.SCHEDULED:
        return insert(store, new_job())[0]
    if state is JobState.RUNNING:
        return _running(store)[0]
    if state is JobState.CANCELLED:
        (job_id,) = insert(store, new_job())
        store.cancel_job(job_id, tenant_id="default", now=T0, reason="setup")
        return job_id
    if state in (JobState.RETRYING, JobState.SUCCEEDED, JobState.DEAD):
        return _finished(store, state)
    job_id = _finished(store, "dead")
    if state is JobState.DISCARDED:
        store.discard_jobs([job_id], tenant_id="default", now=T0)
    else:
        assert state is JobState.REPLAYED
        store.replay_jobs([job_id], tenant_id="default", now=T0)
        _clear(store)  # the replay's copy
    return job_id


def _finish(move: Move) -> Callable[[Store, Job], bool]:
    def apply(store: Store, job: Job) -> bool:
        outcome = Outcome.of(move, job_id=job.id, attempt=max(job.attempt, 1), owner="w1",
                             outcome="failed", started_at=T0, error=ERR,
                             due_at=LATER if move.name == "retry" else None)
        if move.name == "release":
            return store.release_jobs([outcome], owner="w1", now=LATER) == 1
        return store.finish_jobs([outcome], LATER) == [job.id]
    return apply


def _start(store: Store, job: Job) -> bool:
    started, _ = claim(store, "w2", now=LATER, limit=100)
    return job.id in {j.id for j in started}


def _conflict(call: Callable[[Store, Job], object]) -> Callable[[Store, Job], bool]:
    def apply(store: Store, job: Job) -> bool:
        try:
            call(store, job)
        except TransitionConflict:
            return False
        return True
    return apply


APPLY: dict[str, Callable[[Store, Job], bool]] = {
    "start": _start,
    "succeed": _finish(MOVES["succeed"]),
    "retry": _finish(MOVES["retry"]),
    "bury": _finish(MOVES["bury"]),
    "release": _finish(MOVES["release"]),
    "replay": _conflict(lambda s, j: s.replay_jobs([j.id], tenant_id="default", now=LATER)),
    "discard": _conflict(lambda s, j: s.discard_jobs([j.id], tenant_id="default", now=LATER)),
}


def _cancel(store: Store, job: Job) -> bool:
    """Cancel from running takes two steps: the request (``cancel_job``), then the worker's
    outcome; from waiting states ``cancel_job`` alone is the move."""
    try:
        after = store.cancel_job(job.id, tenant_id="default", now=LATER, reason="conformance")
    except TransitionConflict:
        return False
    if job.state is JobState.RUNNING:
        assert after.state is JobState.RUNNING and after.cancel_requested
        return _finish(MOVES["cancel"])(store, job)
    return True


APPLY["cancel"] = _cancel


def _snapshot(store: Store, job_id: str) -> Job:
    return store.get_job(job_id, tenant_id="default")


def test_every_move_has_a_store_operation() -> None:
    assert set(APPLY) == set(MOVES)


@pytest.mark.parametrize("name", sorted(MOVES))
def test_store_accepts_exactly_the_moves_the_table_allows(store: Store, name: str) -> None:
    move = MOVES[name]
    for state in JobState:
        job_id = put_in(store, state)
        before = _snapshot(store, job_id)
        assert before.state is state
        accepted = APPLY[name](store, before)
        after = _snapshot(store, job_id)
        assert accepted == move.allows(state), (name, state)
        if accepted:
            assert after.state is move.target, (name, state)
            assert after.events[-1].from_state is state
            assert after.events[-1].to_state is move.target
        else:  # refused: nothing written
            assert after == before, (name, state)
        _clear(store)


def _clear(store: Store) -> None:
    """Cancel every unfinished job (a replay's copy, a retry, a release), so the next state's
    set-up claims only its own job."""
    flt = JobFilter(tenant_id="default", states=tuple(PENDING_STATES))
    for job in store.list_jobs(flt, limit=100).items:
        if job.state is JobState.RUNNING:
            assert job.lease_owner is not None
            store.finish_jobs([Outcome.of(MOVES["cancel"], job_id=job.id, attempt=job.attempt,
                                          owner=job.lease_owner, outcome="cancelled",
                                          started_at=T0)], LATER)
        else:
            store.cancel_job(job.id, tenant_id="default", now=LATER, reason="cleanup")
    assert store.list_jobs(flt, limit=100).items == []
