"""Approval requests over HTTP, against a real ``hora serve`` whose worker runs
``tests.api.workflow_app``, on SQLite and on PostgreSQL: the double click of issue #9, the
approve scope, the actor taken from the key, tenancy, expiry."""

from __future__ import annotations

from typing import Any

import httpx

from hora.api.schemas import ApprovalOut, ApprovalPage
from hora.testing import wait_for_condition
from tests.api.conftest import Api
from tests.api.test_api import assert_problem
from tests.api.test_workflows_api import start, wait_for_workflow

APPROVAL_KEYS = {"id", "tenant_id", "workflow_id", "workflow_name", "seq", "name", "approvers",
                 "context", "state", "deadline", "created_at", "decided_by", "decided_by_key",
                 "comment", "decided_at"}


def key(api: Api, tenant_id: str, *scopes: str, name: str | None = None,
        ) -> tuple[str, httpx.Client]:
    """A new key of the tenant: (its id, a client using it)."""
    r = api.admin.post("/v1/keys", json={"tenant_id": tenant_id, "scopes": list(scopes),
                                         "name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"], api.client(r.json()["key"])


def pending(c: httpx.Client, workflow_id: str, *, seq: int | None = None) -> dict[str, Any]:
    """The workflow's pending request (at ``seq``), once the worker has made it."""
    found: list[dict[str, Any]] = []

    def made() -> bool:
        items = c.get("/v1/approvals", params={"workflow_id": workflow_id}).json()["items"]
        found[:] = [a for a in items if seq is None or a["seq"] == seq]
        return len(found) == 1

    wait_for_condition(made, timeout=30, interval=0.05,
                       message=f"a pending approval request of {workflow_id}")
    return found[0]


def test_a_double_click_is_one_decision_and_stage_two_still_waits(wf_api: Api) -> None:
    tid, _, writer = wf_api.tenant()
    a_id, manager_a = key(wf_api, tid, "approve", name="manager-a")
    _, manager_b = key(wf_api, tid, "approve", name="manager-b")
    start(writer, "api.purchase", args={"amount": 5000}, workflow_id="p-1")
    stage1 = pending(manager_a, "p-1")
    assert set(stage1) == APPROVAL_KEYS
    assert (stage1["name"], stage1["seq"], stage1["state"], stage1["context"]) == (
        "approval", 1, "pending", {"stage": 1, "amount": 5000})
    assert stage1["workflow_name"] == "api.purchase" and stage1["tenant_id"] == tid
    assert stage1["deadline"] is None and stage1["created_at"].endswith("Z")
    assert manager_a.get(f"/v1/approvals/{stage1['id']}").json() == stage1

    # The double click: the same request, approved twice (and a third time by someone else).
    one = manager_a.post(f"/v1/approvals/{stage1['id']}/approve", json={"comment": "ok"})
    two = manager_a.post(f"/v1/approvals/{stage1['id']}/approve", json={"comment": "ok"})
    three = manager_b.post(f"/v1/approvals/{stage1['id']}/approve")
    assert one.status_code == two.status_code == three.status_code == 200, one.text
    assert one.json() == two.json() == three.json()
    decided = one.json()
    # The actor is the key: its name, its id, its tenant -- not a field anyone could type.
    assert (decided["state"], decided["decided_by"], decided["decided_by_key"],
            decided["tenant_id"], decided["comment"]) == (
        "approved", "manager-a", a_id, tid, "ok")
    ApprovalOut.model_validate(decided, strict=True)

    stage2 = pending(manager_b, "p-1", seq=2)
    assert stage2["id"] != stage1["id"] and stage2["context"]["stage"] == 2
    wf = wait_for_workflow(writer, "p-1", "waiting")
    assert (wf["wait_kind"], wf["state"]) == ("approval", "waiting")
    inbox = manager_b.get("/v1/approvals").json()
    ApprovalPage.model_validate(inbox, strict=True)
    assert [a["id"] for a in inbox["items"]] == [stage2["id"]]
    # A late click on stage 1 still names stage 1: stage 2 stays pending.
    assert manager_a.post(f"/v1/approvals/{stage1['id']}/approve").status_code == 200
    assert manager_b.get(f"/v1/approvals/{stage2['id']}").json()["state"] == "pending"

    assert manager_b.post(f"/v1/approvals/{stage2['id']}/approve").status_code == 200
    done = wait_for_workflow(writer, "p-1", "completed")
    assert done["result"] == ["manager-a", "manager-b"]
    every = writer.get("/v1/approvals", params=[("state", "approved"),
                                                ("workflow_id", "p-1")]).json()["items"]
    assert [a["decided_by"] for a in every] == ["manager-b", "manager-a"]


def test_a_conflicting_decision_is_409_and_changes_nothing(wf_api: Api) -> None:
    _, _, writer = wf_api.tenant(("read", "write", "approve"))
    start(writer, "api.order", args={"order": "o-9"}, workflow_id="o-9")
    request = pending(writer, "o-9")
    path = f"/v1/approvals/{request['id']}"
    rejected = writer.post(f"{path}/reject", json={"comment": "no stock"})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    assert_problem(writer.post(f"{path}/approve"), 409, "state-conflict",
                   says="is rejected, expected pending")
    assert writer.get(path).json() == rejected.json()
    failed = wait_for_workflow(writer, "o-9", "failed")
    assert failed["error"]["message"] == "order o-9 not approved: no stock"
    # By workflow id, the old route: the same decision again is that decision (by name).
    again = writer.post("/v1/workflows/o-9/reject", json={"name": "approval"})
    assert again.status_code == 200 and again.json() == rejected.json()
    assert_problem(writer.post("/v1/workflows/o-9/approve", json={}), 409, "state-conflict",
                   says="failed")


def test_the_approve_scope_decides_and_reads_but_does_not_write(wf_api: Api) -> None:
    tid, _, writer = wf_api.tenant()
    _, approver = key(wf_api, tid, "approve", name="manager-a")
    _, reader = key(wf_api, tid, "read")
    start(writer, "api.order", args={"order": "o-1"}, workflow_id="o-1")
    request = pending(approver, "o-1")
    # It reads what it needs to show the decision's context.
    assert approver.get("/v1/workflows/o-1").json()["args"] == {"order": "o-1"}
    # It cannot start, steer or cancel workflows, nor enqueue jobs.
    for path, body in [("/v1/workflows", {"workflow": "api.order"}),
                       ("/v1/workflows/o-1/signals/ship", {}),
                       ("/v1/workflows/o-1/cancel", {}),
                       ("/v1/jobs", {"task": "x"})]:
        assert_problem(approver.post(path, json=body), 403, "forbidden", says="'write'")
    # Neither a read key nor a write key may decide: write does not imply approve.
    for other in (reader, writer):
        for path in (f"/v1/approvals/{request['id']}/approve",
                     f"/v1/approvals/{request['id']}/reject", "/v1/workflows/o-1/approve"):
            assert_problem(other.post(path, json={}), 403, "forbidden", says="'approve'")
    assert reader.get(f"/v1/approvals/{request['id']}").json()["state"] == "pending"
    # The old free-text actor is not trusted: ignored, the key's name is recorded; an
    # Idempotency-Key works for an approve-only key as on any POST (its retry replays).
    keyed = {"Idempotency-Key": f"decide-{request['id']}"}
    r = approver.post("/v1/workflows/o-1/approve", json={"actor": "the CEO", "comment": "go"},
                      headers=keyed)
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["decided_by"], r.json()["comment"]) == (
        request["id"], "manager-a", "go")
    retry = approver.post("/v1/workflows/o-1/approve",
                          json={"actor": "the CEO", "comment": "go"}, headers=keyed)
    assert retry.headers.get("idempotent-replayed") == "true" and retry.json() == r.json()
    wait_for_condition(lambda: writer.get("/v1/workflows/o-1").json()["wait_name"] == "ship",
                       timeout=30, message="o-1 waiting for ship")


def test_named_approvers_and_expiry(wf_api: Api) -> None:
    tid, _, writer = wf_api.tenant()
    _, manager_a = key(wf_api, tid, "approve", name="manager-a")
    _, unnamed = key(wf_api, tid, "approve")
    start(writer, "api.quick", args={"seconds": 600}, workflow_id="q-1")
    request = pending(manager_a, "q-1")
    assert request["approvers"] == ["manager-a"] and request["deadline"].endswith("Z")
    assert_problem(unnamed.post(f"/v1/approvals/{request['id']}/approve"), 403, "forbidden",
                   says="manager-a only")
    ok = manager_a.post(f"/v1/approvals/{request['id']}/approve")
    assert ok.status_code == 200 and ok.json()["decided_by"] == "manager-a"
    assert wait_for_workflow(writer, "q-1", "completed")["result"] == "decided by manager-a"

    # Half a second to decide: the worker's wake-up at the deadline expires the request,
    # and approving it after is a 409.
    start(writer, "api.quick", args={"seconds": 0.5}, workflow_id="q-2")
    late = pending(manager_a, "q-2")
    path = f"/v1/approvals/{late['id']}"
    wait_for_condition(lambda: manager_a.get(path).json()["state"] == "expired", timeout=30,
                       interval=0.05, message="q-2's request expired")
    assert_problem(manager_a.post(f"{path}/approve"), 409, "state-conflict", says="expired")
    assert manager_a.get(path).json()["decided_by"] is None
    assert wait_for_workflow(writer, "q-2", "completed")["result"] == "expired"


def test_no_approval_route_crosses_tenants(wf_api: Api) -> None:
    _, _, writer = wf_api.tenant()
    other_tid, _, _ = wf_api.tenant()
    _, mallory = key(wf_api, other_tid, "approve", "read", name="manager-a")
    start(writer, "api.order", args={"order": "o-5"}, workflow_id="o-5")
    request = pending(writer, "o-5")
    path = f"/v1/approvals/{request['id']}"
    assert_problem(mallory.get(path), 404, "not-found")
    assert_problem(mallory.post(f"{path}/approve"), 404, "not-found")
    assert_problem(mallory.post(f"{path}/reject", json={"comment": "mine"}), 404, "not-found")
    assert_problem(mallory.post("/v1/workflows/o-5/approve", json={}), 404, "not-found")
    assert mallory.get("/v1/approvals").json() == {"items": [], "next_cursor": None}
    assert writer.get(path).json() == request


def test_bad_approval_requests_are_422_or_404(api: Api) -> None:
    _, _, c = api.tenant(("read", "write", "approve"))
    start(c, workflow_id="w1")
    for path, body, field, says in [
        ("/v1/approvals/x/approve", {"comment": "c" * 2001}, "comment", "2000"),
        ("/v1/approvals/x/approve", {"actor": "ann"}, "actor", "unknown field"),
        ("/v1/workflows/w1/approve", {"name": ""}, "name", "at least 1"),
        ("/v1/workflows/w1/reject", {"comment": "a\x00b"}, "comment", "NUL"),
    ]:
        problem = assert_problem(c.post(path, json=body), 422, "invalid-request")
        assert says in str(problem) and any(e["field"].startswith(field)
                                            for e in problem["errors"]), problem
    assert_problem(c.get("/v1/approvals", params={"state": "waiting"}), 422,
                   "invalid-request", says="state")
    assert_problem(c.get("/v1/approvals/nope"), 404, "not-found", says="nope")
    assert_problem(c.post("/v1/approvals/nope/approve"), 404, "not-found", says="nope")
    # No worker here knows the workflow: it has no request, which a decision says.
    assert_problem(c.post("/v1/workflows/w1/approve", json={}), 409, "conflict",
                   says="no pending approval request")


def test_decision_routes_check_the_approve_scope_before_claiming_a_key() -> None:
    """As every POST route: the scope dependency comes first, then the Idempotency-Key claim
    (which any key may make), so a key without the scope never claims nor replays."""
    from fastapi.routing import APIRoute

    from hora.api.server import _idempotency, router

    decisions = [r for r in router.routes if isinstance(r, APIRoute)
                 and r.path.endswith(("/approve", "/reject"))]
    assert len(decisions) == 4
    for r in decisions:
        calls = [d.call for d in r.dependant.dependencies]
        assert _idempotency in calls, r.path
        first = calls[0]
        assert getattr(first, "__qualname__", "") == "_need.<locals>.check", r.path
