"""Retention over HTTP, on both stores: a tenant's retention overrides (operator only, in
``PATCH /v1/tenants/{id}``) and ``GET /v1/jobs?include_internal=true``."""

from __future__ import annotations

from hora.store import open_store
from tests.api.conftest import Api
from tests.api.test_api import assert_problem

NONE = {"jobs": None, "dead": None, "ticks": None, "workflows": None, "idempotency": None}


def test_the_operator_sets_and_clears_a_tenants_retention(api: Api) -> None:
    tid, _, _ = api.tenant()
    assert api.admin.get(f"/v1/tenants/{tid}").json()["retention"] == NONE
    r = api.admin.patch(f"/v1/tenants/{tid}",
                        json={"retention": {"jobs": 86400, "dead": 7 * 86400}})
    assert r.status_code == 200, r.text
    want = {**NONE, "jobs": 86400.0, "dead": 604800.0}
    assert r.json()["retention"] == want
    assert api.admin.get(f"/v1/tenants/{tid}").json()["retention"] == want
    listed, cursor = [], None
    while True:
        page = api.admin.get("/v1/tenants", params={"limit": 100, **(
            {"cursor": cursor} if cursor else {})}).json()
        listed += [t for t in page["items"] if t["id"] == tid]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed[0]["retention"] == want
    store = open_store(api.server.database_url)
    try:
        assert store.retention_overrides()[tid].jobs == 86400.0
    finally:
        store.close()
    r = api.admin.patch(f"/v1/tenants/{tid}", json={"retention": None})
    assert r.status_code == 200 and r.json()["retention"] == NONE


def test_a_tenant_admin_cannot_set_retention_and_bad_ages_are_refused(api: Api) -> None:
    tid, _, admin = api.tenant(scopes=("admin",))
    assert_problem(admin.patch(f"/v1/tenants/{tid}", json={"retention": {"jobs": 60}}), 403,
                   "forbidden")
    for bad in ({"jobs": 0}, {"jobs": -1}, {"forever": 1}, {"jobs": "14d"}):
        r = api.admin.patch(f"/v1/tenants/{tid}", json={"retention": bad})
        assert r.status_code == 422, (bad, r.text)
    assert api.admin.get(f"/v1/tenants/{tid}").json()["retention"] == NONE


def test_list_jobs_takes_include_internal(api: Api) -> None:
    _, _, client = api.tenant()
    job = client.post("/v1/jobs", json={"task": "t.visible", "payload": {}}).json()
    for params in ({}, {"include_internal": "true"}, {"include_internal": "false"}):
        r = client.get("/v1/jobs", params=params)
        assert r.status_code == 200, r.text
        assert [j["id"] for j in r.json()["items"]] == [job["id"]]
    assert client.get("/v1/jobs", params={"include_internal": "maybe"}).status_code == 422
