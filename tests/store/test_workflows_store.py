"""Durable workflows in the store: rows, run leases, the journal and signals, on both stores."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hora.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidPayload,
    NotFound,
    StaleRecord,
    TransitionConflict,
)
from hora.ids import new_id
from hora.models import ErrorInfo, HistoryEntry, Job, JobFilter, NewJob, Signal, Workflow
from hora.store import Store, open_store
from tests.store.test_conformance import insert, new_job, raw

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)
US = timedelta(microseconds=1)


def workflow(wf_id: str | None = None, *, tenant: str = "acme", name: str = "order",
             state: str = "running", created: datetime = T0, args: Any = None,
             correlation: str | None = None, parent: str | None = None,
             wait_kind: str | None = None) -> Workflow:
    return Workflow(
        tenant_id=tenant, id=wf_id or new_id(), name=name,
        args={"order": 42} if args is None else args, state=state, result=None, error=None,
        correlation_id=correlation, parent_id=parent, wait_kind=wait_kind,
        wait_name="approve" if wait_kind == "signal" else None,
        wait_until=created + timedelta(hours=1) if wait_kind else None,
        cancel_requested=False, cancel_reason=None, compensation=None, run_owner=None,
        run_until=None, created_at=created, updated_at=created, finished_at=None)


def run_job(wf: Workflow, *, key: str | None = None, queue: str = "default",
            due: datetime = T0, task: str = "hora.workflow") -> NewJob:
    return new_job(task, payload={"workflow_id": wf.id, "n": new_id()}, tenant=wf.tenant_id,
                   key=key, queue=queue, due=due)


def entry(wf: Workflow, seq: int, *, kind: str = "step", name: str = "charge",
          status: str = "done", output: Any = None, at: datetime = T0,
          error: ErrorInfo | None = None) -> HistoryEntry:
    return HistoryEntry(
        tenant_id=wf.tenant_id, workflow_id=wf.id, seq=seq, kind=kind, name=name,
        input={"seq": seq}, output=output, error=error, status=status, attempts=1,
        started_at=at, finished_at=None if status == "pending" else at + timedelta(seconds=1),
        deadline=None)


def signal(wf: Workflow, name: str = "approve", *, payload: Any = None,
           signal_id: str | None = None, at: datetime = T0, actor: str | None = "alice",
           comment: str | None = None) -> Signal:
    return Signal(id=signal_id or new_id(), tenant_id=wf.tenant_id, workflow_id=wf.id,
                  name=name, payload={"ok": True} if payload is None else payload,
                  actor=actor, comment=comment, sent_at=at)


def start(store: Store, wf: Workflow, job: NewJob | None = None) -> Workflow:
    got, created = store.start_workflow(wf, job or run_job(wf))
    assert created
    return got


def acquire(store: Store, wf: Workflow, owner: str = "run-1", *,
            now: datetime = T0) -> Workflow | None:
    return store.acquire_workflow(wf.id, tenant_id=wf.tenant_id, owner=owner, now=now,
                                  until=now + LEASE)


def started(store: Store, wf: Workflow | None = None, owner: str = "run-1") -> Workflow:
    """A stored workflow whose run ``owner`` holds."""
    wf = start(store, wf or workflow())
    got = acquire(store, wf, owner)
    assert got is not None
    return got


def jobs_of(store: Store, tenant: str = "acme") -> list[Job]:
    return list(reversed(store.list_jobs(JobFilter(tenant_id=tenant, include_internal=True),
                                         limit=1000).items))


def history(store: Store, wf: Workflow) -> list[HistoryEntry]:
    return store.load_history(wf.id, tenant_id=wf.tenant_id)


# -- schema -----------------------------------------------------------------------------------


def test_migration_creates_the_tables_with_their_checks(store: Store, database_url: str) -> None:
    assert 5 in store.applied_migrations()  # type: ignore[attr-defined]
    wf = started(store)
    store.record_history([entry(wf, 0)], owner="run-1")
    for bad in (
        "UPDATE hora_workflows SET state = 'bogus'",
        "UPDATE hora_workflows SET run_until = NULL",  # a lease is an owner and an instant
        "UPDATE hora_workflows SET state = 'completed'",  # still leased, no finished_at
        "UPDATE hora_workflow_history SET status = 'bogus'",
        "UPDATE hora_workflow_history SET seq = -1",
    ):
        with raw(database_url) as conn, pytest.raises(Exception, match=r"(?i)check"):
            conn.execute(bad)
    assert store.get_workflow(wf.id, tenant_id="acme") == wf


# -- start and read back ----------------------------------------------------------------------


def test_start_inserts_the_workflow_and_its_first_run_job(store: Store) -> None:
    wf = workflow(args={"items": [1, 2.5, "three", None, {"ü": True}]}, correlation="c-1",
                  parent="parent-1")
    job = run_job(wf, queue="flows")
    got, created = store.start_workflow(wf, job)
    assert created and got == wf
    assert store.get_workflow(wf.id, tenant_id="acme") == wf
    (stored,) = jobs_of(store)
    assert (stored.id, stored.task, stored.queue, stored.payload["workflow_id"]) == (
        job.id, "hora.workflow", "flows", wf.id)
    assert stored.created_at == wf.created_at


def test_every_field_round_trips(store: Store) -> None:
    wf = replace(
        workflow(state="waiting", wait_kind="signal", args={}),
        result=[1, {"a": "b"}], error=ErrorInfo("ValueError", "bad", "Traceback ..."),
        cancel_requested=True, cancel_reason="operator", compensation="running",
        run_owner="run-9", run_until=T0 + LEASE, updated_at=T0 + 7 * US, version=3)
    assert start(store, wf) == wf
    assert store.get_workflow(wf.id, tenant_id="acme") == wf
    done = replace(workflow(state="completed", args={"x": 1}), result="plain text",
                   finished_at=T0 + timedelta(days=1))
    assert start(store, done) == done
    falsy = replace(workflow(state="completed"), result=0, finished_at=T0)
    assert start(store, falsy).result == 0


def test_second_start_with_the_same_id_returns_the_stored_one(store: Store) -> None:
    wf = start(store, workflow("order-1"))
    again = replace(workflow("order-1", name="other", args={"order": 43}),
                    created_at=T0 + timedelta(hours=1))
    got, created = store.start_workflow(again, run_job(again))
    assert not created and got == wf
    assert len(jobs_of(store)) == 1  # no second run job
    # The id is per tenant: another tenant starts its own.
    other = workflow("order-1", tenant="other")
    assert store.start_workflow(other, run_job(other)) == (other, True)
    assert len(jobs_of(store, "other")) == 1


def test_eight_threads_start_one_id_and_one_creates(store: Store) -> None:
    barrier = threading.Barrier(8)
    results: list[tuple[Workflow, bool]] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        wf = workflow("same", args={"i": i})
        try:
            barrier.wait()
            results.append(store.start_workflow(wf, run_job(wf)))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 8
    assert sum(created for _, created in results) == 1
    stored = store.get_workflow("same", tenant_id="acme")
    assert all(got == stored for got, _ in results)
    assert len(jobs_of(store)) == 1


def test_start_is_one_transaction(store: Store) -> None:
    """A run job that cannot be inserted leaves no workflow behind."""
    insert(store, new_job("x", payload={"a": 1}, tenant="acme", key="run-key"))
    wf = workflow()
    with pytest.raises(IdempotencyConflict):
        store.start_workflow(wf, run_job(wf, key="run-key"))
    with pytest.raises(NotFound):
        store.get_workflow(wf.id, tenant_id="acme")
    # A run job whose key exists with the same fingerprint is the existing job.
    job = run_job(wf, key="run-key-2")
    insert(store, job)
    assert store.start_workflow(wf, replace(job, id=new_id())) == (wf, True)
    assert len(jobs_of(store)) == 2


def test_unknown_or_foreign_workflow_is_not_found(store: Store) -> None:
    wf = start(store, workflow())
    with pytest.raises(NotFound):
        store.get_workflow("nope", tenant_id="acme")
    with pytest.raises(NotFound):
        store.get_workflow(wf.id, tenant_id="other")


# -- listing ----------------------------------------------------------------------------------


def test_list_newest_first_with_filters_and_pages(store: Store) -> None:
    specs: list[dict[str, Any]] = [
        {"state": "running"}, {"state": "waiting", "wait_kind": "signal"},
        {"state": "sleeping", "wait_kind": "sleep"}, {"state": "waiting", "wait_kind": "child"},
        {"state": "completed", "name": "refund"}, {"state": "running", "correlation": "c-1"},
        {"state": "waiting", "wait_kind": "signal", "correlation": "c-1"},
        {"state": "running", "parent": "p-1"}, {"state": "running", "parent": "p-1"},
        {"state": "failed", "name": "refund", "parent": "p-2"},
    ]
    made: list[Workflow] = []
    for i, spec in enumerate(specs):
        # Pairs share an instant: the id breaks the tie. Ids are not in creation order.
        wf = workflow(f"wf-{(7 * i) % 10}", created=T0 + timedelta(seconds=i // 2), **spec)
        if wf.state in ("completed", "failed"):
            wf = replace(wf, finished_at=T0)
        made.append(start(store, wf))
    start(store, workflow("wf-x", tenant="other"))
    newest = sorted(made, key=lambda w: (w.created_at, w.id), reverse=True)

    def walk(limit: int, **flt: Any) -> list[str]:
        page = store.list_workflows(tenant_id="acme", limit=limit, **flt)
        seen = [w.id for w in page.items]
        while page.next_cursor:
            page = store.list_workflows(tenant_id="acme", limit=limit,
                                        cursor=page.next_cursor, **flt)
            seen += [w.id for w in page.items]
        return seen

    def expect(keep: Any) -> list[str]:
        return [w.id for w in newest if keep(w)]

    assert walk(3) == walk(100) == walk(1) == expect(lambda w: True)
    assert store.list_workflows(tenant_id="acme", limit=10).next_cursor is None
    assert walk(2, states=["waiting", "sleeping"]) == expect(
        lambda w: w.state in ("waiting", "sleeping"))
    assert walk(2, states=[]) == []
    assert walk(2, name="refund") == expect(lambda w: w.name == "refund")
    assert walk(2, correlation_id="c-1") == expect(lambda w: w.correlation_id == "c-1")
    assert walk(2, wait_kind="signal") == expect(lambda w: w.wait_kind == "signal")
    assert walk(1, parent_id="p-1") == expect(lambda w: w.parent_id == "p-1")
    assert walk(2, states=["waiting"], correlation_id="c-1") == expect(
        lambda w: w.state == "waiting" and w.correlation_id == "c-1")
    assert walk(2, name="nobody") == []
    assert [w.id for w in store.list_workflows(tenant_id="other").items] == ["wf-x"]
    assert store.list_workflows(tenant_id="nobody").items == []
    assert store.list_workflows(tenant_id="acme", limit=3).items == newest[:3]  # whole rows


def test_a_malformed_cursor_is_refused(store: Store) -> None:
    for bad in ("", "abc", "12x:wf", "no-colon"):
        with pytest.raises(InvalidPayload):
            store.list_workflows(tenant_id="acme", cursor=bad)


# -- the run lease ----------------------------------------------------------------------------


def test_acquire_leases_the_run_and_refuses_others_while_valid(store: Store) -> None:
    wf = start(store, workflow(state="sleeping", wait_kind="sleep"))
    t1 = T0 + timedelta(seconds=5)
    got = acquire(store, wf, "run-1", now=t1)
    assert got == replace(wf, state="running", run_owner="run-1", run_until=t1 + LEASE,
                          updated_at=t1, version=1)
    # Another owner is refused until the lease has run out, and changes nothing.
    for now in (t1, t1 + LEASE - US):
        assert acquire(store, wf, "run-2", now=now) is None
    assert store.get_workflow(wf.id, tenant_id="acme") == got
    # The holder may renew.
    renewed = acquire(store, wf, "run-1", now=t1 + timedelta(seconds=10))
    assert renewed is not None and renewed.run_until == t1 + timedelta(seconds=10) + LEASE
    assert renewed.version == 2
    # Once expired (at run_until exactly) another owner gets it.
    expired = t1 + timedelta(seconds=10) + LEASE
    taken = acquire(store, wf, "run-2", now=expired)
    assert taken is not None and (taken.run_owner, taken.version) == ("run-2", 3)
    assert acquire(store, wf, "run-1", now=expired) is None


def test_acquire_keeps_compensating_and_refuses_final(store: Store) -> None:
    comp = start(store, replace(workflow(state="compensating"), compensation="running"))
    got = acquire(store, comp)
    assert got is not None and got.state == "compensating"
    for final in ("completed", "failed", "cancelled"):
        wf = start(store, replace(workflow(state=final), finished_at=T0))
        assert acquire(store, wf, now=T0 + timedelta(days=1)) is None
        assert store.get_workflow(wf.id, tenant_id="acme") == wf
    with pytest.raises(NotFound):
        acquire(store, workflow())
    with pytest.raises(NotFound):
        acquire(store, replace(comp, tenant_id="other"))


def _race(store: Store, wf: Workflow, owners: list[str]) -> dict[str, Workflow | None]:
    """Every owner tries to acquire ``wf`` at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(owners))
    results: dict[str, Workflow | None] = {}
    errors: list[BaseException] = []

    def run(owner: str) -> None:
        try:
            barrier.wait()
            results[owner] = acquire(store, wf, owner)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(owner,)) for owner in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == len(owners)
    return results


def test_eight_threads_acquire_one_workflow_and_one_wins(store: Store) -> None:
    for _ in range(5):
        wf = start(store, workflow())
        results = _race(store, wf, [f"run-{i}" for i in range(8)])
        winners = [owner for owner, got in results.items() if got is not None]
        assert len(winners) == 1
        stored = store.get_workflow(wf.id, tenant_id="acme")
        assert (stored.run_owner, stored.version) == (winners[0], 1)


# -- the journal ------------------------------------------------------------------------------


def test_record_history_inserts_and_overwrites_by_seq(store: Store) -> None:
    wf = started(store)
    pending = entry(wf, 0, status="pending", name="sleep", kind="sleep")
    pending = replace(pending, deadline=T0 + timedelta(hours=1))
    store.record_history([pending], owner="run-1")
    assert history(store, wf) == [pending]
    done = replace(pending, status="done", finished_at=T0 + timedelta(hours=1), attempts=2)
    step = entry(wf, 1, output={"charged": 9.99, "ids": ["a", "b"]})
    failed = entry(wf, 2, status="failed", error=ErrorInfo("Boom", "it broke", "tb"))
    store.record_history([done, step, failed], owner="run-1")
    assert history(store, wf) == [done, step, failed]
    # Within one call the last entry for a seq wins.
    first, last = entry(wf, 3, output=1), entry(wf, 3, output=2)
    store.record_history([first, last], owner="run-1")
    assert history(store, wf)[3] == last
    store.record_history([], owner="run-1")  # nothing to do


def test_record_history_refuses_a_non_owner_and_writes_nothing(store: Store) -> None:
    wf = started(store)
    kept = entry(wf, 0, output="mine")
    store.record_history([kept], owner="run-1")
    for owner in ("run-2", ""):
        with pytest.raises(StaleRecord):
            store.record_history([entry(wf, 0, output="theirs"), entry(wf, 1)], owner=owner)
    assert history(store, wf) == [kept]
    # A lease taken over after it expired fences the old owner off.
    assert acquire(store, wf, "run-2", now=T0 + LEASE) is not None
    with pytest.raises(StaleRecord):
        store.record_history([entry(wf, 1)], owner="run-1")
    store.record_history([entry(wf, 1)], owner="run-2")
    assert [e.seq for e in history(store, wf)] == [0, 1]
    # Unknown workflow, or another tenant's: nobody holds that lease.
    with pytest.raises(StaleRecord):
        store.record_history([entry(workflow(), 0)], owner="run-2")
    with pytest.raises(StaleRecord):
        store.record_history([entry(replace(wf, tenant_id="other"), 2)], owner="run-2")


def test_record_history_over_two_workflows_is_all_or_nothing(store: Store) -> None:
    mine, theirs = started(store, owner="run-1"), started(store, owner="run-2")
    with pytest.raises(StaleRecord):
        store.record_history([entry(mine, 0), entry(theirs, 0)], owner="run-1")
    assert history(store, mine) == history(store, theirs) == []
    both = started(store, owner="run-1")
    store.record_history([entry(mine, 0), entry(both, 0), entry(mine, 1)], owner="run-1")
    assert [e.seq for e in history(store, mine)] == [0, 1]
    assert [e.seq for e in history(store, both)] == [0]


def test_load_history_is_in_seq_order_and_per_workflow(store: Store) -> None:
    wf, other = started(store), started(store)
    for seq in (3, 0, 4, 1, 2):
        store.record_history([entry(wf, seq, output=seq)], owner="run-1")
    store.record_history([entry(other, 0, output="other")], owner="run-1")
    assert [e.seq for e in history(store, wf)] == [0, 1, 2, 3, 4]
    assert [e.output for e in history(store, wf)] == [0, 1, 2, 3, 4]
    assert [e.output for e in history(store, other)] == ["other"]
    assert store.load_history(wf.id, tenant_id="other") == []
    assert store.load_history("nope", tenant_id="acme") == []


# -- signals ----------------------------------------------------------------------------------


def test_send_signal_stores_it_and_enqueues_the_resume(store: Store) -> None:
    wf = started(store)
    sig = signal(wf, payload={"amount": 10}, comment="looks fine")
    resume = run_job(wf, queue="flows")
    assert store.send_signal(sig, resume) == sig
    assert store.list_signals(wf.id, tenant_id="acme") == [sig]
    assert resume.id in {j.id for j in jobs_of(store)}
    with pytest.raises(Conflict):  # one id, one signal
        store.send_signal(sig, run_job(wf))
    assert store.list_signals(wf.id, tenant_id="acme") == [sig]
    # A resume whose key exists with the same fingerprint is not a second job.
    keyed = run_job(wf, key="resume-1")
    store.send_signal(signal(wf), keyed)
    store.send_signal(signal(wf), replace(keyed, id=new_id()))
    assert len(jobs_of(store)) == 3  # the first run, the resume, the keyed resume


def test_send_signal_to_an_unknown_or_final_workflow(store: Store) -> None:
    wf = workflow()
    with pytest.raises(NotFound):
        store.send_signal(signal(wf), run_job(wf))
    live = start(store, workflow())
    with pytest.raises(NotFound):
        store.send_signal(signal(replace(live, tenant_id="other")), run_job(live))
    for final in ("completed", "failed", "cancelled"):
        done = start(store, replace(workflow(state=final), finished_at=T0))
        with pytest.raises(TransitionConflict, match=f"workflow {done.id} is {final}"):
            store.send_signal(signal(done), run_job(done))
        assert store.list_signals(done.id, tenant_id="acme") == []
    assert len(jobs_of(store)) == 4  # the run jobs of the four starts only


def test_list_signals_in_the_order_sent(store: Store) -> None:
    wf = started(store)
    # Same instant and ids that sort backwards: the order sent still holds.
    sent = [store.send_signal(signal(wf, name, signal_id=f"sig-{9 - i}"), run_job(wf))
            for i, name in enumerate(["approve", "comment", "approve", "approve", "comment"])]
    store.send_signal(signal(start(store, workflow()), signal_id="elsewhere"), run_job(wf))
    assert store.list_signals(wf.id, tenant_id="acme") == sent
    store.consume_signal(entry(wf, 0, kind="signal", name="approve"), owner="run-1")
    listed = store.list_signals(wf.id, tenant_id="acme")
    assert [s.id for s in listed] == [s.id for s in sent]  # consumed ones are listed too
    assert [s.consumed_seq for s in listed] == [0, None, None, None, None]
    assert store.list_signals(wf.id, tenant_id="other") == []


def test_consume_signal_takes_the_oldest_of_its_name(store: Store) -> None:
    wf = started(store)
    # Ids that sort backwards: the order sent decides, not the id.
    a1 = store.send_signal(signal(wf, "approve", payload={"n": 1}, comment="first",
                                  signal_id="sig-z"), run_job(wf))
    b = store.send_signal(signal(wf, "reject", payload={"n": 2}, signal_id="sig-m"),
                          run_job(wf))
    a2 = store.send_signal(signal(wf, "approve", payload=[3], actor=None, signal_id="sig-a"),
                           run_job(wf))
    wait = entry(wf, 5, kind="signal", name="approve", status="pending")
    store.record_history([wait], owner="run-1")  # the wait, journaled before it is over

    got = store.consume_signal(wait, owner="run-1")
    assert got == replace(a1, consumed_seq=5)
    assert history(store, wf) == [replace(wait, status="done", output={
        "payload": {"n": 1}, "actor": "alice", "comment": "first", "signal_id": a1.id})]
    nxt = entry(wf, 6, kind="signal", name="approve")
    assert store.consume_signal(nxt, owner="run-1") == replace(a2, consumed_seq=6)
    assert history(store, wf)[1].output == {"payload": [3], "actor": None, "comment": None,
                                            "signal_id": a2.id}
    # None left of that name: nothing written; the other name was never touched.
    assert store.consume_signal(entry(wf, 7, kind="signal", name="approve"),
                                owner="run-1") is None
    assert [e.seq for e in history(store, wf)] == [5, 6]
    assert store.list_signals(wf.id, tenant_id="acme")[1] == b


def test_consume_signal_checks_the_owner(store: Store) -> None:
    wf = started(store)
    sig = store.send_signal(signal(wf), run_job(wf))
    wait = entry(wf, 0, kind="signal", name="approve")
    with pytest.raises(StaleRecord):
        store.consume_signal(wait, owner="run-2")
    with pytest.raises(StaleRecord):  # even when no signal waits
        store.consume_signal(replace(wait, name="other"), owner="run-2")
    assert store.list_signals(wf.id, tenant_id="acme") == [sig]
    assert history(store, wf) == []
    assert store.consume_signal(wait, owner="run-1") == replace(sig, consumed_seq=0)


# -- ending a run -----------------------------------------------------------------------------


def test_finish_run_writes_clears_the_lease_and_enqueues(store: Store) -> None:
    wf = started(store)
    t1 = T0 + timedelta(seconds=3)
    wake = run_job(wf, key=f"wake:{wf.id}:1", due=T0 + timedelta(hours=1), queue="flows")
    asleep = replace(wf, state="sleeping", wait_kind="sleep", wait_name=None,
                     wait_until=T0 + timedelta(hours=1), updated_at=t1)
    got = store.finish_run(asleep, owner="run-1", jobs=[wake])
    assert got == replace(asleep, run_owner=None, run_until=None, version=wf.version + 1)
    assert store.get_workflow(wf.id, tenant_id="acme") == got
    (job,) = (j for j in jobs_of(store) if j.id == wake.id)
    assert (job.queue, job.due_at, job.created_at) == ("flows", wake.due_at, t1)
    # Once finished the run holds nothing: a second finish is stale.
    with pytest.raises(StaleRecord):
        store.finish_run(asleep, owner="run-1")


def test_finish_run_completes_and_keeps_a_cancel_request(store: Store) -> None:
    wf = started(store)
    resume = run_job(wf)
    store.request_workflow_cancel(wf.id, tenant_id="acme", reason="stop", now=T0,
                                  resume=resume)
    t1 = T0 + timedelta(minutes=1)
    done = replace(wf, state="completed", result={"total": 3}, compensation="completed",
                   error=ErrorInfo("Cancelled", "stop"), finished_at=t1, updated_at=t1)
    got = store.finish_run(done, owner="run-1")
    assert (got.state, got.result, got.error, got.compensation, got.finished_at) == (
        "completed", {"total": 3}, ErrorInfo("Cancelled", "stop"), "completed", t1)
    assert (got.cancel_requested, got.cancel_reason) == (True, "stop")  # not overwritten
    assert acquire(store, got, now=t1) is None


def test_finish_run_skips_jobs_whose_key_exists(store: Store) -> None:
    wf = started(store)
    other = new_job("parent-resume", payload={"x": 1}, tenant="acme", key="resume:parent")
    insert(store, other)
    same = run_job(wf, key=f"wake:{wf.id}")
    insert(store, same)
    fresh = run_job(wf, key="fresh")
    dup_other = run_job(wf, key="resume:parent")  # another fingerprint: still no error
    dup_same = replace(same, id=new_id())
    store.finish_run(replace(wf, state="waiting", wait_kind="child"), owner="run-1",
                     jobs=[dup_other, fresh, dup_same])
    ids = {j.id for j in jobs_of(store)}
    assert fresh.id in ids and dup_other.id not in ids and dup_same.id not in ids
    assert store.get_job(other.id, tenant_id="acme").task == "parent-resume"


def test_finish_run_by_a_stale_owner_writes_nothing(store: Store) -> None:
    wf = started(store)
    taken = acquire(store, wf, "run-2", now=T0 + LEASE)
    assert taken is not None
    job = run_job(wf)
    with pytest.raises(StaleRecord):
        store.finish_run(replace(wf, state="completed", finished_at=T0), owner="run-1",
                         jobs=[job])
    assert store.get_workflow(wf.id, tenant_id="acme") == taken
    assert job.id not in {j.id for j in jobs_of(store)}
    with pytest.raises(NotFound):
        store.finish_run(workflow(), owner="run-1")


def test_finish_run_announces_its_jobs_on_postgres(store: Store) -> None:
    sub = store.subscribe()
    if sub is None:
        pytest.skip("SQLite has no notification channel")
    try:
        sub.wait(0.01)  # connect and LISTEN before the write
        wf = started(store)
        store.finish_run(replace(wf, state="sleeping"), owner="run-1",
                         jobs=[run_job(wf, queue="wf-wake")])
        seen: set[str] = set()
        for _ in range(20):
            seen |= sub.wait(0.1)
            if "wf-wake" in seen:
                break
        assert "wf-wake" in seen
    finally:
        sub.close()


# -- cancelling -------------------------------------------------------------------------------


def test_request_cancel_sets_the_flag_and_enqueues_the_resume(store: Store) -> None:
    wf = start(store, workflow(state="waiting", wait_kind="signal"))
    t1 = T0 + timedelta(seconds=9)
    resume = run_job(wf)
    got = store.request_workflow_cancel(wf.id, tenant_id="acme", reason="customer asked",
                                        now=t1, resume=resume)
    assert got == replace(wf, cancel_requested=True, cancel_reason="customer asked",
                          updated_at=t1, version=1)
    assert store.get_workflow(wf.id, tenant_id="acme") == got
    assert resume.id in {j.id for j in jobs_of(store)}
    with pytest.raises(NotFound):
        store.request_workflow_cancel("nope", tenant_id="acme", reason="x", now=t1,
                                      resume=run_job(wf))
    with pytest.raises(NotFound):
        store.request_workflow_cancel(wf.id, tenant_id="other", reason="x", now=t1,
                                      resume=run_job(wf))


def test_request_cancel_of_a_final_workflow_conflicts(store: Store) -> None:
    wf = start(store, replace(workflow(state="failed"), finished_at=T0))
    resume = run_job(wf)
    with pytest.raises(TransitionConflict):
        store.request_workflow_cancel(wf.id, tenant_id="acme", reason="x", now=T0,
                                      resume=resume)
    assert store.get_workflow(wf.id, tenant_id="acme") == wf
    assert resume.id not in {j.id for j in jobs_of(store)}


# -- versions ---------------------------------------------------------------------------------


def test_every_write_of_the_row_bumps_its_version(store: Store) -> None:
    wf = start(store, workflow())
    assert wf.version == 0
    got = acquire(store, wf)
    assert got is not None and got.version == 1
    store.record_history([entry(wf, 0)], owner="run-1")  # the journal, not the row
    store.send_signal(signal(wf), run_job(wf))  # a signal row, not the workflow's
    assert store.get_workflow(wf.id, tenant_id="acme").version == 1
    cancelled = store.request_workflow_cancel(wf.id, tenant_id="acme", reason="x", now=T0,
                                              resume=run_job(wf))
    assert cancelled.version == 2
    assert store.finish_run(replace(wf, state="compensating"), owner="run-1").version == 3
    again = acquire(store, wf, "run-2")
    assert again is not None and again.version == 4
    # A stale owner's write leaves the version alone.
    with pytest.raises(StaleRecord):
        store.finish_run(wf, owner="run-1")
    assert store.get_workflow(wf.id, tenant_id="acme").version == 4


def test_a_second_store_sees_the_first_ones_writes(store: Store, database_url: str) -> None:
    wf = started(store)
    store.record_history([entry(wf, 0)], owner="run-1")
    other = open_store(database_url)
    try:
        assert other.get_workflow(wf.id, tenant_id="acme") == wf
        assert other.load_history(wf.id, tenant_id="acme") == history(store, wf)
        assert acquire(other, wf, "run-2") is None
    finally:
        other.close()
