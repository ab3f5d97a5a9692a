"""Distributed locks in the store: grants, expiry, renewal, release and fencing tokens, on
both stores. Every instant is the caller's (``now``), never the database's clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from hora.models import LockRecord
from hora.store import Store
from tests.store.test_conformance import raw

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=30)
US = timedelta(microseconds=1)


def acquire(store: Store, owner: str, *, name: str = "nightly", tenant: str = "acme",
            now: datetime = T0, ttl: timedelta = TTL) -> int | None:
    return store.acquire_lock(tenant, name, owner=owner, now=now, expires_at=now + ttl)


def renew(store: Store, owner: str, token: int, *, name: str = "nightly",
          tenant: str = "acme", now: datetime = T0, ttl: timedelta = TTL) -> bool:
    return store.renew_lock(tenant, name, owner=owner, token=token, now=now,
                            expires_at=now + ttl)


def release(store: Store, owner: str, token: int, *, name: str = "nightly",
            tenant: str = "acme") -> bool:
    return store.release_lock(tenant, name, owner=owner, token=token)


def lock(store: Store, name: str = "nightly", tenant: str = "acme") -> LockRecord:
    rec = store.get_lock(tenant, name)
    assert rec is not None
    return rec


# -- schema -----------------------------------------------------------------------------------


def test_migration_creates_the_table_with_its_checks(store: Store, database_url: str) -> None:
    assert 6 in store.applied_migrations()  # type: ignore[attr-defined]
    assert acquire(store, "a") == 1
    with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
        conn.execute("UPDATE hora_locks SET token = 0")
    with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        conn.execute("INSERT INTO hora_locks SELECT * FROM hora_locks")
    assert lock(store).token == 1


# -- grant and refuse -------------------------------------------------------------------------


def test_a_free_lock_is_granted_with_token_one(store: Store) -> None:
    assert store.get_lock("acme", "nightly") is None
    assert acquire(store, "a") == 1
    assert lock(store) == LockRecord(tenant_id="acme", name="nightly", owner="a", token=1,
                                     acquired_at=T0, expires_at=T0 + TTL)
    assert lock(store).held_at(T0 + TTL - US) and not lock(store).held_at(T0 + TTL)


def test_a_held_lock_is_refused_to_everybody_its_owner_included(store: Store) -> None:
    assert acquire(store, "a") == 1
    assert acquire(store, "b", now=T0 + TTL - US) is None
    assert acquire(store, "a", now=T0 + timedelta(seconds=1)) is None  # not re-entrant
    assert lock(store) == LockRecord("acme", "nightly", "a", 1, T0, T0 + TTL)


def test_an_expired_lock_goes_to_the_next_owner_with_the_next_token(store: Store) -> None:
    assert acquire(store, "a") == 1
    assert acquire(store, "b", now=T0 + TTL) == 2  # expiry is inclusive: free at expires_at
    assert lock(store) == LockRecord("acme", "nightly", "b", 2, T0 + TTL, T0 + 2 * TTL)
    # The owner whose grant expired is just another owner now.
    assert acquire(store, "a", now=T0 + 2 * TTL - US) is None
    assert acquire(store, "a", now=T0 + 2 * TTL) == 3


# -- renew ------------------------------------------------------------------------------------


def test_the_holder_renews_and_keeps_others_out_longer(store: Store) -> None:
    assert acquire(store, "a") == 1
    later = T0 + timedelta(seconds=20)
    assert renew(store, "a", 1, now=later)
    assert lock(store).expires_at == later + TTL and lock(store).acquired_at == T0
    assert acquire(store, "b", now=T0 + TTL) is None  # the first grant's end has passed
    assert acquire(store, "b", now=later + TTL) == 2


def test_only_the_unexpired_current_grant_renews(store: Store) -> None:
    assert acquire(store, "a") == 1
    assert not renew(store, "b", 1)  # wrong owner
    assert not renew(store, "a", 2)  # wrong token
    assert not renew(store, "a", 1, now=T0 + TTL)  # expired, although nobody took over
    assert lock(store).expires_at == T0 + TTL
    assert acquire(store, "b", now=T0 + TTL) == 2
    assert not renew(store, "a", 1, now=T0 + TTL)  # replaced
    assert renew(store, "b", 2, now=T0 + TTL)


# -- release ----------------------------------------------------------------------------------


def test_release_frees_the_lock_and_keeps_the_token_count(store: Store) -> None:
    assert acquire(store, "a") == 1
    assert release(store, "a", 1)
    freed = lock(store)
    assert freed.owner is None and freed.token == 1 and freed.expires_at <= T0
    assert not freed.held_at(T0)
    assert acquire(store, "b") == 2  # at once, at the same instant
    assert lock(store).owner == "b"


def test_only_the_current_grant_releases(store: Store) -> None:
    assert acquire(store, "a") == 1
    assert not release(store, "b", 1)  # wrong owner
    assert not release(store, "a", 2)  # wrong token
    assert lock(store).owner == "a"
    assert release(store, "a", 1)
    assert not release(store, "a", 1)  # twice
    assert acquire(store, "b") == 2
    assert not release(store, "a", 1)  # a stale holder cannot free the new one's lock
    assert not renew(store, "a", 1)
    assert lock(store).owner == "b"


def test_an_expired_grant_nobody_took_over_may_still_be_released(store: Store) -> None:
    assert acquire(store, "a") == 1
    assert release(store, "a", 1)  # (no now: a release only needs to be the latest grant)
    assert acquire(store, "b", now=T0 + timedelta(days=1)) == 2


# -- tokens -----------------------------------------------------------------------------------


def test_tokens_grow_by_one_per_grant_across_owners_releases_and_expiries(
        store: Store) -> None:
    tokens: list[int] = []
    now = T0
    for i in range(12):
        owner = f"node-{i % 3}"
        token = acquire(store, owner, now=now)
        assert token is not None
        tokens.append(token)
        if i % 2 == 0:
            assert release(store, owner, token)
        else:
            now += TTL  # let it expire instead
    assert tokens == list(range(1, 13))
    assert lock(store).token == 12


def test_locks_are_separate_per_name_and_per_tenant(store: Store) -> None:
    assert acquire(store, "a", tenant="acme", name="x") == 1
    assert acquire(store, "a", tenant="acme", name="y") == 1
    assert acquire(store, "b", tenant="globex", name="x") == 1
    assert acquire(store, "c", tenant="globex", name="x") is None
    assert not release(store, "a", 1, tenant="globex", name="x")
    assert not renew(store, "a", 1, tenant="globex", name="x")
    assert release(store, "a", 1, tenant="acme", name="x")
    assert lock(store, "x", "globex").owner == "b"
    assert acquire(store, "c", tenant="acme", name="x") == 2
    assert lock(store, "x", "globex").token == 1
    assert store.get_lock("initech", "x") is None


def test_names_are_compared_exactly(store: Store) -> None:
    for name in ("Nightly", "nightly ", "nïghtly", "night/ly", "n" * 200):
        assert acquire(store, "a", name=name) == 1
    assert acquire(store, "a") == 1
    assert lock(store, "nïghtly").name == "nïghtly"


# -- races ------------------------------------------------------------------------------------


def race(n: int, attempt: Callable[[int], int | None]) -> list[int | None]:
    """Run ``attempt(i)`` in ``n`` threads released together; the results by thread."""
    barrier = threading.Barrier(n)
    results: list[int | None] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            results[i] = attempt(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.mark.parametrize("existing", ["new", "released", "expired"])
def test_ten_threads_racing_for_a_lock_get_exactly_one_token(store: Store,
                                                             existing: str) -> None:
    now = T0
    if existing != "new":
        assert acquire(store, "old") == 1
        if existing == "released":
            assert release(store, "old", 1)
        else:
            now = T0 + TTL
    results = race(10, lambda i: acquire(store, f"node-{i}", now=now))
    winners = [(i, t) for i, t in enumerate(results) if t is not None]
    expected = 1 if existing == "new" else 2
    assert len(winners) == 1 and winners[0][1] == expected, results
    assert lock(store).owner == f"node-{winners[0][0]}"


def test_fifty_rounds_of_racing_grant_each_token_exactly_once(store: Store) -> None:
    """All threads race, the winner releases, again: the tokens are 1..50, no gap, no twin."""
    n, rounds = 10, 50
    start, tried = threading.Barrier(n), threading.Barrier(n)
    won: list[list[int]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []
    guard = threading.Lock()

    def contend(i: int) -> None:
        owner = f"node-{i}"
        try:
            for r in range(rounds):
                start.wait(30)  # the previous round's winner has released
                token = acquire(store, owner)
                tried.wait(30)  # everybody has tried: the winner may release
                if token is not None:
                    with guard:
                        won[r].append(token)
                    assert release(store, owner, token)
        except BaseException as e:
            errors.append(e)
            start.abort()
            tried.abort()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert [len(w) for w in won] == [1] * rounds, won
    assert [w[0] for w in won] == list(range(1, rounds + 1))
    assert lock(store).token == rounds and lock(store).owner is None
