"""The scope model over HTTP, on SQLite and PostgreSQL: an admin key manages its own tenant
only; the operator (the bootstrap key, keys the CLI mints) manages every tenant; webhook
secrets are shown once; the last operator key stays; keys expire.

Another tenant's tenant, keys and secret answer 404 to an admin, as if they did not exist;
asking for a power the key lacks (a tenant, quotas, a key for another tenant or with the
operator scope) answers 403. Either way nothing changes, which every probe checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hora.api.auth import hash_key, key_record, new_key
from hora.store import open_store
from hora.testing import wait_for_condition
from tests.api.conftest import Api, Server, start_server
from tests.api.test_api import assert_problem
from tests.store.test_conformance import raw


def snapshot(api: Api, tenant_id: str) -> dict[str, Any]:
    """Everything an admin route could change about a tenant, seen by the operator and, for
    the secret, by the store itself."""
    store = open_store(api.server.database_url)
    try:
        secret = store.get_tenant(tenant_id).webhook_secret
    finally:
        store.close()
    keys = api.admin.get("/v1/keys", params={"tenant_id": tenant_id, "limit": 500})
    tenants = api.admin.get("/v1/tenants", params={"limit": 500}).json()["items"]
    return {"tenant": api.admin.get(f"/v1/tenants/{tenant_id}").json(),
            "keys": keys.json()["items"], "secret": secret,
            "tenant_ids": sorted(t["id"] for t in tenants)}


def key_id_of(api: Api, key: str) -> str:
    """The id of a key, by its hash in the server's store."""
    store = open_store(api.server.database_url)
    try:
        record = store.api_key_by_hash(hash_key(key))
    finally:
        store.close()
    assert record is not None
    return record.id


def test_a_tenant_admin_cannot_touch_another_tenant(api: Api) -> None:
    a, a_key, a_admin = api.tenant(scopes=("admin",))
    a_reader = api.admin.post("/v1/keys", json={"tenant_id": a, "scopes": ["read"]}).json()
    b, _, b_admin = api.tenant(scopes=("admin",))
    boot_id = key_id_of(api, api.server.admin_key)
    before_a = snapshot(api, a)
    before_default = snapshot(api, "default")
    new_tenant = f"n-{uuid.uuid4().hex[:8]}"

    hidden = [  # another tenant's things: 404, as if they did not exist
        b_admin.get(f"/v1/tenants/{a}"),
        b_admin.patch(f"/v1/tenants/{a}", json={"name": "pwned"}),
        b_admin.patch(f"/v1/tenants/{a}", json={"max_pending_jobs": 1, "rate_limit": 0.1}),
        b_admin.post(f"/v1/tenants/{a}/rotate-webhook-secret"),
        b_admin.get("/v1/tenants/default"),
        b_admin.post("/v1/tenants/default/rotate-webhook-secret"),
        b_admin.get("/v1/keys", params={"tenant_id": a}),
        b_admin.get("/v1/keys", params={"tenant_id": "default"}),
        b_admin.delete(f"/v1/keys/{a_reader['id']}"),
        b_admin.delete(f"/v1/keys/{key_id_of(api, a_key)}"),
        b_admin.delete(f"/v1/keys/{boot_id}"),
    ]
    for r in hidden:
        assert_problem(r, 404, "not-found")
        assert "webhook_secret" not in r.text and "whsec_" not in r.text
    refused = [  # powers an admin lacks: 403, never a silent downgrade
        b_admin.post("/v1/keys", json={"tenant_id": a, "scopes": ["read"]}),
        b_admin.post("/v1/keys", json={"tenant_id": a, "scopes": ["admin"]}),
        b_admin.post("/v1/keys", json={"tenant_id": "default", "scopes": ["admin"]}),
        b_admin.post("/v1/keys", json={"tenant_id": "no-such-tenant"}),
        b_admin.post("/v1/keys", json={"scopes": ["operator"]}),
        b_admin.post("/v1/keys", json={"tenant_id": b, "scopes": ["read", "operator"]}),
        b_admin.post("/v1/tenants", json={"id": new_tenant}),
        b_admin.patch(f"/v1/tenants/{b}", json={"max_pending_jobs": 10**6}),
        b_admin.patch(f"/v1/tenants/{b}", json={"rate_limit": 10**6}),
        b_admin.patch(f"/v1/tenants/{b}", json={"max_active_schedules": 10**6}),
    ]
    for r in refused:
        assert_problem(r, 403, "forbidden", says="'operator' scope")
    # The tenants list shows the admin its own tenant only, and no secret.
    listed = b_admin.get("/v1/tenants").json()
    assert [t["id"] for t in listed["items"]] == [b] and listed["next_cursor"] is None
    assert "webhook_secret" not in listed["items"][0]
    assert {k["tenant_id"] for k in b_admin.get("/v1/keys").json()["items"]} == {b}

    assert snapshot(api, a) == before_a
    assert snapshot(api, "default") == before_default
    assert_problem(api.admin.get(f"/v1/tenants/{new_tenant}"), 404, "not-found")
    assert api.admin.get(f"/v1/tenants/{b}").json()["max_pending_jobs"] is None
    assert a_admin.get("/v1/keys").status_code == 200  # A's keys all still work
    assert api.client(a_reader["key"]).get("/v1/jobs").status_code == 200


def test_an_admin_manages_its_own_tenant(api: Api) -> None:
    tid, _, admin = api.tenant(scopes=("admin",))
    mine = admin.get(f"/v1/tenants/{tid}")
    assert mine.status_code == 200 and "webhook_secret" not in mine.json()
    renamed = admin.patch(f"/v1/tenants/{tid}", json={"name": "Mine"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Mine"
    assert "webhook_secret" not in renamed.text

    created = {}
    for scopes in (["read"], ["approve"], ["write"], ["admin"]):
        r = admin.post("/v1/keys", json={"scopes": scopes, "name": scopes[0]})
        assert r.status_code == 201, r.text
        assert r.json()["tenant_id"] == tid and r.json()["scopes"] == scopes
        created[scopes[0]] = r.json()
    own = admin.post("/v1/keys", json={"tenant_id": tid, "scopes": ["read"]})
    assert own.status_code == 201
    listed = {k["id"] for k in admin.get("/v1/keys").json()["items"]}
    assert {k["id"] for k in created.values()} <= listed
    assert admin.get("/v1/keys", params={"tenant_id": tid}).status_code == 200

    # The secret: shown by the rotation, once; the old one is gone.
    rotated = admin.post(f"/v1/tenants/{tid}/rotate-webhook-secret")
    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["webhook_secret"]
    assert secret.startswith("whsec_") and secret != api.secrets[tid]
    assert "webhook_secret" not in admin.get(f"/v1/tenants/{tid}").json()
    store = open_store(api.server.database_url)
    try:
        assert store.get_tenant(tid).webhook_secret == secret
    finally:
        store.close()

    # An approve key decides approvals but cannot write; a tenant admin may revoke keys,
    # its own included.
    approver = api.client(created["approve"]["key"])
    assert approver.get("/v1/jobs").status_code == 200
    assert_problem(approver.post("/v1/jobs", json={"task": "t"}), 403, "forbidden")
    assert admin.delete(f"/v1/keys/{created['read']['id']}").json()["revoked_at"]
    me = admin.delete(f"/v1/keys/{created['admin']['id']}")
    assert me.status_code == 200
    other_admin = api.client(created["admin"]["key"])
    wait_for_condition(lambda: other_admin.get("/v1/keys").status_code == 401, timeout=15)


def test_the_operator_manages_every_tenant(api: Api) -> None:
    op = api.admin
    tid = f"op-{uuid.uuid4().hex[:8]}"
    created = op.post("/v1/tenants", json={"id": tid, "max_pending_jobs": 5})
    assert created.status_code == 201 and created.json()["webhook_secret"].startswith("whsec_")
    for read in (op.get(f"/v1/tenants/{tid}"), op.get("/v1/tenants", params={"limit": 500}),
                 op.patch(f"/v1/tenants/{tid}", json={"max_pending_jobs": 7,
                                                      "rate_limit": 100})):
        assert read.status_code == 200 and "whsec_" not in read.text
    assert op.get(f"/v1/tenants/{tid}").json()["max_pending_jobs"] == 7
    rotated = op.post(f"/v1/tenants/{tid}/rotate-webhook-secret").json()["webhook_secret"]
    assert rotated != created.json()["webhook_secret"]

    admin = op.post("/v1/keys", json={"tenant_id": tid, "scopes": ["admin"]}).json()
    assert op.get("/v1/keys", params={"tenant_id": tid}).json()["items"][0]["id"] == admin["id"]
    # A second operator key (minted by an operator) is an operator too, of any tenant.
    second = op.post("/v1/keys", json={"tenant_id": tid, "scopes": ["operator"]})
    assert second.status_code == 201, second.text
    op2 = api.client(second.json()["key"])
    other = f"op2-{uuid.uuid4().hex[:8]}"
    assert op2.post("/v1/tenants", json={"id": other}).status_code == 201
    assert op2.get("/v1/tenants/default").status_code == 200
    # The operator revokes a tenant admin's key and its own second key.
    assert op.delete(f"/v1/keys/{admin['id']}").status_code == 200
    assert op2.delete(f"/v1/keys/{second.json()['id']}").status_code == 200


# -- on a server of its own (the shared one has other operator keys) ---------------------------


@pytest.fixture
def lone(database_url: str, tmp_path: Path) -> Iterator[Api]:
    srv: Server = start_server(database_url, tmp_path)
    a = Api(srv)
    try:
        yield a
    finally:
        a.close()
        srv.stop()


def test_the_bootstrap_key_is_the_operator_and_the_last_one_stays(lone: Api) -> None:
    keys = lone.admin.get("/v1/keys").json()["items"]
    assert [k["scopes"] for k in keys] == [["operator"]]
    boot_id = keys[0]["id"]
    r = lone.admin.delete(f"/v1/keys/{boot_id}")
    assert_problem(r, 409, "conflict", says="last operator key")
    assert lone.admin.get("/v1/keys").status_code == 200  # still works

    second = lone.admin.post("/v1/keys", json={"scopes": ["operator"]}).json()
    op2 = lone.client(second["key"])
    assert op2.delete(f"/v1/keys/{boot_id}").status_code == 200  # the other one stays
    assert_problem(op2.delete(f"/v1/keys/{second['id']}"), 409, "conflict",
                   says="last operator key")
    wait_for_condition(lambda: lone.admin.get("/v1/keys").status_code == 401, timeout=15)
    assert op2.get("/v1/keys").status_code == 200


def test_an_expired_key_is_refused(lone: Api) -> None:
    now = datetime.now(UTC)
    store = open_store(lone.server.database_url)
    try:
        lone.admin.post("/v1/tenants", json={"id": "exp"})
        key = new_key()
        store.insert_api_key(key_record(key, tenant_id="exp", name="old", scopes=("read",),
                                        now=now - timedelta(days=2),
                                        expires_at=now - timedelta(days=1)))
        # An expired operator key does not count: the bootstrap key is still the last.
        store.insert_api_key(key_record(new_key(), tenant_id="default", name="old-op",
                                        scopes=("operator",), now=now - timedelta(days=2),
                                        expires_at=now - timedelta(seconds=1)))
        assert store.api_key_by_hash(hash_key(key)) is not None
    finally:
        store.close()
    r = lone.client(key).get("/v1/jobs")
    assert_problem(r, 401, "unauthorized", says="this API key expired")
    boot_id = key_id_of(lone, lone.server.admin_key)
    assert_problem(lone.admin.delete(f"/v1/keys/{boot_id}"), 409, "conflict")

    listed = lone.admin.get("/v1/keys", params={"tenant_id": "exp"}).json()["items"]
    assert listed[0]["expires_at"] is not None
    soon = (now + timedelta(days=30)).isoformat()
    made = lone.admin.post("/v1/keys", json={"tenant_id": "exp", "expires_at": soon})
    assert made.status_code == 201 and datetime.fromisoformat(made.json()["expires_at"]) \
        == datetime.fromisoformat(soon)
    assert lone.client(made.json()["key"]).get("/v1/jobs").status_code == 200
    for bad, says in [((now - timedelta(seconds=5)).isoformat(), "not in the future"),
                      ((now + timedelta(days=4000)).isoformat(), "3660 days"),
                      ("2030-01-01T00:00:00", "expires_at"),
                      ("9999-12-31T23:59:59-01:00", "3660 days"),
                      ("0001-01-01T00:00:00+14:00", "not in the future")]:
        r = lone.admin.post("/v1/keys", json={"tenant_id": "exp", "expires_at": bad})
        body = assert_problem(r, 422, "invalid-request")
        assert body["errors"][0]["field"] == "expires_at", body
        assert says in body["detail"], body


def test_key_and_tenant_listings_refuse_a_foreign_cursor(api: Api) -> None:
    _, _, admin = api.tenant(scopes=("admin",))
    for path in ("/v1/keys", "/v1/tenants"):
        for c in (api.admin, admin):
            r = c.get(path, params={"cursor": "not a cursor!"})
            body = assert_problem(r, 422, "invalid-request")
            assert body["errors"][0]["field"] == "cursor", body


def test_a_replay_does_not_show_a_secret_again_and_none_is_stored(api: Api) -> None:
    tid, _, admin = api.tenant(scopes=("admin",))
    headers = {"Idempotency-Key": f"mint-{uuid.uuid4()}"}
    first = admin.post("/v1/keys", json={"scopes": ["read"]}, headers=headers)
    again = admin.post("/v1/keys", json={"scopes": ["read"]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == {**first.json(), "key": None}
    rot = {"Idempotency-Key": f"rotate-{uuid.uuid4()}"}
    secret = admin.post(f"/v1/tenants/{tid}/rotate-webhook-secret", headers=rot).json()
    replay = admin.post(f"/v1/tenants/{tid}/rotate-webhook-secret", headers=rot).json()
    assert secret["webhook_secret"].startswith("whsec_") and replay["webhook_secret"] is None
    with raw(api.server.database_url) as conn:
        bodies = " ".join(r[0] or "" for r in conn.execute(
            "SELECT body FROM hora_idempotency WHERE tenant_id = %s" if "postgres" in
            api.server.database_url else "SELECT body FROM hora_idempotency WHERE tenant_id = ?",
            (tid,)).fetchall())
    assert first.json()["prefix"] in bodies  # the replays are stored...
    assert first.json()["key"] not in bodies and secret["webhook_secret"] not in bodies
