"""Tenancy of the workflow routes: another tenant's workflow is 404 in every endpoint, absent
from every list (the approvals inbox included), unchanged by any attempt, and its id is free
for the other tenant's own workflow."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.api.test_api import assert_problem
from tests.api.test_workflows_api import start, wait_for_workflow


def test_no_workflow_endpoint_crosses_tenants(wf_api: Api) -> None:
    _, _, a = wf_api.tenant()
    _, _, b = wf_api.tenant(("read", "write", "approve"))
    start(a, "api.order", args={"order": "a-1"}, workflow_id="same-id", correlation_id="c1")
    before = wait_for_workflow(a, "same-id", "waiting")
    (request,) = a.get("/v1/approvals").json()["items"]
    assert request["workflow_id"] == "same-id"

    # Every list is empty for b, whatever the filter.
    for path, params in [("/v1/workflows", {}), ("/v1/workflows", {"correlation_id": "c1"}),
                         ("/v1/workflows", {"name": "api.order"}),
                         ("/v1/workflows", {"state": "waiting"}), ("/v1/approvals", {})]:
        assert b.get(path, params=params).json() == {"items": [], "next_cursor": None}, path
    # Every per-workflow endpoint is 404 for b.
    requests: list[tuple[str, str, Any]] = [
        ("GET", "/v1/workflows/same-id", None),
        ("POST", "/v1/workflows/same-id/signals/ship", {"payload": 1}),
        ("POST", "/v1/workflows/same-id/signals/approval", {"payload": {"approved": True}}),
        ("POST", "/v1/workflows/same-id/approve", {"actor": "mallory"}),
        ("POST", "/v1/workflows/same-id/reject", {}),
        ("GET", f"/v1/approvals/{request['id']}", None),
        ("POST", f"/v1/approvals/{request['id']}/approve", None),
        ("POST", f"/v1/approvals/{request['id']}/reject", {"comment": "mine"}),
        ("POST", "/v1/workflows/same-id/cancel", {"reason": "mine now"}),
    ]
    for method, path, body in requests:
        assert_problem(b.request(method, path, json=body), 404, "not-found")

    # The same id is free in b: a workflow of its own, with its own arguments.
    theirs = start(b, "api.order", args={"order": "b-1"}, workflow_id="same-id")
    assert theirs["args"] == {"order": "b-1"} and theirs["tenant_id"] != before["tenant_id"]
    b.post("/v1/workflows/same-id/cancel")
    wait_for_workflow(b, "same-id", "cancelled")

    # a's workflow is untouched: still waiting, no signal, no cancellation.
    after = a.get("/v1/workflows/same-id").json()
    assert after["state"] == "waiting" and after["signals"] == []
    assert after["cancel_requested"] is False and after["args"] == {"order": "a-1"}
    assert a.get("/v1/approvals").json()["items"] == [request]
