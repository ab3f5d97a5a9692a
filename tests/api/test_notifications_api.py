"""Notifications over HTTP (``/v1/notifications``) against a real server per store: send,
read each channel's state, list by recipient and correlation id, dedup keys (200 with the
first, 409 for another content), bad input a 422 naming the field, tenant isolation."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api
from tests.api.test_api import assert_problem
from tests.api.test_recipients_api import field_of


def prepare(c: httpx.Client) -> None:
    assert c.put("/v1/recipients/u42", json={
        "timezone": "America/New_York", "quiet_hours": "22:00-07:00",
        "addresses": {"email": "ada@example.com"}, "data": {"name": "Ada"}}).status_code == 200
    assert c.put("/v1/templates/welcome/*", json={
        "subject": "Hi {{ recipient.data.name }}", "text": "{{ data.msg }}"}).status_code == 201


def test_send_read_and_list(api: Api) -> None:
    _, _, c = api.tenant()
    prepare(c)
    r = c.post("/v1/notifications", json={
        "recipient": "u42", "category": "news", "template": "welcome",
        "data": {"msg": "hello"}, "at": "local:09:00", "channels": ["inapp", "webhook"],
        "correlation_id": "onb-1"})
    assert r.status_code == 201, r.text
    n = r.json()
    assert n["requested_at"] == "local:09:00"
    assert n["deliver_at"].endswith(("T14:00:00+00:00", "T13:00:00+00:00"))  # 09:00 New York
    states = {d["channel"]: (d["state"], d["reason"]) for d in n["deliveries"]}
    assert states["inapp"][0] == "scheduled"
    assert states["webhook"] == ("suppressed", "no webhook address")
    job_id = next(d["job_id"] for d in n["deliveries"] if d["channel"] == "inapp")
    job = c.get(f"/v1/jobs/{job_id}").json()
    assert job["task"] == "hora.notify.deliver" and job["correlation_id"] == "onb-1"
    assert c.get(f"/v1/notifications/{n['id']}").json() == n
    listed = c.get("/v1/notifications", params={"correlation_id": "onb-1"}).json()
    assert [i["id"] for i in listed["items"]] == [n["id"]]
    assert c.get("/v1/notifications", params={"recipient": "nobody"}).json()["items"] == []


def test_a_dedup_key_answers_the_first_or_a_conflict(api: Api) -> None:
    _, _, c = api.tenant()
    prepare(c)
    body = {"recipient": "u42", "category": "news", "template": "welcome",
            "data": {"msg": "a"}, "channels": ["log"], "dedup_key": "k1"}
    first = c.post("/v1/notifications", json=body)
    again = c.post("/v1/notifications", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    r = c.post("/v1/notifications", json={**body, "data": {"msg": "b"}})
    assert assert_problem(r, 409, "conflict", says="k1")["field"] == "dedup_key"


def test_bad_input_is_a_422_naming_the_field(api: Api) -> None:
    _, _, c = api.tenant()
    prepare(c)
    base = {"recipient": "u42", "category": "news", "template": "welcome"}
    assert field_of(c.post("/v1/notifications",
                           json={**base, "channels": ["pager"]})) == "channels[0]"
    assert field_of(c.post("/v1/notifications", json={**base, "at": "soon"})) == "at"
    assert field_of(c.post("/v1/notifications",
                           json={**base, "at": "2030-01-01T09:00:00"})) == "at"  # no zone
    assert_problem(c.post("/v1/notifications", json={**base, "recipient": "ghost"}), 404,
                   "not-found", says="ghost")
    assert c.get("/v1/notifications").json()["items"] == []


def test_another_tenant_sees_nothing(api: Api) -> None:
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    prepare(a)
    n = a.post("/v1/notifications", json={"recipient": "u42", "category": "news",
                                          "template": "welcome", "channels": ["log"]}).json()
    assert_problem(b.get(f"/v1/notifications/{n['id']}"), 404, "not-found")
    assert b.get("/v1/notifications").json()["items"] == []
    assert_problem(b.post("/v1/notifications", json={
        "recipient": "u42", "category": "news", "template": "welcome"}), 404, "not-found")
