"""Rate limits set at run time and GCRA buckets taken a slice at a time, on both stores:
overrides by name per tenant, buckets moved when a limit changes, ``take_tokens`` exactly
as repeated GCRA decisions (also under racing takers), and the waiting-by-reason counts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from hora.flow import Rate, gcra, parse_rate, window_bound
from hora.models import RateLimitOverride
from hora.store import Store
from hora.store.common import to_us
from tests.store.test_conformance import raw
from tests.store.test_workers_store import job

T0 = datetime(2030, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def override(name: str = "smtp", rate: str = "20/s", *, burst: int = 1,
             tenant: str = "acme", at: datetime = T0) -> RateLimitOverride:
    r = parse_rate(rate)
    return RateLimitOverride(tenant_id=tenant, name=name, count=r.count, period=r.period,
                             burst=burst, updated_at=at)


# -- overrides by name ------------------------------------------------------------------------


def test_set_get_list_delete_per_tenant(store: Store) -> None:
    assert store.get_rate_limit("acme", "smtp") is None
    stored = store.set_rate_limit(override())
    assert stored == override()
    store.set_rate_limit(override("queue:emails", "100/m", burst=5))
    store.set_rate_limit(override("smtp", "5/s", tenant="other"))
    # a second set replaces the first (rate, burst and instant)
    later = T0 + timedelta(minutes=1)
    assert store.set_rate_limit(override("smtp", "3/h", burst=2, at=later)) == override(
        "smtp", "3/h", burst=2, at=later)
    assert [(o.name, o.count, o.period, o.burst) for o in store.list_rate_limits("acme")] == [
        ("queue:emails", 100, 60.0, 5), ("smtp", 3, 3600.0, 2)]
    assert [o.name for o in store.list_rate_limits("acme", limit=1)] == ["queue:emails"]
    assert store.get_rate_limit("other", "smtp") == override("smtp", "5/s", tenant="other")
    assert store.delete_rate_limit("acme", "smtp", now=later) is True
    assert store.delete_rate_limit("acme", "smtp", now=later) is False
    assert store.get_rate_limit("acme", "smtp") is None
    assert store.get_rate_limit("other", "smtp") is not None  # another tenant's stays


def test_the_table_refuses_impossible_rows(store: Store, database_url: str) -> None:
    store.set_rate_limit(override())
    with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
        conn.execute("UPDATE hora_rate_limits SET count = 0")
    with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
        conn.execute("UPDATE hora_rate_limits SET burst = 0")
    assert store.get_rate_limit("acme", "smtp") == override()


def bucket(database_url: str, name: str = "smtp", key: str = "") -> tuple[int, int | None]:
    with raw(database_url) as conn:
        row = conn.execute("SELECT tat, slot FROM hora_rate_buckets WHERE tenant_id = 'acme' "
                           f"AND name = '{name}' AND key = '{key}'").fetchone()
    return int(row[0]), None if row[1] is None else int(row[1])


def test_changing_a_limit_moves_its_buckets_debt_to_the_new_rate(
        store: Store, database_url: str) -> None:
    slow = Rate(1, 3600.0)
    for key in ("", "u1"):
        assert store.take_tokens("acme", "smtp", key, rate=slow, burst=1, want=1,
                                 now=T0) == (1, 0.0)
    with raw(database_url) as conn:  # a slot promised an hour ahead too
        conn.execute("UPDATE hora_rate_buckets SET slot = tat WHERE key = 'u1'")
    store.take_tokens("other", "smtp", "", rate=slow, burst=1, want=1, now=T0)
    hour = to_us(T0) + 3_600_000_000
    assert bucket(database_url) == (hour, None)
    # raised to 10/s: no bucket of the name owes more than 10/s fully spent (100 ms)
    store.set_rate_limit(override("smtp", "10/s", at=T0 + MS))
    horizon = to_us(T0 + MS) + 100_000
    assert bucket(database_url) == (horizon, None)
    assert bucket(database_url, key="u1") == (horizon, horizon)
    with raw(database_url) as conn:  # another tenant's bucket of the same name is its own
        tats = [int(r[0]) for r in conn.execute(
            "SELECT tat FROM hora_rate_buckets WHERE tenant_id = 'other'").fetchall()]
    assert tats == [hour]
    # deleting with the declared rate as fallback moves them again; without, it leaves them
    store.set_rate_limit(override("smtp", "1/h", at=T0 + 2 * MS))
    store.take_tokens("acme", "smtp", "", rate=slow, burst=1, want=1, now=T0 + 200 * MS)
    before = bucket(database_url)
    assert store.delete_rate_limit("acme", "smtp", now=T0 + 300 * MS,
                                   fallback=(Rate(2, 1.0), 1)) is True
    assert bucket(database_url)[0] == to_us(T0 + 300 * MS) + 500_000 < before[0]


# -- take_tokens --------------------------------------------------------------------------------


def test_take_tokens_is_repeated_gcra_decisions(store: Store) -> None:
    """Many steps of random-ish wants and instants: each answer is what ``want`` calls of
    hora.flow.gcra in a row at that instant admit, and the wait is until the next admits."""
    rate, burst = Rate(10, 1.0), 3
    tat: int | None = None
    now = T0
    for step in range(60):
        want = 1 + step % 4
        now += timedelta(milliseconds=(step * 37) % 150)
        expected = 0
        allow_at = 0
        for _ in range(want):
            ok, new_tat, allow_at = gcra(tat, to_us(now), rate, burst)
            if not ok:
                break
            tat, expected = new_tat, expected + 1
        granted, wait = store.take_tokens("acme", "api", "", rate=rate, burst=burst,
                                          want=want, now=now)
        assert granted == expected, step
        if granted == 0:
            assert wait == pytest.approx((allow_at - to_us(now)) / 1e6) and wait > 0
        else:
            assert wait == 0.0


def test_a_bucket_per_tenant_name_and_key(store: Store) -> None:
    rate = Rate(1, 60.0)
    assert store.take_tokens("acme", "smtp", "", rate=rate, burst=2, want=5, now=T0) == (2, 0.0)
    granted, wait = store.take_tokens("acme", "smtp", "", rate=rate, burst=2, want=1, now=T0)
    assert granted == 0 and wait == pytest.approx(60.0)
    for tenant, name, key in (("other", "smtp", ""), ("acme", "push", ""), ("acme", "smtp", "k")):
        assert store.take_tokens(tenant, name, key, rate=rate, burst=2, want=1,
                                 now=T0)[0] == 1
    # a minute later one more is free
    assert store.take_tokens("acme", "smtp", "", rate=rate, burst=2, want=5,
                             now=T0 + timedelta(seconds=60))[0] == 1


def test_buckets_full_again_are_pruned_and_busy_ones_kept(store: Store) -> None:
    """A bucket whose tat and promised slot are past the cut-off is the same as no row and
    goes; one still owing (or promising a later slot) stays, and its budget is intact."""
    slow = Rate(1, 86_400.0)  # a day's debt after one start
    store.take_tokens("acme", "old", "u1", rate=parse_rate("10/s"), burst=1, want=1, now=T0)
    store.take_tokens("acme", "busy", "u1", rate=slow, burst=1, want=1, now=T0)
    assert store.prune_rate_buckets(before=T0 + timedelta(hours=1), limit=10) == 1
    assert store.prune_rate_buckets(before=T0 + timedelta(hours=1), limit=10) == 0
    # the busy bucket still refuses: its debt was not forgotten
    granted, wait = store.take_tokens("acme", "busy", "u1", rate=slow, burst=1, want=1,
                                      now=T0 + timedelta(hours=2))
    assert granted == 0 and wait > 0


def test_racing_takers_never_beat_the_window_bound(store: Store) -> None:
    """Eight threads take slices of one bucket at the same instants, all at once at each,
    2 s of them: the total granted is what the limit admits over the span, never more (no
    lost update), and each instant's takes together never more than the bucket held."""
    rate, burst = Rate(50, 1.0), 5
    instants = [T0 + i * 20 * MS for i in range(100)]  # 2 s
    granted = [0] * 8
    errors: list[BaseException] = []
    barrier = threading.Barrier(8, timeout=60)

    def taker(i: int) -> None:
        try:
            for at in instants:
                barrier.wait()
                granted[i] += store.take_tokens("acme", "race", "", rate=rate, burst=burst,
                                                want=3, now=at)[0]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=taker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    span = (instants[-1] - instants[0]).total_seconds()
    # the instants span a closed interval: the bound of a half-open window a hair longer
    assert sum(granted) <= window_bound(rate, burst, span + 1e-6)
    assert sum(granted) >= 50  # and the budget is used, not lost
    assert sum(1 for g in granted if g) >= 2  # more than one taker got some


def _take_in_process(url: str, steps: int) -> int:
    """A process of its own: its store, the same instants as the others, no barrier."""
    from hora.store import open_store

    store = open_store(url)
    try:
        return sum(store.take_tokens("acme", "procs", "", rate=Rate(40, 1.0), burst=4, want=2,
                                     now=T0 + i * 10 * MS)[0] for i in range(steps))
    finally:
        store.close()


def test_takers_in_three_processes_never_beat_the_window_bound(
        store: Store, database_url: str) -> None:
    """Three processes over 1 s of shared instants, unsynchronised: whatever the
    interleaving (an instant earlier than one already seen only admits less), their total
    is within the limit's bound over the span."""
    import multiprocessing

    steps = 101  # 0 .. 1 s
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        granted = pool.starmap(_take_in_process, [(database_url, steps)] * 3)
    rate = Rate(40, 1.0)
    assert sum(granted) <= window_bound(rate, 4, 1.0 + 1e-6)
    assert sum(granted) >= 40


# -- waiting by reason ------------------------------------------------------------------------


def test_waiting_by_reason_counts_blocked_jobs_and_paused_queues(
        store: Store, database_url: str) -> None:
    jobs = [job(tenant="acme") for _ in range(3)] + [job(tenant="other") for _ in range(2)]
    jobs += [job(queue="mail", tenant="acme") for _ in range(2)]
    jobs += [job(queue="mail", tenant="acme", due=T0 + timedelta(hours=1))]  # not due
    jobs += [job(queue="mail", tenant="other")]  # mail is paused for acme only
    store.insert_jobs(jobs, T0)
    ids = [j.id for j in jobs]
    with raw(database_url) as conn:
        for job_id, blocked in ((ids[0], "rate:smtp"), (ids[1], "rate:smtp"),
                                (ids[3], "rate:smtp"), (ids[2], "concurrency:acct")):
            conn.execute(f"UPDATE hora_jobs SET blocked_on = '{blocked}' WHERE id = '{job_id}'")
        # a blocked job that finished since does not count
        conn.execute(f"UPDATE hora_jobs SET blocked_on = 'rate:gone', state = 'cancelled', "
                     f"finished_at = due_at WHERE id = '{ids[4]}'")
    store.set_queue_paused("acme", "mail", paused=True, now=T0)
    store.set_queue_paused("other", "default", paused=False, now=T0)
    assert store.waiting_by_reason(now=T0) == [
        ("rate_limited", "smtp", 3), ("concurrency", "acct", 1), ("queue_paused", "mail", 2)]
    assert store.waiting_by_reason(now=T0, limit=1) == [
        ("rate_limited", "smtp", 3), ("queue_paused", "mail", 2)]
    store.set_queue_paused("acme", "mail", paused=False, now=T0)
    assert [r for r in store.waiting_by_reason(now=T0) if r[0] == "queue_paused"] == []
