"""Workflows: a row each, a journal of calls, and signals waiting to be consumed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from hora.errors import Conflict, NotFound, StaleRecord
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
    to_us,
    workflow_cursor,
    workflow_from_row,
    workflow_is_final,
    workflow_params,
)
from hora.store.registry_rows import workflow_jobs_params
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows
from hora.store.sqlite.jobs import _insert_jobs


class SQLiteWorkflows(SQLiteConnection):
    """The workflows aggregate: hora_workflows, hora_workflow_history, hora_workflow_signals."""

    def start_workflow(self, workflow: Workflow, job: NewJob) -> tuple[Workflow, bool]:
        with self._write() as conn:
            created = conn.execute(Q["insert_workflow"],
                                   workflow_params(workflow, to_us)).rowcount == 1
            if created:
                _insert_jobs(conn, [job], to_us(workflow.created_at))
            return self._get_workflow(conn, workflow.id, workflow.tenant_id), created

    def _get_workflow(self, conn: sqlite3.Connection, workflow_id: str,
                      tenant_id: str) -> Workflow:
        rows = _rows(conn.execute(Q["get_workflow"], {"id": workflow_id,
                                                      "tenant_id": tenant_id}))
        if not rows:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow_from_row(rows[0], from_us)

    def get_workflow(self, workflow_id: str, *, tenant_id: str) -> Workflow:
        with self._read() as conn:
            return self._get_workflow(conn, workflow_id, tenant_id)

    def list_workflows(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       name: str | None = None, correlation_id: str | None = None,
                       wait_kind: str | None = None, parent_id: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        cursor_at, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_workflows"], {
                "tenant_id": tenant_id, "cursor_at": cursor_at, "cursor_id": cursor_id,
                "states": None if states is None else json.dumps(list(states)),
                "name": name, "correlation_id": correlation_id, "wait_kind": wait_kind,
                "parent_id": parent_id, "limit": limit + 1}))
        return keyset_page([workflow_from_row(r, from_us) for r in rows], limit,
                           workflow_cursor)

    def acquire_workflow(self, workflow_id: str, *, tenant_id: str, owner: str,
                         now: datetime, until: datetime,
                         replaces: str | None = None) -> Workflow | None:
        """None when refused; NotFound when there is no such workflow."""
        with self._write() as conn:
            rows = _rows(conn.execute(Q["acquire_workflow"], {
                "tenant_id": tenant_id, "id": workflow_id, "owner": owner,
                "now": to_us(now), "until": to_us(until), "replaces": replaces}))
            if not rows:
                self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                return None
        return workflow_from_row(rows[0], from_us)

    def load_history(self, workflow_id: str, *, tenant_id: str) -> list[HistoryEntry]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["load_history"], {"tenant_id": tenant_id,
                                                          "workflow_id": workflow_id}))
        return [history_from_row(r, from_us) for r in rows]

    def record_history(self, entries: Sequence[HistoryEntry], *, owner: str) -> None:
        """One statement per entry, each checking the lease (which cannot move while this
        transaction holds the write lock): the first refused raises and rolls back all."""
        if not entries:
            return
        with self._write() as conn:
            for e in entries:
                params = history_params(e, to_us)
                params["owner"] = owner
                if conn.execute(Q["record_history"], params).rowcount != 1:
                    raise _stale_run(e.workflow_id, owner)

    def consume_signal(self, entry: HistoryEntry, *, owner: str) -> Signal | None:
        params = {"tenant_id": entry.tenant_id, "workflow_id": entry.workflow_id,
                  "name": entry.name, "seq": entry.seq, "owner": owner}
        with self._write() as conn:
            rows = _rows(conn.execute(Q["take_signal"], params))
            if not rows:
                if conn.execute(Q["workflow_owned"], params).fetchone() is None:
                    raise _stale_run(entry.workflow_id, owner)
                return None
            signal = signal_from_row(rows[0], from_us)
            done = history_params(consumed_entry(entry, signal), to_us)
            done["owner"] = owner
            conn.execute(Q["record_history"], done)
        return signal

    def finish_run(self, workflow: Workflow, *, owner: str, jobs: Sequence[NewJob] = ()
                   ) -> Workflow:
        """``workflow.updated_at`` is the instant of the write (and the created_at of
        ``jobs``); cancel_requested and cancel_reason are left as stored."""
        params = workflow_params(workflow, to_us)
        params["owner"] = owner
        with self._write() as conn:
            rows = _rows(conn.execute(Q["finish_run"], params))
            if not rows:
                self._get_workflow(conn, workflow.id, workflow.tenant_id)  # NotFound
                raise _stale_run(workflow.id, owner)
            if workflow.state in WORKFLOW_FINAL:
                conn.execute(Q["cancel_workflow_approvals"], {
                    "tenant_id": workflow.tenant_id, "workflow_id": workflow.id,
                    "now": params["updated_at"]})
                ended = workflow_from_row(rows[0], from_us)
                conn.execute(Q["cancel_workflow_jobs"], workflow_jobs_params(
                    ended, params["updated_at"], f"workflow {workflow.state}"))
            _insert_jobs(conn, jobs, to_us(workflow.updated_at), skip_existing=True)
        return workflow_from_row(rows[0], from_us)

    def send_signal(self, signal: Signal, resume: NewJob) -> Signal:
        with self._write() as conn:
            current = self._get_workflow(conn, signal.workflow_id, signal.tenant_id)
            if current.is_final:
                raise workflow_is_final(current.id, current.state)
            try:
                rows = _rows(conn.execute(Q["insert_signal"], signal_params(signal, to_us)))
            except sqlite3.IntegrityError as e:
                if "hora_workflow_signals.id" in str(e):
                    raise Conflict(f"signal {signal.id} already exists") from None
                raise
            _insert_jobs(conn, [resume], to_us(signal.sent_at))
        return signal_from_row(rows[0], from_us)

    def list_signals(self, workflow_id: str, *, tenant_id: str) -> list[Signal]:
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_signals"], {"tenant_id": tenant_id,
                                                          "workflow_id": workflow_id}))
        return [signal_from_row(r, from_us) for r in rows]

    def request_workflow_cancel(self, workflow_id: str, *, tenant_id: str, reason: str,
                                now: datetime, resume: NewJob) -> Workflow:
        n = to_us(now)
        with self._write() as conn:
            rows = _rows(conn.execute(Q["request_workflow_cancel"], {
                "tenant_id": tenant_id, "id": workflow_id, "reason": reason, "now": n}))
            if not rows:
                current = self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                raise workflow_is_final(workflow_id, current.state)
            conn.execute(Q["cancel_workflow_approvals"], {
                "tenant_id": tenant_id, "workflow_id": workflow_id, "now": n})
            _insert_jobs(conn, [resume], n)
        return workflow_from_row(rows[0], from_us)

    def terminate_workflow(self, workflow_id: str, *, tenant_id: str, reason: str,
                           error: ErrorInfo, now: datetime, jobs: Sequence[NewJob] = ()
                           ) -> Workflow:
        n = to_us(now)
        with self._write() as conn:
            rows = _rows(conn.execute(Q["terminate_workflow"], {
                "tenant_id": tenant_id, "id": workflow_id, "reason": reason,
                "error": error_json(error), "now": n}))
            if not rows:
                current = self._get_workflow(conn, workflow_id, tenant_id)  # NotFound
                raise workflow_is_final(workflow_id, current.state)
            ended = workflow_from_row(rows[0], from_us)
            conn.execute(Q["cancel_workflow_approvals"], {
                "tenant_id": tenant_id, "workflow_id": workflow_id, "now": n})
            conn.execute(Q["cancel_workflow_jobs"],
                         workflow_jobs_params(ended, n, "workflow terminated"))
            _insert_jobs(conn, jobs, n, skip_existing=True)
        return ended



# -- helpers ----------------------------------------------------------------------------


def _stale_run(workflow_id: str, owner: str) -> StaleRecord:
    return StaleRecord(f"workflow {workflow_id}: {owner} no longer holds its run lease")

