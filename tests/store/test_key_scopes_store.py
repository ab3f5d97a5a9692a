"""The store's part of the scope model, on SQLite and PostgreSQL: key expiry, the last
operator key, webhook secret rotation, cursors no listing returned, migration 0007's upgrade
of the default tenant's admin keys to operators."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from hora.errors import Conflict, InvalidPayload, NotFound
from hora.models import ApiKey, JobFilter
from hora.store import Store, open_store
from hora.store.queries import load_migrations
from hora.store.sqlite import _statements
from tests.store.test_conformance import raw
from tests.store.test_tenants import T0, api_key, tenant


def operator(tenant_id: str = "default", **kw: object) -> ApiKey:
    return replace(api_key(tenant_id, scopes=("operator",)), **kw)  # type: ignore[arg-type]


def test_a_key_keeps_its_expiry(store: Store) -> None:
    key = replace(api_key(), expires_at=T0 + timedelta(days=30))
    assert store.insert_api_key(key) == key
    assert store.api_key_by_hash(key.key_hash) == key
    assert store.get_api_key(key.id) == key
    assert store.list_api_keys(tenant_id="acme").items == [key]
    assert key.live_at(T0 + timedelta(days=30) - timedelta(microseconds=1))
    assert not key.live_at(T0 + timedelta(days=30))
    with pytest.raises(NotFound):
        store.get_api_key("nope")


def test_the_last_live_operator_key_cannot_be_revoked(store: Store) -> None:
    first = store.insert_api_key(operator())
    tenant_admin = store.insert_api_key(api_key(scopes=("admin",)))
    with pytest.raises(Conflict, match="last operator key"):
        store.revoke_api_key(first.id, now=T0)
    assert store.get_api_key(first.id).revoked_at is None  # nothing written
    # A tenant admin is not an operator: revoking it is fine, and does not help.
    store.revoke_api_key(tenant_admin.id, now=T0)
    # An expired or revoked operator key does not count as another one.
    store.insert_api_key(operator(expires_at=T0))
    with pytest.raises(Conflict):
        store.revoke_api_key(first.id, now=T0)
    second = store.insert_api_key(operator("acme", expires_at=T0 + timedelta(days=1)))
    assert store.revoke_api_key(first.id, now=T0).revoked_at == T0
    with pytest.raises(Conflict):
        store.revoke_api_key(second.id, now=T0)
    # Revoking a revoked key again changes nothing and is no conflict.
    assert store.revoke_api_key(first.id, now=T0 + timedelta(hours=1)).revoked_at == T0
    # The CLI may force it (it can always mint another operator key).
    assert store.revoke_api_key(second.id, now=T0, allow_last_operator=True).revoked_at == T0


def test_two_racing_revocations_leave_one_operator_key(store: Store) -> None:
    keys = [store.insert_api_key(operator()) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def revoke(key: ApiKey) -> None:
        barrier.wait()
        try:
            store.revoke_api_key(key.id, now=T0)
            outcomes.append("revoked")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=revoke, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["refused", "revoked"]
    live = [k for k in (store.get_api_key(k.id) for k in keys) if k.live_at(T0)]
    assert len(live) == 1


def test_rotating_the_webhook_secret_replaces_only_the_secret(store: Store) -> None:
    before = store.insert_tenant(tenant(max_pending_jobs=5))
    later = T0 + timedelta(hours=1)
    after = store.set_webhook_secret("acme", "whsec_rotated", now=later)
    assert after == replace(before, webhook_secret="whsec_rotated", updated_at=later)
    assert store.get_tenant("acme") == after
    with pytest.raises(NotFound):
        store.set_webhook_secret("nobody", "whsec_x", now=later)


@pytest.mark.parametrize("bad", ["", "garbage", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
                                 "' OR 1=1 --", "0" * 500])
def test_a_cursor_no_listing_returned_is_refused(store: Store, bad: str) -> None:
    for listing in (lambda: store.list_jobs(JobFilter(tenant_id="acme"), cursor=bad),
                    lambda: store.list_schedules(tenant_id="acme", cursor=bad),
                    lambda: store.list_api_keys(cursor=bad),
                    lambda: store.list_tenants(cursor=bad.upper() or " ")):
        with pytest.raises(InvalidPayload, match=r"^cursor: "):
            listing()


def _at_version_6(database_url: str) -> None:
    """Lay out the schema as it was before 0007, as an upgrade finds it."""
    sqlite = database_url.startswith("sqlite:")
    dialect = "sqlite" if sqlite else "postgres"
    with raw(database_url) as conn:
        conn.execute("CREATE TABLE hora_migrations (version integer PRIMARY KEY, "
                     "name text NOT NULL, applied_at " + ("integer" if sqlite else "timestamptz")
                     + " NOT NULL)")
        for mig in load_migrations(dialect)[:6]:
            if sqlite:
                for stmt in _statements(mig.sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO hora_migrations VALUES (?, ?, 0)",
                             (mig.version, mig.name))
            else:
                conn.execute(mig.sql.encode())
                conn.execute("INSERT INTO hora_migrations VALUES (%s, %s, now())",
                             (mig.version, mig.name))
        rows = [("boot", "default", '["admin"]', None), ("acme-admin", "acme", '["admin"]', None),
                ("writer", "default", '["read","write"]', None),
                ("gone", "default", '["admin"]', 1)]
        for key_id, tenant_id, scopes, revoked in rows:
            if sqlite:
                conn.execute("INSERT INTO hora_api_keys VALUES (?, ?, NULL, 'p', ?, ?, 0, ?)",
                             (key_id, tenant_id, f"h-{key_id}", scopes, revoked))
            else:
                conn.execute(
                    "INSERT INTO hora_api_keys VALUES (%s, %s, NULL, 'p', %s, "
                    "ARRAY(SELECT json_array_elements_text(%s::json)), now(), "
                    "CASE WHEN %s::int IS NULL THEN NULL ELSE now() END)",
                    (key_id, tenant_id, f"h-{key_id}", scopes, revoked))


def test_upgrading_to_0007_makes_the_default_tenants_admin_keys_operators(
        database_url: str) -> None:
    _at_version_6(database_url)
    store = open_store(database_url)  # applies 0007 and every later migration
    try:
        applied = store.applied_migrations()  # type: ignore[attr-defined]
        assert applied == [m.version for m in load_migrations(
            "sqlite" if database_url.startswith("sqlite:") else "postgres")]
        assert 7 in applied
        assert store.get_api_key("boot").scopes == ("admin", "operator")
        assert store.get_api_key("acme-admin").scopes == ("admin",)
        assert store.get_api_key("writer").scopes == ("read", "write")
        assert store.get_api_key("gone").scopes == ("admin",)
        assert store.get_api_key("boot").expires_at is None
    finally:
        store.close()
