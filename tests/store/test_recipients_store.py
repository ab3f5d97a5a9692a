"""Notification recipients on both stores: upsert (one and thousands at once), keyset
listing, tenant scoping, the unsubscribe token's hash and preferences."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hora.notify.model import Preferences, QuietHours, Recipient
from hora.store import Store
from hora.store.recipient_rows import token_hash

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def person(rid: str = "u1", tenant: str = "acme", **over: object) -> Recipient:
    base = Recipient(id=rid, tenant_id=tenant, timezone="Europe/Paris", locale="fr-FR",
                     quiet_hours=QuietHours.parse("21:00-08:00"), holidays="FR",
                     business_days_only=True, addresses={"email": "ada@example.com"},
                     preferences=Preferences.parse({"channels": {"log": False},
                                                    "categories": {"digest": {"email": False}}}),
                     data={"name": "Ada", "plan": {"tier": 2}})
    return replace(base, **over)  # type: ignore[arg-type]


def test_upsert_get_round_trips_every_field(store: Store) -> None:
    assert store.get_recipient("acme", "u1") is None
    assert store.upsert_recipients([person()], T0) == 1
    got = store.get_recipient("acme", "u1")
    assert got == replace(person(), created_at=T0, updated_at=T0)


def test_upsert_replaces_but_keeps_created_at_and_token(store: Store) -> None:
    store.upsert_recipients([person()], T0)
    assert store.set_unsubscribe_token("acme", "u1", token_hash("tok"))
    later = T0 + timedelta(hours=1)
    store.upsert_recipients([person(timezone="UTC", quiet_hours=None, addresses={})], later)
    got = store.get_recipient("acme", "u1")
    assert got is not None
    assert (got.timezone, got.quiet_hours, dict(got.addresses)) == ("UTC", None, {})
    assert (got.created_at, got.updated_at) == (T0, later)
    found = store.recipient_by_token_hash(token_hash("tok"))
    assert found is not None and found.id == "u1"


def test_tenants_are_apart(store: Store) -> None:
    store.upsert_recipients([person(), person(tenant="other", timezone="Asia/Tokyo")], T0)
    a, b = store.get_recipient("acme", "u1"), store.get_recipient("other", "u1")
    assert a is not None and b is not None and (a.timezone, b.timezone) == (
        "Europe/Paris", "Asia/Tokyo")
    assert store.delete_recipient("other", "u1")
    assert store.get_recipient("other", "u1") is None
    assert store.get_recipient("acme", "u1") is not None
    assert not store.delete_recipient("other", "u1")
    assert not store.set_unsubscribe_token("other", "u1", token_hash("x"))
    assert not store.update_preferences("other", "u1", Preferences(), T0)
    assert [r.id for r in store.list_recipients("other", after=None, limit=10)] == []


def test_list_is_a_keyset_by_id(store: Store) -> None:
    store.upsert_recipients([person(f"u{i:02d}") for i in (5, 1, 3, 2, 4)], T0)
    store.upsert_recipients([person("zz", tenant="other")], T0)
    first = store.list_recipients("acme", after=None, limit=2)
    assert [r.id for r in first] == ["u01", "u02"]
    rest = store.list_recipients("acme", after="u02", limit=10)
    assert [r.id for r in rest] == ["u03", "u04", "u05"]
    assert store.list_recipients("acme", after="u05", limit=10) == []


def test_ids_sort_byte_wise_on_both_stores(store: Store) -> None:
    ids = ["b", "B", "a-b", "a_b", "a.b", "A", "a", "é", "z"]
    store.upsert_recipients([person(i) for i in ids], T0)
    listed = [r.id for r in store.list_recipients("acme", after=None, limit=100)]
    assert listed == sorted(ids, key=lambda i: i.encode())
    assert [r.id for r in store.list_recipients("acme", after="a", limit=100)] == listed[
        listed.index("a") + 1:]


def test_thousands_at_once_in_one_transaction(store: Store) -> None:
    many = [person(f"bulk-{i:05d}", data={"i": i}) for i in range(5000)]
    began = time.perf_counter()
    assert store.upsert_recipients(many, T0) == 5000
    took = time.perf_counter() - began
    assert took < 3.0, f"5,000 recipients took {took:.2f} s"
    listed = store.list_recipients("acme", after="bulk-04997", limit=10)
    assert [(r.id, r.data) for r in listed] == [("bulk-04998", {"i": 4998}),
                                                ("bulk-04999", {"i": 4999})]


def test_a_failing_bulk_writes_nothing(store: Store) -> None:
    import pytest

    from hora.errors import StoreError

    bad = [person("ok-1"), person("x" * 201)]  # the id's CHECK refuses the second
    with pytest.raises(StoreError):
        store.upsert_recipients(bad, T0)
    assert store.get_recipient("acme", "ok-1") is None


def test_token_hash_and_preferences(store: Store) -> None:
    store.upsert_recipients([person(), person("u2")], T0)
    # new recipients got distinct hashes nobody knows: no token finds them
    assert store.recipient_by_token_hash(token_hash("")) is None
    assert store.set_unsubscribe_token("acme", "u1", token_hash("secret-1"))
    assert store.recipient_by_token_hash(token_hash("secret-1")).id == "u1"  # type: ignore[union-attr]
    # rotating: the old token stops working
    assert store.set_unsubscribe_token("acme", "u1", token_hash("secret-2"))
    assert store.recipient_by_token_hash(token_hash("secret-1")) is None
    prefs = Preferences.parse({"channels": {"email": False}})
    later = T0 + timedelta(minutes=5)
    assert store.update_preferences("acme", "u1", prefs, later)
    got = store.get_recipient("acme", "u1")
    assert got is not None and got.preferences == prefs and got.updated_at == later
    assert not store.update_preferences("acme", "nobody", prefs, later)
