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
from hora.store import Store
from hora.store.queries import load_migrations
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


def test_migration_0007_makes_the_default_tenants_admin_keys_operators(
        store: Store, database_url: str) -> None:
    assert 7 in store.applied_migrations()  # type: ignore[attr-defined]
    boot = store.insert_api_key(api_key("default", scopes=("admin",), name="admin"))
    other_admin = store.insert_api_key(api_key("acme", scopes=("admin",)))
    writer = store.insert_api_key(api_key("default", scopes=("read", "write")))
    gone = store.insert_api_key(api_key("default", scopes=("admin",)))
    store.revoke_api_key(gone.id, now=T0)
    (mig,) = [m for m in load_migrations(store.dialect) if m.version == 7]
    upgrade = mig.sql[mig.sql.index("UPDATE"):]
    for _ in range(2):  # idempotent: a second run adds nothing
        with raw(database_url) as conn:
            conn.execute(upgrade)
    assert store.get_api_key(boot.id).scopes == ("admin", "operator")
    assert store.get_api_key(other_admin.id).scopes == ("admin",)
    assert store.get_api_key(writer.id).scopes == ("read", "write")
    assert store.get_api_key(gone.id).scopes == ("admin",)
