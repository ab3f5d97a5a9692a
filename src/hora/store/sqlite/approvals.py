"""Approval requests: one per wait_for_approval (by journal position), decided by id."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from hora.errors import NotFound
from hora.models import ApprovalRequest, HistoryEntry, NewJob, Page
from hora.store.common import (
    approval_cursor,
    approval_from_row,
    approval_params,
    from_us,
    history_params,
    keyset_page,
    parse_workflow_cursor,
    to_us,
)
from hora.store.sqlite.connection import Q, SQLiteConnection, _rows
from hora.store.sqlite.jobs import _insert_jobs
from hora.store.sqlite.workflows import _stale_run


class SQLiteApprovals(SQLiteConnection):
    """Approval requests (hora_approvals); deciding one enqueues the workflow's resume."""

    def open_approval(self, request: ApprovalRequest, entry: HistoryEntry, *, owner: str
                      ) -> ApprovalRequest:
        params = history_params(entry, to_us)
        params["owner"] = owner
        with self._write() as conn:
            if conn.execute(Q["record_history"], params).rowcount != 1:
                raise _stale_run(entry.workflow_id, owner)
            conn.execute(Q["insert_approval"], approval_params(request, to_us))
            rows = _rows(conn.execute(Q["approval_at"], {
                "tenant_id": request.tenant_id, "workflow_id": request.workflow_id,
                "seq": request.seq}))
        return approval_from_row(rows[0], from_us)

    def _get_approval(self, conn: sqlite3.Connection, approval_id: str,
                      tenant_id: str) -> ApprovalRequest:
        rows = _rows(conn.execute(Q["get_approval"], {"tenant_id": tenant_id,
                                                      "id": approval_id}))
        if not rows:
            raise NotFound(f"approval request {approval_id} not found")
        return approval_from_row(rows[0], from_us)

    def get_approval(self, approval_id: str, *, tenant_id: str) -> ApprovalRequest:
        with self._read() as conn:
            return self._get_approval(conn, approval_id, tenant_id)

    def list_approvals(self, *, tenant_id: str, states: Sequence[str] | None = None,
                       workflow_id: str | None = None, name: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> Page[ApprovalRequest]:
        cursor_at, cursor_id = parse_workflow_cursor(cursor)
        with self._read() as conn:
            rows = _rows(conn.execute(Q["list_approvals"], {
                "tenant_id": tenant_id, "cursor_at": cursor_at, "cursor_id": cursor_id,
                "states": None if states is None else json.dumps(list(states)),
                "workflow_id": workflow_id, "name": name, "limit": limit + 1}))
        return keyset_page([approval_from_row(r, from_us) for r in rows], limit,
                           approval_cursor)

    def decide_approval(self, approval_id: str, *, tenant_id: str, state: str, actor: str,
                        actor_key: str | None, comment: str | None, now: datetime,
                        resume: NewJob) -> ApprovalRequest:
        n = to_us(now)
        with self._write() as conn:
            rows = _rows(conn.execute(Q["decide_approval"], {
                "tenant_id": tenant_id, "id": approval_id, "state": state,
                "decided_by": actor, "decided_by_key": actor_key, "comment": comment,
                "now": n}))
            if rows:
                _insert_jobs(conn, [resume], n, skip_existing=True)
                return approval_from_row(rows[0], from_us)
            conn.execute(Q["close_approval"], {"tenant_id": tenant_id, "id": approval_id,
                                               "state": "expired", "now": n})
            return self._get_approval(conn, approval_id, tenant_id)  # NotFound

    def close_approval(self, approval_id: str, *, tenant_id: str, state: str, now: datetime
                       ) -> ApprovalRequest:
        with self._write() as conn:
            conn.execute(Q["close_approval"], {"tenant_id": tenant_id, "id": approval_id,
                                               "state": state, "now": to_us(now)})
            return self._get_approval(conn, approval_id, tenant_id)


