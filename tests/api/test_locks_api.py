"""Distributed locks over HTTP, for services in any language: acquire, renew, release."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.test_api import assert_problem


def test_acquire_renew_release_with_fencing_tokens(api: Api) -> None:
    _, _, c = api.tenant()
    first = c.post("/v1/locks/nightly-export/acquire", json={"ttl": 60, "owner": "node-a"})
    assert first.status_code == 201, first.text
    lease = first.json()
    assert lease["token"] == 1 and lease["owner"] == "node-a" and lease["expires_at"]
    held = c.post("/v1/locks/nightly-export/acquire", json={"ttl": 60, "owner": "node-b"})
    assert_problem(held, 409, "lock-held", says="nightly-export")
    assert 1 <= int(held.headers["retry-after"]) <= 60
    shown = c.get("/v1/locks/nightly-export").json()
    assert shown["owner"] == "node-a" and shown["held"] is True and shown["token"] == 1
    renewed = c.post("/v1/locks/nightly-export/renew",
                     json={"owner": "node-a", "token": 1, "ttl": 120})
    assert renewed.status_code == 200 and renewed.json()["expires_at"] > lease["expires_at"]
    assert_problem(c.post("/v1/locks/nightly-export/renew",
                          json={"owner": "node-b", "token": 1}), 409, "lease-lost")
    assert c.post("/v1/locks/nightly-export/release",
                  json={"owner": "node-a", "token": 1}).json() == {"released": True}
    assert c.post("/v1/locks/nightly-export/release",
                  json={"owner": "node-a", "token": 1}).json() == {"released": False}
    again = c.post("/v1/locks/nightly-export/acquire", json={"owner": "node-b"}).json()
    assert again["token"] == 2  # never reused: a stale holder's writes can be refused


def test_locks_are_per_tenant_and_need_scopes(api: Api) -> None:
    _, _, a = api.tenant()
    _, _, b = api.tenant()
    _, _, reader = api.tenant(scopes=("read",))
    assert a.post("/v1/locks/shared/acquire").status_code == 201
    assert b.post("/v1/locks/shared/acquire").json()["token"] == 1  # another tenant's lock
    assert_problem(b.get("/v1/locks/never-taken"), 404, "not-found")
    assert_problem(reader.post("/v1/locks/shared/acquire"), 403, "forbidden")
    assert_problem(a.post("/v1/locks/shared/acquire", json={"ttl": 0}), 422,
                   "invalid-request", says="ttl")
