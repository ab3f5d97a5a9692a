"""Workflows: a row each, a journal of calls, and signals waiting to be consumed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hora.errors import Conflict, NotFound, StaleRecord, StoreError
from hora.models import WORKFLOW_FINAL, ErrorInfo, HistoryEntry, NewJob, Page, Signal, Workflow
from hora.store.common import (
    consumed_entry,
    error_json,
    from_us,
    history_from_row,
    history_params,
    keyset_page,
    parse_workflow_cursor,
    signal_from_row,
    signal_params,
    workflow_cursor,
    workflow_from_row,
    workflow_is_final,
    workflow_params,
)
from hora.store.postgres.connection import Conn, PostgresConnection, Q, _utc
from hora.store.postgres.jobs import _insert_jobs
from hora.store.registry_rows import workflow_jobs_params


class PostgresWorkflows(PostgresConnection):
    """The workflows aggregate: hora_workflows, hora_workflow_history, hora_workflow_signals."""

    def start_workflow(self, workflow: Workflow, job: NewJob) -> tuple[Workflow, bool]:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["insert_workflow"],
                                  workflow_params(workflow, _utc)).fetchone()
            if row is None:
                # READ COMMITTED: this statement sees the row that stood in the way.
                return self._get_workflow(conn, workflow.id, workflow.tenant_id), False
            _insert_jobs(conn, [job], workflow.created_at)
        return workflow_from_row(row, _utc, decoded=True), True

    def _get_workflow(self, conn: Conn, workflow_id: str, tenant_id: str) -> Workflow:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(Q["get_workflow"], {"id": workflow_id,
                                                  "tenant_id": tenant_id}).fetchone()
        if row is None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow_from_row(row, _utc, decoded=True)

    def get_workflow(self, workflow_id: str, *, tenant_id: str) -> Workflow:
        with self._read() as conn:
            return self._get_workflow(conn, workflow_id, tenant_id)

    def list_workflows(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       wait_kind: str | None = None, parent_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        cursor_us, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_workflows"], {
                "tenant_id": tenant_id,
                "cursor_at": None if cursor_us is None else from_us(cursor_us),
                "cursor_id": cursor_id, "states": None if states is None else list(states),
                "name": name, "correlation_id": correlation_id, "wait_kind": wait_kind,
                "parent_id": parent_id, "limit": limit + 1}).fetchall()
        return keyset_page([workflow_from_row(r, _utc, decoded=True) for r in rows], limit,
                           workflow_cursor)

    def acquire_workflow(self, workflow_id: str, *, tenant_id: str, owner: str,
                         now: datetime, until: datetime,
                         replaces: str | None = None) -> Workflow | None:
        """None when refused; NotFound when there is no such workflow."""
        with self._statement() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["acquire_workflow"], {
                    "tenant_id": tenant_id, "id": workflow_id, "owner": owner, "now": now,
                    "until": until, "replaces": replaces}).fetchone()
            if row is None:
                self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                return None
        return workflow_from_row(row, _utc, decoded=True)

    def load_history(self, workflow_id: str, *, tenant_id: str) -> list[HistoryEntry]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["load_history"], {"tenant_id": tenant_id,
                                                   "workflow_id": workflow_id}).fetchall()
        return [history_from_row(r, _utc, decoded=True) for r in rows]

    def record_history(self, entries: Sequence[HistoryEntry], *, owner: str) -> None:
        """One statement per workflow (its own transaction when there is one workflow, the
        usual case: a single round trip per journaled step)."""
        if not entries:
            return
        groups = _by_workflow(entries)
        if len(groups) == 1:
            with self._statement() as conn:
                _record_history(conn, entries, owner)
            return
        with self._write() as conn:
            for group in groups:
                _record_history(conn, group, owner)

    def consume_signal(self, entry: HistoryEntry, *, owner: str) -> Signal | None:
        params = {"tenant_id": entry.tenant_id, "workflow_id": entry.workflow_id,
                  "name": entry.name, "seq": entry.seq, "owner": owner}
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["take_signal"], params).fetchone()
            if row is None:
                if conn.execute(Q["workflow_owned"], params).fetchone() is None:
                    raise _stale_run(entry.workflow_id, owner)
                return None
            signal = signal_from_row(row, _utc, decoded=True)
            _record_history(conn, [consumed_entry(entry, signal)], owner)
        return signal

    def finish_run(self, workflow: Workflow, *, owner: str, jobs: Sequence[NewJob] = ()
                   ) -> Workflow:
        """``workflow.updated_at`` is the instant of the write (and the created_at of
        ``jobs``); cancel_requested and cancel_reason are left as stored."""
        params = workflow_params(workflow, _utc)
        params["owner"] = owner
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["finish_run"], params).fetchone()
            if row is None:
                self._get_workflow(conn, workflow.id, workflow.tenant_id)  # NotFound
                raise _stale_run(workflow.id, owner)
            if workflow.state in WORKFLOW_FINAL:
                conn.execute(Q["cancel_workflow_approvals"], {
                    "tenant_id": workflow.tenant_id, "workflow_id": workflow.id,
                    "now": workflow.updated_at})
                ended = workflow_from_row(row, _utc, decoded=True)
                conn.execute(Q["cancel_workflow_jobs"], workflow_jobs_params(
                    ended, workflow.updated_at, f"workflow {workflow.state}"))
            _insert_jobs(conn, jobs, workflow.updated_at, skip_existing=True)
        return workflow_from_row(row, _utc, decoded=True)

    def send_signal(self, signal: Signal, resume: NewJob) -> Signal:
        with self._write() as conn:
            found = conn.execute(Q["workflow_state_for_signal"], {
                "tenant_id": signal.tenant_id, "workflow_id": signal.workflow_id}).fetchone()
            if found is None:
                raise NotFound(f"workflow {signal.workflow_id} not found")
            if found[0] in WORKFLOW_FINAL:
                raise workflow_is_final(signal.workflow_id, found[0])
            with conn.cursor(row_factory=dict_row) as cur:
                try:
                    row = cur.execute(Q["insert_signal"],
                                      signal_params(signal, _utc)).fetchone()
                except psycopg.errors.UniqueViolation:
                    raise Conflict(f"signal {signal.id} already exists") from None
            if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
                raise StoreError(f"insert of signal {signal.id} returned nothing")
            _insert_jobs(conn, [resume], signal.sent_at)
        return signal_from_row(row, _utc, decoded=True)

    def list_signals(self, workflow_id: str, *, tenant_id: str) -> list[Signal]:
        with self._read() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(Q["list_signals"], {"tenant_id": tenant_id,
                                                   "workflow_id": workflow_id}).fetchall()
        return [signal_from_row(r, _utc, decoded=True) for r in rows]

    def request_workflow_cancel(self, workflow_id: str, *, tenant_id: str, reason: str,
                                now: datetime, resume: NewJob) -> Workflow:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["request_workflow_cancel"], {
                    "tenant_id": tenant_id, "id": workflow_id, "reason": reason,
                    "now": now}).fetchone()
            if row is None:
                current = self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                raise workflow_is_final(workflow_id, current.state)
            conn.execute(Q["cancel_workflow_approvals"], {
                "tenant_id": tenant_id, "workflow_id": workflow_id, "now": now})
            _insert_jobs(conn, [resume], now)
        return workflow_from_row(row, _utc, decoded=True)

    def terminate_workflow(self, workflow_id: str, *, tenant_id: str, reason: str,
                           error: ErrorInfo, now: datetime, jobs: Sequence[NewJob] = ()
                           ) -> Workflow:
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(Q["terminate_workflow"], {
                    "tenant_id": tenant_id, "id": workflow_id, "reason": reason,
                    "error": error_json(error), "now": now}).fetchone()
            if row is None:
                current = self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                raise workflow_is_final(workflow_id, current.state)
            ended = workflow_from_row(row, _utc, decoded=True)
            conn.execute(Q["cancel_workflow_approvals"], {
                "tenant_id": tenant_id, "workflow_id": workflow_id, "now": now})
            conn.execute(Q["cancel_workflow_jobs"],
                         workflow_jobs_params(ended, now, "workflow terminated"))
            _insert_jobs(conn, jobs, now, skip_existing=True)
        return ended



# -- helpers ----------------------------------------------------------------------------


def _stale_run(workflow_id: str, owner: str) -> StaleRecord:
    return StaleRecord(f"workflow {workflow_id}: {owner} no longer holds its run lease")


def _history_params(entries: Sequence[HistoryEntry], owner: str) -> dict[str, Any]:
    """One workflow's journal rows as parallel arrays (the last of a repeated seq wins, as
    when they are written one by one)."""
    rows = list({e.seq: history_params(e, _utc) for e in entries}.values())
    first = entries[0]
    return {
        "tenant_id": first.tenant_id, "workflow_id": first.workflow_id, "owner": owner,
        "seqs": [r["seq"] for r in rows], "kinds": [r["kind"] for r in rows],
        "names": [r["name"] for r in rows], "inputs": [r["input"] for r in rows],
        "outputs": [r["output"] for r in rows], "errors": [r["error"] for r in rows],
        "statuses": [r["status"] for r in rows], "attempts": [r["attempts"] for r in rows],
        "started_ats": [r["started_at"] for r in rows],
        "finished_ats": [r["finished_at"] for r in rows],
        "deadlines": [r["deadline"] for r in rows],
    }


def _record_history(conn: Conn, entries: Sequence[HistoryEntry], owner: str) -> None:
    """Write one workflow's entries (one statement) or raise StaleRecord having written
    none."""
    params = _history_params(entries, owner)
    if conn.execute(Q["record_history"], params).rowcount != len(params["seqs"]):
        raise _stale_run(entries[0].workflow_id, owner)


def _by_workflow(entries: Sequence[HistoryEntry]) -> list[list[HistoryEntry]]:
    groups: dict[tuple[str, str], list[HistoryEntry]] = {}
    for e in entries:
        groups.setdefault((e.tenant_id, e.workflow_id), []).append(e)
    return list(groups.values())

