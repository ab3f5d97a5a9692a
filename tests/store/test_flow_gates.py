"""Rate limits and concurrency limits enforced inside the claim, on every store
(hora.store.gating; docs/flow.md)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from hora.flow import Gates, RateLimit, parse_rate, window_bound
from hora.ids import new_id
from hora.models import NewJob, RateLimitOverride
from hora.states import JobState
from hora.store import Outcome, Store, open_store
from hora.store.common import to_us
from tests.store.test_conformance import LEASE, T0, claim, insert, raw

US = timedelta(microseconds=1)


def gated(*, rates: tuple[tuple[str, str, str, int], ...] = (),
          conc: tuple[str, int, str] | None = None, queue: str = "default",
          priority: int = 0, due: Any = T0, tenant: str = "default") -> NewJob:
    gates = Gates(tuple((n, k, parse_rate(r), b) for n, k, r, b in rates), conc)
    return NewJob(id=new_id(), task="t", payload_json="{}", fingerprint=new_id(),
                  queue=queue, priority=priority, due_at=due, max_attempts=3,
                  retry_policy_json=None, timeout=None, idempotency_key=None,
                  correlation_id=None, tenant_id=tenant, flow_json=gates.json,
                  concurrency_key=gates.concurrency_key)


def plain(queue: str = "default") -> NewJob:
    return NewJob(id=new_id(), task="t", payload_json="{}", fingerprint=new_id(),
                  queue=queue, priority=0, due_at=T0, max_attempts=3,
                  retry_policy_json=None, timeout=None, idempotency_key=None,
                  correlation_id=None, tenant_id="default")


def job(store: Store, job_id: str) -> Any:
    return store.get_job(job_id, tenant_id="default", history=False)


def succeed(store: Store, jobs: Any, now: Any) -> list[str]:
    return store.finish_jobs([Outcome(j.id, j.attempt, "w1", JobState.SUCCEEDED, "succeeded",
                                      now) for j in jobs], now)


def set_limit(database_url: str, name: str, count: int, period: float, burst: int = 1,
              tenant: str = "default") -> None:
    """An operator's override row (its API belongs to the runtime-limits feature)."""
    with raw(database_url) as conn:
        if database_url.startswith("sqlite"):
            conn.execute("INSERT INTO hora_rate_limits VALUES (?, ?, ?, ?, ?, ?)",
                         (tenant, name, count, period, burst, to_us(T0)))
        else:
            conn.execute("INSERT INTO hora_rate_limits VALUES (%s, %s, %s, %s, %s, %s)",
                         (tenant, name, count, period, burst, T0))


# -- rate limits ------------------------------------------------------------------------------


def test_a_rate_limit_starts_one_and_pushes_the_rest_one_interval_apart(store: Store) -> None:
    ids = insert(store, *[gated(rates=(("send", "", "2/s", 1),)) for _ in range(4)])
    started, _ = claimed = claim(store)
    assert [j.id for j in started] == ids[:1]
    # every pushed job has its own slot, half a second apart, and says why it waits
    dues = [job(store, i).due_at for i in ids[1:]]
    assert dues == [T0 + timedelta(seconds=0.5 * k) for k in (1, 2, 3)]
    waiting = job(store, ids[1])
    assert waiting.state is JobState.SCHEDULED
    assert waiting.state_reason == "rate_limited: send"
    assert claimed.wake_at == T0 + timedelta(seconds=0.5)
    # nothing starts early; each starts on its slot, and starting clears the reason
    assert claim(store, now=T0 + timedelta(seconds=0.5) - US)[0] == []
    for k, job_id in enumerate(ids[1:], start=1):
        (one,), _ = claim(store, now=T0 + timedelta(seconds=0.5 * k))
        assert one.id == job_id
    assert job(store, ids[1]).state_reason is None


def test_burst_admits_that_many_at_once(store: Store) -> None:
    insert(store, *[gated(rates=(("send", "", "10/s", 3),)) for _ in range(5)])
    assert len(claim(store)[0]) == 3


def test_keyed_limits_are_separate_and_the_reason_names_the_key(store: Store) -> None:
    a = [gated(rates=(("push[user]", "u1", "1/h", 1),)) for _ in range(2)]
    b = [gated(rates=(("push[user]", "u2", "1/h", 1),)) for _ in range(2)]
    ids = insert(store, *a, *b)
    started = {j.id for j in claim(store)[0]}
    assert started == {ids[0], ids[2]}
    assert job(store, ids[1]).state_reason == "rate_limited: push[user] (u1)"
    assert job(store, ids[3]).due_at == T0 + timedelta(hours=1)


def test_a_job_starts_only_if_every_gate_admits_and_a_refusal_costs_no_budget(
        store: Store) -> None:
    both = ("provider", "", "10/s", 1), ("user", "u1", "1/h", 1)
    first, second = insert(store, gated(rates=both), gated(rates=both))
    other = insert(store, gated(rates=(("provider", "", "10/s", 1),),
                                due=T0 + timedelta(seconds=0.1)))[0]
    assert [j.id for j in claim(store)[0]] == [first]
    assert job(store, second).state_reason == "rate_limited: user (u1)"
    # the second job's refusal by "user" did not spend the provider's next slot
    assert [j.id for j in claim(store, now=T0 + timedelta(seconds=0.1))[0]] == [other]


def test_an_operator_override_changes_the_rate(store: Store, database_url: str) -> None:
    set_limit(database_url, "send", 1, 10.0)
    ids = insert(store, *[gated(rates=(("send", "", "100/s", 1),)) for _ in range(2)])
    assert [j.id for j in claim(store)[0]] == ids[:1]
    assert job(store, ids[1]).due_at == T0 + timedelta(seconds=10)


def test_raising_a_limit_brings_the_jobs_it_pushed_back_to_the_new_rate(store: Store) -> None:
    """Jobs pushed to slots at the old rate do not wait for them once an operator raises
    the limit: setting (or deleting) a limit makes them due again, and the next claim gives
    them slots at the new rate."""
    ids = insert(store, *[gated(rates=(("send", "", "1/h", 1),)) for _ in range(4)])
    assert [j.id for j in claim(store)[0]] == ids[:1]
    assert job(store, ids[3]).due_at == T0 + timedelta(hours=3)
    later = T0 + timedelta(seconds=1)
    store.set_rate_limit(RateLimitOverride(tenant_id="default", name="send", count=10,
                                           period=1.0, burst=1, updated_at=later))
    assert all(job(store, i).due_at == later for i in ids[1:])
    # the bucket counts as just filled at the new rate: the three come one interval apart
    assert claim(store, now=later)[0] == []
    assert [job(store, i).due_at for i in ids[1:]] == [
        later + timedelta(seconds=0.1 * k) for k in (1, 2, 3)]
    assert [j.id for j in claim(store, now=later + timedelta(seconds=0.1))[0]] == ids[1:2]
    # another tenant's jobs blocked on a limit of the same name are not touched
    other = insert(store, *[gated(rates=(("send", "", "1/h", 1),), tenant="t2")
                            for _ in range(2)])
    claim(store, now=later)
    pushed = store.get_job(other[1], tenant_id="t2", history=False).due_at
    assert pushed > later + timedelta(minutes=59)
    assert store.delete_rate_limit("default", "send", now=later) is True
    assert store.get_job(other[1], tenant_id="t2", history=False).due_at == pushed


def test_a_queue_limit_row_limits_every_job_of_the_queue_and_stops_reservations(
        store: Store, database_url: str) -> None:
    set_limit(database_url, "queue:mail", 1, 1.0)
    ids = insert(store, *[plain("mail") for _ in range(3)], plain("other"))
    started, _ = claim(store, queues=("mail", "other"))
    assert sorted(j.id for j in started) == sorted([ids[0], ids[3]])
    assert job(store, ids[1]).state_reason == "rate_limited: queue:mail"
    assert job(store, ids[2]).due_at == T0 + timedelta(seconds=2)
    # due within the horizon, but a limited queue's jobs are never reserved (nor gated ones)
    insert(store, gated(rates=(("x", "", "1/s", 1),), due=T0 + timedelta(seconds=1)))
    _, reserved = claim(store, queues=("mail", "other"), now=T0 + timedelta(milliseconds=1),
                        horizon=T0 + timedelta(seconds=5), reserve_limit=10)
    assert reserved == []


def test_racing_claimers_never_exceed_the_limit(database_url: str, store: Store) -> None:
    ids = insert(store, *[gated(rates=(("send", "", "10/s", 4),)) for _ in range(60)])
    stores = [open_store(database_url) for _ in range(6)]
    started: list[str] = []
    at: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(stores))
    instants = [T0 + timedelta(seconds=s) for s in (0, 0, 0.05, 0.1, 0.5, 0.99, 1.0, 1.0)]

    def run(s: Store, n: int) -> None:
        barrier.wait()
        for now in instants:
            got = claim(s, owner=f"w{n}", now=now, limit=5)[0]
            with lock:
                started.extend(j.id for j in got)
                at.extend((now - T0).total_seconds() for _ in got)

    threads = [threading.Thread(target=run, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(started) == len(set(started))  # never twice
    # the claimers' clocks interleave, yet the bucket holds: within [T0, T0+1s) at most
    # ceil(1 s / 0.1 s) + 4 - 1 starts, and the burst was used
    assert 4 <= sum(1 for a in at if a < 1.0) <= window_bound(parse_rate("10/s"), 4, 1.0)
    assert len(started) <= 14  # [T0, T0+1s] closed: one more interval boundary
    assert {job(store, i).state for i in ids} <= {JobState.RUNNING, JobState.SCHEDULED}


# -- concurrency limits -----------------------------------------------------------------------


def test_concurrency_queue_waits_fifo_and_the_finish_wakes_the_next(store: Store) -> None:
    key = "sync:account=a1"
    ids = insert(store, *[gated(conc=(key, 1, "queue")) for _ in range(3)],
                 gated(conc=("sync:account=a2", 1, "queue")))
    started = claim(store)[0]
    assert sorted(j.id for j in started) == sorted([ids[0], ids[3]])
    parked = job(store, ids[1])
    assert parked.state_reason == f"concurrency: {key}"
    assert parked.due_at > T0 + timedelta(seconds=30)  # parked: only a finish wakes it
    later = T0 + timedelta(seconds=1)
    succeed(store, [j for j in started if j.id == ids[0]], later)
    assert job(store, ids[1]).due_at == later  # the lowest id first
    assert job(store, ids[2]).due_at > later
    assert [j.id for j in claim(store, now=later)[0]] == [ids[1]]


def test_cancel_new_cancels_a_job_whose_key_is_full(store: Store) -> None:
    key = "report:user=u1"
    first, second = insert(store, *[gated(conc=(key, 1, "cancel_new")) for _ in range(2)])
    assert [j.id for j in claim(store)[0]] == [first]
    j = job(store, second)
    assert j.state is JobState.CANCELLED
    assert "cancel_new" in (j.state_reason or "") and key in (j.state_reason or "")


def test_cancel_in_progress_supersedes_the_running_and_older_waiting(store: Store) -> None:
    key = "build:branch=main"
    first = insert(store, gated(conc=(key, 1, "cancel_in_progress")))[0]
    (running,), _ = claim(store)
    second, third = insert(store, *[gated(conc=(key, 1, "cancel_in_progress"),
                                          due=T0 + timedelta(seconds=1)) for _ in range(2)])
    later = T0 + timedelta(seconds=1)
    assert claim(store, now=later)[0] == []
    assert job(store, first).cancel_requested
    assert job(store, first).state_reason == f"superseded by {third}"
    assert job(store, second).state is JobState.CANCELLED
    assert job(store, third).state_reason == f"concurrency: {key}"
    # the superseded one stops; the newest runs
    store.finish_jobs([Outcome(first, running.attempt, "w1", JobState.CANCELLED, "cancelled",
                               T0, reason="superseded")], later)
    assert [j.id for j in claim(store, now=later)[0]] == [third]


def test_an_expired_lease_frees_the_slot(store: Store) -> None:
    key = "sync:account=a1"
    first, second = insert(store, *[gated(conc=(key, 1, "queue")) for _ in range(2)])
    assert [j.id for j in claim(store)[0]] == [first]
    # the worker dies: the rescuer moves its job out of running and wakes the parked one
    expired = T0 + LEASE + timedelta(seconds=1)
    assert store.rescue_expired(expired) == [first]
    assert job(store, second).due_at == expired
    # the freed slot is used again at once: by the job that waited for it (jobs back from a
    # gate come first), and the rescued job's retry waits its turn behind it
    (waited,) = claim(store, now=expired)[0]
    assert waited.id == second and waited.attempt == 1
    assert job(store, first).state_reason == f"concurrency: {key}"
    succeed(store, [waited], expired)
    (again,) = claim(store, now=expired)[0]
    assert again.id == first and again.attempt == 2


def test_jobs_back_from_a_gate_come_before_a_backlog_of_new_ones(store: Store) -> None:
    """A job on its slot is claimed ahead of never-seen jobs of the same priority that are
    due earlier: a backlog the gates must first push back does not starve the jobs whose
    turn has come (priority still comes first)."""
    ids = insert(store, *[gated(rates=(("send", "k1", "10/s", 1),)) for _ in range(2)])
    assert [j.id for j in claim(store)[0]] == ids[:1]  # ids[1] pushed to T0 + 0.1 s
    backlog = insert(store, *[gated(rates=(("send", f"b{i}", "10/s", 1),)) for i in range(3)])
    urgent = insert(store, gated(rates=(("send", "u", "10/s", 1),), priority=-1))
    on_slot = T0 + timedelta(seconds=0.1)
    started = [j.id for j in claim(store, now=on_slot, limit=2)[0]]
    assert started == [urgent[0], ids[1]]
    assert [j.id for j in claim(store, now=on_slot, limit=10)[0]] == backlog


def test_racing_claimers_keep_one_running_per_key(database_url: str, store: Store) -> None:
    keys = [f"sync:account=a{k}" for k in range(5)]
    insert(store, *[gated(conc=(k, 1, "queue")) for k in keys for _ in range(6)])
    stores = [open_store(database_url) for _ in range(5)]
    barrier = threading.Barrier(len(stores))
    lock = threading.Lock()
    got: list[Any] = []

    def run(s: Store, n: int) -> None:
        barrier.wait()
        for _ in range(3):
            part = claim(s, owner=f"w{n}", limit=4)[0]
            with lock:
                got.extend(part)

    threads = [threading.Thread(target=run, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    with raw(database_url) as conn:
        rows = conn.execute("SELECT concurrency_key, count(*) FROM hora_jobs "
                            "WHERE state = 'running' GROUP BY concurrency_key").fetchall()
    assert dict(rows) == {k: 1 for k in keys}
    assert len(got) == len({j.id for j in got}) == 5


# -- the rest ---------------------------------------------------------------------------------


def test_a_replayed_dead_job_keeps_its_gates(store: Store) -> None:
    key = "sync:account=a1"
    first = insert(store, gated(conc=(key, 1, "queue"), rates=(("send", "", "1/s", 1),)))[0]
    (j,), _ = claim(store)
    store.finish_jobs([Outcome(first, j.attempt, "w1", JobState.DEAD, "failed", T0)], T0)
    (new,) = store.replay_jobs([first], tenant_id="default", now=T0)
    # the replay counts against the same bucket: the first start spent this second's budget
    assert claim(store)[0] == []
    assert job(store, new.id).state_reason == "rate_limited: send"


def test_plain_jobs_take_the_fast_path_beside_gated_ones(store: Store) -> None:
    ids = insert(store, plain(), gated(rates=(("send", "", "1/h", 1),)),
                 gated(rates=(("send", "", "1/h", 1),)), plain())
    started = claim(store)
    assert sorted(j.id for j in started[0]) == sorted([ids[0], ids[1], ids[3]])
    assert started.wake_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize("limit", [2, 3])
def test_a_full_batch_that_pushed_jobs_asks_for_a_claim_at_once(store: Store,
                                                                 limit: int) -> None:
    insert(store, *[gated(rates=(("send", "", "1/h", 1),)) for _ in range(5)], plain())
    first = claim(store, limit=limit)
    assert first.wake_at == T0  # more may be due behind the pushed ones
    total = len(first[0])
    for _ in range(5):
        total += len(claim(store, limit=limit)[0])
    assert total == 2  # one gated, one plain
    assert json.loads(json.dumps(str(RateLimit("1/h").parsed))) == "1/h"


def _claim_in_process(url: str, owner: str, rounds: int) -> int:
    s = open_store(url)
    try:
        return sum(len(claim(s, owner=owner, limit=4)[0]) for _ in range(rounds))
    finally:
        s.close()


def test_racing_processes_hold_both_limits_on_postgres(pg_schema_url: str) -> None:
    import multiprocessing

    store = open_store(pg_schema_url)
    keys = [f"sync:account=a{k}" for k in range(4)]
    insert(store, *[gated(conc=(k, 1, "queue"), rates=(("api", "", "1/h", 3),))
                    for k in keys for _ in range(5)])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        started = sum(pool.starmap(_claim_in_process,
                                   [(pg_schema_url, f"p{n}", 4) for n in range(4)]))
    with raw(pg_schema_url) as conn:
        running = dict(conn.execute("SELECT concurrency_key, count(*) FROM hora_jobs "
                                    "WHERE state = 'running' GROUP BY 1").fetchall())
        waiting = conn.execute("SELECT count(*) FROM hora_jobs "
                               "WHERE state = 'scheduled'").fetchone()[0]
    store.close()
    # the shared 1/h limit with burst 3 admits three at this instant, one per key at most
    assert started == 3 == sum(running.values())
    assert set(running.values()) == {1}
    assert waiting == 20 - 3  # nobody lost


def test_a_claim_on_a_slot_says_when_the_next_pushed_job_is_due(store: Store) -> None:
    ids = insert(store, *[gated(rates=(("send", "", "2/s", 1),)) for _ in range(3)])
    claim(store)
    on_slot = claim(store, now=T0 + timedelta(seconds=0.5))
    assert [j.id for j in on_slot[0]] == [ids[1]]
    assert on_slot.wake_at == T0 + timedelta(seconds=1)  # nothing refused, yet a wake-up


def test_a_released_job_wakes_the_next_of_its_key(store: Store) -> None:
    key = "sync:account=a1"
    first, second = insert(store, *[gated(conc=(key, 1, "queue")) for _ in range(2)])
    (j,), _ = claim(store)
    later = T0 + timedelta(seconds=2)
    # a stopping worker hands its running job back: the key frees, the parked job is due
    assert store.release_jobs([Outcome(first, j.attempt, "w1", JobState.SCHEDULED, "released",
                                       T0, reason="worker stopping")], owner="w1",
                              now=later) == 1
    assert job(store, second).due_at == later


# -- gate_ahead: a claim takes a bucket's next starts at once, each on its instant -----------


def claim_ahead(store: Store, ahead: timedelta, *, now: Any = T0, limit: int = 10) -> Any:
    return store.claim_jobs(owner="w1", queues=("default",), tasks=None, now=now,
                            lease_until=now + LEASE, limit=limit, gate_ahead=ahead)


def test_a_claim_starts_jobs_its_gates_admit_within_gate_ahead_each_on_its_instant(
        store: Store) -> None:
    ids = insert(store, *[gated(rates=(("send", "", "10/s", 1),)) for _ in range(5)])
    started, _ = claim_ahead(store, timedelta(seconds=0.25))
    # now, +100 ms and +200 ms: the bucket's starts within 250 ms, never two at once
    assert [j.id for j in started] == ids[:3]
    assert [j.due_at - T0 for j in started] == [timedelta(0), timedelta(seconds=0.1),
                                                timedelta(seconds=0.2)]
    assert [job(store, i).started_at - T0 for i in ids[:3]] == [
        timedelta(0), timedelta(seconds=0.1), timedelta(seconds=0.2)]
    # the others wait on their slots after those, as without gate_ahead
    assert [job(store, i).due_at - T0 for i in ids[3:]] == [timedelta(seconds=0.3),
                                                            timedelta(seconds=0.4)]
    assert job(store, ids[3]).state_reason == "rate_limited: send"


def test_a_job_back_from_a_gate_is_read_ahead_of_its_slot_and_starts_on_it(
        store: Store) -> None:
    ids = insert(store, *[gated(rates=(("send", "", "2/s", 1),)) for _ in range(3)])
    claim(store)  # starts ids[0], pushes ids[1] to +0.5 s and ids[2] to +1 s
    early = T0 + timedelta(seconds=0.4)
    started, _ = claim_ahead(store, timedelta(seconds=0.2), now=early)
    assert [(j.id, j.due_at) for j in started] == [(ids[1], T0 + timedelta(seconds=0.5))]
    # ids[2] (due at +1 s) is outside the look-ahead: untouched, still waiting on its slot
    assert job(store, ids[2]).due_at == T0 + timedelta(seconds=1)
    assert job(store, ids[2]).state is JobState.SCHEDULED


def test_a_job_read_ahead_that_its_gate_still_refuses_is_left_as_it_was(
        store: Store, database_url: str) -> None:
    ids = insert(store, *[gated(rates=(("send", "", "2/s", 1),)) for _ in range(2)])
    claim(store)  # ids[1] pushed to +0.5 s
    # the bucket's next start moved to +10 s meanwhile (as a raised count of earlier starts
    # or a lowered limit's clamp would move it)
    with raw(database_url) as conn:
        tat = to_us(T0) + 10_000_000
        conn.execute("UPDATE hora_rate_buckets SET tat = ?" if database_url.startswith(
            "sqlite") else "UPDATE hora_rate_buckets SET tat = %s", (tat,))
    early = T0 + timedelta(seconds=0.4)
    claimed = claim_ahead(store, timedelta(seconds=0.2), now=early)
    assert claimed[0] == []
    waiting = job(store, ids[1])
    assert waiting.due_at == T0 + timedelta(seconds=0.5)  # not pushed again before its slot
    assert claimed.wake_at == T0 + timedelta(seconds=0.5)  # claimed again when it is due
