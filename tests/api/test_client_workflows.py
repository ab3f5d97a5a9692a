"""The workflow methods of ``hora.Client`` and ``hora.AsyncClient``, against real servers on
both stores: ``server`` (knows no workflow: records, validation, errors) and
``workflow_server`` (runs ``tests.api.workflow_app``: workflows that really advance)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hora import AsyncClient, Client
from hora.client import _Requests
from hora.errors import Conflict, InvalidPayload, NotFound, TransitionConflict
from hora.models import ApprovalRequest, HistoryEntry, Page, Signal, Workflow
from hora.testing import wait_for_condition
from tests.api.conftest import Api


class Tenants:
    """Clients of fresh tenants on one server; closes them all afterwards."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.keys: list[str] = []
        self._open: list[Client] = []

    def client(self) -> Client:
        _, key, _ = self.api.tenant(("read", "write", "approve"))
        self.keys.append(key)
        c = Client(self.api.server.url, key, sleep=lambda s: None)
        self._open.append(c)
        return c

    def close(self) -> None:
        for c in self._open:
            c.close()


@pytest.fixture
def tenants(api: Api) -> Iterator[Tenants]:
    t = Tenants(api)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def running(wf_api: Api) -> Iterator[Tenants]:
    t = Tenants(wf_api)
    try:
        yield t
    finally:
        t.close()


def aware(dt: datetime | None) -> bool:
    return dt is not None and dt.utcoffset() == timedelta(0)


def wait_until(client: Client, workflow_id: str, state: str, *,
               wait_name: str | None = None) -> Workflow:
    seen: list[Workflow] = []

    def reached() -> bool:
        seen.append(client.get_workflow(workflow_id))
        return seen[-1].state == state and (wait_name is None
                                            or seen[-1].wait_name == wait_name)

    wait_for_condition(reached, timeout=30, interval=0.05,
                       message=f"workflow {workflow_id} {state} {wait_name or ''}")
    return seen[-1]


# -- records, on a server that runs no workflows ------------------------------------------------


def test_start_get_list_signal_cancel(tenants: Tenants) -> None:
    c = tenants.client()
    before = datetime.now(UTC)
    wf = c.start_workflow("billing.invoice", {"invoice": "inv-1"}, workflow_id="inv-1",
                          correlation_id="order-1")
    assert isinstance(wf, Workflow)
    assert wf.id == "inv-1" and wf.name == "billing.invoice" and wf.args == {"invoice": "inv-1"}
    assert wf.state == "running" and wf.correlation_id == "order-1" and not wf.is_final
    assert aware(wf.created_at) and wf.created_at >= before - timedelta(seconds=5)
    assert wf.finished_at is None and wf.error is None and wf.version == 0
    same = c.start_workflow("billing.invoice", {"invoice": "inv-1"}, workflow_id="inv-1")
    assert same.args == {"invoice": "inv-1"} and same.created_at == wf.created_at
    with pytest.raises(Conflict, match="inv-1"):
        c.start_workflow("billing.invoice", {"invoice": "other"}, workflow_id="inv-1")
    other = c.start_workflow("billing.refund")
    assert other.args == {} and other.correlation_id == other.id != "inv-1"

    assert c.get_workflow("inv-1") == wf
    assert c.workflow_history("inv-1") == [] and c.workflow_signals("inv-1") == []
    page = c.list_workflows()
    assert isinstance(page, Page) and [w.id for w in page.items] == [other.id, "inv-1"]
    assert [w.id for w in c.list_workflows(name="billing.invoice").items] == ["inv-1"]
    assert [w.id for w in c.list_workflows(correlation_id="order-1").items] == ["inv-1"]
    assert c.list_workflows(state="completed").items == []
    assert len(c.list_workflows(state=["running", "failed"]).items) == 2
    first = c.list_workflows(limit=1)
    assert [w.id for w in first.items] == [other.id] and first.next_cursor
    assert [w.id for w in c.list_workflows(limit=1, cursor=first.next_cursor).items] == [
        "inv-1"]
    assert c.approvals().items == []

    sig = c.signal_workflow("inv-1", "address", {"city": "Lyon"}, actor="crm",
                            comment="moved")
    assert isinstance(sig, Signal)
    assert sig.workflow_id == "inv-1" and sig.name == "address"
    assert sig.payload == {"city": "Lyon"} and sig.actor == "crm" and sig.comment == "moved"
    assert aware(sig.sent_at) and sig.consumed_seq is None
    bare = c.signal_workflow("inv-1", "ping")
    assert bare.payload is None and bare.actor is None
    # No worker here runs it, so it asks for no approval: a decision has nothing to decide.
    with pytest.raises(Conflict, match="no pending approval request"):
        c.approve("inv-1", comment="ok")
    with pytest.raises(Conflict, match="named 'legal'"):
        c.reject("inv-1", name="legal")
    assert c.workflow_signals("inv-1") == [sig, bare]

    cancelled = c.cancel_workflow("inv-1", reason="customer left")
    assert cancelled.cancel_requested and cancelled.cancel_reason == "customer left"
    assert cancelled.state == "running"  # until a worker that knows it runs it


def test_errors(tenants: Tenants) -> None:
    c = tenants.client()
    other = tenants.client()
    wf = c.start_workflow("w", workflow_id="mine")
    for call in (lambda: other.get_workflow(wf.id), lambda: other.workflow_history(wf.id),
                 lambda: other.workflow_signals(wf.id),
                 lambda: other.signal_workflow(wf.id, "go"),
                 lambda: other.approve(wf.id),
                 lambda: other.reject(wf.id, name="approval"),
                 lambda: other.get_approval(wf.id),
                 lambda: other.cancel_workflow(wf.id)):
        with pytest.raises(NotFound) as e:
            call()
        assert getattr(e.value, "status", None) == 404
    with pytest.raises(InvalidPayload, match="workflow_id"):
        c.start_workflow("w", workflow_id="a/b")
    with pytest.raises(InvalidPayload, match="comment"):
        c.approve(wf.id, comment="c" * 2001)
    with pytest.raises(InvalidPayload, match="state"):
        c.approvals(state="waiting")
    with pytest.raises(InvalidPayload, match="state"):
        c.list_workflows(state="sleepy")
    with pytest.raises(InvalidPayload, match="non-empty"):
        c.get_workflow("")
    # An id with characters a URL reserves is one escaped path segment.
    odd = c.start_workflow("w", workflow_id="a b?c#d%e")
    assert c.get_workflow("a b?c#d%e").id == odd.id == "a b?c#d%e"
    assert c.signal_workflow(odd.id, "x y?z").name == "x y?z"
    # A '/' cannot be: the server decodes %2F before routing.
    with pytest.raises(InvalidPayload, match="signal name 'x/y' cannot be addressed"):
        c.signal_workflow(odd.id, "x/y")
    with pytest.raises(InvalidPayload, match="workflow id 'a/b' cannot be addressed"):
        c.get_workflow("a/b")
    with pytest.raises(InvalidPayload, match=r"workflow id '\.\.' cannot be addressed"):
        c.cancel_workflow("..")


# -- workflows that run -------------------------------------------------------------------------


def test_a_workflow_runs_to_completion(running: Tenants) -> None:
    c = running.client()
    c.start_workflow("api.order", {"order": "o-1"}, workflow_id="o-1")
    waiting = wait_until(c, "o-1", "waiting", wait_name="approval")
    assert waiting.wait_kind == "approval" and aware(waiting.wait_until)
    (request,) = c.approvals().items
    assert isinstance(request, ApprovalRequest) and request.workflow_id == "o-1"
    assert request.deadline == waiting.wait_until and aware(request.created_at)
    assert c.get_approval(request.id) == request
    decided = c.approve(request.id, comment="fine")
    assert decided.state == "approved" and decided.comment == "fine"
    assert c.approve(request.id) == decided  # a double click is the same decision
    actor = decided.decided_by
    wait_until(c, "o-1", "waiting", wait_name="ship")
    c.signal_workflow("o-1", "ship", {"carrier": "dhl"})
    done = wait_until(c, "o-1", "completed")
    assert done.result == {"order": "o-1", "approved_by": actor, "ship": {"carrier": "dhl"}}
    assert aware(done.finished_at) and done.wait_kind is None

    history = c.workflow_history("o-1")
    assert all(isinstance(h, HistoryEntry) for h in history)
    assert [(h.seq, h.kind, h.status) for h in history] == [
        (1, "step", "done"), (2, "rollback", "done"), (3, "approval", "done"),
        (4, "signal", "done")]
    assert all(h.workflow_id == "o-1" and h.tenant_id == done.tenant_id for h in history)
    assert history[0].output == {"reserved": "o-1"} and aware(history[0].started_at)
    assert history[2].output["actor"] == actor and aware(history[2].deadline)
    assert [s.consumed_seq for s in c.workflow_signals("o-1")] == [4]
    with pytest.raises(TransitionConflict) as conflict:
        c.reject(request.id)
    assert (conflict.value.job_id, conflict.value.actual, conflict.value.expected) == (
        request.id, "approved", "pending")

    with pytest.raises(TransitionConflict) as e:
        c.signal_workflow("o-1", "ship")
    assert e.value.job_id == "o-1" and e.value.actual == "completed"
    assert e.value.expected == ("running", "sleeping", "waiting", "compensating")
    assert getattr(e.value, "status", None) == 409
    with pytest.raises(TransitionConflict):
        c.cancel_workflow("o-1")


def test_async_client(running: Tenants) -> None:
    sync = running.client()
    key = running.keys[-1]

    async def main() -> None:
        async with AsyncClient(running.api.server.url, key) as c:
            wf = await c.start_workflow("api.order", {"order": "o-2"}, workflow_id="o-2",
                                        correlation_id="corr-2")
            assert wf.state == "running" and wf.correlation_id == "corr-2"
            await asyncio.to_thread(wait_until, sync, "o-2", "waiting")
            (request,) = (await c.approvals()).items
            assert request.workflow_id == "o-2"
            assert (await c.get_approval(request.id)) == request
            assert [w.id for w in (await c.list_workflows(state="waiting")).items] == ["o-2"]
            assert (await c.get_workflow("o-2")).wait_name == "approval"
            rejected = await c.reject("o-2", comment="no stock")  # by workflow id
            assert rejected.id == request.id and rejected.state == "rejected"
            failed = await asyncio.to_thread(wait_until, sync, "o-2", "failed")
            assert failed.compensation == "completed" and failed.error is not None
            assert failed.error.message == "order o-2 not approved: no stock"
            history = await c.workflow_history("o-2")
            assert history[-1].kind == "compensate" and history[-1].output == "released o-2"
            assert await c.workflow_signals("o-2") == []
            with pytest.raises(TransitionConflict):
                await c.approve("o-2")
            with pytest.raises(TransitionConflict):
                await c.approve(request.id)
            with pytest.raises(TransitionConflict):
                await c.signal_workflow("o-2", "ship", 1, actor="x", comment="y")

            await c.start_workflow("api.order", {"order": "o-3"}, workflow_id="o-3")
            await asyncio.to_thread(wait_until, sync, "o-3", "waiting")
            asked = await c.cancel_workflow("o-3", reason="changed my mind")
            assert asked.cancel_requested
            cancelled = await asyncio.to_thread(wait_until, sync, "o-3", "cancelled")
            assert cancelled.cancel_reason == "changed my mind"
            with pytest.raises(NotFound):
                await c.get_workflow("nope")

    asyncio.run(main())


# -- the requests, without a server --------------------------------------------------------------


def test_requests_are_built_as_the_api_documents_them() -> None:
    seen: list[httpx.Request] = []
    now = "2030-01-01T00:00:00Z"
    wf = {"id": "a b", "tenant_id": "t", "name": "n", "args": {}, "state": "running",
          "result": None, "error": None, "correlation_id": "a b", "parent_id": None,
          "wait_kind": None, "wait_name": None, "wait_until": None,
          "cancel_requested": False, "cancel_reason": None, "compensation": None,
          "run_owner": None, "run_until": None, "created_at": now, "updated_at": now,
          "finished_at": None, "version": 0, "history": [], "signals": []}
    sig = {"id": "s", "tenant_id": "t", "workflow_id": "a b", "name": "go?now",
           "payload": None, "actor": None, "comment": None, "sent_at": now,
           "consumed_seq": None}
    appr = {"id": "r", "tenant_id": "t", "workflow_id": "a b", "workflow_name": "n",
            "seq": 1, "name": "approval", "approvers": None, "context": {"n": 1},
            "state": "approved", "deadline": None, "created_at": now, "decided_by": "k",
            "decided_by_key": "k1", "comment": None, "decided_at": now}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.raw_path.decode()
        if "/signals/" in path:
            return httpx.Response(201, json=sig)
        if path.endswith(("/approve", "/reject")):
            return httpx.Response(200, json=appr)
        if path.startswith("/v1/approvals"):
            return httpx.Response(200, json={"items": [appr], "next_cursor": None})
        if path.startswith("/v1/workflows?"):
            return httpx.Response(200, json={"items": [wf], "next_cursor": None})
        return httpx.Response(200, json=wf)

    with Client("http://x", "k", transport=httpx.MockTransport(answer)) as c:
        c.start_workflow("n", workflow_id="a b")
        c.get_workflow("a b")
        c.list_workflows(state=["running", "waiting"], name="n", limit=5)
        c.approvals(cursor="1:x")
        c.approvals(state=["approved", "rejected"], workflow_id="a b", limit=2)
        c.signal_workflow("a b", "go?now", [1])
        assert c.approve("a b").context == {"n": 1}
        c.reject("a b", comment="no", name="legal")
        c.cancel_workflow("a b")
    wire = [(r.method, r.url.raw_path.decode(), json.loads(r.content) if r.content else None)
            for r in seen]
    assert wire == [
        ("POST", "/v1/workflows", {"workflow": "n", "args": {}, "workflow_id": "a b"}),
        ("GET", "/v1/workflows/a%20b", None),
        ("GET", "/v1/workflows?state=running&state=waiting&name=n&limit=5", None),
        ("GET", "/v1/approvals?limit=50&cursor=1%3Ax", None),
        ("GET", "/v1/approvals?state=approved&state=rejected&workflow_id=a+b&limit=2", None),
        ("POST", "/v1/workflows/a%20b/signals/go%3Fnow", {"payload": [1]}),
        ("POST", "/v1/approvals/a%20b/approve", {}),
        ("POST", "/v1/workflows/a%20b/reject", {"comment": "no", "name": "legal"}),
        ("POST", "/v1/workflows/a%20b/cancel", {"reason": "cancelled on request"}),
    ]
    assert all(r.headers.get("idempotency-key") for r in seen if r.method == "POST")
    assert _Requests.signal_workflow("w", "n", None, None, None).body == {"payload": None}
