"""Approval requests in the store, on both stores: one per journal position, decided once by a
conditional move, owner-checked where a run writes, cancelled with their workflow."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hora.errors import NotFound, StaleRecord
from hora.ids import new_id
from hora.models import ApprovalRequest, Workflow
from hora.store import Store
from tests.store.test_conformance import raw
from tests.store.test_workflows_store import T0, entry, jobs_of, run_job, started, workflow


def proposal(wf: Workflow, seq: int = 1, *, name: str = "approval",
             deadline: timedelta | None = timedelta(hours=1),
             approvers: tuple[str, ...] | None = None) -> ApprovalRequest:
    return ApprovalRequest(
        id=new_id(), tenant_id=wf.tenant_id, workflow_id=wf.id, workflow_name=wf.name,
        seq=seq, name=name, approvers=approvers, context={"amount": 5, "ü": [1, None]},
        state="pending", deadline=None if deadline is None else T0 + deadline, created_at=T0)


def opened(store: Store, wf: Workflow, seq: int = 1, **kw: object) -> ApprovalRequest:
    req = proposal(wf, seq, **kw)  # type: ignore[arg-type]
    wait = entry(wf, seq, kind="approval", name=req.name, status="pending")
    return store.open_approval(req, wait, owner="run-1")


def decide(store: Store, req: ApprovalRequest, state: str = "approved", *,
           actor: str = "ann", at: timedelta = timedelta(minutes=1)) -> ApprovalRequest:
    wf = store.get_workflow(req.workflow_id, tenant_id=req.tenant_id)
    return store.decide_approval(req.id, tenant_id=req.tenant_id, state=state, actor=actor,
                                 actor_key="key-1", comment="ok", now=T0 + at,
                                 resume=run_job(wf, key=f"approval:{req.id}"))


def test_migration_creates_the_table_with_its_checks(store: Store, database_url: str) -> None:
    assert 8 in store.applied_migrations()  # type: ignore[attr-defined]
    req = opened(store, started(store))
    for bad in (
        "UPDATE hora_approvals SET state = 'bogus'",
        "UPDATE hora_approvals SET state = 'approved'",  # no decided_at, no decided_by
        "UPDATE hora_approvals SET decided_at = created_at",  # pending has no decided_at
        "UPDATE hora_approvals SET seq = -1",
    ):
        with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
            conn.execute(bad)
    assert store.get_approval(req.id, tenant_id="acme") == req


def test_one_request_per_position_owner_checked(store: Store) -> None:
    wf = started(store)
    req = opened(store, wf)
    assert (req.state, req.context, req.approvers) == ("pending", {"amount": 5, "ü": [1, None]},
                                                       None)
    # The same position again (a replay) finds the first request, whatever the proposal.
    again = opened(store, wf, approvers=("bo",))
    assert again == req
    (journaled,) = store.load_history(wf.id, tenant_id="acme")
    assert (journaled.kind, journaled.status) == ("approval", "pending")
    other = opened(store, wf, 2, name="legal", approvers=("bo", "cy"))
    assert other.id != req.id and other.approvers == ("bo", "cy")
    # A run that lost its lease writes nothing: neither the request nor the journal row.
    late = proposal(wf, 3)
    with pytest.raises(StaleRecord):
        store.open_approval(late, entry(wf, 3, kind="approval", name="approval"),
                            owner="run-gone")
    with pytest.raises(NotFound):
        store.get_approval(late.id, tenant_id="acme")
    assert [a.seq for a in store.list_approvals(tenant_id="acme").items] == [2, 1]


def test_a_decision_moves_once_and_enqueues_one_resume(store: Store) -> None:
    wf = started(store)
    req = opened(store, wf)
    before = len(jobs_of(store))
    got = decide(store, req)
    assert (got.state, got.decided_by, got.decided_by_key, got.comment, got.decided_at) == (
        "approved", "ann", "key-1", "ok", T0 + timedelta(minutes=1))
    assert len(jobs_of(store)) == before + 1
    # A second decision moves nothing and enqueues nothing: the stored request is returned.
    assert decide(store, req, "rejected", actor="bo") == got
    assert decide(store, req, actor="bo") == got
    assert len(jobs_of(store)) == before + 1
    with pytest.raises(NotFound):
        store.decide_approval(req.id, tenant_id="other", state="approved", actor="x",
                              actor_key=None, comment=None, now=T0, resume=run_job(wf))


def test_the_deadline_expires_a_request_and_no_sooner(store: Store) -> None:
    wf = started(store)
    req = opened(store, wf)
    early = store.close_approval(req.id, tenant_id="acme", state="expired",
                                 now=T0 + timedelta(minutes=59))
    assert early == req  # still pending: the deadline is not there yet
    # A decision at the deadline expires it instead of deciding it.
    late = decide(store, req, at=timedelta(hours=1))
    assert (late.state, late.decided_by, late.decided_at) == ("expired", None,
                                                              T0 + timedelta(hours=1))
    assert store.close_approval(req.id, tenant_id="acme", state="cancelled",
                                now=T0 + timedelta(hours=2)) == late  # final stays final
    forever = opened(store, wf, 2, deadline=None)
    assert store.close_approval(forever.id, tenant_id="acme", state="expired",
                                now=T0 + timedelta(days=999)).state == "pending"


def test_listing_filters_and_pages_newest_first(store: Store) -> None:
    wf = started(store)
    reqs = [opened(store, wf, seq, name="legal" if seq % 2 else "finance")
            for seq in range(1, 6)]
    decide(store, reqs[0])
    listed = store.list_approvals(tenant_id="acme", states=["pending"])
    assert [a.seq for a in listed.items] == [5, 4, 3, 2]
    assert [a.seq for a in store.list_approvals(tenant_id="acme", name="legal").items] == [
        5, 3, 1]
    assert [a.seq for a in store.list_approvals(tenant_id="acme", states=["approved"]).items
            ] == [1]
    assert store.list_approvals(tenant_id="acme", workflow_id="nope").items == []
    assert store.list_approvals(tenant_id="other").items == []
    seen, cursor = [], None
    while True:
        page = store.list_approvals(tenant_id="acme", limit=2, cursor=cursor)
        seen += [a.seq for a in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [5, 4, 3, 2, 1]


def test_a_cancelled_or_finished_workflow_cancels_its_pending_requests(store: Store) -> None:
    wf = started(store)
    decided = decide(store, opened(store, wf, 1))
    waiting = opened(store, wf, 2)
    store.request_workflow_cancel(wf.id, tenant_id="acme", reason="stop",
                                  now=T0 + timedelta(minutes=5), resume=run_job(wf))
    assert store.get_approval(decided.id, tenant_id="acme") == decided
    cancelled = store.get_approval(waiting.id, tenant_id="acme")
    assert (cancelled.state, cancelled.decided_at) == ("cancelled", T0 + timedelta(minutes=5))

    other = started(store, workflow(), owner="run-1")
    left = opened(store, other, 1)
    now = T0 + timedelta(minutes=9)
    store.finish_run(replace(other, state="failed", finished_at=now, updated_at=now),
                     owner="run-1")
    assert store.get_approval(left.id, tenant_id="acme").state == "cancelled"


def test_concurrent_decisions_move_the_request_once(store: Store, database_url: str) -> None:
    """Eight deciders at once, half approving, half rejecting, each on its own connection:
    one decision is stored, every caller sees that one, one resume job is enqueued."""
    import threading

    from hora.store import open_store

    wf = started(store)
    req = opened(store, wf)
    before = len(jobs_of(store))
    seen: list[ApprovalRequest] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def decide_one(n: int) -> None:
        own = open_store(database_url, migrate=False)
        try:
            barrier.wait()
            seen.append(decide(own, req, "approved" if n % 2 else "rejected", actor=f"a{n}"))
        except BaseException as e:
            errors.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=decide_one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(seen) == 8 and len({(a.state, a.decided_by) for a in seen}) == 1
    assert seen[0].state in ("approved", "rejected")
    assert store.get_approval(req.id, tenant_id="acme") == seen[0]
    assert len(jobs_of(store)) == before + 1
