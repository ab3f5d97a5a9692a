"""Issue #9's smaller defects over HTTP, on SQLite and PostgreSQL: lock routes honour
Idempotency-Key, 405 names the methods a path answers, every listing refuses a cursor it
never returned, and hora's own task names are not a tenant's to enqueue."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute

from hora.api.server import _idempotency, router
from tests.api.conftest import Api
from tests.api.test_api import PROBLEM, assert_problem


def test_a_retried_lock_call_replays_its_first_answer(api: Api) -> None:
    _, _, c = api.tenant()
    key = {"Idempotency-Key": f"acquire-{uuid.uuid4()}"}
    body = {"ttl": 60, "owner": "node-a"}
    first = c.post("/v1/locks/export/acquire", json=body, headers=key)
    retry = c.post("/v1/locks/export/acquire", json=body, headers=key)
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    # Without the key, asking again is a second request: the lock is held.
    assert_problem(c.post("/v1/locks/export/acquire", json=body), 409, "lock-held")
    # The same key for another request is refused, not replayed.
    assert_problem(c.post("/v1/locks/export/acquire", json={"ttl": 60, "owner": "node-b"},
                          headers=key), 422, "idempotency-key-reused")
    token = first.json()["token"]
    renew = {"Idempotency-Key": f"renew-{uuid.uuid4()}"}
    lease = {"owner": "node-a", "token": token, "ttl": 120}
    renewed = [c.post("/v1/locks/export/renew", json=lease, headers=renew) for _ in range(2)]
    assert renewed[0].json() == renewed[1].json() and renewed[1].headers[
        "idempotent-replayed"] == "true"
    release = {"Idempotency-Key": f"release-{uuid.uuid4()}"}
    ref = {"owner": "node-a", "token": token}
    released = [c.post("/v1/locks/export/release", json=ref, headers=release)
                for _ in range(2)]
    assert [r.json() for r in released] == [{"released": True}, {"released": True}]
    assert c.post("/v1/locks/export/release", json=ref).json() == {"released": False}


def _depends_on(route: APIRoute, call: Any) -> bool:
    todo = [route.dependant]
    while todo:
        dep = todo.pop()
        if dep.call is call:
            return True
        todo.extend(dep.dependencies)
    return False


def test_every_post_route_claims_its_idempotency_key() -> None:
    """The OpenAPI document promises Idempotency-Key on every POST; a route that forgets it
    (as the lock routes did) fails here. Previewing a trigger writes nothing to replay; the
    public unsubscribe page is no API operation (not in the document, no key to claim with,
    and opting out twice is opting out)."""
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    posts = [r for r in routes if "POST" in r.methods and r.include_in_schema
             and r.path != "/v1/triggers/preview"]
    assert len(posts) > 15
    assert [r.path for r in posts if not _depends_on(r, _idempotency)] == []
    # Any key may claim one (an approve-only key too), so each route checks its own scope
    # first: a key without it never claims, nor replays, anything.
    for r in routes:
        calls = [d.call for d in r.dependant.dependencies]
        if _idempotency in calls:
            assert any(getattr(c, "__qualname__", "") == "_need.<locals>.check"
                       for c in calls[:calls.index(_idempotency)]), r.path


def test_a_key_without_the_scope_claims_no_idempotency_key(api: Api) -> None:
    tid, _, writer = api.tenant()
    reader = api.client(api.admin.post("/v1/keys", json={"tenant_id": tid, "scopes": ["read"]})
                        .json()["key"])
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert_problem(reader.post("/v1/jobs", json={"task": "t"}, headers=key), 403, "forbidden")
    first = writer.post("/v1/jobs", json={"task": "t"}, headers=key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/v1/jobs", "GET, POST"),
    ("DELETE", "/v1/jobs", "GET, POST"),
    ("PUT", "/v1/schedules/some-id", "GET, PATCH, DELETE"),
    ("GET", "/v1/locks/x/acquire", "POST"),
    ("DELETE", "/v1/tenants/acme", "GET, PATCH"),
    ("POST", "/v1/keys/some-id", "DELETE"),
    ("POST", "/healthz", "GET"),
])
def test_405_names_every_method_the_path_answers(api: Api, method: str, path: str,
                                                 allow: str) -> None:
    r = api.admin.request(method, path)
    body = assert_problem(r, 405, "method-not-allowed", says=allow)
    assert r.headers["allow"] == allow and r.headers["content-type"].startswith(PROBLEM)
    assert body["instance"] == path


def test_every_listing_refuses_a_cursor_it_never_returned(api: Api) -> None:
    _, _, c = api.tenant()
    schedule = c.post("/v1/schedules", json={"task": "t", "trigger": {"cron": "0 * * * *"}})
    listings = ["/v1/jobs", "/v1/dlq", "/v1/schedules",
                f"/v1/schedules/{schedule.json()['id']}/ticks", "/v1/workflows",
                "/v1/approvals"]
    for path in listings:
        for bad in ("garbage", "not-a-cursor", "x" * 199):
            r = c.get(path, params={"cursor": bad})
            body = assert_problem(r, 422, "invalid-request")
            assert [e["field"] for e in body["errors"]] == ["cursor"], (path, bad, body)
    for path in ("/v1/tenants", "/v1/keys"):
        body = assert_problem(api.admin.get(path, params={"cursor": "Not/A Cursor"}), 422,
                              "invalid-request")
        assert body["errors"][0]["field"] == "cursor"
    # A real cursor still pages.
    for _ in range(3):
        c.post("/v1/jobs", json={"task": "t", "delay": 600})
    page = c.get("/v1/jobs", params={"limit": 2}).json()
    rest = c.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]})
    assert rest.status_code == 200 and len(rest.json()["items"]) == 1


@pytest.mark.parametrize("task", ["hora.workflow:charge", "hora.workflow", "hora.http",
                                  "hora.anything"])
def test_hora_task_names_are_reserved(api: Api, task: str) -> None:
    _, _, c = api.tenant()
    for path, extra in (("/v1/jobs", {}), ("/v1/schedules", {"trigger": "0 * * * *"})):
        r = c.post(path, json={"task": task, **extra})
        body = assert_problem(r, 422, "invalid-request", says="reserved")
        assert body["errors"][0]["field"] == "task", body
    assert c.get("/v1/jobs").json()["items"] == []
    assert c.get("/v1/schedules").json()["items"] == []
    # Names merely like them are the tenant's own.
    assert c.post("/v1/jobs", json={"task": "horatio.run"}).status_code == 201
