"""The HTTP API against a real ``hora serve`` process, on SQLite and on PostgreSQL.

Each test makes its own tenant, so the session's one server serves them all without one
test seeing another's records. Waiting on the server's worker uses a deadline, never a sleep.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from hora.testing import wait_for_condition
from tests.api.conftest import Api, Server
from tests.receiver import Receiver, Reply

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, slug: str, *, says: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:hora:problem:{slug}", body
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert says in body["detail"], body
    return body


def wait_for_state(client: httpx.Client, job_id: str, *states: str,
                   timeout: float = 30.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(client.get(f"/v1/jobs/{job_id}").json())
        return seen.get("state") in states

    wait_for_condition(done, timeout=timeout)
    return seen


# -- operations and auth -----------------------------------------------------------------------


def test_health_and_readiness_need_no_key(api: Api) -> None:
    c = api.client(None)
    assert c.get("/healthz").json()["status"] == "ok"
    assert c.get("/readyz").json() == {"status": "ok", "detail": None} or \
        c.get("/readyz").json()["status"] == "ok"


def test_every_v1_route_needs_a_valid_key(api: Api) -> None:
    r = api.client(None).get("/v1/jobs")
    assert_problem(r, 401, "unauthorized", says="Authorization: Bearer")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_problem(api.client("hora_" + "x" * 32).get("/v1/jobs"), 401, "unauthorized")
    assert_problem(api.client(None).post("/v1/jobs", json={"task": "t"}), 401, "unauthorized")


def test_scopes_limit_what_a_key_does(api: Api) -> None:
    _, _, reader = api.tenant(scopes=("read",))
    assert reader.get("/v1/jobs").status_code == 200
    assert_problem(reader.post("/v1/jobs", json={"task": "t"}), 403, "forbidden",
                   says="'write'")
    _, _, writer = api.tenant()
    assert writer.post("/v1/jobs", json={"task": "t"}).status_code == 201
    assert_problem(writer.get("/v1/tenants"), 403, "forbidden", says="'admin'")
    assert_problem(writer.post("/v1/keys", json={"tenant_id": "default"}), 403, "forbidden")


def test_a_revoked_key_stops_working(api: Api) -> None:
    tid, _, _ = api.tenant()
    r = api.admin.post("/v1/keys", json={"tenant_id": tid, "scopes": ["read"],
                                         "name": "ci"})
    created = r.json()
    assert created["key"].startswith("hora_") and created["prefix"] == created["key"][:12]
    client = api.client(created["key"])
    assert client.get("/v1/jobs").status_code == 200
    listed = api.admin.get("/v1/keys", params={"tenant_id": tid}).json()["items"]
    assert created["id"] in [k["id"] for k in listed]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    revoked = api.admin.delete(f"/v1/keys/{created['id']}").json()
    assert revoked["revoked_at"] is not None
    # Revocation reaches every API process within its key cache's few seconds.
    wait_for_condition(lambda: client.get("/v1/jobs").status_code == 401, timeout=15)
    assert_problem(api.admin.delete(f"/v1/keys/{uuid.uuid4()}"), 404, "not-found")


# -- jobs ---------------------------------------------------------------------------------------


def test_enqueue_get_list_cancel(api: Api) -> None:
    tid, _, c = api.tenant()
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = c.post("/v1/jobs", json={"task": "reports.build", "payload": {"id": 7}, "at": at,
                                 "queue": "reports", "priority": 3,
                                 "correlation_id": "order-9",
                                 "retry": {"max_attempts": 4, "backoff": "fixed", "base": 2}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "scheduled" and job["tenant_id"] == tid
    assert job["payload"] == {"id": 7} and job["queue"] == "reports" and job["priority"] == 3
    assert job["max_attempts"] == 4 and job["retry_policy"]["backoff"] == "fixed"
    got = c.get(f"/v1/jobs/{job['id']}").json()
    assert got["id"] == job["id"] and got["attempts"] == [] and got["events"][0]["to_state"]
    page = c.get("/v1/jobs", params={"correlation_id": "order-9"}).json()
    assert [j["id"] for j in page["items"]] == [job["id"]]
    assert c.get("/v1/jobs", params={"state": "succeeded"}).json()["items"] == []
    cancelled = c.post(f"/v1/jobs/{job['id']}/cancel", json={"reason": "not needed"}).json()
    assert cancelled["state"] == "cancelled" and cancelled["state_reason"] == "not needed"
    assert_problem(c.post(f"/v1/jobs/{job['id']}/cancel"), 409, "state-conflict",
                   says="cancelled")


def test_listing_pages_with_a_cursor(api: Api) -> None:
    _, _, c = api.tenant()
    ids = [c.post("/v1/jobs", json={"task": "t", "delay": 3600}).json()["id"]
           for _ in range(5)]
    assert paged_ids(c, "/v1/jobs", limit=2) == sorted(ids, reverse=True)


def paged_ids(c: httpx.Client, path: str, *, limit: int) -> list[str]:
    """The ids of every page of a listing, following ``next_cursor`` to the end."""
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = c.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_a_python_task_runs_on_the_servers_worker_when_it_knows_it(api: Api) -> None:
    # The server runs with only its own tasks: an unknown task waits, visible, unclaimed.
    _, _, c = api.tenant()
    job = c.post("/v1/jobs", json={"task": "nobody.knows"}).json()
    assert c.get(f"/v1/jobs/{job['id']}").json()["state"] == "scheduled"


@pytest.mark.parametrize(("body", "field", "says"), [
    ({}, "task", "exactly one of task"),
    ({"task": "t", "target": {"url": "http://x"}}, "task", "exactly one of task"),
    ({"task": "t", "colour": "red"}, "colour", "unknown field"),
    ({"task": "t", "at": "2030-01-01T00:00:00"}, "at", "timezone"),
    ({"task": "t", "at": "soon"}, "at", "datetime"),
    ({"task": "t", "priority": "high"}, "priority", "integer"),
    ({"task": "t", "retry": {"backoff": "random"}}, "retry.backoff", "exponential"),
    ({"task": "t", "payload": [1, 2]}, "payload", "dictionary"),
    ({"task": "", "payload": {}}, "task", "at least 1"),
    ({"task": "t", "at": "2030-01-01T00:00:00Z", "delay": 5}, "", "either at= or delay="),
    ({"target": {"url": "ftp://example.com/x"}}, "target.url", "http or https"),
    ({"target": {"url": "https://example.com", "headers": {"webhook-id": "x"}}},
     "target.headers", "webhook-id"),
])
def test_bad_jobs_are_422_naming_the_field(api: Api, body: dict[str, Any], field: str,
                                           says: str) -> None:
    _, _, c = api.tenant()
    problem = assert_problem(c.post("/v1/jobs", json=body), 422, "invalid-request")
    assert says in json.dumps(problem), problem
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert c.get("/v1/jobs").json()["items"] == []  # nothing half-written


def test_malformed_requests_are_problems_not_500s(api: Api) -> None:
    _, key, c = api.tenant()
    raw = httpx.post(f"{api.server.url}/v1/jobs", content=b"{not json",
                     headers={"Authorization": f"Bearer {key}",
                              "Content-Type": "application/json"})
    assert_problem(raw, 400, "malformed-json", says="JSON")
    form = httpx.post(f"{api.server.url}/v1/jobs", content=b"task=t",
                      headers={"Authorization": f"Bearer {key}",
                               "Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(form, 415, "unsupported-media-type", says="application/json")
    big = c.post("/v1/jobs", json={"task": "t", "payload": {"blob": "x" * (2 << 20)}})
    assert_problem(big, 413, "too-large")
    assert_problem(c.get("/v1/nowhere"), 404, "not-found")
    assert_problem(c.get("/v1/jobs", params={"state": "sleeping"}), 422, "invalid-request",
                   says="state")
    assert_problem(c.get("/v1/jobs", params={"limit": 0}), 422, "invalid-request")
    assert_problem(c.get(f"/v1/jobs/{uuid.uuid4()}"), 404, "not-found")


def test_the_body_idempotency_key_dedupes_and_refuses_another_payload(api: Api) -> None:
    _, _, c = api.tenant()
    first = c.post("/v1/jobs", json={"task": "t", "payload": {"n": 1},
                                     "idempotency_key": "k1"}).json()
    again = c.post("/v1/jobs", json={"task": "t", "payload": {"n": 1},
                                     "idempotency_key": "k1"}).json()
    assert again["id"] == first["id"]
    assert_problem(c.post("/v1/jobs", json={"task": "t", "payload": {"n": 2},
                                            "idempotency_key": "k1"}),
                   409, "idempotency-conflict", says="k1")
    assert len(c.get("/v1/jobs").json()["items"]) == 1


def test_idempotency_key_header_replays_the_first_response(api: Api) -> None:
    _, _, c = api.tenant()
    body = {"task": "t", "payload": {"n": 1}, "delay": 60}
    first = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "req-1"})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # The same body, keys in another order and other whitespace: the same request.
    again = c.post("/v1/jobs", content=b'{"delay": 60,  "payload": {"n": 1}, "task": "t"}',
                   headers={"Idempotency-Key": "req-1", "Content-Type": "application/json"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = c.post("/v1/jobs", json={**body, "payload": {"n": 2}},
                   headers={"Idempotency-Key": "req-1"})
    assert_problem(other, 422, "idempotency-key-reused", says="req-1")
    assert len(c.get("/v1/jobs").json()["items"]) == 1
    # A failed request releases its key: the corrected retry runs.
    bad = c.post("/v1/schedules", json={"task": "t", "trigger": {"cron": "61 * * * *"}},
                 headers={"Idempotency-Key": "req-2"})
    assert_problem(bad, 422, "invalid-trigger")
    good = c.post("/v1/schedules", json={"task": "t", "trigger": {"cron": "1 * * * *"}},
                  headers={"Idempotency-Key": "req-2"})
    assert good.status_code == 201, good.text
    # Keys are per tenant.
    _, _, c2 = api.tenant()
    assert c2.post("/v1/jobs", json={**body, "payload": {"n": 3}},
                   headers={"Idempotency-Key": "req-1"}).status_code == 201


# -- dead-letter queue ------------------------------------------------------------------------


def test_dead_letter_queue_list_get_replay_discard(api: Api, receiver: Receiver) -> None:
    _, _, c = api.tenant()
    receiver.answer(Reply(400, b"no such customer"), Reply(400, b"still no"))
    ids = [c.post("/v1/jobs", json={"target": {"url": receiver.url(f"/{n}")}}).json()["id"]
           for n in range(2)]
    for job_id in ids:
        dead = wait_for_state(c, job_id, "dead")
        assert dead["attempt"] == 1 and "400" in dead["last_error"]["message"]
    page = c.get("/v1/dlq").json()
    assert sorted(j["id"] for j in page["items"]) == sorted(ids)
    shown = c.get(f"/v1/dlq/{ids[0]}").json()
    assert shown["attempts"][0]["outcome"] == "failed"
    replayed = c.post(f"/v1/dlq/{ids[0]}/replay")
    assert replayed.status_code == 201 and replayed.json()["replay_of"] == ids[0]
    wait_for_state(c, replayed.json()["id"], "succeeded")
    assert c.post(f"/v1/dlq/{ids[1]}/discard").json() == {"discarded": [ids[1]]}
    assert c.get("/v1/dlq").json()["items"] == []
    assert_problem(c.get(f"/v1/dlq/{ids[0]}"), 404, "not-found", says="dead-letter")


# -- schedules and triggers -------------------------------------------------------------------


def test_schedule_lifecycle(api: Api) -> None:
    _, _, c = api.tenant()
    r = c.post("/v1/schedules", json={
        "task": "reports.nightly", "payload": {"kind": "sales"}, "name": "nightly",
        "trigger": {"cron": "30 2 * * *", "timezone": "America/New_York"},
        "misfire": "run_once", "overlap": "skip"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["state"] == "active" and s["next_fire_at"] and s["overlap_policy"] == "skip"
    sid = s["id"]
    assert c.get(f"/v1/schedules/{sid}").json()["name"] == "nightly"
    assert [x["id"] for x in c.get("/v1/schedules").json()["items"]] == [sid]
    assert_problem(c.post("/v1/schedules", json={"task": "x", "name": "nightly",
                                                 "trigger": {"cron": "* * * * *"}}),
                   409, "conflict", says="nightly")
    occ = c.get(f"/v1/schedules/{sid}/occurrences",
                params={"count": 3, "after": "2026-03-07T00:00:00Z"}).json()["occurrences"]
    assert [o["at"] for o in occ] == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z",
                                      "2026-03-09T06:30:00Z"]
    assert occ[1]["local"] == "2026-03-08T03:00:00-04:00" and "dst_gap" in occ[1]["notes"][0]
    patched = c.patch(f"/v1/schedules/{sid}", json={"trigger": {"cron": "0 9 * * 1-5"},
                                                    "payload": {"kind": "ops"}}).json()
    assert patched["trigger"] == {"cron": "0 9 * * 1-5"} and patched["payload"]["kind"] == "ops"
    assert patched["version"] > s["version"]
    assert c.post(f"/v1/schedules/{sid}/pause").json()["state"] == "paused"
    assert [x["id"] for x in c.get("/v1/schedules", params={"state": "paused"}
                                   ).json()["items"]] == [sid]
    assert c.post(f"/v1/schedules/{sid}/resume").json()["state"] == "active"
    job = c.post(f"/v1/schedules/{sid}/trigger").json()
    assert job["schedule_id"] == sid and job["task"] == "reports.nightly"
    ticks = c.get(f"/v1/schedules/{sid}/ticks").json()
    assert ticks == {"items": [], "next_cursor": None}
    assert c.delete(f"/v1/schedules/{sid}").status_code == 204
    assert_problem(c.get(f"/v1/schedules/{sid}"), 404, "not-found")


def test_an_http_schedule_fires_and_fills_its_tick_ledger(api: Api, receiver: Receiver) -> None:
    _, _, c = api.tenant()
    start = datetime.now(UTC).isoformat()
    s = c.post("/v1/schedules", json={
        "target": {"url": receiver.url("/tick"), "body": {"hello": "tick"}},
        "trigger": {"every": "PT1S", "start": start}}).json()
    wait_for_condition(lambda: len(c.get(f"/v1/schedules/{s['id']}/ticks").json()["items"])
                       >= 2, timeout=30)
    ticks = c.get(f"/v1/schedules/{s['id']}/ticks").json()["items"]
    assert all(t["outcome"] == "fired" and t["job_id"] for t in ticks)
    wait_for_state(c, ticks[-1]["job_id"], "succeeded")
    assert any(r.path == "/tick" for r in receiver.requests)
    c.post(f"/v1/schedules/{s['id']}/pause")
    patched = c.patch(f"/v1/schedules/{s['id']}",
                      json={"target": {"url": receiver.url("/moved")}}).json()
    assert patched["payload"]["url"].endswith("/moved")
    assert_problem(c.patch(f"/v1/schedules/{s['id']}", json={"payload": {"a": 1}}), 422,
                   "invalid-request", says="target")


@pytest.mark.parametrize(("trigger", "field", "says"), [
    ({"cron": "0 0 32 * *"}, "trigger.cron", "day-of-month 32 is out of range 1-31"),
    ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "trigger.timezone", "Mars/Olympus"),
    ({"rrule": "FREQ=SOMETIMES"}, "trigger.rrule", ""),
    ({"every": "PT0S", "start": "2030-01-01T00:00:00Z"}, "trigger.every", ""),
    ({"cron": "* * * * *", "calendar": {"holidays": "XX"}}, "trigger.calendar", "XX"),
    ({}, "trigger", ""),
])
def test_bad_triggers_are_422_naming_the_field(api: Api, trigger: dict[str, Any], field: str,
                                               says: str) -> None:
    _, _, c = api.tenant()
    r = c.post("/v1/triggers/preview", json={"trigger": trigger})
    problem = assert_problem(r, 422, "invalid-trigger", says=says)
    assert problem["errors"][0]["field"].startswith(field), problem
    r = c.post("/v1/schedules", json={"task": "t", "trigger": trigger})
    assert_problem(r, 422, "invalid-trigger", says=says)
    assert c.get("/v1/schedules").json()["items"] == []


def test_trigger_preview_keeps_the_published_shape(api: Api) -> None:
    _, _, c = api.tenant()
    ical = ("DTSTART;TZID=Europe/Berlin:20260105T090000\n"
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE\nEXDATE;TZID=Europe/Berlin:20260107T090000")
    occ = c.post("/v1/triggers/preview", json={
        "trigger": {"rrule": ical}, "after": "2026-01-04T00:00:00Z", "count": 3,
    }).json()["occurrences"]
    assert [o["local"] for o in occ] == ["2026-01-05T09:00:00+01:00",
                                         "2026-01-12T09:00:00+01:00",
                                         "2026-01-14T09:00:00+01:00"]
    assert set(occ[0]) == {"at", "local", "nominal", "skipped", "notes"}
    at = c.post("/v1/triggers/preview", json={"trigger": {"at": "2031-05-01T12:00:00Z"},
                                              "after": "2030-01-01T00:00:00Z"}).json()
    assert [o["at"] for o in at["occurrences"]] == ["2031-05-01T12:00:00Z"]
    cal = c.post("/v1/triggers/preview", json={
        "trigger": {"cron": "0 9 * * *", "timezone": "America/New_York",
                    "calendar": {"holidays": "US", "business_day": "skip"}},
        "after": "2026-12-24T00:00:00Z", "count": 2}).json()["occurrences"]
    assert cal[0]["local"].startswith("2026-12-24T09:00")
    assert cal[1]["skipped"] is not None  # Christmas
    assert_problem(c.post("/v1/triggers/preview", json={"trigger": {"cron": "* * * * *"},
                                                        "count": 5000}),
                   422, "invalid-request", says="count")


# -- tenants: isolation, quotas, rate limits ---------------------------------------------------


def test_nothing_crosses_tenants_in_any_endpoint(api: Api, receiver: Receiver) -> None:
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    receiver.answer(Reply(400))
    dead = a.post("/v1/jobs", json={"target": {"url": receiver.url()}}).json()["id"]
    wait_for_state(a, dead, "dead")
    job = a.post("/v1/jobs", json={"task": "t", "delay": 3600, "correlation_id": "c1",
                                   "idempotency_key": "same"}).json()["id"]
    sched = a.post("/v1/schedules", json={"task": "t", "name": "mine",
                                          "trigger": {"cron": "0 * * * *"}}).json()["id"]
    # Every list is empty for b.
    for path in ("/v1/jobs", "/v1/dlq", "/v1/schedules"):
        assert b.get(path).json()["items"] == [], path
    assert b.get("/v1/jobs", params={"correlation_id": "c1"}).json()["items"] == []
    # Every per-record endpoint is 404 for b, and changes nothing.
    for method, path in [
        ("GET", f"/v1/jobs/{job}"), ("POST", f"/v1/jobs/{job}/cancel"),
        ("GET", f"/v1/dlq/{dead}"), ("POST", f"/v1/dlq/{dead}/replay"),
        ("POST", f"/v1/dlq/{dead}/discard"),
        ("GET", f"/v1/schedules/{sched}"), ("PATCH", f"/v1/schedules/{sched}"),
        ("DELETE", f"/v1/schedules/{sched}"), ("POST", f"/v1/schedules/{sched}/pause"),
        ("POST", f"/v1/schedules/{sched}/resume"), ("POST", f"/v1/schedules/{sched}/trigger"),
        ("GET", f"/v1/schedules/{sched}/occurrences"), ("GET", f"/v1/schedules/{sched}/ticks"),
    ]:
        kwargs: dict[str, Any] = {"json": {"name": "theirs"}} if method == "PATCH" else {}
        assert_problem(b.request(method, path, **kwargs), 404, "not-found")
    r = b.post("/v1/dlq/replay", json={"ids": [dead]})
    assert r.status_code in (201, 404) and (r.status_code == 404 or r.json()["items"] == [])
    r = b.post("/v1/dlq/discard", json={"ids": [dead]})
    assert r.status_code in (200, 404) and (r.status_code == 404
                                            or r.json()["discarded"] == [])
    # The same names and idempotency keys are free in b.
    assert b.post("/v1/jobs", json={"task": "t", "payload": {"other": 1},
                                    "idempotency_key": "same"}).status_code == 201
    assert b.post("/v1/schedules", json={"task": "t", "name": "mine",
                                         "trigger": {"cron": "0 * * * *"}}).status_code == 201
    # a's records are untouched.
    assert a.get(f"/v1/jobs/{job}").json()["state"] == "scheduled"
    assert a.get(f"/v1/dlq/{dead}").json()["state"] == "dead"
    assert a.get(f"/v1/schedules/{sched}").json()["name"] == "mine"


def test_quotas_refuse_more_than_the_tenant_may_have(api: Api) -> None:
    tid, _, c = api.tenant(max_pending_jobs=2, max_active_schedules=1)
    for _ in range(2):
        assert c.post("/v1/jobs", json={"task": "t", "delay": 600}).status_code == 201
    assert_problem(c.post("/v1/jobs", json={"task": "t"}), 403, "quota-exceeded",
                   says="max_pending_jobs")
    cron = {"cron": "0 * * * *"}
    s = c.post("/v1/schedules", json={"task": "t", "trigger": cron}).json()
    assert_problem(c.post("/v1/schedules", json={"task": "t", "trigger": cron}), 403,
                   "quota-exceeded", says="max_active_schedules")
    paused = c.post("/v1/schedules", json={"task": "t", "trigger": cron, "paused": True})
    assert paused.status_code == 201  # a paused schedule costs nothing
    assert_problem(c.post(f"/v1/schedules/{paused.json()['id']}/resume"), 403,
                   "quota-exceeded")
    c.delete(f"/v1/schedules/{s['id']}")
    assert c.post(f"/v1/schedules/{paused.json()['id']}/resume").status_code == 200
    # Raising the quota takes effect within the tenant cache's few seconds.
    api.admin.patch(f"/v1/tenants/{tid}", json={"max_pending_jobs": 10})
    wait_for_condition(lambda: c.post("/v1/jobs", json={"task": "t"}).status_code == 201,
                       timeout=15)


def test_the_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    _, _, c = api.tenant(rate_limit=2)
    statuses = [c.get("/v1/jobs") for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    problem = assert_problem(limited[0], 429, "rate-limited", says="2 requests per second")
    assert int(limited[0].headers["retry-after"]) >= 1 and problem["instance"] == "/v1/jobs"
    # Other tenants are not slowed down.
    _, _, other = api.tenant()
    assert all(other.get("/v1/jobs").status_code == 200 for _ in range(6))


def test_admin_manages_tenants(api: Api) -> None:
    tid = f"acme-{uuid.uuid4().hex[:6]}"
    r = api.admin.post("/v1/tenants", json={"id": tid, "name": "Acme", "rate_limit": 50})
    assert r.status_code == 201
    assert r.json()["webhook_secret"].startswith("whsec_")
    assert_problem(api.admin.post("/v1/tenants", json={"id": tid}), 409, "conflict")
    assert_problem(api.admin.post("/v1/tenants", json={"id": "Not Valid!"}), 422,
                   "invalid-request", says="id")
    listed = api.admin.get("/v1/tenants", params={"limit": 500}).json()["items"]
    assert tid in [t["id"] for t in listed]
    assert all("webhook_secret" not in t for t in listed)  # secrets only at creation
    assert api.admin.get(f"/v1/tenants/{tid}").json()["name"] == "Acme"
    patched = api.admin.patch(f"/v1/tenants/{tid}", json={"name": "Acme Inc"}).json()
    assert patched["name"] == "Acme Inc" and "webhook_secret" not in patched
    assert_problem(api.admin.post("/v1/keys", json={"tenant_id": "no-such-tenant"}), 422,
                   "invalid-request", says="no tenant")
    assert_problem(api.admin.get("/v1/tenants/no-such-tenant"), 404, "not-found")


# -- HTTP targets through the API --------------------------------------------------------------


def test_an_http_target_arrives_signed_with_the_tenants_secret(api: Api,
                                                               receiver: Receiver) -> None:
    tid, _, c = api.tenant()
    secret = api.secrets[tid]
    receiver.answer(Reply(503, b"busy"), Reply(200, b'{"ok":true}'))
    job = c.post("/v1/jobs", json={
        "target": {"url": receiver.url("/orders"), "method": "PUT",
                   "headers": {"X-Order": "42"}, "body": {"order": 42}},
        "retry": {"max_attempts": 3, "backoff": "fixed", "base": 0, "jitter": "none"},
        "correlation_id": "order-42"}).json()
    done = wait_for_state(c, job["id"], "succeeded", "dead")
    assert done["state"] == "succeeded", done
    assert done["attempt"] == 2 and done["result"]["status"] == 200
    assert done["attempts"][0]["outcome"] == "retry" or done["attempts"][0]["outcome"] \
        == "failed"
    assert "503" in done["attempts"][0]["error"]["message"]
    seen = [r for r in receiver.requests if r.path == "/orders"]
    assert len(seen) == 2 and seen[0].method == "PUT"
    assert seen[0].headers["webhook-id"] == seen[1].headers["webhook-id"] == job["id"]
    assert seen[1].headers["x-order"] == "42"
    assert seen[1].headers["hora-correlation-id"] == "order-42"
    assert json.loads(seen[1].body) == {"order": 42}
    Webhook(secret).verify(seen[1].body, {k: seen[1].headers[k] for k in (
        "webhook-id", "webhook-timestamp", "webhook-signature")})


def test_a_private_address_is_refused_unless_allowed(tmp_path: Any, receiver: Receiver) -> None:
    from tests.api.conftest import start_server

    srv: Server = start_server(f"sqlite:///{tmp_path / 'x.db'}", tmp_path,
                               extra_env={"HORA_HTTP_ALLOW": ""})
    try:
        a = Api(srv)
        c = a.admin
        # Refused at enqueue (the worker would refuse it at the due time anyway).
        refused = assert_problem(c.post("/v1/jobs", json={"target": {"url": receiver.url()}}),
                                 422, "invalid-request", says="HORA_HTTP_ALLOW")
        assert refused["errors"][0]["field"] == "target.url"
        assert c.get("/v1/jobs").json()["items"] == [] and receiver.requests == []
        a.close()
    finally:
        assert srv.stop() == 0, "".join(srv.log)
