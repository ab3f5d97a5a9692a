"""Tenants, API keys and HTTP idempotency records, checked on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hora.errors import Conflict, NotFound
from hora.ids import new_id
from hora.models import ApiKey, IdempotencyRecord, Schedule, Tenant
from hora.store import Outcome, Store, open_store
from tests.store.test_conformance import claim, insert, new_job, raw

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TTL = timedelta(hours=24)  # how long an idempotency record answers
STUCK = timedelta(minutes=5)  # how long a request may hold its key in progress


def tenant(tenant_id: str = "acme", *, name: str = "Acme", now: datetime = T0,
           max_pending_jobs: int | None = None, max_active_schedules: int | None = None,
           rate_limit: float | None = None) -> Tenant:
    return Tenant(id=tenant_id, name=name, webhook_secret=f"whsec_{tenant_id}",
                  max_pending_jobs=max_pending_jobs, max_active_schedules=max_active_schedules,
                  rate_limit=rate_limit, created_at=now, updated_at=now)


def api_key(tenant_id: str = "acme", *, scopes: tuple[str, ...] = ("read", "write"),
            name: str | None = "ci", now: datetime = T0) -> ApiKey:
    key_id = new_id()
    return ApiKey(id=key_id, tenant_id=tenant_id, name=name, prefix=f"hora_{key_id[-6:]}",
                  key_hash=f"sha256-{key_id}", scopes=scopes, created_at=now)


def schedule(tenant_id: str, state: str = "active") -> Schedule:
    return Schedule(
        id=new_id(), tenant_id=tenant_id, name=None, task="t", payload={},
        trigger={"cron": "* * * * *"}, queue="default", priority=0, max_attempts=3,
        retry_policy=None, timeout=None, correlation_id=None, misfire_policy="skip",
        misfire_grace=60, catchup_limit=10, overlap_policy="allow", state=state,
        next_fire_at=T0, cursor=T0, created_at=T0, updated_at=T0)


def begin(store: Store, key: str = "k1", fingerprint: str = "fp1", *, now: datetime = T0,
          tenant_id: str = "acme") -> IdempotencyRecord | None:
    return store.begin_idempotent(tenant_id, key, fingerprint, now=now,
                                  expired_before=now - TTL, stuck_before=now - STUCK)


# -- schema -----------------------------------------------------------------------------------


def test_migration_creates_the_tables_with_their_checks(store: Store, database_url: str) -> None:
    assert 4 in store.applied_migrations()  # type: ignore[attr-defined]
    store.insert_tenant(tenant())
    for bad in ("UPDATE hora_tenants SET max_pending_jobs = 0",
                "UPDATE hora_tenants SET max_active_schedules = -1",
                "UPDATE hora_tenants SET rate_limit = 0"):
        with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
            conn.execute(bad)
    assert store.get_tenant("acme") == tenant()


# -- tenants ----------------------------------------------------------------------------------


def test_insert_and_get_tenant_round_trip(store: Store) -> None:
    t = tenant(max_pending_jobs=100, max_active_schedules=5, rate_limit=2.5)
    assert store.insert_tenant(t) == t
    assert store.get_tenant("acme") == t
    unlimited = tenant("free")
    assert store.insert_tenant(unlimited) == unlimited
    got = store.get_tenant("free")
    assert got.max_pending_jobs is None and got.max_active_schedules is None
    assert got.rate_limit is None


def test_an_integer_rate_limit_comes_back_as_a_float(store: Store) -> None:
    store.insert_tenant(tenant(rate_limit=3))
    got = store.get_tenant("acme").rate_limit
    assert got == 3.0 and isinstance(got, float)


def test_duplicate_tenant_id_conflicts_and_keeps_the_first(store: Store) -> None:
    store.insert_tenant(tenant(name="first"))
    with pytest.raises(Conflict):
        store.insert_tenant(tenant(name="second"))
    assert store.get_tenant("acme").name == "first"


def test_unknown_tenant_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_tenant("nobody")
    with pytest.raises(NotFound):
        store.update_tenant(tenant("nobody"))


def test_ensure_tenant_inserts_once_and_returns_the_stored_one(store: Store) -> None:
    first = tenant("default", name="Default")
    assert store.ensure_tenant(first) == first
    again = store.ensure_tenant(replace(first, name="changed", webhook_secret="whsec_other",
                                        updated_at=T0 + timedelta(days=1)))
    assert again == first
    assert store.list_tenants().items == [first]


def test_update_tenant_writes_name_quotas_and_rate_only(store: Store) -> None:
    store.insert_tenant(tenant(max_pending_jobs=10))
    later = T0 + timedelta(hours=1)
    asked = replace(tenant(), name="Acme Corp", webhook_secret="whsec_new",
                    max_pending_jobs=None, max_active_schedules=3, rate_limit=0.5,
                    created_at=later, updated_at=later)
    got = store.update_tenant(asked)
    assert got == replace(asked, webhook_secret="whsec_acme", created_at=T0)
    assert store.get_tenant("acme") == got


def test_list_tenants_pages_by_id(store: Store) -> None:
    ids = [f"t{i:02d}" for i in range(7)]
    for tenant_id in reversed(ids):
        store.insert_tenant(tenant(tenant_id))
    page = store.list_tenants(limit=3)
    seen = [t.id for t in page.items]
    pages = 1
    while page.next_cursor:
        assert page.next_cursor == seen[-1]
        page = store.list_tenants(limit=3, cursor=page.next_cursor)
        seen += [t.id for t in page.items]
        pages += 1
    assert seen == ids and pages == 3  # ascending, nothing twice, nothing missing
    exact = store.list_tenants(limit=7)
    assert len(exact.items) == 7 and exact.next_cursor is None
    assert store.list_tenants(cursor="t06").items == []


def test_list_tenants_of_an_empty_store(store: Store) -> None:
    page = store.list_tenants()
    assert page.items == [] and page.next_cursor is None


# -- API keys ---------------------------------------------------------------------------------


def test_insert_api_key_and_find_it_by_hash(store: Store) -> None:
    key = api_key(scopes=("admin",), name=None)
    assert store.insert_api_key(key) == key
    assert store.api_key_by_hash(key.key_hash) == key
    assert store.api_key_by_hash("sha256-unknown") is None
    none = api_key(scopes=())
    assert store.insert_api_key(none).scopes == ()
    assert store.api_key_by_hash(none.key_hash) == none


def test_duplicate_api_key_id_or_hash_conflicts(store: Store) -> None:
    key = store.insert_api_key(api_key())
    with pytest.raises(Conflict):
        store.insert_api_key(replace(api_key(), key_hash=key.key_hash))
    with pytest.raises(Conflict):
        store.insert_api_key(replace(api_key(), id=key.id))
    assert store.count_api_keys() == 1


def test_count_api_keys_counts_revoked_ones(store: Store) -> None:
    assert store.count_api_keys() == 0
    a = store.insert_api_key(api_key())
    store.insert_api_key(api_key("other"))
    store.revoke_api_key(a.id, now=T0)
    assert store.count_api_keys() == 2


def test_revoked_key_is_still_found_with_its_revocation(store: Store) -> None:
    key = store.insert_api_key(api_key())
    revoked_at = T0 + timedelta(minutes=5)
    got = store.revoke_api_key(key.id, now=revoked_at)
    assert got == replace(key, revoked_at=revoked_at)
    assert store.api_key_by_hash(key.key_hash) == got
    # Idempotent: revoking again keeps the first instant.
    assert store.revoke_api_key(key.id, now=revoked_at + timedelta(hours=1)) == got
    assert store.api_key_by_hash(key.key_hash) == got


def test_revoking_an_unknown_key_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.revoke_api_key("nope", now=T0)


def test_list_api_keys_newest_first_per_tenant_and_across_pages(store: Store) -> None:
    acme = [store.insert_api_key(api_key("acme")).id for _ in range(5)]
    other = [store.insert_api_key(api_key("other")).id for _ in range(2)]
    store.revoke_api_key(acme[1], now=T0)  # revoked keys are listed too

    def walk(tenant_id: str | None, limit: int) -> list[str]:
        page = store.list_api_keys(tenant_id=tenant_id, limit=limit)
        seen = [k.id for k in page.items]
        while page.next_cursor:
            assert page.next_cursor == seen[-1]
            page = store.list_api_keys(tenant_id=tenant_id, limit=limit,
                                       cursor=page.next_cursor)
            seen += [k.id for k in page.items]
        return seen

    assert walk("acme", 2) == list(reversed(acme))
    assert walk("other", 1) == list(reversed(other))
    assert walk(None, 3) == list(reversed(acme + other))
    assert walk("nobody", 2) == []
    listed = store.list_api_keys(tenant_id="acme", limit=10).items
    assert [k.revoked_at is not None for k in listed] == [False, False, False, True, False]


# -- quota counts -----------------------------------------------------------------------------


def test_count_pending_jobs_is_bounded_and_per_tenant(store: Store) -> None:
    assert store.count_pending_jobs("acme", limit=10) == 0
    insert(store, *(new_job(tenant="acme") for _ in range(4)))
    insert(store, *(new_job(tenant="other") for _ in range(3)))
    assert store.count_pending_jobs("acme", limit=10) == 4
    assert store.count_pending_jobs("acme", limit=2) == 2  # a quota check needs no more
    assert store.count_pending_jobs("other", limit=10) == 3
    assert store.count_pending_jobs("nobody", limit=10) == 0


def test_count_pending_jobs_counts_running_and_retrying_but_not_finished(store: Store) -> None:
    insert(store, *(new_job(tenant="acme") for _ in range(4)))
    started, _ = claim(store, limit=3)
    assert len(started) == 3
    _, retrying, done = started
    store.finish_jobs([
        Outcome(retrying.id, retrying.attempt, "w1", "retrying", "failed", T0,
                due_at=T0 + timedelta(minutes=1)),
        Outcome(done.id, done.attempt, "w1", "succeeded", "succeeded", T0, result_json="1"),
    ], T0)
    # one scheduled, one running, one retrying; the succeeded one no longer counts
    assert store.count_pending_jobs("acme", limit=10) == 3
    # A reserved job (scheduled, but leased by a worker's timer) counts once.
    insert(store, new_job(tenant="acme", due=T0 + timedelta(seconds=10)))
    _, reserved = claim(store, "w2", limit=0, horizon=T0 + timedelta(seconds=30),
                        reserve_limit=10)
    assert len(reserved) == 1
    assert store.count_pending_jobs("acme", limit=10) == 4


def test_count_active_schedules_is_bounded_and_per_tenant(store: Store) -> None:
    assert store.count_active_schedules("acme", limit=10) == 0
    for _ in range(3):
        store.insert_schedule(schedule("acme"))
    store.insert_schedule(schedule("acme", state="paused"))
    store.insert_schedule(schedule("other"))
    assert store.count_active_schedules("acme", limit=10) == 3
    assert store.count_active_schedules("acme", limit=1) == 1
    assert store.count_active_schedules("other", limit=10) == 1
    assert store.count_active_schedules("nobody", limit=10) == 0


# -- idempotency records ----------------------------------------------------------------------


def test_idempotency_lifecycle(store: Store) -> None:
    # A fresh key is claimed.
    assert begin(store) is None
    # A second request meanwhile sees the first in progress (whatever its own fingerprint).
    t1 = T0 + timedelta(seconds=1)
    assert begin(store, fingerprint="fp2", now=t1) == IdempotencyRecord(
        "acme", "k1", "fp1", None, None, T0)
    # The first finishes; later requests get its response.
    store.finish_idempotent("acme", "k1", status=201, body='{"id":"j1"}')
    done = IdempotencyRecord("acme", "k1", "fp1", 201, '{"id":"j1"}', T0)
    assert begin(store, now=T0 + timedelta(hours=1)) == done
    # A finished record keeps its first response; abort leaves it alone.
    store.finish_idempotent("acme", "k1", status=500, body="late")
    store.abort_idempotent("acme", "k1")
    assert begin(store, now=T0 + timedelta(hours=2)) == done
    # Still answering just before it expires, claimable again once it has.
    assert begin(store, now=T0 + TTL) == done
    later = T0 + TTL + timedelta(microseconds=1)
    assert begin(store, fingerprint="fp3", now=later) is None
    assert begin(store, now=later + timedelta(seconds=1)) == IdempotencyRecord(
        "acme", "k1", "fp3", None, None, later)


def test_keys_are_per_tenant(store: Store) -> None:
    assert begin(store, tenant_id="acme") is None
    assert begin(store, tenant_id="other") is None
    store.finish_idempotent("other", "k1", status=200, body="other's")
    assert begin(store, tenant_id="acme") == IdempotencyRecord(
        "acme", "k1", "fp1", None, None, T0)
    assert begin(store, tenant_id="other") == IdempotencyRecord(
        "other", "k1", "fp1", 200, "other's", T0)


def test_a_request_stuck_in_progress_is_taken_over(store: Store) -> None:
    assert begin(store) is None
    assert begin(store, now=T0 + STUCK) is not None  # not stuck yet
    takeover = T0 + STUCK + timedelta(seconds=1)
    assert begin(store, fingerprint="fp2", now=takeover) is None
    assert begin(store, now=takeover) == IdempotencyRecord(
        "acme", "k1", "fp2", None, None, takeover)
    # A finished record is not "stuck", however old (until it expires).
    store.finish_idempotent("acme", "k1", status=200, body="ok")
    assert begin(store, now=takeover + STUCK * 10) == IdempotencyRecord(
        "acme", "k1", "fp2", 200, "ok", takeover)


def test_abort_frees_a_key_in_progress(store: Store) -> None:
    assert begin(store) is None
    store.abort_idempotent("acme", "k1")
    assert begin(store, fingerprint="fp2", now=T0 + timedelta(seconds=1)) is None
    store.abort_idempotent("acme", "never-seen")  # nothing to forget: no error


def test_finishing_an_unknown_key_does_nothing(store: Store) -> None:
    store.finish_idempotent("acme", "ghost", status=200, body="")
    assert begin(store, "ghost") is None


def test_purge_deletes_records_older_than_the_instant(store: Store) -> None:
    for i in range(4):
        assert begin(store, f"k{i}", now=T0 + timedelta(hours=i)) is None
    for i in (0, 2, 3):
        store.finish_idempotent("acme", f"k{i}", status=200, body="ok")
    # k0 (finished) and k1 (in progress) alike; not k2, created at the instant itself
    assert store.purge_idempotent(T0 + timedelta(hours=2)) == 2
    assert store.purge_idempotent(T0 + timedelta(hours=2)) == 0
    now = T0 + timedelta(hours=3)
    assert begin(store, "k0", fingerprint="new", now=now) is None  # purged: fresh again
    assert begin(store, "k1", fingerprint="new", now=now) is None
    assert begin(store, "k2", now=now) == IdempotencyRecord(
        "acme", "k2", "fp1", 200, "ok", T0 + timedelta(hours=2))
    assert begin(store, "k3", now=now) is not None


def test_ten_concurrent_begins_of_one_key_claim_it_once(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(10)]
    barrier = threading.Barrier(10)
    results: list[IdempotencyRecord | None] = []
    errors: list[BaseException] = []

    def go(s: Store, i: int) -> None:
        try:
            barrier.wait()
            results.append(begin(s, "race", f"fp{i}"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors
        assert len(results) == 10
        assert results.count(None) == 1
        seen = [r for r in results if r is not None]
        # Everyone else saw the one winner's record, in progress.
        assert len({(r.fingerprint, r.status, r.created_at) for r in seen}) == 1
        assert seen[0].status is None
    finally:
        for s in stores:
            s.close()


def test_ten_concurrent_takeovers_of_an_expired_key_claim_it_once(database_url: str) -> None:
    """The update path of the claim is as exclusive as the insert path."""
    stores = [open_store(database_url) for _ in range(10)]
    assert begin(stores[0], "race") is None
    stores[0].finish_idempotent("acme", "race", status=200, body="old")
    later = T0 + TTL * 2
    barrier = threading.Barrier(10)
    results: list[IdempotencyRecord | None] = []
    errors: list[BaseException] = []

    def go(s: Store, i: int) -> None:
        try:
            barrier.wait()
            results.append(begin(s, "race", f"fp{i}", now=later))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors
        assert results.count(None) == 1
        assert all(r is None or (r.status is None and r.created_at == later) for r in results)
    finally:
        for s in stores:
            s.close()
