"""The workflow routes against real ``hora serve`` processes, on SQLite and on PostgreSQL.

Two servers: ``server`` registers no workflows, so what it starts stays ``running``, never
advanced (the shapes, validation, idempotency and tenancy of every route); ``workflow_server``
runs ``tests.api.workflow_app``, so workflows started, approved, signalled and cancelled over
HTTP really run on its worker (waits use a deadline, never a sleep).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from hora.api.schemas import SignalOut, WorkflowOut, WorkflowPage
from hora.testing import wait_for_condition
from tests.api.conftest import Api
from tests.api.test_api import assert_problem

WORKFLOW_KEYS = {"id", "tenant_id", "name", "args", "state", "result", "error",
                 "correlation_id", "parent_id", "wait_kind", "wait_name", "wait_until",
                 "cancel_requested", "cancel_reason", "compensation", "run_owner", "run_until",
                 "created_at", "updated_at", "finished_at", "version"}
SIGNAL_KEYS = {"id", "tenant_id", "workflow_id", "name", "payload", "actor", "comment",
               "sent_at", "consumed_seq"}
HISTORY_KEYS = {"seq", "kind", "name", "status", "attempts", "input", "output", "error",
                "started_at", "finished_at", "deadline"}


def start(c: httpx.Client, name: str = "some.flow", **body: Any) -> dict[str, Any]:
    r = c.post("/v1/workflows", json={"workflow": name, **body})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def wait_for_workflow(c: httpx.Client, workflow_id: str, *states: str,
                      timeout: float = 30.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.clear()
        seen.update(c.get(f"/v1/workflows/{workflow_id}").json())
        return seen.get("state") in states

    wait_for_condition(reached, timeout=timeout, interval=0.05,
                       message=f"workflow {workflow_id} in {states}")
    return seen


# -- shapes, on a server that runs no workflows ------------------------------------------------


def test_start_get_and_list(api: Api) -> None:
    tid, _, c = api.tenant()
    wf = start(c, "billing.invoice", args={"invoice": "inv-1", "lines": [1, 2]},
               workflow_id="inv-1", correlation_id="order-7")
    assert set(wf) == WORKFLOW_KEYS
    assert wf["id"] == "inv-1" and wf["tenant_id"] == tid and wf["name"] == "billing.invoice"
    assert wf["args"] == {"invoice": "inv-1", "lines": [1, 2]}
    # An unknown name is accepted: the workflow waits, running, for a worker that knows it.
    assert wf["state"] == "running" and wf["correlation_id"] == "order-7"
    assert wf["created_at"].endswith("Z") and wf["finished_at"] is None
    assert wf["cancel_requested"] is False and wf["error"] is None and wf["result"] is None
    # The same id and request again is the same workflow; another request under the id is
    # a conflict, not a silent answer about a different workflow.
    again = start(c, "billing.invoice", args={"invoice": "inv-1", "lines": [1, 2]},
                  workflow_id="inv-1")
    assert again["id"] == "inv-1" and again["created_at"] == wf["created_at"]
    clash = c.post("/v1/workflows", json={"workflow": "billing.invoice",
                                          "args": {"invoice": "other"}, "workflow_id": "inv-1"})
    assert clash.status_code == 409 and "inv-1" in clash.json()["detail"]
    # Without an id: a new one, which is also the default correlation id.
    fresh = start(c, "billing.refund")
    assert fresh["id"] and fresh["id"] != "inv-1" and fresh["correlation_id"] == fresh["id"]
    assert fresh["args"] == {}

    got = c.get("/v1/workflows/inv-1").json()
    # This server's worker knows no workflow: reads say why nothing advances it.
    assert set(got) == WORKFLOW_KEYS | {"history", "signals", "waiting_reason"}
    assert got["waiting_reason"] == "no live worker runs workflow billing.invoice"
    assert got["history"] == [] and got["signals"] == []
    assert {k: got[k] for k in WORKFLOW_KEYS} == wf

    page = c.get("/v1/workflows").json()
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    assert [w["id"] for w in page["items"]] == [fresh["id"], "inv-1"]  # newest first
    # no history in lists
    assert all(set(w) == WORKFLOW_KEYS | {"waiting_reason"} for w in page["items"])
    by = {"name": "billing.invoice"}
    assert [w["id"] for w in c.get("/v1/workflows", params=by).json()["items"]] == ["inv-1"]
    by = {"correlation_id": "order-7"}
    assert [w["id"] for w in c.get("/v1/workflows", params=by).json()["items"]] == ["inv-1"]
    assert c.get("/v1/workflows", params={"state": "completed"}).json()["items"] == []
    two = c.get("/v1/workflows", params=[("state", "running"), ("state", "failed")]).json()
    assert len(two["items"]) == 2
    # Nothing waits for a signal: the inbox is empty.
    assert c.get("/v1/approvals").json() == {"items": [], "next_cursor": None}


def test_listing_pages_with_a_cursor_even_for_long_ids(api: Api) -> None:
    _, _, c = api.tenant()
    ids = [start(c, workflow_id=f"{n}-" + "x" * 198)["id"] for n in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/v1/workflows", params=params)
        assert page.status_code == 200, page.text
        seen += [w["id"] for w in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert_problem(c.get("/v1/workflows", params={"cursor": "nonsense"}), 422,
                   "invalid-request", says="cursor")
    assert_problem(c.get("/v1/approvals", params={"cursor": "nonsense"}), 422,
                   "invalid-request", says="cursor")


def test_signals_are_kept_in_order_and_decisions_are_not_signals(api: Api) -> None:
    _, _, c = api.tenant(("read", "write", "approve"))
    wf = start(c, workflow_id="w1")
    r = c.post("/v1/workflows/w1/signals/address",
               json={"payload": {"city": "Lyon"}, "actor": "crm", "comment": "moved"})
    assert r.status_code == 201, r.text
    sig = r.json()
    assert set(sig) == SIGNAL_KEYS
    assert sig["workflow_id"] == "w1" and sig["name"] == "address"
    assert sig["payload"] == {"city": "Lyon"} and sig["actor"] == "crm"
    assert sig["comment"] == "moved" and sig["consumed_seq"] is None
    assert sig["sent_at"].endswith("Z") and sig["tenant_id"] == wf["tenant_id"]
    # No body at all, or any JSON value as the payload.
    bare = c.post("/v1/workflows/w1/signals/ping")
    assert bare.status_code == 201 and bare.json()["payload"] is None
    assert bare.json()["actor"] is None
    listed = c.post("/v1/workflows/w1/signals/ping", json={"payload": [1, "two", None]})
    assert listed.json()["payload"] == [1, "two", None]

    # A decision names an approval request; one sent before the workflow asks (no worker
    # here runs it) is refused, not queued as a signal a later wait could take.
    assert_problem(c.post("/v1/workflows/w1/approve", json={"comment": "ok"}), 409,
                   "conflict", says="no pending approval request")
    assert_problem(c.post("/v1/workflows/w1/reject", json={"name": "legal"}), 409,
                   "conflict", says="no pending approval request named 'legal'")

    got = c.get("/v1/workflows/w1").json()
    assert [(s["name"], s["actor"]) for s in got["signals"]] == [
        ("address", "crm"), ("ping", None), ("ping", None)]
    assert got["signals"][0] == sig
    assert got["state"] == "running"  # no worker here knows the workflow


@pytest.mark.parametrize(("path", "body", "field", "says"), [
    ("/v1/workflows", {}, "workflow", "required"),
    ("/v1/workflows", {"workflow": ""}, "workflow", "at least 1"),
    ("/v1/workflows", {"workflow": "w", "args": [1]}, "args", "dictionary"),
    ("/v1/workflows", {"workflow": "w", "colour": "red"}, "colour", "unknown field"),
    ("/v1/workflows", {"workflow": "w", "workflow_id": "a/b"}, "workflow_id", "'/'"),
    ("/v1/workflows", {"workflow": "w", "workflow_id": ".."}, "workflow_id", "'..'"),
    ("/v1/workflows", {"workflow": "w", "workflow_id": "x" * 201}, "workflow_id", "200"),
    ("/v1/workflows", {"workflow": "w", "args": {"k": "a\x00b"}}, "args", "NUL"),
    ("/v1/workflows/w1/signals/go", {"payload": 1, "extra": 2}, "extra", "unknown field"),
    ("/v1/workflows/w1/signals/go", {"actor": ""}, "actor", "at least 1"),
    ("/v1/workflows/w1/signals/go", {"comment": "c" * 2001}, "comment", "2000"),
    ("/v1/workflows/w1/signals/" + "s" * 201, {}, "name", "200"),
    ("/v1/workflows/w1/approve", {"comment": "c" * 2001}, "comment", "2000"),
    ("/v1/workflows/w1/reject", {"verdict": "no"}, "verdict", "unknown field"),
    ("/v1/workflows/w1/approve", {"actor": "", "name": "x"}, "actor", "at least 1"),
    ("/v1/workflows/w1/approve", {"name": ""}, "name", "at least 1"),
    ("/v1/workflows/w1/cancel", {"reason": "r" * 501}, "reason", "500"),
])
def test_bad_requests_are_422_naming_the_field(api: Api, path: str, body: dict[str, Any],
                                               field: str, says: str) -> None:
    _, _, c = api.tenant(("read", "write", "approve"))
    start(c, workflow_id="w1")
    problem = assert_problem(c.post(path, json=body), 422, "invalid-request")
    assert says in str(problem), problem
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    # Nothing half-written.
    got = c.get("/v1/workflows/w1").json()
    assert got["signals"] == [] and got["cancel_requested"] is False
    assert [w["id"] for w in c.get("/v1/workflows").json()["items"]] == ["w1"]


def test_bad_queries_and_unknown_workflows(api: Api) -> None:
    _, _, c = api.tenant(("read", "write", "approve"))
    assert_problem(c.get("/v1/workflows", params={"state": "scheduled"}), 422,
                   "invalid-request", says="state")
    assert_problem(c.get("/v1/workflows", params={"limit": 0}), 422, "invalid-request")
    assert_problem(c.get("/v1/approvals", params={"limit": 501}), 422, "invalid-request")
    missing = str(uuid.uuid4())
    for method, path, body in [
        ("GET", f"/v1/workflows/{missing}", None),
        ("POST", f"/v1/workflows/{missing}/signals/go", {"payload": 1}),
        ("POST", f"/v1/workflows/{missing}/approve", {}),
        ("POST", f"/v1/workflows/{missing}/reject", {"comment": "a"}),
        ("POST", f"/v1/workflows/{missing}/cancel", None),
    ]:
        assert_problem(c.request(method, path, json=body), 404, "not-found", says=missing)


def test_cancel_without_a_worker_only_records_the_request(api: Api) -> None:
    _, _, c = api.tenant()
    start(c, workflow_id="w1")
    r = c.post("/v1/workflows/w1/cancel", json={"reason": "customer left"})
    assert r.status_code == 200, r.text
    wf = r.json()
    assert set(wf) == WORKFLOW_KEYS
    # No worker here runs it: it stays running, the request recorded, until one does.
    assert wf["state"] == "running" and wf["cancel_requested"] is True
    assert wf["cancel_reason"] == "customer left" and wf["finished_at"] is None
    # Still live: asking again is accepted (the latest reason wins), and so are signals.
    again = c.post("/v1/workflows/w1/cancel")
    assert again.status_code == 200
    assert again.json()["cancel_reason"] == "cancelled on request"
    assert c.post("/v1/workflows/w1/signals/go").status_code == 201
    assert c.get("/v1/workflows", params={"state": "cancelled"}).json()["items"] == []


def test_idempotency_key_replays_starts_and_signals(api: Api) -> None:
    _, _, c = api.tenant()
    body = {"workflow": "some.flow", "args": {"n": 1}}
    first = c.post("/v1/workflows", json=body, headers={"Idempotency-Key": "start-1"})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = c.post("/v1/workflows", json=body, headers={"Idempotency-Key": "start-1"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert_problem(c.post("/v1/workflows", json={**body, "args": {"n": 2}},
                          headers={"Idempotency-Key": "start-1"}),
                   422, "idempotency-key-reused", says="start-1")
    assert len(c.get("/v1/workflows").json()["items"]) == 1

    wf_id = first.json()["id"]
    path = f"/v1/workflows/{wf_id}/signals/go"
    one = c.post(path, json={"actor": "ann"}, headers={"Idempotency-Key": "signal-1"})
    two = c.post(path, json={"actor": "ann"}, headers={"Idempotency-Key": "signal-1"})
    assert one.status_code == two.status_code == 201
    assert two.headers["idempotent-replayed"] == "true" and two.json() == one.json()
    assert len(c.get(f"/v1/workflows/{wf_id}").json()["signals"]) == 1


def test_a_read_key_reads_but_does_not_steer(api: Api) -> None:
    tid, _, writer = api.tenant()
    start(writer, workflow_id="w1")
    r = api.admin.post("/v1/keys", json={"tenant_id": tid, "scopes": ["read"]})
    reader = api.client(r.json()["key"])
    assert reader.get("/v1/workflows/w1").status_code == 200
    assert reader.get("/v1/workflows").status_code == 200
    assert reader.get("/v1/approvals").status_code == 200
    for path, body in [("/v1/workflows", {"workflow": "w"}),
                       ("/v1/workflows/w1/signals/go", {}),
                       ("/v1/workflows/w1/cancel", {})]:
        assert_problem(reader.post(path, json=body), 403, "forbidden", says="'write'")
    for path in ("/v1/workflows/w1/approve", "/v1/workflows/w1/reject"):
        assert_problem(reader.post(path, json={}), 403, "forbidden", says="'approve'")
    assert api.client(None).get("/v1/workflows").status_code == 401


# -- workflows that run: a server whose worker knows tests.api.workflow_app ---------------------


def test_approve_then_signal_completes_the_workflow(wf_api: Api) -> None:
    tid, _, c = wf_api.tenant(("read", "write", "approve"))
    start(c, "api.order", args={"order": "o-1"}, workflow_id="o-1")
    waiting = wait_for_workflow(c, "o-1", "waiting")
    assert waiting["wait_kind"] == "approval" and waiting["wait_name"] == "approval"
    assert waiting["wait_until"] and waiting["wait_until"].endswith("Z")
    inbox = c.get("/v1/approvals").json()
    assert [a["workflow_id"] for a in inbox["items"]] == ["o-1"]
    request = inbox["items"][0]
    assert request["name"] == "approval" and request["deadline"] == waiting["wait_until"]
    assert [h["kind"] for h in waiting["history"]] == ["step", "rollback", "approval"]
    assert waiting["history"][2]["status"] == "pending"
    assert waiting["history"][2]["deadline"] == waiting["wait_until"]
    assert waiting["history"][2]["input"] == {"approval_id": request["id"]}

    decided = c.post("/v1/workflows/o-1/approve", json={"comment": "fine"}).json()
    assert decided["id"] == request["id"] and decided["state"] == "approved"
    actor = decided["decided_by"]
    assert actor.startswith("key:")  # the key has no name: its id stands for it
    wait_for_condition(lambda: c.get("/v1/workflows/o-1").json()["wait_name"] == "ship",
                       timeout=30, message="waiting for ship")
    shipping = c.get("/v1/workflows/o-1").json()
    assert shipping["wait_kind"] == "signal" and shipping["signals"] == []
    assert c.get("/v1/approvals").json()["items"] == []  # a signal wait is no approval

    c.post("/v1/workflows/o-1/signals/ship", json={"payload": {"carrier": "dhl"}})
    done = wait_for_workflow(c, "o-1", "completed")
    assert done["result"] == {"order": "o-1", "approved_by": actor,
                              "ship": {"carrier": "dhl"}}
    assert done["finished_at"] and done["error"] is None and done["wait_kind"] is None
    history = done["history"]
    assert all(set(h) == HISTORY_KEYS for h in history)
    assert [(h["seq"], h["kind"], h["status"]) for h in history] == [
        (1, "step", "done"), (2, "rollback", "done"), (3, "approval", "done"),
        (4, "signal", "done")]
    assert history[0]["output"] == {"reserved": "o-1"} and history[0]["attempts"] == 1
    assert history[0]["name"] == "tests.api.workflow_app.reserve"
    assert history[2]["output"] == {"approval_id": request["id"], "approved": True,
                                    "actor": actor, "comment": "fine"}
    assert [s["consumed_seq"] for s in done["signals"]] == [4]
    # What the OpenAPI document promises (schemathesis cannot reach a workflow that ran).
    WorkflowOut.model_validate(done, strict=True)
    SignalOut.model_validate(done["signals"][0], strict=True)
    WorkflowPage.model_validate(c.get("/v1/workflows").json(), strict=True)
    assert c.get("/v1/approvals").json()["items"] == []
    assert [w["id"] for w in c.get("/v1/workflows", params={"state": "completed"}
                                   ).json()["items"]] == ["o-1"]
    # Finished: every signal, decision and cancellation is a 409 naming the state.
    for path, body in [("/v1/workflows/o-1/signals/ship", {"payload": 2}),
                       ("/v1/workflows/o-1/approve", {}),
                       ("/v1/workflows/o-1/reject", {}),
                       ("/v1/workflows/o-1/cancel", {})]:
        assert_problem(c.post(path, json=body), 409, "state-conflict", says="completed")
    assert_problem(c.post(f"/v1/approvals/{request['id']}/reject"), 409, "state-conflict",
                   says="approved")
    assert len(c.get("/v1/workflows/o-1").json()["signals"]) == 1
    assert c.get(f"/v1/approvals/{request['id']}").json()["tenant_id"] == tid


def test_a_rejection_fails_the_workflow_and_compensates(wf_api: Api) -> None:
    _, _, c = wf_api.tenant(("read", "write", "approve"))
    start(c, "api.order", args={"order": "o-2"}, workflow_id="o-2")
    wait_for_workflow(c, "o-2", "waiting")
    rejected = c.post("/v1/workflows/o-2/reject", json={"comment": "too expensive"})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    failed = wait_for_workflow(c, "o-2", "failed")
    assert failed["error"]["type"] == "RuntimeError"
    assert failed["error"]["message"] == "order o-2 not approved: too expensive"
    assert failed["compensation"] == "completed"
    last = failed["history"][-1]
    assert last["kind"] == "compensate" and last["output"] == "released o-2"
    assert failed["signals"] == []  # the decision is the request's, not a signal


def test_a_cancelled_workflow_compensates_and_ends_cancelled(wf_api: Api) -> None:
    _, _, c = wf_api.tenant()
    start(c, "api.order", args={"order": "o-3"}, workflow_id="o-3")
    wait_for_workflow(c, "o-3", "waiting")
    r = c.post("/v1/workflows/o-3/cancel", json={"reason": "customer left"})
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    cancelled = wait_for_workflow(c, "o-3", "cancelled")
    assert cancelled["cancel_reason"] == "customer left"
    assert cancelled["error"]["message"] == "customer left"
    assert cancelled["compensation"] == "completed" and cancelled["finished_at"]
    assert cancelled["history"][-1]["kind"] == "compensate"
    assert_problem(c.post("/v1/workflows/o-3/cancel"), 409, "state-conflict",
                   says="cancelled")
    assert_problem(c.post("/v1/workflows/o-3/signals/ship"), 409, "state-conflict")
