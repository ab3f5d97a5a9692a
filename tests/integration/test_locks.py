"""Distributed locks and leader election through the SDK, on both stores, timed by the
FakeClock: leases that expire, stale holders refused by fencing tokens, failover.

Run as a program (``python -m tests.integration.test_locks URL NAME ROUNDS``) this module is
also the contender of the multi-process test at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

import hora.locks
from hora import (
    FakeClock,
    Hora,
    InvalidPayload,
    LeaderElection,
    Lease,
    LockTimeout,
    StaleRecord,
)
from hora.testing import await_condition, wait_for_condition

T0 = datetime(2030, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- try_lock, lock and the lease -------------------------------------------------------------


def test_lock_holds_for_the_block_and_releases_at_its_end(app: Hora, clock: FakeClock) -> None:
    with app.lock("report", ttl=30) as lease:
        assert (lease.name, lease.token, lease.expires_at) == ("report", 1, later(30))
        assert lease.valid and not lease.released
        held = app.get_lock("report")
        assert held is not None and held.owner == lease.owner and held.token == 1
        assert held.held_at(clock.now())
        assert app.try_lock("report") is None  # another owner
        assert app.try_lock("report", owner=lease.owner) is None  # not re-entrant
        with pytest.raises(LockTimeout, match="report"), app.lock("report", wait=0):
            pass
    assert lease.released and not lease.valid
    freed = app.get_lock("report")
    assert freed is not None and freed.owner is None and not freed.held_at(clock.now())
    again = app.try_lock("report")
    assert again is not None and again.token == 2


def test_the_lock_is_released_when_the_block_raises(app: Hora) -> None:
    with pytest.raises(RuntimeError, match="boom"), app.lock("report") as lease:
        raise RuntimeError("boom")
    assert lease.released
    assert app.try_lock("report") is not None


def test_a_lease_released_inside_its_block_is_left_alone(app: Hora) -> None:
    with app.lock("report") as lease:
        assert lease.release()
        other = app.try_lock("report")
        assert other is not None
    rec = app.get_lock("report")
    assert rec is not None and rec.owner == other.owner  # the exit did not free other's lock


def test_default_owners_name_host_and_process_and_differ(app: Hora) -> None:
    a = app.try_lock("a")
    b = app.try_lock("b")
    assert a is not None and b is not None
    assert a.owner.split(":")[1] == str(os.getpid()) and a.owner != b.owner


def test_names_ttls_and_owners_are_validated(app: Hora) -> None:
    for name in ("", "x" * 201, "a\x00b", "\ud800"):
        with pytest.raises(InvalidPayload, match="name"):
            app.try_lock(name)
    for ttl in (0, -1, 86_401, math.nan, math.inf, True, "30"):
        with pytest.raises(InvalidPayload, match="ttl"):
            app.try_lock("x", ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(InvalidPayload, match="owner"):
        app.try_lock("x", owner="")
    with pytest.raises(InvalidPayload, match="wait"), app.lock("x", wait=-1):
        pass
    with pytest.raises(InvalidPayload, match="name"):
        LeaderElection(app, "")
    lease = app.try_lock("x" * 200, ttl=timedelta(days=1))
    assert lease is not None and lease.expires_at == later(86_400)
    with pytest.raises(InvalidPayload, match="ttl"):
        lease.renew(ttl=0)
    assert app.get_lock("x") is None


def test_locks_are_per_tenant(app: Hora) -> None:
    mine = app.try_lock("nightly")
    theirs = app.for_tenant("acme").try_lock("nightly")
    assert mine is not None and theirs is not None
    assert (mine.token, theirs.token) == (1, 1)
    assert theirs.tenant_id == "acme" and theirs.release()
    assert app.get_lock("nightly") is not None and mine.valid


def test_renewal_extends_the_lease(app: Hora, clock: FakeClock) -> None:
    lease = app.try_lock("sync", ttl=10)
    assert lease is not None
    clock.advance(8)
    assert lease.renew()
    assert lease.expires_at == later(18)
    clock.advance(8)  # past the first grant's end
    assert lease.valid and app.try_lock("sync") is None
    assert lease.renew(ttl=60) and lease.expires_at == later(76)
    assert lease.release()


def test_an_expired_holder_cannot_renew_and_the_next_gets_a_larger_token(
        app: Hora, clock: FakeClock) -> None:
    old = app.try_lock("sync", ttl=10)
    assert old is not None and old.token == 1
    clock.advance(10)
    assert not old.valid
    new = app.try_lock("sync", ttl=10)
    assert new is not None and new.token == 2
    assert not old.renew()
    assert not old.release()  # the lease is over; the new holder's lock is untouched
    rec = app.get_lock("sync")
    assert rec is not None and (rec.owner, rec.token) == (new.owner, 2)
    assert new.valid and new.renew()


def test_an_expired_lease_nobody_took_over_cannot_renew_either(app: Hora,
                                                               clock: FakeClock) -> None:
    lease = app.try_lock("sync", ttl=10)
    assert lease is not None
    clock.advance(11)
    assert not lease.renew() and not lease.valid
    assert app.try_lock("sync") is not None


def test_sync_lock_waits_for_the_holder_to_release(app: Hora,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync waiter sleeps in real time; here its sleep is replaced by one that lets the
    holder finish after the waiter has been refused twice."""
    holder = app.try_lock("export")
    assert holder is not None
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            assert holder.release()

    monkeypatch.setattr(hora.locks, "time", SimpleNamespace(sleep=sleep,
                                                            monotonic=time.monotonic))
    with app.lock("export", wait=10) as lease:
        assert lease.token == 2
    assert len(pauses) == 2 and all(0 < p <= hora.locks.POLL_MAX for p in pauses)


def test_sync_lock_gives_up_after_wait_on_the_app_clock(app: Hora, clock: FakeClock,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        ) -> None:
    assert app.try_lock("export", ttl=600) is not None
    monkeypatch.setattr(hora.locks, "time", SimpleNamespace(sleep=clock.advance,
                                                            monotonic=time.monotonic))
    with pytest.raises(LockTimeout) as caught, app.lock("export", wait=5):
        pass
    assert caught.value.name == "export" and caught.value.wait == 5
    assert later(5) <= clock.now() < later(5.1)


def test_sync_lock_gives_up_after_wait_in_real_time_whatever_the_fake_clock(
        app: Hora, clock: FakeClock) -> None:
    assert app.try_lock("export") is not None
    started = time.monotonic()
    with pytest.raises(LockTimeout), app.lock("export", wait=0.2):
        pass
    assert 0.2 <= time.monotonic() - started < 5
    assert clock.now() == T0


# -- alock on the fake clock ------------------------------------------------------------------


async def drive(clock: FakeClock, task: asyncio.Task[object]) -> None:
    """Move the clock to each instant somebody sleeps until, until ``task`` ends."""
    while not task.done():
        await await_condition(lambda: task.done() or clock.next_deadline() is not None,
                              message="the task to sleep or end")
        deadline = clock.next_deadline()
        if deadline is not None:
            clock.set(deadline)


def test_alock_times_out_after_wait_on_the_fake_clock(app: Hora, clock: FakeClock) -> None:
    assert app.try_lock("export", ttl=600) is not None

    async def main() -> None:
        async def enter() -> None:
            async with app.alock("export", wait=5):
                pytest.fail("the lock is held")

        task: asyncio.Task[object] = asyncio.ensure_future(enter())
        await drive(clock, task)
        with pytest.raises(LockTimeout, match="after 5s"):
            task.result()

    asyncio.run(main())
    assert later(5) <= clock.now() < later(5.1)


def test_alock_gets_a_crashed_holders_lock_once_it_expires(app: Hora,
                                                           clock: FakeClock) -> None:
    crashed = app.try_lock("export", ttl=3)  # never released: its process died
    assert crashed is not None
    got: list[Lease] = []

    async def main() -> None:
        async def enter() -> None:
            async with app.alock("export", ttl=30, wait=10) as lease:
                got.append(lease)
                assert lease.valid

        task: asyncio.Task[object] = asyncio.ensure_future(enter())
        await drive(clock, task)
        task.result()

    asyncio.run(main())
    (lease,) = got
    assert lease.token == 2 and lease.acquired_at >= later(3)
    assert clock.now() < later(3.6)  # found within one pause of the expiry
    assert lease.released
    rec = app.get_lock("export")
    assert rec is not None and rec.owner is None and rec.token == 2


# -- fencing ----------------------------------------------------------------------------------


class Ledger:
    """A resource that checks fencing tokens: it remembers the highest token it accepted and
    refuses writes that carry an older one."""

    def __init__(self) -> None:
        self.highest = 0
        self.entries: list[tuple[int, str]] = []

    def write(self, token: int, entry: str) -> None:
        if token < self.highest:
            raise StaleRecord(f"token {token} is older than {self.highest}")
        self.highest = token
        self.entries.append((token, entry))


def write_if_current(app: Hora, lease: Lease, ledger: Ledger, entry: str) -> None:
    """The pattern for a resource in the same database: compare the lease's token with the
    lock's latest (ideally in the transaction that writes)."""
    rec = app.get_lock(lease.name)
    if rec is None or rec.token != lease.token or not rec.held_at(app.clock.now()):
        raise StaleRecord(f"lease {lease.token} of {lease.name!r} no longer holds the lock")
    ledger.write(lease.token, entry)


def test_a_stale_holder_is_refused_by_the_fencing_token(app: Hora, clock: FakeClock) -> None:
    ledger = Ledger()
    a = app.try_lock("ledger", ttl=10, owner="a")
    assert a is not None
    write_if_current(app, a, ledger, "a: first")
    clock.advance(15)  # a stalls (a GC pause, a frozen VM) past its ttl...
    b = app.try_lock("ledger", ttl=10, owner="b")  # ...and b takes over
    assert b is not None and b.token > a.token
    write_if_current(app, b, ledger, "b: first")
    # a wakes up still believing it holds the lock: both checks refuse it.
    with pytest.raises(StaleRecord, match="no longer holds"):
        write_if_current(app, a, ledger, "a: late")
    with pytest.raises(StaleRecord, match="older"):
        ledger.write(a.token, "a: late")
    assert ledger.entries == [(1, "a: first"), (2, "b: first")]


# -- leader election --------------------------------------------------------------------------


async def settle(clock: FakeClock, *electors: LeaderElection) -> None:
    """Wait until every elector has finished its round and sleeps until after now."""
    def asleep() -> bool:
        return all(e.next_check is not None and e.next_check > clock.now() for e in electors)
    await await_condition(asleep, message="the electors to go back to sleep")


async def tick(clock: FakeClock, *electors: LeaderElection) -> None:
    """One step of the fake clock: to the earliest elector's next round, and that round."""
    await settle(clock, *electors)
    clock.set(min(e.next_check for e in electors if e.next_check is not None))
    await settle(clock, *electors)


def recorder(events: list[tuple[str, str, int]], who: str
             ) -> tuple[Callable[[Lease], None], Callable[[Lease], Awaitable[None]]]:
    def elected(lease: Lease) -> None:
        events.append((who, "elected", lease.token))

    async def lost(lease: Lease) -> None:  # a callback may be async
        events.append((who, "lost", lease.token))

    return elected, lost


def test_a_crashed_leader_is_replaced_after_its_ttl(app: Hora, clock: FakeClock) -> None:
    events: list[tuple[str, str, int]] = []

    async def main() -> None:
        a = LeaderElection(app, "scheduler", ttl=15, owner="a")
        b = LeaderElection(app, "scheduler", ttl=15, owner="b")
        ta = asyncio.ensure_future(a.run(*recorder(events, "a")))
        await settle(clock, a)
        tb = asyncio.ensure_future(b.run(*recorder(events, "b")))
        await settle(clock, a, b)
        assert a.is_leader and a.token == 1 and not b.is_leader and b.token is None
        for _ in range(6):  # 30 s: a renews every 5 s; b keeps asking
            await tick(clock, a, b)
            assert a.is_leader and not b.is_leader
        held = app.get_lock("scheduler")
        assert held is not None and held.owner == "a" and held.expires_at > later(30)

        a.stop(release=False)  # a crash: no more renewals, and no release
        await ta
        assert not a.is_leader
        while not b.is_leader:
            await tick(clock, b)
        assert held.expires_at <= clock.now() < held.expires_at + timedelta(seconds=5)
        assert b.token == 2
        b.stop()
        await tb

    asyncio.run(main())
    assert events == [("a", "elected", 1), ("a", "lost", 1), ("b", "elected", 2),
                      ("b", "lost", 2)]
    rec = app.get_lock("scheduler")
    assert rec is not None and rec.owner is None  # b's stop released the lock


def test_a_refused_renewal_ends_the_term_and_campaigning_resumes(app: Hora,
                                                                 clock: FakeClock) -> None:
    events: list[tuple[str, str, int]] = []

    async def main() -> None:
        a = LeaderElection(app, "scheduler", ttl=15, owner="a")
        ta = asyncio.ensure_future(a.run(*recorder(events, "a")))
        await settle(clock, a)
        assert a.is_leader and a.token == 1
        # a freezes past its ttl; before it runs again, another node takes the lock.
        clock.advance(20)
        assert not a.is_leader  # by the clock, even before its loop notices
        intruder = app.try_lock("scheduler", owner="intruder")
        assert intruder is not None and intruder.token == 2
        await settle(clock, a)  # a's renewal is refused: on_lost, back to campaigning
        assert events == [("a", "elected", 1), ("a", "lost", 1)]
        for _ in range(3):
            await tick(clock, a)
            assert not a.is_leader
        assert intruder.release()
        await tick(clock, a)
        assert a.is_leader and a.token == 3
        a.stop()
        await ta

    asyncio.run(main())
    assert events == [("a", "elected", 1), ("a", "lost", 1), ("a", "elected", 3),
                      ("a", "lost", 3)]


def test_stop_releases_so_the_next_leader_need_not_wait(app: Hora, clock: FakeClock) -> None:
    async def main() -> None:
        a = LeaderElection(app, "scheduler", ttl=15, owner="a")
        b = LeaderElection(app, "scheduler", ttl=15, owner="b")
        ta = asyncio.ensure_future(a.run())
        await settle(clock, a)
        tb = asyncio.ensure_future(b.run())
        await settle(clock, a, b)
        a.stop()
        await ta
        await tick(clock, b)
        assert b.is_leader and b.token == 2 and clock.now() == later(5)
        b.stop()
        await tb

    asyncio.run(main())


def test_one_elector_runs_once_at_a_time(app: Hora, clock: FakeClock) -> None:
    async def main() -> None:
        a = LeaderElection(app, "scheduler", ttl=15)
        ta = asyncio.ensure_future(a.run())
        await settle(clock, a)
        with pytest.raises(RuntimeError, match="already running"):
            await a.run()
        assert a.is_leader
        a.stop()
        await ta
        assert not a.is_leader

    asyncio.run(main())


def test_a_failing_callback_does_not_stop_the_election(app: Hora, clock: FakeClock,
                                                       caplog: pytest.LogCaptureFixture,
                                                       ) -> None:
    def elected(lease: Lease) -> None:
        raise ValueError("callback bug")

    async def main() -> None:
        a = LeaderElection(app, "scheduler", ttl=15)
        ta = asyncio.ensure_future(a.run(on_elected=elected))
        await settle(clock, a)
        await tick(clock, a)
        assert a.is_leader
        a.stop()
        await ta

    asyncio.run(main())
    assert "callback bug" in caplog.text


def test_campaign_once_for_cron_like_singletons(app: Hora, clock: FakeClock) -> None:
    a = LeaderElection(app, "cleanup", ttl=60, owner="a")
    b = LeaderElection(app, "cleanup", ttl=60, owner="b")
    assert a.campaign_once() and a.token == 1
    assert not b.campaign_once()
    clock.advance(30)
    assert a.campaign_once() and not b.campaign_once()  # renewed: a stays leader
    clock.advance(61)  # a missed its renewal
    assert not a.is_leader
    assert b.campaign_once() and b.token == 2
    assert not a.campaign_once() and a.lease is None  # renewal refused: the term is over
    assert not a.campaign_once()
    assert b.resign() and not b.is_leader
    assert a.campaign_once() and a.token == 3
    a.stop()  # not running: stop releases at once
    rec = app.get_lock("cleanup")
    assert rec is not None and rec.owner is None and rec.token == 3


# -- many processes on one PostgreSQL ---------------------------------------------------------


SECTIONS = "lock_sections"


@pytest.mark.slow
def test_processes_contending_for_a_lock_never_overlap(pg_schema_url: str,
                                                       tmp_path: Path) -> None:
    """Three processes take one lock 15 times each; inside, each does a read-then-write of a
    shared counter and records its critical section (monotonic ns, shared by the machine)."""
    import psycopg

    Hora(pg_schema_url).close()  # migrate once, before the contenders start
    with psycopg.connect(pg_schema_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {SECTIONS} (token bigint PRIMARY KEY, proc text NOT NULL,"
                     " start_ns bigint NOT NULL, end_ns bigint NOT NULL)")
        conn.execute("CREATE TABLE lock_counter (n integer NOT NULL)")
        conn.execute("INSERT INTO lock_counter VALUES (0)")
        conn.execute("CREATE TABLE lock_ready (proc text PRIMARY KEY)")
        conn.execute("CREATE TABLE lock_done (proc text PRIMARY KEY)")
    rounds = 15
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    procs = []
    for i in range(3):
        err = (tmp_path / f"p{i}.err").open("wb")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_locks", pg_schema_url, f"p{i}",
             str(rounds)], cwd=REPO, env=env, stderr=err), err))
    for proc, err in procs:
        assert proc.wait(120) == 0, (tmp_path / Path(err.name).name).read_text()
        err.close()
    with psycopg.connect(pg_schema_url) as conn:
        rows = conn.execute(f"SELECT token, proc, start_ns, end_ns FROM {SECTIONS} "
                            "ORDER BY start_ns").fetchall()
        (counter,) = conn.execute("SELECT n FROM lock_counter").fetchone() or (None,)
    assert len(rows) == 3 * rounds and counter == 3 * rounds
    assert {r[1] for r in rows} == {"p0", "p1", "p2"}
    tokens = [r[0] for r in rows]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)  # strictly increasing
    for before, after in itertools.pairwise(rows):
        assert before[3] <= after[2], f"sections {before} and {after} overlap"


def _contend(url: str, proc: str, rounds: int) -> None:
    """The contender: take the lock ``rounds`` times, each time bump the counter by a read
    and a separate write (lost updates would show an overlap) and record the section."""
    import psycopg

    app = Hora(url)
    with psycopg.connect(url, autocommit=True) as conn:
        # Start together, so the contenders really contend.
        conn.execute("INSERT INTO lock_ready VALUES (%s)", (proc,))
        wait_for_condition(lambda: conn.execute("SELECT count(*) FROM lock_ready")
                           .fetchone() == (3,), timeout=60, interval=0.01)
        def handed_over(token: int) -> bool:
            record = app.get_lock("shared")
            if record is not None and record.token > token:
                return True
            (others_done,) = conn.execute("SELECT count(*) FROM lock_done WHERE proc <> %s",
                                          (proc,)).fetchone() or (0,)
            return bool(others_done == 2)

        for _ in range(rounds):
            with app.lock("shared", ttl=10, wait=60) as lease:
                start = time.monotonic_ns()
                row = conn.execute("SELECT n FROM lock_counter").fetchone()
                assert row is not None
                conn.execute("UPDATE lock_counter SET n = %s", (row[0] + 1,))
                end = time.monotonic_ns()
                conn.execute(f"INSERT INTO {SECTIONS} VALUES (%s, %s, %s, %s)",
                             (lease.token, proc, start, end))
            # Hand over: wait until another contender has taken the lock (or all the others
            # are done), so the sections interleave instead of one process hogging the lock.
            wait_for_condition(lambda token=lease.token: handed_over(token), timeout=60,
                               interval=0.005)
        conn.execute("INSERT INTO lock_done VALUES (%s)", (proc,))
    app.close()


if __name__ == "__main__":
    _contend(sys.argv[1], sys.argv[2], int(sys.argv[3]))
