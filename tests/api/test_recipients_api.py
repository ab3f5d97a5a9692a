"""Notification recipients over HTTP (``/v1/recipients``) against a real server per store:
CRUD, bulk upsert, keyset pages, bad input a 422 naming the field, tenant isolation, and the
public unsubscribe page, which works without an API key and really changes the
preferences."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.conftest import Api
from tests.api.test_api import assert_problem, paged_ids

ADA = {"timezone": "Europe/Paris", "locale": "fr-FR", "quiet_hours": "21:00-08:00",
       "holidays": "FR", "business_days_only": True,
       "addresses": {"email": "ada@example.com", "webhook": "https://example.com/hook"},
       "preferences": {"channels": {"log": False}, "categories": {"digest": {"email": False}}},
       "data": {"name": "Ada"}}


def field_of(r: httpx.Response) -> str:
    body: dict[str, Any] = assert_problem(r, 422, r.json()["type"].rsplit(":", 1)[1])
    if "field" in body:
        return str(body["field"])
    return str(body["errors"][0]["field"])


def test_put_get_list_delete(api: Api) -> None:
    _, _, c = api.tenant()
    r = c.put("/v1/recipients/u42", json=ADA)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ADA} == {**ADA, "quiet_hours": {"start": "21:00",
                                                                "end": "08:00"}}
    assert body["id"] == "u42" and body["created_at"] == body["updated_at"]
    assert c.get("/v1/recipients/u42").json() == body
    # a second PUT replaces the recipient whole; created_at stays
    r = c.put("/v1/recipients/u42", json={"timezone": "Asia/Tokyo"})
    again = r.json()
    assert (again["timezone"], again["quiet_hours"], again["addresses"], again["holidays"]) == (
        "Asia/Tokyo", None, {}, None)
    assert again["created_at"] == body["created_at"]
    assert [i["id"] for i in c.get("/v1/recipients").json()["items"]] == ["u42"]
    assert c.delete("/v1/recipients/u42").status_code == 204
    assert_problem(c.get("/v1/recipients/u42"), 404, "not-found")
    assert_problem(c.delete("/v1/recipients/u42"), 404, "not-found")
    # the body may name the path's id, not another
    assert field_of(c.put("/v1/recipients/u1", json={"id": "u2"})) == "id"


def test_bulk_of_2000_and_pages(api: Api) -> None:
    _, _, c = api.tenant()
    people = [{"id": f"p{i:04d}", "timezone": "America/New_York",
               "addresses": {"email": f"p{i}@example.com"}} for i in range(2000)]
    r = c.post("/v1/recipients/bulk", json={"recipients": people})
    assert r.status_code == 200, r.text
    assert r.json() == {"upserted": 2000}
    seen = paged_ids(c, "/v1/recipients", limit=500)
    assert seen == [f"p{i:04d}" for i in range(2000)]
    assert c.get("/v1/recipients/p1999").json()["addresses"] == {"email": "p1999@example.com"}


def test_a_bad_recipient_in_a_bulk_writes_none(api: Api) -> None:
    _, _, c = api.tenant()
    people = [{"id": "ok-1"}, {"id": "bad", "timezone": "Mars/Olympus"}]
    r = c.post("/v1/recipients/bulk", json={"recipients": people})
    assert field_of(r) == "recipients[1].timezone"
    assert_problem(c.get("/v1/recipients/ok-1"), 404, "not-found")


def test_bad_input_names_the_field(api: Api) -> None:
    _, _, c = api.tenant()
    cases = [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"quiet_hours": "25:00-08:00"}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "21:00", "end": "8h"}}, "quiet_hours.end"),
        ({"addresses": {"email": "ada.example.com"}}, "addresses.email"),
        ({"addresses": {"webhook": "ftp://example.com"}}, "addresses.webhook"),
        ({"addresses": {"pigeon": "loft 3"}}, "addresses.pigeon"),
        ({"holidays": "XX"}, "holidays"),
        ({"locale": "not a locale"}, "locale"),
        ({"preferences": {"channels": {"fax": False}}}, "preferences.channels.fax"),
        ({"data": {"blob": "x" * 17_000}}, "data"),
    ]
    for body, field in cases:
        r = c.put("/v1/recipients/u1", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field_of(r) == field, (body, r.text)
    assert_problem(c.get("/v1/recipients/u1"), 404, "not-found")


def test_tenants_cannot_see_or_change_each_others_recipients(api: Api) -> None:
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    assert a.put("/v1/recipients/u1", json=ADA).status_code == 200
    assert_problem(b.get("/v1/recipients/u1"), 404, "not-found")
    assert_problem(b.delete("/v1/recipients/u1"), 404, "not-found")
    assert_problem(b.put("/v1/recipients/u1/preferences", json={"channels": {"email": False}}),
                   404, "not-found")
    assert_problem(b.post("/v1/recipients/u1/unsubscribe-link", json={}), 404, "not-found")
    assert b.get("/v1/recipients").json() == {"items": [], "next_cursor": None}
    # B's own u1 is another recipient; A's is untouched
    assert b.put("/v1/recipients/u1", json={"timezone": "UTC"}).status_code == 200
    mine = a.get("/v1/recipients/u1").json()
    assert mine["timezone"] == "Europe/Paris" and mine["preferences"]["channels"] == {
        "log": False}


def test_scopes(api: Api) -> None:
    _, _, reader = api.tenant(("read",))
    assert reader.get("/v1/recipients").status_code == 200
    assert_problem(reader.put("/v1/recipients/u1", json={}), 403, "forbidden")
    assert_problem(reader.post("/v1/recipients/bulk", json={"recipients": []}), 403,
                   "forbidden")
    assert_problem(httpx.get(f"{api.server.url}/v1/recipients"), 401, "unauthorized")


def test_preferences(api: Api) -> None:
    _, _, c = api.tenant()
    c.put("/v1/recipients/u1", json=ADA)
    r = c.put("/v1/recipients/u1/preferences",
              json={"categories": {"marketing": False}})
    assert r.status_code == 200, r.text
    assert r.json()["preferences"] == {"channels": {}, "categories": {"marketing": False}}
    assert c.get("/v1/recipients/u1").json()["preferences"]["categories"] == {
        "marketing": False}


def test_unsubscribe_without_a_key(api: Api) -> None:
    _, _, c = api.tenant()
    c.put("/v1/recipients/u1", json=ADA)
    r = c.post("/v1/recipients/u1/unsubscribe-link",
               json={"base_url": "https://hora.example.com/"})
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    m = re.fullmatch(r"https://hora\.example\.com/v1/unsubscribe/([A-Za-z0-9_-]{40,})", url)
    assert m, url
    token = m.group(1)
    public = httpx.Client(base_url=api.server.url, timeout=30)  # no API key at all
    try:
        page = public.get(f"/v1/unsubscribe/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in page.text
        # opening the page changes nothing
        assert c.get("/v1/recipients/u1").json()["preferences"]["channels"] == {"log": False}
        # the button: a form post, no category -> the e-mail channel
        done = public.post(f"/v1/unsubscribe/{token}", data={})
        assert done.status_code == 200, done.text
        assert "You are unsubscribed" in done.text
        prefs = c.get("/v1/recipients/u1").json()["preferences"]
        assert prefs["channels"] == {"log": False, "email": False}
        # a category, from the form
        done = public.post(f"/v1/unsubscribe/{token}", data={"category": "reminders"})
        assert done.status_code == 200 and "reminders" in done.text
        assert c.get("/v1/recipients/u1").json()["preferences"]["categories"] == {
            "digest": {"email": False}, "reminders": False}
        # RFC 8058 one-click body
        one_click = public.post(f"/v1/unsubscribe/{token}?category=news",
                                content=b"List-Unsubscribe=One-Click",
                                headers={"content-type": "application/x-www-form-urlencoded"})
        assert one_click.status_code == 200
        assert c.get("/v1/recipients/u1").json()["preferences"]["categories"]["news"] is False
        # unknown, malformed, or replaced tokens: a 404 page, never a stack trace
        for bad in ("A" * 43, "short", "x" * 300):
            for resp in (public.get(f"/v1/unsubscribe/{bad}"),
                         public.post(f"/v1/unsubscribe/{bad}", data={})):
                assert resp.status_code == 404, resp.text
                assert resp.headers["content-type"].startswith("text/html")
                assert "Traceback" not in resp.text
        c.post("/v1/recipients/u1/unsubscribe-link", json={})  # rotates the token
        assert public.get(f"/v1/unsubscribe/{token}").status_code == 404
        assert public.post(f"/v1/unsubscribe/{token}?category=x y").status_code == 422
    finally:
        public.close()
