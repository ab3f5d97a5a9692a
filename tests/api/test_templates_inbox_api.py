"""Templates and the in-app inbox over HTTP against a real server per store: versions,
listing, preview naming the missing variable, a syntax error naming the part, tenant
isolation on every endpoint; the inbox feed, marking and its unread count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hora.store import Store, open_store
from hora.store.notify_rows import InboxItem
from tests.api.conftest import Api, Server
from tests.api.test_api import assert_problem


def test_put_get_list_and_delete_versions(api: Api) -> None:
    _, _, c = api.tenant()
    r = c.put("/v1/templates/welcome/email", json={"subject": "Hi {{ recipient.data.name }}",
                                                   "text": "v1", "html": "<p>v1</p>"})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "welcome", "channel": "email", "version": 1}
    assert c.put("/v1/templates/welcome/email",
                 json={"subject": "s", "text": "v2"}).json()["version"] == 2
    assert c.put("/v1/templates/welcome/*", json={"text": "any"}).json()["version"] == 1
    assert c.put("/v1/templates/digest/inapp", json={"text": "d"}).status_code == 201
    got = c.get("/v1/templates/welcome/email").json()
    assert (got["version"], got["text"], got["html"]) == (2, "v2", None)
    assert got["created_at"]
    old = c.get("/v1/templates/welcome/email", params={"version": 1}).json()
    assert (old["text"], old["html"]) == ("v1", "<p>v1</p>")
    assert_problem(c.get("/v1/templates/welcome/email", params={"version": 3}), 404,
                   "not-found")
    assert_problem(c.get("/v1/templates/welcome/webhook"), 404, "not-found")
    page = c.get("/v1/templates", params={"limit": 2}).json()
    assert [(t["name"], t["channel"], t["version"]) for t in page["items"]] == [
        ("digest", "inapp", 1), ("welcome", "*", 1)]
    rest = c.get("/v1/templates", params={"cursor": page["next_cursor"]}).json()
    assert [(t["name"], t["channel"]) for t in rest["items"]] == [("welcome", "email")]
    assert rest["next_cursor"] is None
    assert len(c.get("/v1/templates", params={"limit": 500}).json()["items"]) == 3
    assert_problem(c.get("/v1/templates", params={"cursor": "garbage"}), 422,
                   "invalid-notification")
    assert c.delete("/v1/templates/welcome", params={"channel": "email"}).status_code == 204
    assert_problem(c.get("/v1/templates/welcome/email"), 404, "not-found")
    assert c.get("/v1/templates/welcome/*").status_code == 200
    assert c.delete("/v1/templates/welcome").status_code == 204
    assert_problem(c.delete("/v1/templates/welcome"), 404, "not-found")


def test_bad_templates_are_422_naming_the_field(api: Api) -> None:
    _, _, c = api.tenant()
    body = assert_problem(c.put("/v1/templates/w/email", json={"text": "ok",
                                                               "html": "<p>\n{% if %}</p>"}),
                          422, "invalid-notification", says="line 2")
    assert body["field"] == "template.html"
    body = assert_problem(c.put("/v1/templates/w/email", json={"subject": "{{ x"}), 422,
                          "invalid-notification")
    assert body["field"] == "template.subject"
    body = assert_problem(c.put("/v1/templates/w/sms", json={"text": "t"}), 422,
                          "invalid-notification")
    assert body["field"] == "channel"
    body = assert_problem(c.put("/v1/templates/w/email", json={"text": "x" * 70_000}), 422,
                          "invalid-notification")
    assert body["field"] == "template.text"
    assert_problem(c.get("/v1/templates/w/email"), 404, "not-found")  # nothing half-written


def test_preview_renders_and_names_the_missing_variable(api: Api) -> None:
    _, _, c = api.tenant()
    c.put("/v1/templates/report/*", json={
        "subject": "{{ data.report }} is ready", "text": "Hi {{ recipient.data.name }}",
        "html": "<b>{{ data.report }}</b>"})
    r = c.post("/v1/templates/report/email/preview", json={
        "recipient": {"id": "u42", "timezone": "Europe/Paris", "data": {"name": "Ada"}},
        "data": {"report": "<Q3>"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"subject": "<Q3> is ready", "text": "Hi Ada",
                        "html": "<b>&lt;Q3&gt;</b>",
                        "template": {"name": "report", "channel": "*", "version": 1}}
    body = assert_problem(c.post("/v1/templates/report/email/preview", json={
        "recipient": {"id": "u42", "data": {"name": "Ada"}}, "data": {}}), 422,
        "invalid-notification", says="report")
    assert body["field"] == "data.report"
    body = assert_problem(c.post("/v1/templates/report/email/preview", json={
        "recipient": {"timezone": "Mars/Olympus"}, "data": {"report": "x"}}), 422,
        "invalid-notification")
    assert body["field"] == "recipient.timezone"
    assert_problem(c.post("/v1/templates/nope/email/preview", json={}), 404, "not-found")


def test_templates_are_the_tenants_own(api: Api) -> None:
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    a.put("/v1/templates/secret/email", json={"text": "a's"})
    assert_problem(b.get("/v1/templates/secret/email"), 404, "not-found")
    assert b.get("/v1/templates").json()["items"] == []
    assert_problem(b.post("/v1/templates/secret/email/preview", json={}), 404, "not-found")
    assert_problem(b.delete("/v1/templates/secret"), 404, "not-found")
    assert b.put("/v1/templates/secret/email", json={"text": "b's"}).json()["version"] == 1
    assert a.get("/v1/templates/secret/email").json()["text"] == "a's"


def test_reading_needs_read_and_writing_needs_write(api: Api) -> None:
    _, _, reader = api.tenant(("read",))
    assert_problem(reader.put("/v1/templates/w/email", json={"text": "t"}), 403, "forbidden")
    assert_problem(reader.post("/v1/recipients/u1/inbox/mark", json={"ids": ["x"]}), 403,
                   "forbidden")
    assert reader.get("/v1/templates").status_code == 200


@pytest.fixture
def db(server: Server) -> Iterator[Store]:
    """The server's own database: the inbox is filled by deliveries, which this slice does
    not run, so the test adds items as the in-app channel would."""
    store = open_store(server.database_url)
    try:
        yield store
    finally:
        store.close()


def add_items(store: Store, tenant: str, recipient: str, n: int) -> list[str]:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    ids = [f"d-{recipient}-{i:02d}" for i in range(n)]
    for i, item_id in enumerate(ids):
        store.add_inbox_item(InboxItem(tenant_id=tenant, recipient_id=recipient, id=item_id,
                                       notification_id=f"n{i}", category="news",
                                       subject=f"s{i}", text=f"t{i}", data={"i": i},
                                       created_at=t0 + timedelta(minutes=i)))
    return ids


def test_inbox_feed_mark_and_unread_count(api: Api, db: Store) -> None:
    tid, _, c = api.tenant()
    ids = add_items(db, tid, "u1", 5)
    page = c.get("/v1/recipients/u1/inbox", params={"limit": 3}).json()
    assert [i["id"] for i in page["items"]] == ids[:1:-1]
    assert (page["unread_count"], page["total"]) == (5, 5)
    first = page["items"][0]
    assert (first["subject"], first["data"], first["read"], first["archived"]) == (
        "s4", {"i": 4}, False, False)
    rest = c.get("/v1/recipients/u1/inbox", params={"cursor": page["next_cursor"]}).json()
    assert [i["id"] for i in rest["items"]] == [ids[1], ids[0]]
    assert rest["next_cursor"] is None
    r = c.post("/v1/recipients/u1/inbox/mark", json={"ids": ids[:2], "action": "read"})
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": 2, "unread_count": 3, "total": 5}
    unread = c.get("/v1/recipients/u1/inbox", params={"status": "unread"}).json()
    assert [i["id"] for i in unread["items"]] == ids[:1:-1]
    assert unread["unread_count"] == 3
    read = c.get("/v1/recipients/u1/inbox", params={"status": "read"}).json()["items"]
    assert [i["id"] for i in read] == [ids[1], ids[0]] and read[0]["read_at"]
    assert c.post("/v1/recipients/u1/inbox/mark", json={
        "ids": [ids[4]], "action": "archived"}).json() == {"changed": 1, "unread_count": 2,
                                                           "total": 4}
    archived = c.get("/v1/recipients/u1/inbox", params={"status": "archived"}).json()
    assert [i["id"] for i in archived["items"]] == [ids[4]]
    body = assert_problem(c.post("/v1/recipients/u1/inbox/mark", json={
        "ids": [ids[0]], "action": "deleted"}), 422, "invalid-request")
    assert "action" in str(body)
    assert_problem(c.get("/v1/recipients/u1/inbox", params={"cursor": "garbage"}), 422,
                   "invalid-notification")


def test_inboxes_are_the_tenants_own(api: Api, db: Store) -> None:
    a_id, _, a = api.tenant()
    _, _, b = api.tenant()
    ids = add_items(db, a_id, "u1", 2)
    other = b.get("/v1/recipients/u1/inbox").json()
    assert (other["items"], other["unread_count"], other["total"]) == ([], 0, 0)
    assert b.post("/v1/recipients/u1/inbox/mark", json={"ids": ids}).json()["changed"] == 0
    assert a.get("/v1/recipients/u1/inbox").json()["unread_count"] == 2
