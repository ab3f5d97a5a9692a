"""Templates and the in-app inbox in both stores: versions taken atomically, the latest and
a named version, keyset listing of the latest versions, deletes, tenant scoping; inbox items
stored once per delivery, listed by status newest first, marked, counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hora.store import InboxStore, Store, TemplateStore
from hora.store.notify_rows import InboxItem

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_stores_implement_both_protocols(store: Store) -> None:
    assert isinstance(store, TemplateStore)
    assert isinstance(store, InboxStore)


def test_put_adds_versions_and_get_reads_latest_or_one(store: Store) -> None:
    assert store.put_template("a", "welcome", "email", "Hi", "text 1", None, T0) == 1
    assert store.put_template("a", "welcome", "email", "Hi {{ x }}", "text 2", "<p>2</p>",
                              T0 + timedelta(seconds=1)) == 2
    assert store.put_template("a", "welcome", "*", "S", "any", None, T0) == 1
    latest = store.get_template("a", "welcome", "email")
    assert latest is not None
    assert (latest.version, latest.subject, latest.text, latest.html) == (
        2, "Hi {{ x }}", "text 2", "<p>2</p>")
    assert latest.created_at == T0 + timedelta(seconds=1)
    first = store.get_template("a", "welcome", "email", 1)
    assert first is not None and (first.text, first.html) == ("text 1", None)
    assert store.get_template("a", "welcome", "email", 3) is None
    assert store.get_template("b", "welcome", "email") is None  # another tenant's
    assert store.get_template("a", "welcome", "webhook") is None  # no fallback in the store
    assert store.count_templates("a", "welcome", "email") == 2
    assert store.count_templates("a") == 2
    assert store.count_templates("b") == 0


def test_concurrent_puts_get_distinct_versions(store: Store) -> None:
    versions: list[int] = []
    lock = threading.Lock()

    def put(i: int) -> None:
        v = store.put_template("a", "race", "email", "s", f"t{i}", None, T0)
        with lock:
            versions.append(v)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == list(range(1, 9))


def test_list_shows_latest_of_each_name_and_channel_by_keyset(store: Store) -> None:
    for name, channel in (("b", "email"), ("a", "inapp"), ("a", "email"), ("c", "*")):
        store.put_template("t", name, channel, "s", "v1", None, T0)
    store.put_template("t", "a", "email", "s", "v2", None, T0)
    store.put_template("other", "a", "email", "s", "theirs", None, T0)
    page = store.list_templates("t", limit=2)
    assert [(x.name, x.channel, x.version) for x in page] == [("a", "email", 2),
                                                            ("a", "inapp", 1)]
    rest = store.list_templates("t", after=(page[-1].name, page[-1].channel), limit=10)
    assert [(x.name, x.channel) for x in rest] == [("b", "email"), ("c", "*")]


def test_delete_removes_every_version_of_one_or_all_channels(store: Store) -> None:
    store.put_template("t", "a", "email", "s", "1", None, T0)
    store.put_template("t", "a", "email", "s", "2", None, T0)
    store.put_template("t", "a", "inapp", "s", "1", None, T0)
    store.put_template("u", "a", "email", "s", "1", None, T0)
    assert store.delete_template("t", "a", "email") == 2
    assert store.get_template("t", "a", "email") is None
    assert store.get_template("t", "a", "inapp") is not None
    assert store.delete_template("t", "a") == 1
    assert store.delete_template("t", "a") == 0
    assert store.get_template("u", "a", "email") is not None  # another tenant's stays


def item(i: int, *, tenant: str = "t", recipient: str = "u1") -> InboxItem:
    return InboxItem(tenant_id=tenant, recipient_id=recipient, id=f"d{i:03d}",
                     notification_id=f"n{i}", category="news", subject=f"s{i}",
                     text=f"text {i}", data={"i": i, "nested": {"ok": True}},
                     created_at=T0 + timedelta(minutes=i))


def test_inbox_add_is_once_per_id_and_lists_newest_first(store: Store) -> None:
    for i in range(5):
        assert store.add_inbox_item(item(i)) is True
    assert store.add_inbox_item(item(2)) is False  # a retried delivery
    store.add_inbox_item(item(9, tenant="other"))
    store.add_inbox_item(item(8, recipient="u2"))
    first = store.list_inbox("t", "u1", limit=3)
    assert [x.id for x in first] == ["d004", "d003", "d002"]
    assert first[0].data == {"i": 4, "nested": {"ok": True}}
    assert first[0].created_at == T0 + timedelta(minutes=4)
    assert first[0].read_at is None and first[0].archived_at is None
    last = first[-1]
    assert last.created_at is not None
    rest = store.list_inbox("t", "u1", after=(last.created_at, last.id), limit=3)
    assert [x.id for x in rest] == ["d001", "d000"]
    got = store.get_inbox_item("t", "u1", "d001")
    assert got is not None and got.subject == "s1"
    assert store.get_inbox_item("other", "u1", "d001") is None


def test_inbox_mark_and_counts_by_status(store: Store) -> None:
    for i in range(4):
        store.add_inbox_item(item(i))
    store.add_inbox_item(item(7, tenant="other"))
    assert store.inbox_counts("t", "u1") == {"unread": 4, "total": 4}
    now = T0 + timedelta(hours=1)
    assert store.mark_inbox("t", "u1", ["d000", "d001", "nope"], "read", now) == 2
    assert store.mark_inbox("t", "u1", ["d000"], "read", now) == 0  # already read
    assert store.mark_inbox("other", "u1", ["d002"], "read", now) == 0  # not its item
    assert store.inbox_counts("t", "u1") == {"unread": 2, "total": 4}
    read = store.list_inbox("t", "u1", status="read")
    assert [x.id for x in read] == ["d001", "d000"] and read[0].read_at == now
    assert [x.id for x in store.list_inbox("t", "u1", status="unread")] == ["d003", "d002"]
    assert store.mark_inbox("t", "u1", ["d001", "d003"], "archived", now) == 2
    assert store.inbox_counts("t", "u1") == {"unread": 1, "total": 2}
    assert [x.id for x in store.list_inbox("t", "u1", status="archived")] == ["d003", "d001"]
    assert [x.id for x in store.list_inbox("t", "u1")] == ["d002", "d000"]
    assert store.mark_inbox("t", "u1", ["d001"], "unarchived", now) == 1
    assert store.mark_inbox("t", "u1", ["d000"], "unread", now) == 1
    assert store.inbox_counts("t", "u1") == {"unread": 2, "total": 3}
    assert store.inbox_counts("other", "u1") == {"unread": 1, "total": 1}
